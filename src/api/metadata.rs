//! Metadata (v0–v13): brokers, cluster id, controller, and topics with their partitions.

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{authorized_ops, ApiContext};
use crate::cluster::{names, Topic};

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// The wire form of one known topic.
pub fn describe_topic(t: &Topic, node: i32, with_ops: bool) -> MetadataResponseTopic {
    let partitions = (0..t.partitions)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(node))
                .with_leader_epoch(t.leader_epoch)
                .with_replica_nodes(vec![BrokerId(node)])
                .with_isr_nodes(vec![BrokerId(node)])
        })
        .collect();
    let topic = MetadataResponseTopic::default()
        .with_name(Some(topic_name(&t.name)))
        .with_topic_id(t.id)
        .with_is_internal(crate::cluster::names::is_internal(&t.name))
        .with_partitions(partitions);
    if with_ops {
        topic.with_topic_authorized_operations(authorized_ops::TOPIC)
    } else {
        topic
    }
}

/// An error entry; like Kafka's `metadataResponseTopic`, it says whether the name is an internal
/// topic's even when the topic does not exist.
fn topic_error(name: Option<&str>, id: Uuid, err: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name.map(topic_name))
        .with_topic_id(id)
        .with_is_internal(name.is_some_and(crate::cluster::names::is_internal))
        .with_error_code(err.code())
}

/// One topic named in the request: found, auto-created, or an error entry.
async fn lookup_by_name(
    ctx: &ApiContext,
    name: &str,
    auto_create: bool,
    with_ops: bool,
) -> MetadataResponseTopic {
    let node = ctx.cluster.node_id();
    if let Some(t) = ctx.cluster.snapshot().get(name) {
        return describe_topic(t, node, with_ops);
    }
    if names::validate_topic_name(name).is_err() {
        return topic_error(Some(name), Uuid::nil(), ResponseError::InvalidTopicException);
    }
    if !auto_create {
        return topic_error(Some(name), Uuid::nil(), ResponseError::UnknownTopicOrPartition);
    }
    // Internal topics are never auto-created with the broker's defaults: `__consumer_offsets` is
    // created as the group coordinator needs it (Kafka's AutoTopicCreationManager does the same),
    // the others only by their coordinators.
    if names::is_internal(name) {
        if name != crate::group::store::OFFSETS_TOPIC {
            return topic_error(Some(name), Uuid::nil(), ResponseError::UnknownTopicOrPartition);
        }
        return match ctx.offsets_log.ensure_topic().await {
            Ok(t) => describe_topic(&t, node, with_ops),
            Err(e) => {
                tracing::warn!(topic = name, error = %e, "creating the offsets topic failed");
                topic_error(Some(name), Uuid::nil(), ResponseError::CoordinatorNotAvailable)
            }
        };
    }
    match ctx.cluster.auto_create(name).await {
        Ok(t) => describe_topic(&t, node, with_ops),
        Err(e) => {
            tracing::warn!(topic = name, error = %e, "auto-creating topic failed");
            topic_error(Some(name), Uuid::nil(), e.kafka_error())
        }
    }
}

/// `listener`: index of the request's listener, whose advertised address is the broker's. Through
/// a listener opened at run time (not registered) Kafka 4.4 lists no broker and answers every
/// partition with LISTENER_NOT_FOUND, no leader, and its replica offline.
pub async fn handle(
    ctx: &ApiContext,
    req: MetadataRequest,
    version: i16,
    listener: usize,
) -> MetadataResponse {
    let cluster = &ctx.cluster;
    let node = cluster.node_id();
    let config = &cluster.config;
    let endpoint = config.registered(listener);
    let with_topic_ops = version >= 8 && req.include_topic_authorized_operations;
    // Before v4 the field did not exist and Kafka always allowed auto-creation.
    let auto_create = config.auto_create_topics && (version < 4 || req.allow_auto_topic_creation);

    let all_topics = match &req.topics {
        None => true,
        Some(list) => version == 0 && list.is_empty(),
    };
    let mut topics: Vec<MetadataResponseTopic> = Vec::new();
    if all_topics {
        let snap = cluster.snapshot();
        topics.extend(snap.topics.values().map(|t| describe_topic(t, node, with_topic_ops)));
    } else {
        let mut seen_names = std::collections::HashSet::new();
        for t in req.topics.iter().flatten() {
            match t.name.as_ref() {
                Some(name) => {
                    if seen_names.insert(name.0.to_string()) {
                        topics.push(lookup_by_name(ctx, name, auto_create, with_topic_ops).await);
                    }
                }
                None => {
                    let snap = cluster.snapshot();
                    topics.push(match snap.get_by_id(t.topic_id) {
                        Some(found) => describe_topic(found, node, with_topic_ops),
                        None => topic_error(None, t.topic_id, ResponseError::UnknownTopicId),
                    });
                }
            }
        }
    }
    let brokers = match endpoint {
        Some((host, port)) => vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(node))
            .with_host(StrBytes::from_string(host.to_string()))
            .with_port(i32::from(port))],
        None => {
            for p in topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                p.error_code = ResponseError::ListenerNotFound.code();
                p.leader_id = BrokerId(-1);
                p.offline_replicas = p.replica_nodes.clone();
            }
            Vec::new()
        }
    };
    let mut resp = MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(cluster.cluster_id().to_string())))
        .with_controller_id(BrokerId(node))
        .with_topics(topics);
    if (8..=10).contains(&version) && req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations = authorized_ops::CLUSTER;
    }
    resp
}
