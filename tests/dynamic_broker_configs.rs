//! Dynamic broker configs taking effect without a restart, beyond the `log.*` topic defaults (those
//! are in tests/broker_configs.rs): `max.connections`, `producer.id.expiration.ms`,
//! `message.max.bytes`, `max.decompressed.message.bytes`, and `listeners` with
//! `listener.security.protocol.map`.
//!
//! Each expectation was first checked against a Kafka 4.4.0 broker (`scripts/kafka-reference`), with
//! Java probes using the Admin client's incrementalAlterConfigs and raw sockets; the test names the
//! probe and what Kafka did.

mod common;

use std::time::Duration;

use common::configs::{alter, BROKER, DELETE, SET};
use common::{Client, TestBroker};
use kafka_protocol::messages::ApiVersionsRequest;

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
