//! Hand-created internal topics with fewer partitions than the coordinators expect. Kafka 4.4 lets a
//! client create `__consumer_offsets` (3 partitions) and `__transaction_state` (2) by CreateTopics;
//! then only keys whose partition (of `offsets.topic.num.partitions` = 50,
//! `transaction.state.log.num.partitions` = 50) exists are coordinated: FindCoordinator answers the
//! others COORDINATOR_NOT_AVAILABLE, JoinGroup and InitProducerId NOT_COORDINATOR. Expected values
//! taken from Apache Kafka 4.4.0 (one-node KRaft, `scripts/kafka-reference`).

mod common;

use common::{new_topic, s, Client, TestBroker};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::{
    CreateTopicsRequest, FindCoordinatorRequest, FindCoordinatorResponse, GroupId, InitProducerIdRequest,
    JoinGroupRequest, ProducerId, TransactionalId,
};

/// "g1" maps to a partition above 2 of 50; "polygenelubricants" (hash Integer.MIN_VALUE) to 0.
const UNSERVED: &str = "g1";
const SERVED: &str = "polygenelubricants";

async fn find(c: &mut Client, key_type: i8, key: &str, v: i16) -> FindCoordinatorResponse {
    let req = FindCoordinatorRequest::default().with_key_type(key_type);
    let req = if v >= 4 { req.with_coordinator_keys(vec![s(key)]) } else { req.with_key(s(key)) };
    c.call(&req, v).await
}

#[tokio::test]
async fn keys_of_missing_partitions_are_not_coordinated() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    for (name, n) in [("__consumer_offsets", 3), ("__transaction_state", 2)] {
        let req =
            CreateTopicsRequest::default().with_topics(vec![new_topic(name, n, &[])]).with_timeout_ms(30000);
        let r = c.call(&req, 7).await;
        assert_eq!((r.topics[0].error_code, r.topics[0].num_partitions), (0, n), "Kafka allows it: {name}");
    }
    for key_type in [0i8, 1] {
        let r = find(&mut c, key_type, UNSERVED, 3).await;
        assert_eq!((r.error_code, r.node_id.0, r.port), (15, -1, -1), "COORDINATOR_NOT_AVAILABLE");
        assert_eq!(r.error_message.as_deref(), Some("The coordinator is not available."));
        for v in [4, 6] {
            let r = find(&mut c, key_type, UNSERVED, v).await;
            let k = &r.coordinators[0];
            assert_eq!((r.error_code, k.error_code, k.node_id.0, k.port), (0, 15, -1, -1), "v{v}");
            assert_eq!(k.error_message.as_deref(), Some(""));
        }
        let r = find(&mut c, key_type, SERVED, 4).await;
        assert_eq!((r.coordinators[0].error_code, r.coordinators[0].node_id.0), (0, 1), "partition 0 exists");
    }
    let join = |group: &str| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_session_timeout_ms(10000)
            .with_rebalance_timeout_ms(10000)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(s("range"))])
    };
    let r = c.call(&join(UNSERVED), 9).await;
    assert_eq!((r.error_code, r.member_id.as_str(), r.generation_id), (16, "", -1), "NOT_COORDINATOR");
    let r = c.call(&join(SERVED), 9).await;
    assert_eq!(r.error_code, 79, "MEMBER_ID_REQUIRED: the group is served");
    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s("tx1"))))
        .with_transaction_timeout_ms(60000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let r = c.call(&init, 5).await;
    assert_eq!((r.error_code, r.producer_id.0, r.producer_epoch), (16, -1, -1), "NOT_COORDINATOR");
    broker.stop().await;
}

/// A broker whose hand-created `__consumer_offsets` has 3 partitions (UNSERVED's is not one).
async fn with_small_offsets_topic() -> (TestBroker, Client) {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let req = CreateTopicsRequest::default()
        .with_topics(vec![new_topic("__consumer_offsets", 3, &[])])
        .with_timeout_ms(30000);
    assert_eq!(c.call(&req, 7).await.topics[0].error_code, 0);
    (broker, c)
}

/// SyncGroup, Heartbeat and LeaveGroup of an uncoordinated group: NOT_COORDINATOR (16), every other
/// field empty — LeaveGroup with no members at any version (Kafka 4.4.0).
#[tokio::test]
async fn group_apis_of_uncoordinated_groups() {
    use kafka_protocol::messages::leave_group_request::MemberIdentity;
    use kafka_protocol::messages::{HeartbeatRequest, LeaveGroupRequest, SyncGroupRequest};
    let (broker, mut c) = with_small_offsets_topic().await;
    for v in [0i16, 3, 5] {
        let mut req = SyncGroupRequest::default()
            .with_group_id(GroupId(s(UNSERVED)))
            .with_generation_id(1)
            .with_member_id(s("m"));
        if v >= 5 {
            req = req.with_protocol_type(Some(s("consumer"))).with_protocol_name(Some(s("range")));
        }
        let r = c.call(&req, v).await;
        assert_eq!(
            (r.error_code, r.protocol_type, r.protocol_name, r.assignment.len()),
            (16, None, None, 0),
            "v{v}"
        );
    }
    for v in [0i16, 4] {
        let req = HeartbeatRequest::default()
            .with_group_id(GroupId(s(UNSERVED)))
            .with_generation_id(1)
            .with_member_id(s("m"));
        assert_eq!(c.call(&req, v).await.error_code, 16, "heartbeat v{v}");
    }
    for v in [0i16, 3, 5] {
        let req = LeaveGroupRequest::default().with_group_id(GroupId(s(UNSERVED)));
        let req = if v >= 3 {
            req.with_members(vec![MemberIdentity::default().with_member_id(s("m"))])
        } else {
            req.with_member_id(s("m"))
        };
        let r = c.call(&req, v).await;
        assert_eq!((r.error_code, r.members.len()), (16, 0), "leave v{v}");
    }
    broker.stop().await;
}

/// Offsets, DescribeGroups, DeleteGroups and OffsetDelete of an uncoordinated group (Kafka 4.4.0):
/// OffsetCommit answers its existing partitions NOT_COORDINATOR after the missing ones (3) and
/// writes nothing; OffsetFetch NOT_COORDINATOR per partition at v1, at the top (no topics) at v2–v7
/// and per group at v8+; DescribeGroups an entry with the error only; DeleteGroups and
/// OffsetDelete NOT_COORDINATOR.
#[tokio::test]
async fn offset_apis_of_uncoordinated_groups() {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    use kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
    };
    use kafka_protocol::messages::{
        DeleteGroupsRequest, DescribeGroupsRequest, OffsetCommitRequest, OffsetDeleteRequest,
        OffsetFetchRequest,
    };
    let (broker, mut c) = with_small_offsets_topic().await;
    let id = common::create_topic(&mut c, "q", 2).await;
    let group = || GroupId(s(UNSERVED));
    for v in [2i16, 9, 10] {
        let parts = [0, 9].map(|p| {
            OffsetCommitRequestPartition::default().with_partition_index(p).with_committed_offset(1)
        });
        let t = OffsetCommitRequestTopic::default().with_partitions(parts.to_vec());
        let t = if v >= 10 { t.with_topic_id(id) } else { t.with_name(common::tn("q")) };
        let req =
            OffsetCommitRequest::default().with_group_id(group()).with_generation_id_or_member_epoch(-1);
        let r = c.call(&req.with_topics(vec![t]), v).await;
        let codes: Vec<_> =
            r.topics[0].partitions.iter().map(|p| (p.partition_index, p.error_code)).collect();
        assert_eq!(codes, vec![(9, 3), (0, 16)], "commit v{v}");
    }
    let topic = OffsetFetchRequestTopic::default().with_name(common::tn("q")).with_partition_indexes(vec![0]);
    let r =
        c.call(&OffsetFetchRequest::default().with_group_id(group()).with_topics(Some(vec![topic])), 1).await;
    let p = &r.topics[0].partitions[0];
    assert_eq!(
        (p.partition_index, p.committed_offset, p.committed_leader_epoch, p.error_code),
        (0, -1, -1, 16)
    );
    assert_eq!(p.metadata.as_deref(), Some(""));
    let r = c.call(&OffsetFetchRequest::default().with_group_id(group()).with_topics(None), 7).await;
    assert_eq!((r.error_code, r.topics.len()), (16, 0), "fetch v7");
    for v in [8i16, 10] {
        let t = OffsetFetchRequestTopics::default().with_partition_indexes(vec![0]);
        let t = if v >= 10 { t.with_topic_id(id) } else { t.with_name(common::tn("q")) };
        let groups = vec![
            OffsetFetchRequestGroup::default().with_group_id(group()).with_topics(Some(vec![t])),
            OffsetFetchRequestGroup::default().with_group_id(GroupId(s(SERVED))).with_topics(None),
        ];
        let r = c.call(&OffsetFetchRequest::default().with_groups(groups), v).await;
        let errors: Vec<_> = r.groups.iter().map(|g| (g.error_code, g.topics.len())).collect();
        assert_eq!((r.error_code, errors), (0, vec![(16, 0), (0, 0)]), "fetch v{v}");
    }
    for v in [0i16, 5] {
        let r = c.call(&DescribeGroupsRequest::default().with_groups(vec![group()]), v).await;
        let g = &r.groups[0];
        assert_eq!((g.error_code, g.group_state.as_str(), g.members.len()), (16, "", 0), "describe v{v}");
        assert_eq!(g.authorized_operations, i32::MIN);
    }
    let r = c.call(&DeleteGroupsRequest::default().with_groups_names(vec![group()]), 2).await;
    assert_eq!(r.results[0].error_code, 16, "delete");
    let t = OffsetDeleteRequestTopic::default()
        .with_name(common::tn("q"))
        .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)]);
    let r = c.call(&OffsetDeleteRequest::default().with_group_id(group()).with_topics(vec![t]), 0).await;
    assert_eq!((r.error_code, r.topics.len()), (16, 0), "offset delete");
    broker.stop().await;
}
