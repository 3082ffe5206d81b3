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
