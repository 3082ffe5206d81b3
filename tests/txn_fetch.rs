//! The partition side of transactions over real TCP: Fetch `isolation_level`, the last stable offset,
//! aborted transactions and ListOffsets READ_COMMITTED. Transactional batches and markers are written
//! through the partition log itself (the coordinator and its APIs are not part of these tests).

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{
    create_topic, produce, record_batch, record_batch_with, restamp_crc, tn, Client, Producer, TestBroker,
};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, ListOffsetsRequest};
use kafka_protocol::records::Compression;

const READ_UNCOMMITTED: i8 = 0;
const READ_COMMITTED: i8 = 1;

/// Fetches partition 0 of `topic` by name (v4–v12) at `isolation_level`, answered at once.
async fn fetch(c: &mut Client, topic: &str, offset: i64, isolation_level: i8, version: i16) -> PartitionData {
    let resp = c.call(&common::fetch_request_p0(topic, offset, isolation_level, 0), version).await;
    assert_eq!(resp.error_code, 0, "v{version}");
    resp.responses[0].partitions[0].clone()
}

/// Base offsets of the batches in a fetched record set.
fn bases(p: &PartitionData) -> Vec<i64> {
    let records = p.records.clone().unwrap_or_default();
    common::parse_batches(&records).iter().map(|b| b.base_offset).collect()
}

/// ListOffsets (v7) for partition 0 at `timestamp` and an isolation level: (timestamp, offset).
async fn list_at(c: &mut Client, topic: &str, timestamp: i64, isolation_level: i8) -> (i64, i64) {
    let partition = ListOffsetsPartition::default().with_partition_index(0).with_timestamp(timestamp);
    let topics = vec![ListOffsetsTopic::default().with_name(tn(topic)).with_partitions(vec![partition])];
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation_level)
        .with_topics(topics);
    let p = c.call(&req, 7).await.topics[0].partitions[0].clone();
    assert_eq!(p.error_code, 0);
    (p.timestamp, p.offset)
}

/// ListOffsets "latest" for partition 0 at an isolation level.
async fn latest(c: &mut Client, topic: &str, isolation_level: i8) -> i64 {
    list_at(c, topic, -1, isolation_level).await.1
}

/// A transactional batch of `values` from producer `pid` (epoch 0) starting at sequence `seq`,
/// timestamped `ts` (ms) when given.
fn txn_batch_at(pid: i64, seq: i32, values: &[&str], ts: Option<i64>) -> Bytes {
    let v: Vec<&[u8]> = values.iter().map(|s| s.as_bytes()).collect();
    let stamps: Option<Vec<i64>> = ts.map(|t| vec![t; v.len()]);
    let b = record_batch_with(&v, stamps.as_deref(), Producer::idempotent(pid, 0, seq), Compression::None);
    let mut b = b.to_vec();
    let attrs = i16::from_be_bytes([b[21], b[22]]) | 1 << 4;
    b[21..23].copy_from_slice(&attrs.to_be_bytes());
    restamp_crc(&mut b);
    Bytes::from(b)
}

fn txn_batch(pid: i64, seq: i32, values: &[&str]) -> Bytes {
    txn_batch_at(pid, seq, values, None)
}

#[tokio::test]
async fn without_transactions_the_last_stable_offset_is_the_high_watermark() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "plain", 1).await;
    assert_eq!(produce(&mut c, "plain", 0, record_batch(&["a", "b", "c"]), 9).await.error_code, 0);
    for version in [4, 7, 11, 12] {
        let p = fetch(&mut c, "plain", 0, READ_COMMITTED, version).await;
        assert_eq!((p.error_code, p.high_watermark, p.last_stable_offset), (0, 3, 3), "v{version}");
        assert_eq!(p.aborted_transactions, Some(vec![]), "v{version}: read_committed gets a list");
        assert_eq!(bases(&p), vec![0]);
        let p = fetch(&mut c, "plain", 0, READ_UNCOMMITTED, version).await;
        assert_eq!((p.high_watermark, p.last_stable_offset), (3, 3), "v{version}");
        assert_eq!(p.aborted_transactions, None, "v{version}: read_uncommitted gets null");
    }
    assert_eq!(latest(&mut c, "plain", READ_COMMITTED).await, 3);
    assert_eq!(latest(&mut c, "plain", READ_UNCOMMITTED).await, 3);
    // Out of range: Kafka 4.4.0 answers a read error with no offsets at all, and a null list.
    let p = fetch(&mut c, "plain", 9, READ_COMMITTED, 11).await;
    assert_eq!((p.error_code, p.high_watermark, p.last_stable_offset, p.log_start_offset), (1, -1, -1, -1));
    assert_eq!(p.aborted_transactions, None);
    broker.stop().await;
}

#[tokio::test]
async fn read_committed_fetches_stop_at_the_lso_and_learn_of_aborts() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "tx", 1).await;
    let log = broker.broker().cluster.logs.partition("tx", 0).expect("the partition's log");
    assert_eq!(produce(&mut c, "tx", 0, record_batch(&["p0", "p1"]), 9).await.error_code, 0); // 0-1
    let future = common::now_ms() + 3_600_000;
    log.append(&txn_batch_at(42, 0, &["t0", "t1"], Some(future)), 0, 1).unwrap(); // 2-3, ongoing
    assert_eq!(produce(&mut c, "tx", 0, record_batch(&["p2"]), 9).await.error_code, 0); // 4

    let p = fetch(&mut c, "tx", 0, READ_COMMITTED, 11).await;
    assert_eq!((p.high_watermark, p.last_stable_offset), (5, 2));
    assert_eq!(bases(&p), vec![0], "nothing at or past the LSO");
    assert_eq!(p.aborted_transactions, Some(vec![]));
    let p = fetch(&mut c, "tx", 0, READ_UNCOMMITTED, 11).await;
    assert_eq!((p.last_stable_offset, bases(&p)), (2, vec![0, 2, 4]));
    assert_eq!(
        (latest(&mut c, "tx", READ_COMMITTED).await, latest(&mut c, "tx", READ_UNCOMMITTED).await),
        (2, 5)
    );
    // A timestamp lookup that lands at or past the LSO finds nothing for read_committed.
    assert_eq!(list_at(&mut c, "tx", -3, READ_UNCOMMITTED).await, (future, 2));
    assert_eq!(list_at(&mut c, "tx", -3, READ_COMMITTED).await, (-1, -1));
    assert_eq!(list_at(&mut c, "tx", future, READ_COMMITTED).await, (-1, -1));
    assert_eq!(list_at(&mut c, "tx", future, READ_UNCOMMITTED).await, (future, 2));

    // A read_committed long poll from the LSO wakes when the marker lands.
    let mut waiter = broker.client().await;
    let started = Instant::now();
    let poll = tokio::spawn(async move {
        let resp = waiter.call(&common::fetch_request_p0("tx", 2, READ_COMMITTED, 20_000), 11).await;
        resp.responses[0].partitions[0].clone()
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(log.append_txn_marker(42, 0, 0, false, 0, common::now_ms()).unwrap(), 5);
    let p = poll.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "the marker woke the fetch");
    assert_eq!((p.high_watermark, p.last_stable_offset), (6, 6));
    assert_eq!(bases(&p), vec![2, 4, 5]);
    let aborted = p.aborted_transactions.expect("a list for read_committed");
    assert_eq!(aborted.len(), 1);
    assert_eq!((aborted[0].producer_id.0, aborted[0].first_offset), (42, 2));
    // From past the aborted transaction there is nothing to report.
    let p = fetch(&mut c, "tx", 4, READ_COMMITTED, 11).await;
    assert_eq!(p.aborted_transactions.map(|a| a.len()), Some(1), "the marker at 5 is still ahead");
    let p = fetch(&mut c, "tx", 6, READ_COMMITTED, 11).await;
    assert_eq!(p.aborted_transactions, Some(vec![]));
    assert_eq!(latest(&mut c, "tx", READ_COMMITTED).await, 6);
    broker.stop().await;
}

#[tokio::test]
async fn an_ongoing_transaction_survives_a_restart() {
    let mut broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "tr", 1).await;
    let log = broker.broker().cluster.logs.partition("tr", 0).expect("log");
    log.append(&txn_batch(7, 0, &["a"]), 0, 1).unwrap();
    log.append(&txn_batch(8, 0, &["b"]), 0, 1).unwrap();
    log.append_txn_marker(7, 0, 0, false, 0, 1).unwrap();
    drop(log);
    broker.restart().await;
    let mut c = broker.client().await;
    let p = fetch(&mut c, "tr", 0, READ_COMMITTED, 11).await;
    assert_eq!((p.high_watermark, p.last_stable_offset), (3, 1), "producer 8's transaction is still ongoing");
    assert_eq!(bases(&p), vec![0]);
    assert_eq!(p.aborted_transactions.map(|a| a.len()), Some(1));
    broker.stop().await;
}
