//! Dynamic broker configs taking effect without a restart, beyond the `log.*` topic defaults (those
//! are in tests/broker_configs.rs): `max.connections`, `producer.id.expiration.ms`,
//! `message.max.bytes`, `max.decompressed.message.bytes`, and `listeners` with
//! `listener.security.protocol.map` (their refusals, with Kafka's messages, are unit-tested in
//! src/cluster/broker_config/listeners.rs).
//!
//! Each expectation was first checked against a Kafka 4.4.0 broker (`scripts/kafka-reference`), with
//! Java probes using the Admin client's incrementalAlterConfigs and raw sockets; the test names the
//! probe and what Kafka did.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::configs::{alter, BROKER, DELETE, SET};
use common::{
    create_topic, metadata_all, now_ms, produce, record_batch_with, s, tn, Client, Producer, TestBroker,
};
use kafka_protocol::messages::describe_producers_request::TopicRequest;
use kafka_protocol::messages::{
    ApiVersionsRequest, DescribeClusterRequest, DescribeProducersRequest, FindCoordinatorRequest,
    InitProducerIdRequest, ProducerId,
};
use kafka_protocol::records::Compression;

/// ApiVersions v0 on `c`: true when answered.
async fn answers(c: &mut Client) -> bool {
    c.send(&ApiVersionsRequest::default(), 0).await;
    matches!(c.read_frame().await, Ok(Some(_)))
}

/// Kafka 4.4 (probe: 6 raw connections plus an Admin client, then `max.connections=4` as the
/// cluster default): the excess connections are closed at once, the least recently active first
/// (Kafka's network processors close their `lowestPriorityChannel` while the broker holds more than
/// `max.connections`); a new connection is accepted by the kernel but not served (an ApiVersions
/// request on it waited 3 s unanswered) until the bound is raised, then answered within 120 ms;
/// after DELETE the value falls back to the static (or default) one.
#[tokio::test]
async fn max_connections_applies_to_open_and_new_connections_at_once() {
    let broker = TestBroker::start_with(&[("max.connections", "100")]).await;
    let addr = broker.addr();
    let mut admin = Client::connect(addr).await.expect("connect");
    assert!(answers(&mut admin).await);
    let mut conns = Vec::new();
    for _ in 0..5 {
        let mut c = Client::connect(addr).await.expect("connect");
        assert!(answers(&mut c).await);
        conns.push(c);
    }
    // conns[2..] were active after conns[0..2]; the admin connection is the most recent of all.
    for c in &mut conns[2..] {
        assert!(answers(c).await);
    }
    assert_eq!(alter(&mut admin, BROKER, "", &[("max.connections", SET, Some("4"))]).await.0, 0);
    // Six open, four allowed: the two least recently active close.
    conns[0].expect_closed("least recently active").await;
    conns[1].expect_closed("second least recently active").await;
    for c in &mut conns[2..] {
        assert!(answers(c).await, "a recently active connection stays open");
    }
    // At the bound: a new connection waits unserved.
    let mut waiting = Client::connect(addr).await.expect("the kernel accepts the connection");
    waiting.send(&ApiVersionsRequest::default(), 0).await;
    let unanswered = tokio::time::timeout(Duration::from_millis(500), waiting.read_frame()).await;
    assert!(unanswered.is_err(), "no answer while the broker is at max.connections");
    // Raised on this broker (per-broker wins over the cluster default): served at once.
    assert_eq!(alter(&mut admin, BROKER, "1", &[("max.connections", SET, Some("10"))]).await.0, 0);
    assert!(matches!(waiting.read_frame().await, Ok(Some(_))), "the waiting connection is served");
    // Both dynamic values deleted (the per-broker 10 still covers the five open meanwhile): the
    // static 100 applies again.
    assert_eq!(alter(&mut admin, BROKER, "", &[("max.connections", DELETE, None)]).await.0, 0);
    assert_eq!(alter(&mut admin, BROKER, "1", &[("max.connections", DELETE, None)]).await.0, 0);
    let mut more = Vec::new();
    for _ in 0..20 {
        let mut c = Client::connect(addr).await.expect("connect");
        assert!(answers(&mut c).await, "under the static bound again");
        more.push(c);
    }
    for c in &mut conns[2..] {
        assert!(answers(c).await);
    }
    drop((more, conns, waiting, admin));
    broker.stop().await;
}

/// A new idempotent producer id (InitProducerId without a transactional id).
async fn new_producer_id(c: &mut Client) -> i64 {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let r = c.call(&req, 4).await;
    assert_eq!(r.error_code, 0);
    r.producer_id.0
}

/// The producer ids DescribeProducers lists for partition 0 of `topic`.
async fn active_producers(c: &mut Client, topic: &str) -> Vec<i64> {
    let req = DescribeProducersRequest::default()
        .with_topics(vec![TopicRequest::default().with_name(tn(topic)).with_partition_indexes(vec![0])]);
    let r = c.call(&req, 0).await;
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.active_producers.iter().map(|a| a.producer_id.0).collect()
}

/// One idempotent record from `pid` at sequence `seq`, timestamped `timestamp`, appended.
async fn produce_from(c: &mut Client, topic: &str, pid: i64, seq: i32, timestamp: i64) {
    let batch =
        record_batch_with(&[b"v"], Some(&[timestamp]), Producer::idempotent(pid, 0, seq), Compression::None);
    assert_eq!(produce(c, topic, 0, batch, 9).await.error_code, 0);
}

/// Kafka 4.4 (probe: `producer.id.expiration.check.interval.ms=200` in server.properties, an
/// idempotent producer, DescribeProducers): `producer.id.expiration.ms=0` is refused ("Value must
/// be at least 1"); set to 1000 as the cluster default, the producer was gone 1.6 s later; after
/// DELETE (back to 86400000) a new producer was still listed 1.6 s after its write; a producer whose
/// record carried a timestamp 10 minutes old was gone within 800 ms of setting 300000 on broker 1
/// (Kafka ages a producer from its last batch's timestamp), while a fresh one stayed.
#[tokio::test]
async fn producer_id_expiration_applies_at_the_next_check() {
    let broker = TestBroker::start_with(&[("producer.id.expiration.check.interval.ms", "100")]).await;
    let mut c = Client::connect(broker.addr()).await.expect("connect");
    create_topic(&mut c, "p", 1).await;
    create_topic(&mut c, "q", 1).await;
    let first = new_producer_id(&mut c).await;
    produce_from(&mut c, "p", first, 0, now_ms()).await;
    assert_eq!(active_producers(&mut c, "p").await, vec![first]);
    assert_eq!(
        alter(&mut c, BROKER, "", &[("producer.id.expiration.ms", SET, Some("0"))]).await,
        (
            42,
            Some(
                "Invalid value 0 for configuration producer.id.expiration.ms: Value must be at least 1"
                    .into()
            )
        )
    );
    assert_eq!(alter(&mut c, BROKER, "", &[("producer.id.expiration.ms", SET, Some("1000"))]).await.0, 0);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(active_producers(&mut c, "p").await, Vec::<i64>::new(), "expired after 1000 ms");
    // Deleted: back to the default (a day).
    assert_eq!(alter(&mut c, BROKER, "", &[("producer.id.expiration.ms", DELETE, None)]).await.0, 0);
    let second = new_producer_id(&mut c).await;
    produce_from(&mut c, "p", second, 0, now_ms()).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(active_producers(&mut c, "p").await, vec![second]);
    // Aged from the record's timestamp, not from when it was written.
    let old = new_producer_id(&mut c).await;
    produce_from(&mut c, "q", old, 0, now_ms() - 600_000).await;
    assert_eq!(active_producers(&mut c, "q").await, vec![old]);
    assert_eq!(alter(&mut c, BROKER, "1", &[("producer.id.expiration.ms", SET, Some("300000"))]).await.0, 0);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(active_producers(&mut c, "q").await, Vec::<i64>::new(), "10 minutes old, 5 allowed");
    assert_eq!(active_producers(&mut c, "p").await, vec![second]);
    broker.stop().await;
}

/// A plain (non-idempotent) batch of one record holding `size` bytes of 'a', compressed with `codec`.
fn value_batch(size: usize, codec: Compression) -> bytes::Bytes {
    record_batch_with(&[&vec![b'a'; size]], None, Producer::NONE, codec)
}

/// Kafka 4.4 (probe: a Java producer with retries=0 on topic `m`, Admin incrementalAlterConfigs):
/// a 3000-byte record went in; with `message.max.bytes=2000` as the cluster default the topic
/// described `max.message.bytes=2000` (DYNAMIC_DEFAULT_BROKER_CONFIG), the 3000-byte record was
/// refused with RecordTooLargeException (MESSAGE_TOO_LARGE) and a 1000-byte one went in; after
/// DELETE the 3000-byte record went in again. With `max.decompressed.message.bytes=1000` on broker
/// 1, a gzip batch of one 100000-byte record was refused with InvalidRecordException
/// (INVALID_RECORD), a gzip 100-byte record and an uncompressed 3000-byte one went in; after DELETE
/// the gzip 100000-byte record went in.
#[tokio::test]
async fn record_size_bounds_apply_to_existing_topics_at_once() {
    let broker = TestBroker::start().await;
    let mut c = Client::connect(broker.addr()).await.expect("connect");
    create_topic(&mut c, "m", 1).await;
    let code = |r: kafka_protocol::messages::produce_response::PartitionProduceResponse| r.error_code;
    assert_eq!(code(produce(&mut c, "m", 0, value_batch(3000, Compression::None), 9).await), 0);
    assert_eq!(alter(&mut c, BROKER, "", &[("message.max.bytes", SET, Some("2000"))]).await.0, 0);
    assert_eq!(code(produce(&mut c, "m", 0, value_batch(3000, Compression::None), 9).await), 10);
    assert_eq!(code(produce(&mut c, "m", 0, value_batch(1000, Compression::None), 9).await), 0);
    assert_eq!(alter(&mut c, BROKER, "", &[("message.max.bytes", DELETE, None)]).await.0, 0);
    assert_eq!(code(produce(&mut c, "m", 0, value_batch(3000, Compression::None), 9).await), 0);

    let gzip = Compression::Gzip;
    assert_eq!(code(produce(&mut c, "m", 0, value_batch(100_000, gzip), 9).await), 0);
    assert_eq!(
        alter(&mut c, BROKER, "1", &[("max.decompressed.message.bytes", SET, Some("1000"))]).await.0,
        0
    );
    assert_eq!(code(produce(&mut c, "m", 0, value_batch(100_000, gzip), 9).await), 87);
    assert_eq!(code(produce(&mut c, "m", 0, value_batch(100, gzip), 9).await), 0);
    assert_eq!(code(produce(&mut c, "m", 0, value_batch(3000, Compression::None), 9).await), 0);
    assert_eq!(alter(&mut c, BROKER, "1", &[("max.decompressed.message.bytes", DELETE, None)]).await.0, 0);
    assert_eq!(code(produce(&mut c, "m", 0, value_batch(100_000, gzip), 9).await), 0);
    broker.stop().await;
}

/// Connects to `addr`, retrying for up to 5 s (the listener opens just after the alter is answered).
async fn connect_soon(addr: SocketAddr) -> Client {
    for _ in 0..100 {
        if let Ok(c) = Client::connect(addr).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing listens on {addr}");
}

/// Waits up to 5 s for `addr` to refuse connections.
async fn refused_soon(addr: SocketAddr) {
    for _ in 0..100 {
        if Client::connect(addr).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{addr} still accepts connections");
}

/// Kafka 4.4 (probe: IncrementalAlterConfigs of `listeners` and `listener.security.protocol.map` on
/// broker 1, then raw requests on each port): an EXTRA listener added with its protocol was served at
/// once; through it, Metadata listed no broker and answered each partition with LISTENER_NOT_FOUND,
/// leader -1, its replica offline; DescribeCluster listed no broker and controller -1;
/// FindCoordinator v3 answered COORDINATOR_NOT_AVAILABLE "The coordinator is not available.", node -1
/// (the broker's endpoints are registered at start). Metadata through PLAINTEXT was unchanged.
/// Removing EXTRA closed its open connection and its port (connection refused); a listener without a
/// protocol in the map was refused with INVALID_REQUEST.
#[tokio::test]
async fn listeners_added_and_removed_at_once() {
    let broker = TestBroker::start().await;
    let mut c = Client::connect(broker.addr()).await.expect("connect");
    create_topic(&mut c, "t", 1).await;
    let extra: SocketAddr = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        probe.local_addr().expect("its address")
    };
    let base = format!("PLAINTEXT://{}", broker.addr());
    let with_extra = format!("{base},EXTRA://{extra}");
    assert_eq!(
        alter(&mut c, BROKER, "1", &[("listeners", SET, Some(&with_extra))]).await,
        (
            42,
            Some(format!(
                "Error creating broker listeners from '[{base}, EXTRA://{extra}]': No security protocol defined for listener EXTRA"
            ))
        )
    );
    let map = "PLAINTEXT:PLAINTEXT,EXTRA:PLAINTEXT";
    let ops =
        [("listeners", SET, Some(with_extra.as_str())), ("listener.security.protocol.map", SET, Some(map))];
    assert_eq!(alter(&mut c, BROKER, "1", &ops).await.0, 0);

    let mut e = connect_soon(extra).await;
    assert!(answers(&mut e).await, "EXTRA serves requests");
    let m = metadata_all(&mut e).await;
    assert!(m.brokers.is_empty(), "no broker registered for EXTRA: {:?}", m.brokers);
    let t = m.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == "t")).expect("topic t");
    let p = &t.partitions[0];
    assert_eq!((t.error_code, p.error_code, p.leader_id.0), (0, 72, -1));
    assert_eq!((p.replica_nodes.len(), p.offline_replicas.len()), (1, 1));
    let dc = e.call(&DescribeClusterRequest::default(), 0).await;
    assert_eq!((dc.brokers.len(), dc.controller_id.0), (0, -1));
    let fc = e.call(&FindCoordinatorRequest::default().with_key(s("g")), 3).await;
    assert_eq!(
        (fc.error_code, fc.error_message.as_deref(), fc.node_id.0, fc.port),
        (15, Some("The coordinator is not available."), -1, -1)
    );
    let m = metadata_all(&mut c).await;
    assert_eq!((m.brokers.len(), m.brokers[0].port), (1, i32::from(broker.addr().port())));

    // Removed: its connections close and its port with them.
    let ops = [("listeners", SET, Some(base.as_str()))];
    assert_eq!(alter(&mut c, BROKER, "1", &ops).await.0, 0);
    e.expect_closed("a connection of the removed listener").await;
    refused_soon(extra).await;
    // Deleted: back to the static listeners.
    let ops = [("listeners", DELETE, None), ("listener.security.protocol.map", DELETE, None)];
    assert_eq!(alter(&mut c, BROKER, "1", &ops).await.0, 0);
    assert!(answers(&mut c).await);
    assert!(answers(&mut Client::connect(broker.addr()).await.expect("connect")).await);
    broker.stop().await;
}
