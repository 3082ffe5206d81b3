//! Shared lookups for the partition-level APIs: a topic (by name or id) and one of its partition logs,
//! with the Kafka error for each way that can fail, and the leader-epoch check of KIP-320.

use std::sync::Arc;

use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::ApiContext;
use crate::cluster::Topic;
use crate::log::PartitionLog;

/// How a request names a topic.
#[derive(Debug, Clone, Copy)]
pub enum TopicKey<'a> {
    Name(&'a str),
    Id(Uuid),
}

/// The topic a request names, or the error for that topic (UNKNOWN_TOPIC_ID for ids).
pub fn find_topic(ctx: &ApiContext, key: TopicKey<'_>) -> Result<Arc<Topic>, ResponseError> {
    let snap = ctx.cluster.snapshot();
    match key {
        TopicKey::Name(n) => snap.get(n).cloned().ok_or(ResponseError::UnknownTopicOrPartition),
        TopicKey::Id(id) => snap.get_by_id(id).cloned().ok_or(ResponseError::UnknownTopicId),
    }
}

/// The log of `partition` of `topic`.
pub fn find_log(ctx: &ApiContext, topic: &Topic, partition: i32) -> Result<Arc<PartitionLog>, ResponseError> {
    if partition < 0 || partition >= topic.partitions {
        return Err(ResponseError::UnknownTopicOrPartition);
    }
    ctx.cluster.logs.partition(&topic.name, partition).ok_or(ResponseError::UnknownTopicOrPartition)
}

/// KIP-320: a request carrying the leader epoch it believes current. -1 means "not known".
pub fn check_leader_epoch(requested: i32, current: i32) -> Result<(), ResponseError> {
    if requested < 0 || requested == current {
        Ok(())
    } else if requested > current {
        Err(ResponseError::UnknownLeaderEpoch)
    } else {
        Err(ResponseError::FencedLeaderEpoch)
    }
}
