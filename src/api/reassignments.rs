//! Partition leadership and placement on a one-node cluster: ElectLeaders (v0–v2),
//! AlterPartitionReassignments (v0–v1) and ListPartitionReassignments (v0).
//!
//! Every partition has one replica, this node, which is its leader and preferred leader, so no
//! election is ever needed and the only valid placement is the current one. The answers follow
//! Kafka's controller (`ReplicationControlManager.electLeaders` / `alterPartitionReassignments` /
//! `listPartitionReassignments`), error messages included:
//! - ElectLeaders: a named partition gets ELECTION_NOT_NEEDED (preferred and unclean alike: it has
//!   its preferred leader and a leader); unknown ones UNKNOWN_TOPIC_OR_PARTITION. The "all
//!   partitions" form (null) lists every topic with no partition, since Kafka leaves out those whose
//!   election was not needed. An unknown election type is INVALID_REQUEST, top level and per
//!   partition.
//! - AlterPartitionReassignments: a reassignment to the current replicas `[node]` completes at once;
//!   a replica list is validated as Kafka's `validateManualPartitionAssignment` does (empty, then the
//!   sorted ids: unregistered broker, repeated broker); cancelling (null replicas) answers
//!   NO_REASSIGNMENT_IN_PROGRESS.
//! - ListPartitionReassignments: nothing is ever in progress.

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId, ElectLeadersRequest,
    ElectLeadersResponse, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::ApiContext;
use crate::cluster::Snapshot;

/// Kafka's `ElectionType`: 0 preferred, 1 unclean.
const KNOWN_ELECTION_TYPES: [i8; 2] = [0, 1];

fn message(s: String) -> Option<StrBytes> {
    Some(StrBytes::from_string(s))
}

/// The outcome of electing a leader for one partition (Kafka's `ReplicationControlManager.electLeader`).
fn elect_leader(snapshot: &Snapshot, topic: &str, partition: i32) -> (ResponseError, String) {
    if snapshot.get(topic).is_none() {
        (ResponseError::UnknownTopicOrPartition, format!("No such topic as {topic}"))
    } else if !snapshot.has_partition(topic, partition) {
        (ResponseError::UnknownTopicOrPartition, format!("No such partition as {topic}-{partition}"))
    } else {
        (ResponseError::ElectionNotNeeded, "Leader election not needed for topic partition.".to_string())
    }
}

/// Answers ElectLeaders: see the module comment.
pub async fn elect_leaders(ctx: &ApiContext, req: ElectLeadersRequest, version: i16) -> ElectLeadersResponse {
    let snapshot = ctx.cluster.snapshot();
    // v0 has no election type: it always asks for the preferred leader.
    if version >= 1 && !KNOWN_ELECTION_TYPES.contains(&req.election_type) {
        let error = ResponseError::InvalidRequest.code();
        let text = format!("Unknown election type {}", req.election_type);
        let results = req
            .topic_partitions
            .iter()
            .flatten()
            .map(|t| {
                ReplicaElectionResult::default().with_topic(t.topic.clone()).with_partition_result(
                    t.partitions
                        .iter()
                        .map(|p| {
                            PartitionResult::default()
                                .with_partition_id(*p)
                                .with_error_code(error)
                                .with_error_message(message(text.clone()))
                        })
                        .collect(),
                )
            })
            .collect();
        return ElectLeadersResponse::default().with_error_code(error).with_replica_election_results(results);
    }
    let results = match &req.topic_partitions {
        // Every partition: none needs an election, and Kafka lists only those that did.
        None => snapshot
            .topics
            .keys()
            .map(|name| {
                ReplicaElectionResult::default().with_topic(TopicName(StrBytes::from_string(name.clone())))
            })
            .collect(),
        Some(topics) => topics
            .iter()
            .map(|t| {
                ReplicaElectionResult::default().with_topic(t.topic.clone()).with_partition_result(
                    t.partitions
                        .iter()
                        .map(|p| {
                            let (error, text) = elect_leader(&snapshot, &t.topic, *p);
                            PartitionResult::default()
                                .with_partition_id(*p)
                                .with_error_code(error.code())
                                .with_error_message(message(text))
                        })
                        .collect(),
                )
            })
            .collect(),
    };
    ElectLeadersResponse::default().with_replica_election_results(results)
}

/// Kafka's `validateManualPartitionAssignment` for a one-node cluster: the error message for a
/// replica list that is not exactly this node, or `None` when it is valid.
fn invalid_assignment(replicas: &[BrokerId], node: i32) -> Option<String> {
    if replicas.is_empty() {
        return Some("The manual partition assignment includes an empty replica list.".to_string());
    }
    let mut sorted: Vec<i32> = replicas.iter().map(|b| b.0).collect();
    sorted.sort_unstable();
    let mut previous = None;
    for id in sorted {
        if id != node {
            return Some(format!(
                "The manual partition assignment includes broker {id}, but no such broker is registered."
            ));
        }
        if previous == Some(id) {
            return Some(format!("The manual partition assignment includes the broker {id} more than once."));
        }
        previous = Some(id);
    }
    None
}

/// Answers AlterPartitionReassignments: see the module comment. Nothing ever moves.
pub async fn alter_partition_reassignments(
    ctx: &ApiContext,
    req: AlterPartitionReassignmentsRequest,
    _version: i16,
) -> AlterPartitionReassignmentsResponse {
    let snapshot = ctx.cluster.snapshot();
    let node = ctx.cluster.node_id();
    let resp = AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(req.allow_replication_factor_change);
    if req.topics.is_empty() {
        // Kafka's controller answers an empty request with a fresh response, whose message is "".
        return resp.with_error_message(Some(StrBytes::default()));
    }
    let responses = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let i = p.partition_index;
                    let (error, text) = if snapshot.get(&t.name).is_none() {
                        (
                            ResponseError::UnknownTopicOrPartition,
                            message(format!("Unable to find a topic named {}.", t.name.as_str())),
                        )
                    } else if !snapshot.has_partition(&t.name, i) {
                        (
                            ResponseError::UnknownTopicOrPartition,
                            message(format!("Unable to find partition {}:{i}.", t.name.as_str())),
                        )
                    } else {
                        match &p.replicas {
                            None => (ResponseError::NoReassignmentInProgress, None),
                            Some(replicas) => match invalid_assignment(replicas, node) {
                                Some(text) => (ResponseError::InvalidReplicaAssignment, message(text)),
                                None => {
                                    return ReassignablePartitionResponse::default()
                                        .with_partition_index(i)
                                        .with_error_message(None);
                                }
                            },
                        }
                    };
                    ReassignablePartitionResponse::default()
                        .with_partition_index(i)
                        .with_error_code(error.code())
                        .with_error_message(text)
                })
                .collect();
            ReassignableTopicResponse::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    resp.with_error_message(None).with_responses(responses)
}

/// Answers ListPartitionReassignments: no reassignment is ever in progress on one node.
pub async fn list_partition_reassignments(
    _ctx: &ApiContext,
    _req: ListPartitionReassignmentsRequest,
    _version: i16,
) -> ListPartitionReassignmentsResponse {
    ListPartitionReassignmentsResponse::default().with_error_message(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_are_checked_in_kafkas_order() {
        let ids = |v: &[i32]| v.iter().map(|i| BrokerId(*i)).collect::<Vec<_>>();
        assert_eq!(invalid_assignment(&ids(&[1]), 1), None);
        assert!(invalid_assignment(&ids(&[]), 1).is_some_and(|m| m.contains("empty replica list")));
        // Sorted [1, 1, 2]: the repeated 1 is met before the unknown 2.
        assert!(
            invalid_assignment(&ids(&[2, 1, 1]), 1).is_some_and(|m| m.contains("broker 1 more than once"))
        );
        assert!(invalid_assignment(&ids(&[1, 2, 2]), 1).is_some_and(|m| m.contains("broker 2, but no such")));
        assert!(invalid_assignment(&ids(&[-1]), 1).is_some_and(|m| m.contains("broker -1, but no such")));
    }
}
