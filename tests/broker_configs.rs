//! BROKER and GROUP config resources over real TCP: DescribeConfigs of this broker and of the cluster
//! default, IncrementalAlterConfigs / AlterConfigs of both with Kafka's validation, persistence across
//! a restart, the live effect of a dynamic `log.*` default on a topic, and GROUP configs.
//!
//! Expected values were taken from a Kafka 4.4.0 broker (scripts/kafka-reference) with the Admin
//! client's describeConfigs(includeSynonyms) and incrementalAlterConfigs, e.g. after
//! `SET log.retention.ms=-5` on broker 1 Kafka describes
//! `log.retention.ms -5 DYNAMIC_BROKER_CONFIG [log.retention.ms=-5@2, log.retention.hours=168@5]`.

mod common;

use common::configs::{alter, Op, APPEND, BROKER, DELETE, GROUP, SET, TOPIC};
use common::{create_topic, produce, record_batch, s, Client, TestBroker};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::{DescribeConfigsRequest, ListConfigResourcesRequest};

async fn describe(c: &mut Client, rtype: i8, name: &str) -> DescribeConfigsResult {
    let req = DescribeConfigsRequest::default().with_include_synonyms(true).with_resources(vec![
        DescribeConfigsResource::default()
            .with_resource_type(rtype)
            .with_resource_name(s(name))
            .with_configuration_keys(None),
    ]);
    c.call(&req, 4).await.results.pop().expect("one result")
}

/// (value, source, read_only, synonyms as "name=value@source") of one entry.
fn entry(r: &DescribeConfigsResult, key: &str) -> (Option<String>, i8, bool, Vec<String>) {
    let e =
        r.configs.iter().find(|e| e.name.as_str() == key).unwrap_or_else(|| panic!("{key} not described"));
    let syn = e
        .synonyms
        .iter()
        .map(|s| format!("{}={}@{}", s.name.as_str(), s.value.as_deref().unwrap_or("null"), s.source))
        .collect();
    (e.value.as_ref().map(|v| v.to_string()), e.config_source, e.read_only, syn)
}

#[tokio::test]
async fn broker_describe_lists_every_kafka_key() {
    let broker = TestBroker::start().await;
    let mut c = Client::connect(broker.addr()).await.expect("connect");
    let r = describe(&mut c, BROKER, "1").await;
    assert_eq!(r.error_code, 0);
    // Kafka 4.4 lists 350 keys for a broker with nothing unusual configured.
    assert_eq!(r.configs.len(), 350);
    assert_eq!(entry(&r, "log.retention.ms"), (None, 5, false, vec![]));
    let (v, src, ro, syn) = entry(&r, "log.segment.bytes");
    assert_eq!((v.as_deref(), src, ro), (Some("1073741824"), 5, false));
    assert_eq!(syn, vec!["log.segment.bytes=1073741824@5"]);
    assert!(entry(&r, "num.partitions").2, "num.partitions is read-only");
    // A Kafka key strom does not implement shows Kafka's default.
    assert_eq!(entry(&r, "num.io.threads").0.as_deref(), Some("8"));
    let ssl = r.configs.iter().find(|e| e.name.as_str() == "ssl.key.password").unwrap();
    assert!(ssl.is_sensitive && ssl.value.is_none() && ssl.config_type == 9);
    // The cluster default holds what a freshly formatted Kafka 4.4 cluster holds.
    let d = describe(&mut c, BROKER, "").await;
    let names: Vec<&str> = d.configs.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["min.insync.replicas"]);
    assert_eq!(
        entry(&d, "min.insync.replicas"),
        (Some("1".into()), 3, false, vec!["min.insync.replicas=1@3".into()])
    );
    broker.stop().await;
}

#[tokio::test]
async fn broker_alter_validates_as_kafka() {
    let broker = TestBroker::start().await;
    let mut c = Client::connect(broker.addr()).await.expect("connect");
    let cases: &[(&str, Op, i16, &str)] = &[
        ("1", ("num.partitions", SET, Some("3")), 42, "Cannot update these configs dynamically: [num.partitions]"),
        ("1", ("log.retention.ms", SET, Some("abc")), 42, "Invalid value abc for configuration log.retention.ms: Not a number of type LONG"),
        ("", ("listeners", SET, Some("PLAINTEXT://127.0.0.1:9")), 42, "Cannot update these configs at default cluster level, broker id must be specified: [listeners]"),
        ("", ("ssl.keystore.type", SET, Some("PKCS12")), 42, "These security configs can be dynamically updated only per-listener using the listener prefix: [ssl.keystore.type]"),
        ("", ("log.segment.bytes", APPEND, Some("5")), 40, "Config value append is not allowed for config key: log.segment.bytes"),
        ("2", ("log.retention.ms", SET, Some("1")), 42, "Unexpected broker id, expected 1, but received 2"),
        // Raw IncrementalAlterConfigs v1 against Kafka 4.4 (the Admin client routes these elsewhere).
        ("x", ("log.retention.ms", SET, Some("1")), 42, "Node id must be an integer, but it is: x"),
        ("1", ("log.retention.ms", SET, None), 42, "Null value not supported for : log.retention.ms"),
        ("1", ("no.such", APPEND, Some("1")), 40, "Unknown config name: no.such"),
        ("1", ("log.segment.bytes", SET, Some("5")), 42, "Invalid value 5 for configuration log.segment.bytes: Value must be at least 1048576"),
        ("1", ("log.cleanup.policy", SET, Some("shred")), 42, "Invalid value shred for configuration log.cleanup.policy: String must be one of: compact, delete"),
        ("1", ("log.retention.ms", 7, Some("1")), 42, "Unknown operations type 7"),
    ];
    for (name, op, code, msg) in cases {
        assert_eq!(alter(&mut c, BROKER, name, &[*op]).await, (*code, Some(msg.to_string())), "{op:?}");
    }
    // Kafka stores keys it does not know.
    assert_eq!(alter(&mut c, BROKER, "1", &[("no.such.key", SET, Some("3"))]).await.0, 0);
    let r = describe(&mut c, BROKER, "1").await;
    assert_eq!(entry(&r, "no.such.key"), (None, 2, true, vec!["no.such.key=null@2".into()]));
    broker.stop().await;
}

#[tokio::test]
async fn dynamic_defaults_reach_topics_at_once_and_survive_a_restart() {
    let mut broker = TestBroker::start().await;
    let mut c = Client::connect(broker.addr()).await.expect("connect");
    create_topic(&mut c, "t", 1).await;
    assert_eq!(alter(&mut c, BROKER, "1", &[("log.retention.ms", SET, Some("-5"))]).await.0, 0);
    let ops = [("log.segment.bytes", SET, Some("2000000")), ("log.cleanup.policy", APPEND, Some("compact"))];
    assert_eq!(alter(&mut c, BROKER, "", &ops).await.0, 0);
    for round in 0..2 {
        let r = describe(&mut c, BROKER, "1").await;
        assert_eq!(
            entry(&r, "log.retention.ms"),
            (
                Some("-5".into()),
                2,
                false,
                vec!["log.retention.ms=-5@2".into(), "log.retention.hours=168@5".into()]
            ),
            "round {round}"
        );
        assert_eq!(
            entry(&r, "log.segment.bytes").3,
            vec!["log.segment.bytes=2000000@3", "log.segment.bytes=1073741824@5"]
        );
        let d = describe(&mut c, BROKER, "").await;
        assert_eq!(
            entry(&d, "log.cleanup.policy"),
            (Some("delete,compact".into()), 3, false, vec!["log.cleanup.policy=delete,compact@3".into()])
        );
        // The topic, without overrides of its own, follows the new defaults.
        let t = describe(&mut c, TOPIC, "t").await;
        assert_eq!(
            entry(&t, "retention.ms"),
            // Kafka 4.4 shows a negative broker retention as -1 on topics.
            (
                Some("-1".into()),
                2,
                false,
                vec!["log.retention.ms=-5@2".into(), "log.retention.hours=168@5".into()]
            )
        );
        assert_eq!(entry(&t, "segment.bytes").0.as_deref(), Some("2000000"));
        assert_eq!(entry(&t, "segment.bytes").1, 3);
        assert_eq!(
            entry(&t, "cleanup.policy").3,
            vec!["log.cleanup.policy=delete,compact@3", "log.cleanup.policy=delete@5"]
        );
        broker.restart().await;
        c = Client::connect(broker.addr()).await.expect("connect");
    }
    // The partition log took the new segment size: a deleted default goes back to Kafka's.
    assert_eq!(alter(&mut c, BROKER, "", &[("log.segment.bytes", DELETE, None)]).await.0, 0);
    let t = describe(&mut c, TOPIC, "t").await;
    assert_eq!(
        entry(&t, "segment.bytes"),
        (Some("1073741824".into()), 5, false, vec!["log.segment.bytes=1073741824@5".into()])
    );
    broker.stop().await;
}

#[tokio::test]
async fn group_configs_are_validated_stored_and_listed() {
    let mut broker = TestBroker::start().await;
    let mut c = Client::connect(broker.addr()).await.expect("connect");
    let bad: &[(Op, &str)] = &[
        (
            ("consumer.session.timeout.ms", SET, Some("5000")),
            "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive.",
        ),
        (("no.such", SET, Some("1")), "Unknown group config name: no.such"),
        (
            ("consumer.session.timeout.ms", SET, Some("abc")),
            "Invalid value abc for configuration consumer.session.timeout.ms: Not a number of type INT",
        ),
        (
            ("streams.num.standby.replicas", SET, Some("5")),
            "streams.num.standby.replicas must be less than or equal to 2",
        ),
        (
            ("consumer.session.timeout.ms", APPEND, Some("1")),
            "Can't APPEND to key consumer.session.timeout.ms because its type is not LIST.",
        ),
    ];
    for (op, msg) in bad {
        assert_eq!(alter(&mut c, GROUP, "g1", &[*op]).await, (40, Some(msg.to_string())), "{op:?}");
    }
    assert_eq!(
        alter(&mut c, GROUP, "", &[("consumer.session.timeout.ms", SET, Some("50000"))]).await,
        (42, Some("Default group resources are not allowed.".into()))
    );
    assert_eq!(alter(&mut c, GROUP, "g1", &[("consumer.session.timeout.ms", SET, Some("50000"))]).await.0, 0);
    broker.restart().await;
    let mut c = Client::connect(broker.addr()).await.expect("connect");
    let r = describe(&mut c, GROUP, "g1").await;
    assert_eq!(r.configs.len(), 21);
    assert_eq!(
        entry(&r, "consumer.session.timeout.ms"),
        (
            Some("50000".into()),
            8,
            false,
            vec![
                "consumer.session.timeout.ms=50000@8".into(),
                "group.consumer.session.timeout.ms=45000@5".into()
            ]
        )
    );
    assert_eq!(entry(&r, "share.isolation.level").3, vec!["share.isolation.level=read_uncommitted@5"]);
    let listed = c.call(&ListConfigResourcesRequest::default().with_resource_types(vec![GROUP]), 1).await;
    let names: Vec<&str> = listed.config_resources.iter().map(|r| r.resource_name.as_str()).collect();
    assert_eq!(names, vec!["g1"]);
    broker.stop().await;
}

#[tokio::test]
async fn a_dynamic_segment_size_reaches_the_partition_logs() {
    let broker = TestBroker::start().await;
    let mut c = Client::connect(broker.addr()).await.expect("connect");
    create_topic(&mut c, "rolls", 1).await;
    // Kafka's smallest log.segment.bytes (1 MiB), set as the cluster default after the topic exists.
    assert_eq!(alter(&mut c, BROKER, "", &[("log.segment.bytes", SET, Some("1048576"))]).await.0, 0);
    let value = "x".repeat(300_000);
    for _ in 0..5 {
        let r = produce(&mut c, "rolls", 0, record_batch(&[&value]), 9).await;
        assert_eq!(r.error_code, 0);
    }
    let segments = std::fs::read_dir(broker.partition_dir("rolls", 0))
        .expect("partition dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "log")))
        .count();
    assert!(segments >= 2, "1.5 MB in 1 MiB segments rolled into {segments} segment(s)");
    broker.stop().await;
}
