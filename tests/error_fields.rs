//! The fields that accompany an error (or a plain success) carry what Kafka puts there. Every expected
//! value below was first read from Apache Kafka 4.4.0 (`scripts/kafka-reference`) with the same
//! request, then asserted here against strom.

mod common;

use common::{s, tn, TestBroker};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::*;

#[tokio::test]
async fn error_answers_carry_kafkas_fields() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    common::create_topic(&mut c, "p", 1).await;

    // FindCoordinator v1-v3: a success carries the message "NONE" (Errors.NONE.message()); an
    // unknown key type is INVALID_REQUEST with Kafka's default text.
    for v in 1..=3 {
        let r = c.call(&FindCoordinatorRequest::default().with_key(s("g")).with_key_type(0), v).await;
        assert_eq!((r.error_code, r.error_message.as_deref()), (0, Some("NONE")), "v{v}");
    }
    let r = c
        .call(&FindCoordinatorRequest::default().with_key_type(5).with_coordinator_keys(vec![s("x")]), 4)
        .await;
    let x = &r.coordinators[0];
    assert_eq!((x.error_code, x.node_id.0, x.port), (42, -1, -1));
    assert!(x.error_message.as_deref().is_some_and(|m| m.starts_with("This most likely occurs because")));

    // SyncGroup v5 without protocol type and name: INCONSISTENT_GROUP_PROTOCOL before any lookup.
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s("nog")))
        .with_generation_id(1)
        .with_member_id(s("m"));
    assert_eq!(c.call(&sync, 5).await.error_code, 23);
    assert_eq!(c.call(&sync, 3).await.error_code, 25);

    // DeleteTopics v5: an unknown topic's message is the error's default text.
    let r = c
        .call(&DeleteTopicsRequest::default().with_timeout_ms(1000).with_topic_names(vec![tn("nope")]), 5)
        .await;
    let d = &r.responses[0];
    assert_eq!(
        (d.error_code, d.error_message.as_deref()),
        (3, Some("This server does not host this topic-partition."))
    );

    // DescribeConfigs: a success carries the empty message.
    let req = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(s("p"))
        .with_configuration_keys(Some(vec![s("nokey")]))]);
    let r = &c.call(&req, 4).await.results[0];
    assert_eq!((r.error_code, r.error_message.as_deref(), r.configs.len()), (0, Some(""), 0));

    // CreateTopics: Kafka 4.4's replication-factor text and ConfigDef's words for a bad value.
    let req = CreateTopicsRequest::default().with_timeout_ms(1000).with_topics(vec![
        CreatableTopic::default().with_name(tn("rf")).with_num_partitions(1).with_replication_factor(3),
        CreatableTopic::default()
            .with_name(tn("cfg"))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(s("retention.ms"))
                .with_value(Some(s("abc")))]),
        CreatableTopic::default()
            .with_name(tn("cfg2"))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(vec![CreatableTopicConfig::default()
                .with_name(s("segment.bytes"))
                .with_value(Some(s("5")))]),
    ]);
    let r = c.call(&req, 7).await;
    let got: Vec<(i16, &str)> =
        r.topics.iter().map(|t| (t.error_code, t.error_message.as_deref().unwrap_or_default())).collect();
    assert_eq!(
        got,
        vec![
            (38, "Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 1 broker(s) are registered or some brokers have all their log directories cordoned."),
            (40, "Invalid value abc for configuration retention.ms: Not a number of type LONG"),
            (40, "Invalid value 5 for configuration segment.bytes: Value must be at least 1048576"),
        ]
    );

    // OffsetCommit: unknown topics come first, then the coordinator's answers (Kafka 4.4.0 lists
    // "nope" before "p" whatever the request order).
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    let part =
        || vec![OffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(1)];
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("nog2")))
        .with_generation_id_or_member_epoch(5)
        .with_member_id(s("m"))
        .with_topics(vec![
            OffsetCommitRequestTopic::default().with_name(tn("p")).with_partitions(part()),
            OffsetCommitRequestTopic::default().with_name(tn("nope")).with_partitions(part()),
        ]);
    for v in [2, 8] {
        let r = c.call(&req, v).await;
        let got: Vec<(String, i16)> =
            r.topics.iter().map(|t| (t.name.to_string(), t.partitions[0].error_code)).collect();
        assert_eq!(got, vec![("nope".to_string(), 3), ("p".to_string(), 22)], "v{v}");
    }

    // Fetch: an unknown partition gets an empty aborted list; a read error (out of range) no offsets
    // and a null list.
    let req = FetchRequest::default()
        .with_max_wait_ms(10)
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(1000)
        .with_topics(vec![FetchTopic::default().with_topic(tn("p")).with_partitions(vec![
            FetchPartition::default().with_partition(0).with_fetch_offset(99).with_partition_max_bytes(100),
            FetchPartition::default().with_partition(5).with_fetch_offset(0).with_partition_max_bytes(100),
        ])]);
    for v in [4, 11, 12] {
        let r = c.call(&req, v).await;
        let got: Vec<(i16, i64, i64, i64, bool)> = r.responses[0]
            .partitions
            .iter()
            .map(|p| {
                (
                    p.error_code,
                    p.high_watermark,
                    p.last_stable_offset,
                    p.log_start_offset,
                    p.aborted_transactions.is_some(),
                )
            })
            .collect();
        assert_eq!(got, vec![(1, -1, -1, -1, false), (3, -1, -1, -1, true)], "v{v}");
    }
    broker.stop().await;
}
