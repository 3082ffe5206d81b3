//! Helpers of the differential tests that run either on an in-process strom or, given an address,
//! on a real Kafka (whose answers are the tests' expected values), and of the fetches they read with.

use std::net::SocketAddr;

use kafka_protocol::messages::FetchRequest;

use super::{create_topic_result, new_topic, tn, Client, TestBroker};

/// A Fetch of partition 0 of `topic` by name (v4–v12) from `offset` at `isolation_level` (0
/// read_uncommitted, 1 read_committed), waiting at most `max_wait_ms` for one byte.
pub fn fetch_request_p0(topic: &str, offset: i64, isolation_level: i8, max_wait_ms: i32) -> FetchRequest {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    FetchRequest::default()
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_isolation_level(isolation_level)
        .with_topics(vec![FetchTopic::default().with_topic(tn(topic)).with_partitions(vec![
            FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20),
        ])])
}

/// The broker a differential test runs against: the real Kafka at the address in env var `var` if
/// it is set (then no strom is started), else an in-process strom with the `extra` settings.
pub async fn broker_or_reference(var: &str, extra: &[(&str, &str)]) -> (Option<TestBroker>, SocketAddr) {
    match std::env::var(var) {
        Ok(a) => (None, a.parse().unwrap_or_else(|_| panic!("{var} is host:port, got {a}"))),
        Err(_) => {
            let b = TestBroker::start_with(extra).await;
            let addr = b.addr();
            (Some(b), addr)
        }
    }
}

/// Creates a one-partition compacted topic whose sealed segments the cleaner takes at once: segments
/// roll after 100 ms, any dirt is enough, tombstones and spent markers go at the next clean.
pub async fn create_fast_compacted(c: &mut Client, topic: &str) {
    let configs = [
        ("cleanup.policy", "compact"),
        ("segment.ms", "100"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("delete.retention.ms", "0"),
    ];
    let created = create_topic_result(c, new_topic(topic, 1, &configs)).await;
    assert_eq!(created.error_code, 0, "{created:?}");
}
