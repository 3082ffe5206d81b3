//! Topic config changes over real TCP: IncrementalAlterConfigs (SET, DELETE, APPEND, SUBTRACT) and
//! AlterConfigs (replace every override), their validation and error codes, what DescribeConfigs
//! reports after each change, that changes survive a restart, and that the log obeys them.

mod common;

use std::time::Duration;

use common::{
    create_topic, create_topic_result, log_end, log_start, new_topic, produce, record_batch,
    record_batch_with, s, Client, Producer, TestBroker,
};
use kafka_protocol::messages::alter_configs_request::{
    AlterConfigsResource as ReplaceResource, AlterableConfig as ReplaceConfig,
};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::{AlterConfigsRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest};
use kafka_protocol::records::Compression;

const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

/// ConfigSource codes (DescribeConfigs v1+).
const TOPIC_CONFIG: i8 = 1;
const DEFAULT_CONFIG: i8 = 5;

/// One IncrementalAlterConfigs operation: (config name, operation, value).
type Op<'a> = (&'a str, i8, Option<&'a str>);

/// IncrementalAlterConfigs of one resource; returns (error code, message).
async fn incremental(
    c: &mut Client,
    resource_type: i8,
    name: &str,
    ops: &[Op<'_>],
    validate_only: bool,
    version: i16,
) -> (i16, Option<String>) {
    let req =
        IncrementalAlterConfigsRequest::default().with_validate_only(validate_only).with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(s(name))
                .with_configs(
                    ops.iter()
                        .map(|(k, op, v)| {
                            AlterableConfig::default()
                                .with_name(s(k))
                                .with_config_operation(*op)
                                .with_value(v.map(s))
                        })
                        .collect(),
                ),
        ]);
    let resp = c.call(&req, version).await;
    assert_eq!(resp.responses.len(), 1);
    let r = &resp.responses[0];
    assert_eq!((r.resource_type, r.resource_name.as_str()), (resource_type, name));
    (r.error_code, r.error_message.as_ref().map(|m| m.to_string()))
}

/// AlterConfigs (replace all overrides) of one resource; returns the error code.
async fn replace(
    c: &mut Client,
    resource_type: i8,
    name: &str,
    configs: &[(&str, Option<&str>)],
    validate_only: bool,
    version: i16,
) -> i16 {
    let req = AlterConfigsRequest::default().with_validate_only(validate_only).with_resources(vec![
        ReplaceResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| ReplaceConfig::default().with_name(s(k)).with_value(v.map(s)))
                    .collect(),
            ),
    ]);
    let resp = c.call(&req, version).await;
    assert_eq!(resp.responses.len(), 1);
    let r = &resp.responses[0];
    assert_eq!((r.resource_type, r.resource_name.as_str()), (resource_type, name));
    r.error_code
}

async fn describe(c: &mut Client, topic: &str) -> DescribeConfigsResult {
    let req = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(TOPIC)
        .with_resource_name(s(topic))
        .with_configuration_keys(None)]);
    let mut resp = c.call(&req, 4).await;
    let r = resp.results.pop().expect("one result");
    assert_eq!(r.error_code, NONE, "describe {topic}: {:?}", r.error_message);
    r
}

/// (value, source) of one config as DescribeConfigs reports it.
async fn config(c: &mut Client, topic: &str, key: &str) -> (String, i8) {
    let d = describe(c, topic).await;
    let e =
        d.configs.iter().find(|e| e.name.as_str() == key).unwrap_or_else(|| panic!("{key} not described"));
    (e.value.as_ref().map(|v| v.to_string()).unwrap_or_else(|| "<null>".into()), e.config_source)
}

/// Every override (source TOPIC_CONFIG) of a topic, sorted.
async fn overrides(c: &mut Client, topic: &str) -> Vec<(String, String)> {
    let d = describe(c, topic).await;
    let mut out: Vec<(String, String)> = d
        .configs
        .iter()
        .filter(|e| e.config_source == TOPIC_CONFIG)
        .map(|e| (e.name.to_string(), e.value.as_ref().map(|v| v.to_string()).unwrap_or_default()))
        .collect();
    out.sort();
    out
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn incremental_alter_configs_set_delete_append_and_subtract() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    for version in 0..=1i16 {
        let topic = format!("inc-v{version}");
        create_topic(&mut c, &topic, 1).await;
        assert_eq!(config(&mut c, &topic, "cleanup.policy").await, ("delete".into(), DEFAULT_CONFIG));

        // SET
        let r =
            incremental(&mut c, TOPIC, &topic, &[("retention.ms", SET, Some("12345"))], false, version).await;
        assert_eq!(r.0, NONE, "v{version}: {r:?}");
        assert_eq!(
            config(&mut c, &topic, "retention.ms").await,
            ("12345".into(), TOPIC_CONFIG),
            "v{version}"
        );

        // APPEND to the default list.
        let r = incremental(
            &mut c,
            TOPIC,
            &topic,
            &[("cleanup.policy", APPEND, Some("compact"))],
            false,
            version,
        )
        .await;
        assert_eq!(r.0, NONE, "v{version}: {r:?}");
        assert_eq!(config(&mut c, &topic, "cleanup.policy").await, ("delete,compact".into(), TOPIC_CONFIG));
        // Appending what is there already changes nothing.
        let r =
            incremental(&mut c, TOPIC, &topic, &[("cleanup.policy", APPEND, Some("delete"))], false, version)
                .await;
        assert_eq!(r.0, NONE);
        assert_eq!(config(&mut c, &topic, "cleanup.policy").await.0, "delete,compact", "v{version}");

        // SUBTRACT
        let r = incremental(
            &mut c,
            TOPIC,
            &topic,
            &[("cleanup.policy", SUBTRACT, Some("delete"))],
            false,
            version,
        )
        .await;
        assert_eq!(r.0, NONE, "v{version}: {r:?}");
        assert_eq!(config(&mut c, &topic, "cleanup.policy").await, ("compact".into(), TOPIC_CONFIG));

        // Several operations in one request, applied together; other overrides stay.
        let ops = [("max.message.bytes", SET, Some("5000")), ("cleanup.policy", DELETE, None)];
        let r = incremental(&mut c, TOPIC, &topic, &ops, false, version).await;
        assert_eq!(r.0, NONE, "v{version}: {r:?}");
        assert_eq!(
            overrides(&mut c, &topic).await,
            pairs(&[("max.message.bytes", "5000"), ("retention.ms", "12345")]),
            "v{version}"
        );
        assert_eq!(config(&mut c, &topic, "cleanup.policy").await, ("delete".into(), DEFAULT_CONFIG));

        // DELETE back to the default; deleting what is not set is fine.
        let ops = [("retention.ms", DELETE, None), ("segment.ms", DELETE, None)];
        assert_eq!(incremental(&mut c, TOPIC, &topic, &ops, false, version).await.0, NONE, "v{version}");
        assert_eq!(config(&mut c, &topic, "retention.ms").await, ("604800000".into(), DEFAULT_CONFIG));
        assert_eq!(overrides(&mut c, &topic).await, pairs(&[("max.message.bytes", "5000")]), "v{version}");
    }
    broker.stop().await;
}

#[tokio::test]
async fn incremental_alter_configs_refusals_change_nothing() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let r = create_topic_result(&mut c, new_topic("guarded", 1, &[("retention.ms", "1000")])).await;
    assert_eq!(r.error_code, NONE);
    let before = pairs(&[("retention.ms", "1000")]);

    for version in 0..=1i16 {
        for validate_only in [false, true] {
            let cases: &[(&str, &[Op<'_>], i16)] = &[
                ("unknown key", &[("no.such.config", SET, Some("1"))], INVALID_CONFIG),
                ("not a number", &[("retention.ms", SET, Some("soon"))], INVALID_CONFIG),
                ("below the minimum", &[("retention.ms", SET, Some("-2"))], INVALID_CONFIG),
                ("not an allowed value", &[("cleanup.policy", SET, Some("forever"))], INVALID_CONFIG),
                ("APPEND to a non-list", &[("retention.ms", APPEND, Some("5"))], INVALID_CONFIG),
                ("SUBTRACT from a non-list", &[("retention.ms", SUBTRACT, Some("5"))], INVALID_CONFIG),
                ("APPEND a bad list item", &[("cleanup.policy", APPEND, Some("forever"))], INVALID_CONFIG),
                // One bad operation spoils the whole resource.
                (
                    "good and bad together",
                    &[("segment.ms", SET, Some("60000")), ("no.such.config", SET, Some("1"))],
                    INVALID_CONFIG,
                ),
                ("unknown operation", &[("retention.ms", 9, Some("5"))], INVALID_REQUEST),
            ];
            for (what, ops, expected) in cases {
                let r = incremental(&mut c, TOPIC, "guarded", ops, validate_only, version).await;
                assert_eq!(r.0, *expected, "v{version} validate_only={validate_only}: {what}: {:?}", r.1);
                assert_eq!(
                    overrides(&mut c, "guarded").await,
                    before,
                    "v{version}: {what} changed the topic"
                );
            }
            let r = incremental(
                &mut c,
                TOPIC,
                "missing",
                &[("retention.ms", SET, Some("1"))],
                validate_only,
                version,
            )
            .await;
            assert_eq!(r.0, UNKNOWN_TOPIC_OR_PARTITION, "v{version}: unknown topic");
            let r = incremental(
                &mut c,
                BROKER,
                "1",
                &[("num.partitions", SET, Some("3"))],
                validate_only,
                version,
            )
            .await;
            // Kafka 4.4: "Cannot update these configs dynamically: [num.partitions]".
            assert_eq!(r.0, INVALID_REQUEST, "v{version}: read-only broker config");
        }
        // validate_only accepts a valid change without making it.
        let ops = [("retention.ms", SET, Some("777")), ("cleanup.policy", APPEND, Some("compact"))];
        assert_eq!(incremental(&mut c, TOPIC, "guarded", &ops, true, version).await.0, NONE, "v{version}");
        assert_eq!(overrides(&mut c, "guarded").await, before, "v{version}: validate_only changed the topic");
    }
    broker.stop().await;
}

#[tokio::test]
async fn alter_configs_replaces_every_override() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    for version in 0..=2i16 {
        let topic = format!("replace-v{version}");
        let r = create_topic_result(
            &mut c,
            new_topic(&topic, 1, &[("retention.ms", "1000"), ("cleanup.policy", "compact")]),
        )
        .await;
        assert_eq!(r.error_code, NONE);

        let code = replace(&mut c, TOPIC, &topic, &[("segment.ms", Some("60000"))], false, version).await;
        assert_eq!(code, NONE, "v{version}");
        assert_eq!(overrides(&mut c, &topic).await, pairs(&[("segment.ms", "60000")]), "v{version}");
        assert_eq!(config(&mut c, &topic, "retention.ms").await, ("604800000".into(), DEFAULT_CONFIG));
        assert_eq!(config(&mut c, &topic, "cleanup.policy").await, ("delete".into(), DEFAULT_CONFIG));

        let code = replace(
            &mut c,
            TOPIC,
            &topic,
            &[("max.message.bytes", Some("2048")), ("cleanup.policy", Some("compact,delete"))],
            false,
            version,
        )
        .await;
        assert_eq!(code, NONE, "v{version}");
        assert_eq!(
            overrides(&mut c, &topic).await,
            pairs(&[("cleanup.policy", "compact,delete"), ("max.message.bytes", "2048")]),
            "v{version}"
        );

        // Refusals and validate_only change nothing.
        let now = overrides(&mut c, &topic).await;
        for (what, configs, expected) in [
            ("unknown key", &[("no.such.config", Some("1"))][..], INVALID_CONFIG),
            ("bad value", &[("retention.ms", Some("x"))][..], INVALID_CONFIG),
        ] {
            for validate_only in [false, true] {
                let code = replace(&mut c, TOPIC, &topic, configs, validate_only, version).await;
                assert_eq!(code, expected, "v{version}: {what}");
                assert_eq!(overrides(&mut c, &topic).await, now, "v{version}: {what}");
            }
        }
        assert_eq!(replace(&mut c, TOPIC, &topic, &[], true, version).await, NONE);
        assert_eq!(overrides(&mut c, &topic).await, now, "v{version}: validate_only");
        assert_eq!(replace(&mut c, TOPIC, "missing", &[], false, version).await, UNKNOWN_TOPIC_OR_PARTITION);
        assert_eq!(
            replace(&mut c, BROKER, "1", &[("num.partitions", Some("3"))], false, version).await,
            INVALID_REQUEST
        );

        // An empty set removes every override.
        assert_eq!(replace(&mut c, TOPIC, &topic, &[], false, version).await, NONE);
        assert!(overrides(&mut c, &topic).await.is_empty(), "v{version}");
    }
    broker.stop().await;
}

#[tokio::test]
async fn altered_configs_survive_a_restart() {
    let mut broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "kept", 1).await;
    create_topic(&mut c, "replaced", 1).await;
    let ops = [("retention.ms", SET, Some("86400000")), ("cleanup.policy", APPEND, Some("compact"))];
    assert_eq!(incremental(&mut c, TOPIC, "kept", &ops, false, 1).await.0, NONE);
    assert_eq!(replace(&mut c, TOPIC, "replaced", &[("segment.ms", Some("3600000"))], false, 2).await, NONE);

    broker.restart().await;
    let mut c = broker.client().await;
    assert_eq!(
        overrides(&mut c, "kept").await,
        pairs(&[("cleanup.policy", "delete,compact"), ("retention.ms", "86400000")])
    );
    assert_eq!(overrides(&mut c, "replaced").await, pairs(&[("segment.ms", "3600000")]));
    broker.stop().await;
}

#[tokio::test]
async fn altered_configs_take_effect_on_the_log() {
    let broker = TestBroker::start_with(&[("log.retention.check.interval.ms", "100")]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "live", 1).await;

    // max.message.bytes
    let value = vec![b'v'; 600];
    let big = record_batch_with(&[value.as_slice()], None, Producer::NONE, Compression::None);
    assert_eq!(produce(&mut c, "live", 0, big.clone(), 9).await.error_code, NONE);
    let ops = [("max.message.bytes", SET, Some("300"))];
    assert_eq!(incremental(&mut c, TOPIC, "live", &ops, false, 1).await.0, NONE);
    assert_eq!(produce(&mut c, "live", 0, big.clone(), 9).await.error_code, MESSAGE_TOO_LARGE);
    assert_eq!(produce(&mut c, "live", 0, record_batch(&["small"]), 9).await.error_code, NONE);
    assert_eq!(
        incremental(&mut c, TOPIC, "live", &[("max.message.bytes", DELETE, None)], false, 1).await.0,
        NONE
    );
    assert_eq!(produce(&mut c, "live", 0, big, 9).await.error_code, NONE);

    // retention.ms: records an hour old outlive the 7-day default, not a one-minute retention.
    create_topic(&mut c, "aging", 1).await;
    let hour_ago = common::now_ms() - 3_600_000;
    let old = record_batch_with(
        &[b"o1".as_slice(), b"o2".as_slice()],
        Some(&[hour_ago, hour_ago]),
        Producer::NONE,
        Compression::None,
    );
    assert_eq!(produce(&mut c, "aging", 0, old, 9).await.error_code, NONE);
    let end = log_end(&mut c, "aging", 0).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(log_start(&mut c, "aging", 0).await, 0, "nothing is old enough for the default retention");
    assert_eq!(
        incremental(&mut c, TOPIC, "aging", &[("retention.ms", SET, Some("60000"))], false, 1).await.0,
        NONE
    );
    let mut start = 0;
    for _ in 0..100 {
        start = log_start(&mut c, "aging", 0).await;
        if start == end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(start, end, "retention.ms=60000 deleted the hour-old records");
    assert_eq!(log_end(&mut c, "aging", 0).await, end);
    broker.stop().await;
}

/// List and enum values are validated as Kafka 4.4's `ConfigDef` does. Every message below is what
/// Kafka 4.4.0's validators answer for the same value (taken by running `LogConfig.configKeys()`'s
/// validators on each input): an empty `cleanup.policy` is allowed (infinite retention, Kafka 4.1+),
/// duplicates and empty elements are refused with sentences of their own, enum values are
/// case-sensitive, and throttled-replica lists must be `*` or `partition:broker` pairs.
#[tokio::test]
async fn list_and_enum_values_are_validated_as_kafka_does() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    assert_eq!(create_topic_result(&mut c, new_topic("lists", 1, &[])).await.error_code, NONE);
    let cases: &[(&str, &str, i16, &str)] = &[
        ("cleanup.policy", "delete,delete", INVALID_CONFIG, "Configuration 'cleanup.policy' values must not be duplicated."),
        ("cleanup.policy", ",", INVALID_CONFIG, "Configuration 'cleanup.policy' values must not be duplicated."),
        ("cleanup.policy", "delete,", INVALID_CONFIG, "Configuration 'cleanup.policy' values must not be empty."),
        ("cleanup.policy", "foo,", INVALID_CONFIG, "Invalid value foo for configuration cleanup.policy: String must be one of: compact, delete"),
        ("cleanup.policy", "Delete", INVALID_CONFIG, "Invalid value Delete for configuration cleanup.policy: String must be one of: compact, delete"),
        ("compression.type", "GZIP", INVALID_CONFIG, "Invalid value GZIP for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer"),
        ("message.timestamp.type", "createtime", INVALID_CONFIG, "Invalid value createtime for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime"),
        ("follower.replication.throttled.replicas", "0:1,x", INVALID_CONFIG, "Invalid value [0:1, x] for configuration follower.replication.throttled.replicas: follower.replication.throttled.replicas must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."),
    ];
    for (key, value, code, message) in cases {
        let r = incremental(&mut c, TOPIC, "lists", &[(key, SET, Some(value))], false, 1).await;
        assert_eq!((r.0, r.1.as_deref()), (*code, Some(*message)), "{key}={value}");
    }
    for (key, value) in [
        ("follower.replication.throttled.replicas", "0:1,1:1"),
        ("leader.replication.throttled.replicas", "*"),
    ] {
        assert_eq!(incremental(&mut c, TOPIC, "lists", &[(key, SET, Some(value))], false, 1).await.0, NONE);
        assert_eq!(config(&mut c, "lists", key).await, (value.to_string(), TOPIC_CONFIG));
    }
    // Subtracting the only policy leaves the empty list: Kafka 4.4 accepts it and describes it as "".
    let r =
        incremental(&mut c, TOPIC, "lists", &[("cleanup.policy", SUBTRACT, Some("delete"))], false, 1).await;
    assert_eq!(r.0, NONE, "{:?}", r.1);
    assert_eq!(config(&mut c, "lists", "cleanup.policy").await, (String::new(), TOPIC_CONFIG));
    broker.stop().await;
}
