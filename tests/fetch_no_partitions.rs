//! A Fetch that names no partition is answered at once, whatever its max_wait_ms: Kafka's
//! ReplicaManager.fetchMessages responds immediately when there is nothing to fetch. Every Java consumer
//! sends one when it closes (its fetch session, epoch -1, no partitions) and waits for the answer, so a
//! broker that held it for fetch.max.wait.ms slowed every consumer close (a Kafka Connect worker stopping
//! closes several). Expected values from Apache Kafka 4.4.0 (a differential probe: each of these came back
//! in under 100 ms with max_wait 2000 ms, the fetch with a partition after the full 2000 ms).

mod common;

use std::time::{Duration, Instant};

use common::fetch::session_fetch;
use common::{create_topic, tn, TestBroker};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::FetchRequest;

const NONE: i16 = 0;
const MAX_WAIT_MS: i32 = 2000;

fn fetch(session_id: i32, epoch: i32, topics: Vec<FetchTopic>) -> FetchRequest {
    session_fetch(MAX_WAIT_MS, session_id, epoch, topics)
}

#[tokio::test]
async fn a_fetch_of_no_partition_is_answered_without_waiting_for_max_wait() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "idle", 1).await;
    let at_log_end = || {
        vec![FetchTopic::default().with_topic(tn("idle")).with_partitions(vec![FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(0)
            .with_partition_max_bytes(1 << 20)])]
    };
    let quick = Duration::from_millis(MAX_WAIT_MS as u64 / 2);
    for version in [7, 12] {
        // Sessionless (epoch -1) with no partition: no error, no session, answered at once.
        let started = Instant::now();
        let resp = c.call(&fetch(0, -1, vec![]), version).await;
        assert!(started.elapsed() < quick, "v{version}: sessionless, answered after {:?}", started.elapsed());
        assert_eq!((resp.error_code, resp.session_id, resp.responses.len()), (NONE, 0, 0), "v{version}");

        // A new session (epoch 0) with no partition: Kafka still creates one (a non-zero id), at once.
        let started = Instant::now();
        let resp = c.call(&fetch(0, 0, vec![]), version).await;
        assert!(
            started.elapsed() < quick,
            "v{version}: new empty session, answered after {:?}",
            started.elapsed()
        );
        assert_eq!((resp.error_code, resp.responses.len()), (NONE, 0), "v{version}");
        assert_ne!(resp.session_id, 0, "v{version}: a session was created");

        // A session holding a partition at its log end waits for max_wait, full and incremental alike.
        let started = Instant::now();
        let resp = c.call(&fetch(0, 0, at_log_end()), version).await;
        assert!(started.elapsed() >= quick, "v{version}: full fetch answered after {:?}", started.elapsed());
        let session = resp.session_id;
        assert_ne!(session, 0, "v{version}");
        let started = Instant::now();
        let resp = c.call(&fetch(session, 1, vec![]), version).await;
        assert!(started.elapsed() >= quick, "v{version}: incremental answered after {:?}", started.elapsed());
        assert_eq!(
            (resp.error_code, resp.session_id, resp.responses.len()),
            (NONE, session, 0),
            "v{version}"
        );

        // Closing that session as a consumer does on close (epoch -1, no partition): at once, session id 0.
        let started = Instant::now();
        let resp = c.call(&fetch(session, -1, vec![]), version).await;
        assert!(started.elapsed() < quick, "v{version}: close answered after {:?}", started.elapsed());
        assert_eq!((resp.error_code, resp.session_id, resp.responses.len()), (NONE, 0, 0), "v{version}");
    }
    broker.stop().await;
}
