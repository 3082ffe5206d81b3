//! OffsetCommit v10 and OffsetFetch v10 (KIP-848): topics named by topic id. Expected values taken
//! from Apache Kafka 4.4.0 (one-node KRaft, `scripts/kafka-reference`, raw requests):
//! - commit by a known id: the response echoes the id; a missing partition is
//!   UNKNOWN_TOPIC_OR_PARTITION (3) and listed before the committed ones;
//! - an unknown id (the zero id too): every partition UNKNOWN_TOPIC_ID (100), the id echoed;
//! - fetch by id echoes the id; a partition without an offset is offset -1, epoch -1, metadata "";
//!   an unknown id: each partition offset -1, epoch -1, metadata "", error 100; fetching all
//!   offsets at v10 answers topic ids;
//! - an offset committed by id is fetched by name at v9 and one committed by name at v9 by id.

mod common;

use common::{create_topic, s, tn, Client, TestBroker};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopics};
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use kafka_protocol::messages::{GroupId, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest};
use uuid::Uuid;

const GROUP: &str = "pg";

async fn commit(c: &mut Client, v: i16, topic: OffsetCommitRequestTopic) -> OffsetCommitResponse {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(GROUP)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![topic]);
    c.call(&req, v).await
}

fn part(p: i32, offset: i64) -> OffsetCommitRequestPartition {
    OffsetCommitRequestPartition::default()
        .with_partition_index(p)
        .with_committed_offset(offset)
        .with_committed_leader_epoch(3)
        .with_committed_metadata(Some(s("m")))
}

async fn fetch(
    c: &mut Client,
    v: i16,
    topics: Option<Vec<OffsetFetchRequestTopics>>,
) -> OffsetFetchResponseGroup {
    let group = OffsetFetchRequestGroup::default().with_group_id(GroupId(s(GROUP))).with_topics(topics);
    let mut r = c.call(&OffsetFetchRequest::default().with_groups(vec![group]), v).await;
    assert_eq!((r.error_code, r.groups.len()), (0, 1));
    r.groups.remove(0)
}

/// (partition, offset, epoch, metadata, error) of a fetched topic.
type Row = (i32, i64, i32, String, i16);

fn rows(g: &OffsetFetchResponseGroup, i: usize) -> Vec<Row> {
    g.topics[i]
        .partitions
        .iter()
        .map(|p| {
            let meta = p.metadata.as_ref().map_or(String::from("null"), |m| m.to_string());
            (p.partition_index, p.committed_offset, p.committed_leader_epoch, meta, p.error_code)
        })
        .collect()
}

fn codes(r: &OffsetCommitResponse) -> Vec<(Uuid, Vec<(i32, i16)>)> {
    r.topics
        .iter()
        .map(|t| (t.topic_id, t.partitions.iter().map(|p| (p.partition_index, p.error_code)).collect()))
        .collect()
}

#[tokio::test]
async fn offsets_by_topic_id() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "pt", 2).await;
    let by_id = |parts: Vec<OffsetCommitRequestPartition>| {
        OffsetCommitRequestTopic::default().with_topic_id(id).with_partitions(parts)
    };

    let r = commit(&mut c, 10, by_id(vec![part(0, 5), part(7, 1)])).await;
    assert_eq!(codes(&r), vec![(id, vec![(7, 3), (0, 0)])], "missing partition first, as Kafka");
    let unknown = Uuid::from_u128(0x1234);
    for bad in [unknown, Uuid::nil()] {
        let t = OffsetCommitRequestTopic::default()
            .with_topic_id(bad)
            .with_partitions(vec![part(0, 5), part(1, 6)]);
        let r = commit(&mut c, 10, t).await;
        assert_eq!(codes(&r), vec![(bad, vec![(0, 100), (1, 100)])], "UNKNOWN_TOPIC_ID for {bad}");
    }
    let named = OffsetCommitRequestTopic::default().with_name(tn("pt")).with_partitions(vec![part(1, 9)]);
    let r = commit(&mut c, 9, named).await;
    assert_eq!((r.topics[0].name.as_str(), codes(&r)[0].1.clone()), ("pt", vec![(1, 0)]));

    let committed = |p: i32, o: i64| (p, o, 3, String::from("m"), 0i16);
    let none = |p: i32, e: i16| (p, -1i64, -1, String::new(), e);
    let expected = vec![committed(0, 5), committed(1, 9), none(5, 0)];
    // v9 by name sees the offset committed by id at v10, and v10 by id the one committed by name.
    let by_name =
        OffsetFetchRequestTopics::default().with_name(tn("pt")).with_partition_indexes(vec![0, 1, 5]);
    let g = fetch(&mut c, 9, Some(vec![by_name])).await;
    assert_eq!((g.error_code, g.topics[0].name.as_str(), rows(&g, 0)), (0, "pt", expected.clone()));
    let by_id_fetch =
        OffsetFetchRequestTopics::default().with_topic_id(id).with_partition_indexes(vec![0, 1, 5]);
    let g = fetch(&mut c, 10, Some(vec![by_id_fetch])).await;
    assert_eq!((g.error_code, g.topics[0].topic_id, rows(&g, 0)), (0, id, expected));

    let g = fetch(&mut c, 10, None).await;
    assert_eq!((g.topics.len(), g.topics[0].topic_id), (1, id), "all offsets answer topic ids");
    assert_eq!(rows(&g, 0), vec![committed(0, 5), committed(1, 9)]);
    let g = fetch(&mut c, 9, None).await;
    assert_eq!((g.topics[0].name.as_str(), g.topics[0].topic_id), ("pt", Uuid::nil()), "v9: names");

    for bad in [unknown, Uuid::nil()] {
        let t = OffsetFetchRequestTopics::default().with_topic_id(bad).with_partition_indexes(vec![0, 1]);
        let g = fetch(&mut c, 10, Some(vec![t])).await;
        assert_eq!(g.error_code, 0);
        assert_eq!((g.topics.len(), g.topics[0].topic_id), (1, bad));
        assert_eq!(rows(&g, 0), vec![none(0, 100), none(1, 100)], "UNKNOWN_TOPIC_ID for {bad}");
    }
    broker.stop().await;
}
