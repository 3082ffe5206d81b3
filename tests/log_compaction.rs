//! Log compaction over the wire: a compacted topic with aggressive cleaner settings is cleaned, and
//! a fetch from offset 0 shows exactly the newest record per key with offset gaps, tombstones kept
//! for `delete.retention.ms` after their first clean and then removed.
//!
//! The expected offsets and values come from Apache Kafka 4.4.0 on the same input
//! (`scripts/kafka-reference start --port P --dir D --override log.cleaner.backoff.ms=500`, then this
//! test with `COMPACTION_REFERENCE_ADDR=127.0.0.1:P`, which runs the scenario there instead of on an
//! in-process strom).

mod common;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use common::{create_topic_result, new_topic, produce, Client, TestBroker};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// One batch holding one record `key` = `value` (`None`: a tombstone).
fn keyed(key: &str, value: Option<&str>) -> Bytes {
    let r = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: common::now_ms(),
        key: Some(Bytes::from(key.to_string())),
        value: value.map(|v| Bytes::from(v.to_string())),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, [&r], &options).expect("encode");
    buf.freeze()
}

/// (offset, key, value) of every record fetches from offset 0 return, up to the high watermark (a
/// Kafka fetch reads from one segment at a time).
async fn read_all(c: &mut Client, topic: &str) -> Vec<(i64, String, Option<String>)> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let resp = c.call(&common::fetch_request_p0(topic, offset, 0, 0), 12).await;
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "{p:?}");
        let mut records = p.records.clone().unwrap_or_default();
        if records.is_empty() || offset >= p.high_watermark {
            return out;
        }
        let sets = RecordBatchDecoder::decode_all(&mut records).expect("decodes");
        let text = |b: &Option<Bytes>| b.as_ref().map(|b| String::from_utf8_lossy(b).into_owned());
        for batch in common::parse_batches(&p.records.clone().unwrap_or_default()) {
            offset = offset.max(batch.last_offset + 1);
        }
        for r in sets.iter().flat_map(|s| &s.records) {
            out.push((r.offset, text(&r.key).unwrap_or_default(), text(&r.value)));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compacted_topic_is_cleaned_to_the_newest_record_per_key_as_kafka_does() {
    let (strom, addr) =
        common::broker_or_reference("COMPACTION_REFERENCE_ADDR", &[("log.cleaner.backoff.ms", "200")]).await;
    let mut c = Client::connect(addr).await.expect("connect");
    let topic = format!("compacted-{}", common::now_ms());
    common::create_fast_compacted(&mut c, &topic).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes = [
        ("k1", Some("a1")),
        ("k2", Some("b1")),
        ("k3", Some("c1")),
        ("k1", Some("a2")),
        ("k2", None),
        ("k4", Some("d1")),
        ("k1", Some("a3")),
        ("k3", Some("c2")),
    ];
    for (k, v) in writes {
        let p = produce(&mut c, &topic, 0, keyed(k, v), 9).await;
        assert_eq!(p.error_code, 0, "{p:?}");
    }
    // A write after segment.ms seals the segment holding the writes above; the cleaner then runs.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    produce(&mut c, &topic, 0, keyed("s1", Some("x")), 9).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let first = read_all(&mut c, &topic).await;
    // Again: the tombstone, past its delete horizon (delete.retention.ms=0), goes at the next clean.
    produce(&mut c, &topic, 0, keyed("s2", Some("y")), 9).await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    let second = read_all(&mut c, &topic).await;
    if strom.is_none() {
        println!("first clean: {first:?}\nsecond clean: {second:?}");
        return;
    }
    let r = |o: i64, k: &str, v: Option<&str>| (o, k.to_string(), v.map(str::to_string));
    // Kafka 4.4.0's results on this input (see the module doc).
    assert_eq!(
        first,
        vec![
            r(4, "k2", None),
            r(5, "k4", Some("d1")),
            r(6, "k1", Some("a3")),
            r(7, "k3", Some("c2")),
            r(8, "s1", Some("x")),
        ]
    );
    assert_eq!(
        second,
        vec![
            r(5, "k4", Some("d1")),
            r(6, "k1", Some("a3")),
            r(7, "k3", Some("c2")),
            r(8, "s1", Some("x")),
            r(9, "s2", Some("y"))
        ]
    );
    if let Some(b) = strom {
        b.stop().await;
    }
}

/// Writes `k` = `v` to partition 0 of `live` after `segment.ms` (100), so the write rolls the
/// segment holding the ones before.
async fn write_after_roll(c: &mut Client, k: &str, v: &str) {
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(produce(c, "live", 0, keyed(k, Some(v)), 9).await.error_code, 0);
}

/// The dynamic `log.cleaner.*` keys apply live (Kafka's `LogCleaner.reconfigure` restarts its
/// threads with the new settings): a broker whose cleaner backs off for an hour cleans at once when
/// the cluster default `log.cleaner.backoff.ms` is lowered, and keeps to the new backoff after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_cleaner_backoff_applies_at_once() {
    use common::configs::{alter, BROKER, SET};
    let b = TestBroker::start_with(&[("log.cleaner.backoff.ms", "3600000")]).await;
    let mut c = Client::connect(b.addr()).await.expect("connect");
    let configs =
        [("cleanup.policy", "compact"), ("segment.ms", "100"), ("min.cleanable.dirty.ratio", "0.01")];
    assert_eq!(create_topic_result(&mut c, new_topic("live", 1, &configs)).await.error_code, 0);
    write_after_roll(&mut c, "k1", "a1").await;
    write_after_roll(&mut c, "k1", "a2").await;
    write_after_roll(&mut c, "s1", "x").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let r = |o: i64, k: &str, v: &str| (o, k.to_string(), Some(v.to_string()));
    assert_eq!(read_all(&mut c, "live").await.len(), 3, "the cleaner is backing off for an hour");
    assert_eq!(alter(&mut c, BROKER, "", &[("log.cleaner.backoff.ms", SET, Some("200"))]).await, (0, None));
    let cleaned = async |c: &mut Client, want: Vec<(i64, String, Option<String>)>| {
        for _ in 0..40 {
            if read_all(c, "live").await == want {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    };
    assert!(cleaned(&mut c, vec![r(1, "k1", "a2"), r(2, "s1", "x")]).await, "cleaned at once");
    write_after_roll(&mut c, "k1", "a3").await;
    write_after_roll(&mut c, "s2", "y").await;
    let want = vec![r(2, "s1", "x"), r(3, "k1", "a3"), r(4, "s2", "y")];
    assert!(cleaned(&mut c, want).await, "cleaned again within the new backoff");
    b.stop().await;
}
