//! DescribeTopicPartitions (v0, KIP-966): the 4.x admin client's `describeTopics` — topics with their
//! partitions' leader, epoch, replicas, ISR and the eligible leader replicas (ELR, empty: a one-node
//! cluster never has a replica outside the ISR that could lead), paged by a cursor.
//!
//! Follows Kafka's `DescribeTopicPartitionsRequestHandler` and `KRaftMetadataCache.describeTopicResponse`:
//! - the topics are those named (every topic when none is), deduplicated, from the cursor's topic on,
//!   in name order; a named topic that does not exist is UNKNOWN_TOPIC_OR_PARTITION
//!   (INVALID_TOPIC_EXCEPTION for an illegal name), listed in its place;
//! - at most `response_partition_limit` partitions are answered, clamped to 1..=2000 (Kafka's
//!   `max.request.partition.size.limit` default); the cursor's topic starts at the cursor's partition;
//!   when a topic's partitions do not all fit, `next_cursor` points at the first left out; when the
//!   limit is used up exactly, it points at partition 0 of the next topic (existing or not);
//! - a cursor whose topic is not among the named ones, or whose partition is negative, makes the
//!   request invalid: every named topic is answered INVALID_REQUEST, with no cursor.
//!
//! Topic names are compared as bytes; Kafka compares UTF-16 units, which orders the same for every
//! legal topic name (ASCII).

use std::collections::BTreeSet;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{authorized_ops, ApiContext};
use crate::cluster::{names, Topic};

/// Kafka's `max.request.partition.size.limit` default: the most partitions one answer holds.
pub const MAX_REQUEST_PARTITION_SIZE_LIMIT: i32 = 2000;

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Kafka's `DescribeTopicPartitionsRequest.getErrorResponse`: each named topic with `error`.
fn error_response(
    req: &DescribeTopicPartitionsRequest,
    error: ResponseError,
) -> DescribeTopicPartitionsResponse {
    DescribeTopicPartitionsResponse::default().with_topics(
        req.topics
            .iter()
            .map(|t| {
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(t.name.clone()))
                    .with_error_code(error.code())
            })
            .collect(),
    )
}

/// Partitions `from..` of `topic`, at most `max` of them.
fn partitions(
    topic: &Topic,
    node: i32,
    from: i32,
    max: i32,
) -> Vec<DescribeTopicPartitionsResponsePartition> {
    let end = topic.partitions.min(from.saturating_add(max));
    (from..end)
        .map(|p| {
            DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(node))
                .with_leader_epoch(topic.leader_epoch)
                .with_replica_nodes(vec![BrokerId(node)])
                .with_isr_nodes(vec![BrokerId(node)])
                .with_eligible_leader_replicas(Some(Vec::new()))
                .with_last_known_elr(Some(Vec::new()))
        })
        .collect()
}

/// Answers DescribeTopicPartitions: see the module comment.
pub async fn describe_topic_partitions(
    ctx: &ApiContext,
    req: DescribeTopicPartitionsRequest,
    _version: i16,
) -> DescribeTopicPartitionsResponse {
    let snapshot = ctx.cluster.snapshot();
    let node = ctx.cluster.node_id();
    let fetch_all = req.topics.is_empty();
    let cursor = req.cursor.as_ref().map(|c| (c.topic_name.as_str(), c.partition_index));
    let cursor_topic = cursor.map_or("", |c| c.0);
    let names: BTreeSet<&str> = if fetch_all {
        snapshot.topics.keys().map(String::as_str).filter(|n| *n >= cursor_topic).collect()
    } else {
        req.topics.iter().map(|t| t.name.as_str()).filter(|n| *n >= cursor_topic).collect()
    };
    if let Some((topic, partition)) = cursor {
        if (!fetch_all && !names.contains(topic)) || partition < 0 {
            return error_response(&req, ResponseError::InvalidRequest);
        }
    }
    let mut remaining = req.response_partition_limit.clamp(1, MAX_REQUEST_PARTITION_SIZE_LIMIT);
    let mut resp = DescribeTopicPartitionsResponse::default().with_next_cursor(None);
    for name in names {
        if remaining == 0 {
            // The limit is used up exactly: go on from this topic's start next time.
            resp.next_cursor =
                Some(Cursor::default().with_topic_name(topic_name(name)).with_partition_index(0));
            break;
        }
        let topic = DescribeTopicPartitionsResponseTopic::default()
            .with_name(Some(topic_name(name)))
            .with_topic_authorized_operations(authorized_ops::TOPIC);
        let Some(t) = snapshot.get(name) else {
            if !fetch_all {
                let error = match names::validate_topic_name(name) {
                    Ok(()) => ResponseError::UnknownTopicOrPartition,
                    Err(_) => ResponseError::InvalidTopicException,
                };
                resp.topics.push(topic.with_error_code(error.code()).with_topic_id(Uuid::nil()));
            }
            continue;
        };
        let from = if name == cursor_topic { cursor.map_or(0, |c| c.1) } else { 0 };
        let answered = partitions(t, node, from, remaining);
        let upper = from.saturating_add(i32::try_from(answered.len()).unwrap_or(i32::MAX));
        remaining -= i32::try_from(answered.len()).unwrap_or(remaining);
        resp.topics.push(
            topic.with_topic_id(t.id).with_is_internal(names::is_internal(&t.name)).with_partitions(answered),
        );
        if upper < t.partitions {
            resp.next_cursor =
                Some(Cursor::default().with_topic_name(topic_name(name)).with_partition_index(upper));
            break;
        }
    }
    resp
}
