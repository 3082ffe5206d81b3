//! Transaction markers: the broker's [`MarkerWriter`] (used by the transaction coordinator) and the
//! WriteTxnMarkers API (v0–v1, what a coordinator sends partition leaders in Kafka).
//!
//! A marker for a data partition is a control batch appended to its log
//! (`PartitionLog::append_txn_marker`); a marker for a partition of `__consumer_offsets` completes
//! the producer's transactional offset commits in the group coordinator.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::ResponseError;

use super::txn::OFFSETS_TOPIC;
use super::ApiContext;
use crate::cluster::Cluster;
use crate::group::GroupCoordinator;
use crate::log::{now_ms, LogError};
use crate::txn::model::TxnPartition;
use crate::txn::MarkerWriter;

/// Writes markers into this broker's partitions and group offsets.
pub struct BrokerMarkers {
    pub cluster: Arc<Cluster>,
    pub groups: Arc<GroupCoordinator>,
}

impl BrokerMarkers {
    /// Writes one marker; `Ok` also when the partition no longer exists (Kafka's coordinator
    /// drops markers for deleted partitions).
    fn write_one(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
    ) -> Result<(), ResponseError> {
        if topic == OFFSETS_TOPIC {
            return self
                .groups
                .complete_txn(producer_id, producer_epoch, Some(partition), commit)
                .map_err(|e| e.kafka_error());
        }
        let snap = self.cluster.snapshot();
        let Some(t) = snap.get(topic) else { return Err(ResponseError::UnknownTopicOrPartition) };
        let Some(log) = self.cluster.logs.partition(topic, partition) else {
            return Err(ResponseError::UnknownTopicOrPartition);
        };
        log.append_txn_marker(
            producer_id,
            producer_epoch,
            coordinator_epoch,
            commit,
            t.leader_epoch,
            now_ms(),
        )
        .map(|_| ())
        .map_err(|e: LogError| e.kafka_error())
    }
}

impl MarkerWriter for BrokerMarkers {
    fn write_markers(
        &self,
        partitions: &BTreeSet<TxnPartition>,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), String> {
        let mut failed = Vec::new();
        for (topic, partition) in partitions {
            let coordinator_epoch = crate::txn::coordinator::COORDINATOR_EPOCH;
            match self.write_one(topic, *partition, producer_id, producer_epoch, coordinator_epoch, commit) {
                Ok(()) | Err(ResponseError::UnknownTopicOrPartition) => {}
                Err(e) => failed.push(format!("{topic}-{partition}: {e:?}")),
            }
        }
        self.cluster.logs.notify_appended();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(format!("markers not written: {}", failed.join(", ")))
        }
    }
}

pub async fn write_txn_markers(
    ctx: &ApiContext,
    req: WriteTxnMarkersRequest,
    _version: i16,
) -> WriteTxnMarkersResponse {
    let writer = BrokerMarkers { cluster: ctx.cluster.clone(), groups: ctx.groups.clone() };
    let markers = req
        .markers
        .iter()
        .map(|m| {
            let topics = m
                .topics
                .iter()
                .map(|t| {
                    let partitions = t
                        .partition_indexes
                        .iter()
                        .map(|p| {
                            let r = writer.write_one(
                                &t.name,
                                *p,
                                m.producer_id.0,
                                m.producer_epoch,
                                m.coordinator_epoch,
                                m.transaction_result,
                            );
                            WritableTxnMarkerPartitionResult::default()
                                .with_partition_index(*p)
                                .with_error_code(r.err().map_or(0, |e| e.code()))
                        })
                        .collect();
                    WritableTxnMarkerTopicResult::default()
                        .with_name(t.name.clone())
                        .with_partitions(partitions)
                })
                .collect();
            WritableTxnMarkerResult::default().with_producer_id(m.producer_id).with_topics(topics)
        })
        .collect();
    ctx.cluster.logs.notify_appended();
    WriteTxnMarkersResponse::default().with_markers(markers)
}
