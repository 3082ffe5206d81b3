//! DescribeQuorum (v0–v2, `kafka-metadata-quorum describe`): strom answers as a one-node KRaft cluster
//! in combined mode (broker and controller in one process) does — one voter, this node, which leads
//! the metadata partition `__cluster_metadata-0`; no observers (a combined node's broker is the voter
//! itself, not an observer).
//!
//! strom keeps no KRaft metadata log, so what Kafka reads from it is stood in for, consistently:
//! - the leader epoch is 1, the epoch of the first (and, on one node, only) election;
//! - the high watermark and the voter's log end offset are [`crate::cluster::Cluster::metadata_offset`],
//!   the count of metadata changes committed (the cluster's creation counts as one): they grow with each
//!   topic change and never go back, as a metadata log's offsets do (Kafka's also grow with periodic
//!   no-op records; these do not);
//! - the voter's last fetch and last caught-up times are now, as Kafka's `LeaderState` reports for
//!   the leader itself;
//! - the voter's directory id (v2) is derived from the cluster id, so it is stable for the data dir's
//!   life (Kafka's is a random id kept in the metadata dir's `meta.properties`);
//! - the voter's endpoints (v2) are strom's listeners, by name and advertised address: every one
//!   of them serves the admin APIs (Kafka lists its controller listeners, by default `CONTROLLER`).
//!
//! A request that does not name exactly `__cluster_metadata` partition 0 is answered as Kafka's
//! `KafkaRaftClient` does: every partition named gets UNKNOWN_TOPIC_OR_PARTITION.

use base64::Engine;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::ApiContext;
use crate::log::now_ms;

/// Kafka's metadata topic, the one partition DescribeQuorum describes.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// The metadata partition's leader epoch: the first election's, the only one on a single node.
pub const QUORUM_LEADER_EPOCH: i32 = 1;

/// A stable directory id for the metadata "log dir": the cluster id's 16 bytes with their halves
/// swapped (never one of Kafka's reserved ids 0–2, which would mean unassigned, lost or migrating).
fn directory_id(cluster_id: &str) -> Uuid {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cluster_id).unwrap_or_default();
    let id = <[u8; 16]>::try_from(bytes.as_slice()).map_or(0, u128::from_be_bytes).rotate_left(64);
    Uuid::from_u128(if id < 3 { id + 3 } else { id })
}

/// Kafka's answer to a request for any other partition than the metadata one.
fn not_hosted(req: &DescribeQuorumRequest, version: i16) -> DescribeQuorumResponse {
    let error = ResponseError::UnknownTopicOrPartition;
    let topics = req
        .topics
        .iter()
        .map(|t| {
            TopicData::default().with_topic_name(t.topic_name.clone()).with_partitions(
                t.partitions
                    .iter()
                    .map(|p| {
                        let d = PartitionData::default().with_partition_index(p.partition_index);
                        let d = d.with_error_code(error.code());
                        if version >= 2 {
                            d.with_error_message(Some(StrBytes::from_static_str(
                                "This server does not host this topic-partition.",
                            )))
                        } else {
                            d
                        }
                    })
                    .collect(),
            )
        })
        .collect();
    DescribeQuorumResponse::default().with_topics(topics)
}

/// Answers DescribeQuorum: see the module comment.
pub async fn describe_quorum(
    ctx: &ApiContext,
    req: DescribeQuorumRequest,
    version: i16,
) -> DescribeQuorumResponse {
    let asks_metadata_partition = matches!(req.topics.as_slice(), [t]
        if t.topic_name.as_str() == METADATA_TOPIC
            && matches!(t.partitions.as_slice(), [p] if p.partition_index == 0));
    if !asks_metadata_partition {
        return not_hosted(&req, version);
    }
    let cluster = &ctx.cluster;
    let node = cluster.node_id();
    let offset = cluster.metadata_offset();
    let mut voter = ReplicaState::default().with_replica_id(BrokerId(node)).with_log_end_offset(offset);
    if version >= 1 {
        let now = now_ms();
        voter = voter.with_last_fetch_timestamp(now).with_last_caught_up_timestamp(now);
    }
    if version >= 2 {
        voter = voter.with_replica_directory_id(directory_id(cluster.cluster_id()));
    }
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(node))
        .with_leader_epoch(QUORUM_LEADER_EPOCH)
        .with_high_watermark(offset)
        .with_current_voters(vec![voter]);
    let topic = TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![partition]);
    let resp = DescribeQuorumResponse::default().with_topics(vec![topic]);
    if version < 2 {
        return resp;
    }
    let listeners = cluster
        .config
        .listeners
        .iter()
        .map(|l| {
            Listener::default()
                .with_name(StrBytes::from_string(l.name.clone()))
                .with_host(StrBytes::from_string(l.advertised_host.clone()))
                .with_port(l.advertised_port)
        })
        .collect();
    resp.with_nodes(vec![Node::default().with_node_id(BrokerId(node)).with_listeners(listeners)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_id_is_stable_and_never_reserved() {
        let id = "tvAeJMMz3ILqZicmqLV1ig";
        assert_eq!(directory_id(id), directory_id(id));
        assert_ne!(directory_id(id), directory_id("eVYAsQa1SZKSRY_cHRQyVA"));
        assert!(directory_id("not base64!").as_u128() >= 3);
    }
}
