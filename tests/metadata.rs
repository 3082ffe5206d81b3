//! Metadata over real TCP: the broker list, cluster id and controller, topics and their partitions,
//! error codes for unknown and illegal topics, auto-creation, lookup by topic id, and what survives a
//! restart on the same data directory.

mod common;

use common::{create_topic, metadata_all, metadata_for, tn, TestBroker};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use uuid::Uuid;

fn topic<'a>(resp: &'a MetadataResponse, name: &str) -> &'a MetadataResponseTopic {
    resp.topics.iter().find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(name)).unwrap_or_else(|| {
        panic!("{name} not in {:?}", resp.topics.iter().map(|t| &t.name).collect::<Vec<_>>())
    })
}

fn names(resp: &MetadataResponse) -> Vec<String> {
    let mut v: Vec<String> = resp.topics.iter().map(|t| t.name.as_ref().unwrap().0.to_string()).collect();
    v.sort();
    v
}

fn by_name(names: &[&str]) -> Option<Vec<MetadataRequestTopic>> {
    Some(names.iter().map(|n| MetadataRequestTopic::default().with_name(Some(tn(n)))).collect())
}

#[tokio::test]
async fn broker_list_cluster_id_and_controller_at_every_version() {
    let broker = TestBroker::start().await;
    let port = i32::from(broker.addr().port());
    assert_ne!(port, 0);
    let mut c = broker.client().await;
    let mut cluster_ids = Vec::new();
    for v in 0..=13 {
        let resp = c.call(&MetadataRequest::default().with_topics(by_name(&[])), v).await;
        assert_eq!(resp.brokers.len(), 1, "v{v}");
        let b = &resp.brokers[0];
        assert_eq!(b.node_id, BrokerId(1), "v{v}");
        assert_eq!(b.host.as_str(), "127.0.0.1", "v{v}");
        assert_eq!(b.port, port, "v{v}: the bound port is advertised");
        assert_eq!(b.rack, None, "v{v}");
        if v >= 1 {
            assert_eq!(resp.controller_id, BrokerId(1), "v{v}");
        }
        if v >= 2 {
            let id = resp.cluster_id.clone().expect("cluster id is set").to_string();
            assert!(!id.is_empty(), "v{v}");
            cluster_ids.push(id);
        }
    }
    cluster_ids.dedup();
    assert_eq!(cluster_ids.len(), 1, "one cluster id: {cluster_ids:?}");
    // Kafka's format: 16 random bytes in URL-safe base64 without padding.
    assert_eq!(cluster_ids[0].len(), 22, "{}", cluster_ids[0]);
    assert!(cluster_ids[0].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    broker.stop().await;
}

#[tokio::test]
async fn created_topics_show_partitions_leaders_replicas_and_ids() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "orders", 3).await;
    assert!(!id.is_nil());
    for v in 1..=13 {
        let mut req = MetadataRequest::default().with_topics(by_name(&["orders"]));
        if v >= 4 {
            req = req.with_allow_auto_topic_creation(false);
        }
        let resp = c.call(&req, v).await;
        assert_eq!(resp.topics.len(), 1, "v{v}");
        let t = topic(&resp, "orders");
        assert_eq!(t.error_code, 0, "v{v}");
        assert!(!t.is_internal, "v{v}");
        if v >= 10 {
            assert_eq!(t.topic_id, id, "v{v}: topic id as CreateTopics returned it");
        }
        let mut parts: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
        parts.sort();
        assert_eq!(parts, vec![0, 1, 2], "v{v}");
        for p in &t.partitions {
            assert_eq!(p.error_code, 0, "v{v}");
            assert_eq!(p.leader_id, BrokerId(1), "v{v}");
            assert_eq!(p.replica_nodes, vec![BrokerId(1)], "v{v}");
            assert_eq!(p.isr_nodes, vec![BrokerId(1)], "v{v}");
            assert!(p.offline_replicas.is_empty(), "v{v}");
            if v >= 7 {
                assert_eq!(p.leader_epoch, 0, "v{v}");
            }
        }
    }
    broker.stop().await;
}

#[tokio::test]
async fn cluster_id_topics_and_topic_ids_survive_a_restart() {
    let mut broker = TestBroker::start().await;
    let (cluster_id, id_a, id_b) = {
        let mut c = broker.client().await;
        let a = create_topic(&mut c, "keep-a", 2).await;
        let b = create_topic(&mut c, "keep-b", 1).await;
        let resp = metadata_all(&mut c).await;
        (resp.cluster_id.unwrap().to_string(), a, b)
    };
    broker.restart().await;
    let mut c = broker.client().await;
    let resp = metadata_all(&mut c).await;
    assert_eq!(resp.cluster_id.as_ref().unwrap().as_str(), cluster_id, "cluster id is persisted");
    assert_eq!(resp.brokers[0].port, i32::from(broker.addr().port()), "the new bound port is advertised");
    assert_eq!(names(&resp), vec!["keep-a".to_string(), "keep-b".to_string()]);
    assert_eq!(topic(&resp, "keep-a").topic_id, id_a);
    assert_eq!(topic(&resp, "keep-b").topic_id, id_b);
    assert_eq!(topic(&resp, "keep-a").partitions.len(), 2);

    // A second, fresh data directory is a different cluster.
    let other = TestBroker::start().await;
    let mut c2 = other.client().await;
    let resp2 = metadata_all(&mut c2).await;
    assert_ne!(resp2.cluster_id.unwrap().as_str(), cluster_id);
    assert!(resp2.topics.is_empty());
    other.stop().await;
    broker.stop().await;
}

#[tokio::test]
async fn unknown_topic_without_auto_creation_is_unknown_topic_or_partition() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    for v in 4..=13 {
        let req =
            MetadataRequest::default().with_topics(by_name(&["nope"])).with_allow_auto_topic_creation(false);
        let resp = c.call(&req, v).await;
        let t = topic(&resp, "nope");
        assert_eq!(t.error_code, 3, "v{v}: UNKNOWN_TOPIC_OR_PARTITION");
        assert!(t.partitions.is_empty(), "v{v}");
        if v >= 10 {
            assert!(t.topic_id.is_nil(), "v{v}");
        }
    }
    let resp = metadata_all(&mut c).await;
    assert!(resp.topics.is_empty(), "nothing was created: {:?}", names(&resp));
    broker.stop().await;
}

#[tokio::test]
async fn unknown_topic_is_unknown_when_the_broker_disables_auto_creation() {
    let broker = TestBroker::start_with(&[("auto.create.topics.enable", "false")]).await;
    let mut c = broker.client().await;
    for v in [0, 3, 4, 12] {
        let mut req = MetadataRequest::default().with_topics(by_name(&["ghost"]));
        if v >= 4 {
            req = req.with_allow_auto_topic_creation(true);
        }
        let resp = c.call(&req, v).await;
        assert_eq!(topic(&resp, "ghost").error_code, 3, "v{v}");
    }
    assert!(metadata_all(&mut c).await.topics.is_empty());
    broker.stop().await;
}

#[tokio::test]
async fn illegal_topic_name_is_invalid_topic_exception() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let long = "x".repeat(250);
    for v in [1, 4, 9, 12] {
        for name in ["bad/name", "a b", "..", long.as_str()] {
            let mut req = MetadataRequest::default().with_topics(by_name(&[name]));
            if v >= 4 {
                req = req.with_allow_auto_topic_creation(true);
            }
            let resp = c.call(&req, v).await;
            assert_eq!(topic(&resp, name).error_code, 17, "v{v} {name:?}: INVALID_TOPIC_EXCEPTION");
        }
    }
    assert!(metadata_all(&mut c).await.topics.is_empty());
    assert!(!broker.data_dir().join("bad").exists(), "no directory was made for bad/name");
    broker.stop().await;
}

#[tokio::test]
async fn auto_creation_creates_num_partitions_partitions() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    // v12 with allow_auto_topic_creation, and v1 where auto-creation is implied.
    for (v, name) in [(12, "auto-v12"), (1, "auto-v1")] {
        let mut req = MetadataRequest::default().with_topics(by_name(&[name]));
        if v >= 4 {
            req = req.with_allow_auto_topic_creation(true);
        }
        let resp = c.call(&req, v).await;
        let t = topic(&resp, name);
        // Kafka answers LEADER_NOT_AVAILABLE (5) while a fresh topic gets its leader; both are fine.
        assert!(t.error_code == 0 || t.error_code == 5, "v{v}: {}", t.error_code);
        let after = metadata_for(&mut c, &[name]).await;
        let t = topic(&after, name);
        assert_eq!(t.error_code, 0);
        assert_eq!(t.partitions.len(), 1, "num.partitions defaults to 1");
        assert!(!t.topic_id.is_nil());
        assert!(broker.partition_dir(name, 0).is_dir());
    }
    broker.stop().await;
}

#[tokio::test]
async fn auto_creation_uses_the_configured_num_partitions() {
    let broker = TestBroker::start_with(&[("num.partitions", "4")]).await;
    let mut c = broker.client().await;
    let req =
        MetadataRequest::default().with_topics(by_name(&["auto4"])).with_allow_auto_topic_creation(true);
    c.call(&req, 9).await;
    let t = metadata_for(&mut c, &["auto4"]).await;
    assert_eq!(topic(&t, "auto4").partitions.len(), 4);
    for p in 0..4 {
        assert!(broker.partition_dir("auto4", p).is_dir());
    }
    broker.stop().await;
}

#[tokio::test]
async fn empty_list_means_all_topics_only_at_v0_and_null_means_all_topics() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t1", 1).await;
    create_topic(&mut c, "t2", 2).await;
    let all = vec!["t1".to_string(), "t2".to_string()];

    let v0 = c.call(&MetadataRequest::default().with_topics(by_name(&[])), 0).await;
    assert_eq!(names(&v0), all, "v0: empty list = all topics");
    for v in 1..=13 {
        let empty = c.call(&MetadataRequest::default().with_topics(by_name(&[])), v).await;
        assert!(empty.topics.is_empty(), "v{v}: empty list = no topics");
        let null = c.call(&MetadataRequest::default().with_topics(None), v).await;
        assert_eq!(names(&null), all, "v{v}: null = all topics");
    }
    // A repeated name is answered once.
    let dup = metadata_for(&mut c, &["t1", "t1"]).await;
    assert_eq!(names(&dup), vec!["t1".to_string()]);
    broker.stop().await;
}

#[tokio::test]
async fn lookup_by_topic_id() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "by-id", 2).await;
    for v in 12..=13 {
        let req = MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(None).with_topic_id(id),
                MetadataRequestTopic::default().with_name(None).with_topic_id(Uuid::from_u128(0x1234_5678)),
            ]))
            .with_allow_auto_topic_creation(false);
        let resp = c.call(&req, v).await;
        assert_eq!(resp.topics.len(), 2, "v{v}");
        let found = resp.topics.iter().find(|t| t.topic_id == id).expect("the known id is answered");
        assert_eq!(found.error_code, 0, "v{v}");
        assert_eq!(found.name.as_ref().unwrap().0.as_str(), "by-id", "v{v}: the name is filled in");
        assert_eq!(found.partitions.len(), 2, "v{v}");
        let unknown = resp.topics.iter().find(|t| t.topic_id == Uuid::from_u128(0x1234_5678)).unwrap();
        assert_eq!(unknown.error_code, 100, "v{v}: UNKNOWN_TOPIC_ID");
        assert!(unknown.partitions.is_empty());
    }
    broker.stop().await;
}

#[tokio::test]
async fn deleted_topic_disappears_from_metadata() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "gone", 1).await;
    let req = kafka_protocol::messages::DeleteTopicsRequest::default().with_topic_names(vec![tn("gone")]);
    let resp = c.call(&req, 5).await;
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(topic(&metadata_for(&mut c, &["gone"]).await, "gone").error_code, 3);
    let by_id = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default().with_name(None).with_topic_id(id)]))
        .with_allow_auto_topic_creation(false);
    assert_eq!(c.call(&by_id, 12).await.topics[0].error_code, 100);
    broker.stop().await;
}
