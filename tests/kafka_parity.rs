//! Answers to unusual requests where strom once differed from Apache Kafka (checked against Kafka's
//! source: ProduceRequest.validateRecords, UnifiedLog.analyzeAndValidateRecords,
//! OffsetMetadataManager.validateOffsetCommit, ConfigAdminManager.preprocess).

mod common;

use bytes::BytesMut;
use common::{
    create_topic, create_topic_result, log_end, new_topic, produce, record_batch, s, tn, TestBroker,
};
use kafka_protocol::messages::alter_configs_request::{
    AlterConfigsResource as ReplaceResource, AlterableConfig as ReplaceConfig,
};
use kafka_protocol::messages::incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, GroupId, IncrementalAlterConfigsRequest, OffsetCommitRequest,
};

const INVALID_RECORD: i16 = 87;
const CORRUPT_MESSAGE: i16 = 2;
const GROUP_ID_NOT_FOUND: i16 = 69;
const INVALID_REQUEST: i16 = 42;

#[tokio::test]
async fn magic_1_batch_on_produce_v3_plus_is_invalid_record() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "m1", 1).await;
    let mut b = BytesMut::from(&record_batch(&["a", "b"])[..]);
    b[16] = 1;
    for version in [3, 9] {
        let p = produce(&mut c, "m1", 0, b.clone().freeze(), version).await;
        assert_eq!(p.error_code, INVALID_RECORD, "v{version}: {:?}", p.error_message);
    }
    assert_eq!(log_end(&mut c, "m1", 0).await, 0);
    broker.stop().await;
}

#[tokio::test]
async fn truncated_batch_is_invalid_record_and_a_short_length_is_corrupt() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "cut", 1).await;
    let b = record_batch(&["a", "b"]);
    for cut in [3, b.len() - 20] {
        let p = produce(&mut c, "cut", 0, b.slice(..b.len() - cut), 9).await;
        assert_eq!(p.error_code, INVALID_RECORD, "{cut} bytes cut: {:?}", p.error_message);
    }
    let mut short = BytesMut::from(&b[..]);
    short[8..12].copy_from_slice(&5i32.to_be_bytes());
    assert_eq!(produce(&mut c, "cut", 0, short.freeze(), 9).await.error_code, CORRUPT_MESSAGE);
    assert_eq!(log_end(&mut c, "cut", 0).await, 0);
    // A valid batch followed by a few stray bytes is appended, as Kafka trims the tail.
    let mut tail = BytesMut::from(&b[..]);
    tail.extend_from_slice(&[0, 0, 0]);
    assert_eq!(produce(&mut c, "cut", 0, tail.freeze(), 9).await.error_code, 0);
    assert_eq!(log_end(&mut c, "cut", 0).await, 2);
    broker.stop().await;
}

#[tokio::test]
async fn client_batch_with_a_non_zero_base_offset_is_invalid_record() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "bo", 1).await;
    let mut b = BytesMut::from(&record_batch(&["a", "b"])[..]);
    b[0..8].copy_from_slice(&5i64.to_be_bytes());
    let p = produce(&mut c, "bo", 0, b.freeze(), 9).await;
    assert_eq!(p.error_code, INVALID_RECORD, "{:?}", p.error_message);
    assert_eq!(log_end(&mut c, "bo", 0).await, 0);
    broker.stop().await;
}

#[tokio::test]
async fn offset_commit_v9_with_a_generation_for_an_unknown_group_is_group_id_not_found() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "ce", 1).await;
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("never-joined")))
        .with_generation_id_or_member_epoch(1)
        .with_member_id(s("m"))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(tn("ce"))
            .with_partitions(vec![OffsetCommitRequestPartition::default().with_committed_offset(1)])]);
    assert_eq!(c.call(&req, 9).await.topics[0].partitions[0].error_code, GROUP_ID_NOT_FOUND);
    assert_eq!(c.call(&req, 8).await.topics[0].partitions[0].error_code, 22, "ILLEGAL_GENERATION below v9");
    broker.stop().await;
}

fn incremental(ops: &[(&str, i8, Option<&str>)]) -> IncrementalAlterConfigsRequest {
    IncrementalAlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(2)
        .with_resource_name(s("t"))
        .with_configs(
            ops.iter()
                .map(|(k, op, v)| {
                    AlterableConfig::default().with_name(s(k)).with_config_operation(*op).with_value(v.map(s))
                })
                .collect(),
        )])
}

#[tokio::test]
async fn malformed_alter_config_requests_are_invalid_request() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    assert_eq!(
        create_topic_result(&mut c, new_topic("t", 1, &[("retention.ms", "1000")])).await.error_code,
        0
    );
    let cases = [
        ("SET null", incremental(&[("retention.ms", 0, None)])),
        ("APPEND null", incremental(&[("cleanup.policy", 2, None)])),
        ("a key twice", incremental(&[("segment.ms", 0, Some("100000")), ("segment.ms", 0, Some("200000"))])),
    ];
    for (what, req) in cases {
        assert_eq!(
            c.call(&req, 1).await.responses[0].error_code,
            INVALID_REQUEST,
            "IncrementalAlterConfigs: {what}"
        );
    }
    let mut twice = incremental(&[("segment.ms", 0, Some("300000"))]);
    twice.resources.push(twice.resources[0].clone());
    let codes: Vec<i16> = c.call(&twice, 1).await.responses.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![INVALID_REQUEST, INVALID_REQUEST], "IncrementalAlterConfigs: a resource twice");
    let replace = |configs: Vec<ReplaceConfig>| {
        AlterConfigsRequest::default().with_resources(vec![ReplaceResource::default()
            .with_resource_type(2)
            .with_resource_name(s("t"))
            .with_configs(configs)])
    };
    let null = replace(vec![ReplaceConfig::default().with_name(s("retention.ms")).with_value(None)]);
    assert_eq!(c.call(&null, 2).await.responses[0].error_code, INVALID_REQUEST, "AlterConfigs: null value");
    let dup = replace(vec![
        ReplaceConfig::default().with_name(s("segment.ms")).with_value(Some(s("100000"))),
        ReplaceConfig::default().with_name(s("segment.ms")).with_value(Some(s("200000"))),
    ]);
    assert_eq!(c.call(&dup, 2).await.responses[0].error_code, INVALID_REQUEST, "AlterConfigs: a key twice");
    broker.stop().await;
}
