//! Offsets committed inside transactions (KIP-98 TxnOffsetCommit, with KIP-447's member checks): held
//! per producer id until the transaction's marker reaches the group coordinator, then committed or
//! dropped, as Kafka's `OffsetMetadataManager` (`replayEndTransactionMarker`) does.

use std::collections::HashMap;

use super::model::{Group, GroupRecord, GroupState};
use super::offsets::{stored_offset, RequestedOffset};
use super::{GroupCoordinator, GroupError};
use crate::coordinator_log::partition_for;

/// A TxnOffsetCommit request in domain terms.
#[derive(Debug, Clone)]
pub struct TxnCommitRequest {
    pub group_id: String,
    pub producer_id: i64,
    /// The producer's epoch (written with the offsets, as Kafka writes a transactional batch).
    pub producer_epoch: i16,
    /// -1 with an empty member id: no member checks (pre-KIP-447 producers).
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub offsets: Vec<RequestedOffset>,
}

/// Moves `producer_id`'s pending offsets of the groups in partition `partition` of
/// `__consumer_offsets` (of `partitions`; every group when `None`) into their committed offsets
/// (`commit`) or drops them: the one path for both serving and replay (Kafka's
/// `OffsetMetadataManager.replayEndTransactionMarker`, per partition).
pub(crate) fn apply_txn_end(
    groups: &mut HashMap<String, Group>,
    producer_id: i64,
    commit: bool,
    partition: Option<i32>,
    partitions: i32,
) {
    for g in groups.values_mut() {
        if partition.is_none_or(|p| partition_for(&g.id, partitions) == p) {
            g.end_txn(producer_id, commit);
        }
    }
}

impl GroupCoordinator {
    /// TxnOffsetCommit: records offsets pending in `producer_id`'s transaction. One result per
    /// offset, in order. Whether the group's offsets partition is in the transaction is checked by
    /// the caller (with the transaction coordinator).
    pub fn txn_commit(&self, req: &TxnCommitRequest, now_ms: i64) -> Vec<Result<(), GroupError>> {
        let all = |e: GroupError| req.offsets.iter().map(|_| Err(e.clone())).collect();
        if req.group_id.is_empty() {
            return all(GroupError::InvalidGroupId);
        }
        let mut groups = self.groups.lock();
        // Kafka's OffsetMetadataManager.validateTransactionalOffsetCommit and, for a classic group,
        // ClassicGroup.validateOffsetCommit.
        if !groups.contains_key(&req.group_id) {
            if req.generation >= 0 {
                return all(GroupError::IllegalGeneration);
            }
            groups.insert(req.group_id.clone(), Group::new(&req.group_id, now_ms));
        }
        let Some(group) = groups.get_mut(&req.group_id) else {
            return all(GroupError::CoordinatorNotAvailable);
        };
        if group.state == GroupState::Dead {
            return all(GroupError::CoordinatorNotAvailable);
        }
        let member_info = req.generation >= 0 || !req.member_id.is_empty() || req.instance_id.is_some();
        let simple = req.generation < 0 && group.state == GroupState::Empty;
        if member_info && !simple {
            if let Some(i) = &req.instance_id {
                match group.static_members.get(i) {
                    None => return all(GroupError::UnknownMemberId),
                    Some(id) if *id != req.member_id => return all(GroupError::FencedInstanceId),
                    Some(_) => {}
                }
            }
            if !group.members.contains_key(&req.member_id) {
                return all(GroupError::UnknownMemberId);
            }
            if req.generation != group.generation {
                return all(GroupError::IllegalGeneration);
            }
        }
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(req.offsets.len());
        let mut accepted = Vec::new();
        for requested in &req.offsets {
            match stored_offset(requested, self.config.max_metadata_bytes, now_ms) {
                Ok(((topic, partition), value)) => {
                    records.push(GroupRecord::TxnOffset {
                        group: group.id.clone(),
                        producer_id: req.producer_id,
                        producer_epoch: req.producer_epoch,
                        topic: topic.clone(),
                        partition,
                        value: value.clone(),
                    });
                    accepted.push(((topic, partition), value));
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if let Err(e) = self.persist(&records) {
            return all(e);
        }
        for (key, value) in accepted {
            group.add_txn_offset(req.producer_id, req.producer_epoch, key, value);
        }
        results
    }

    /// The transaction marker of `producer_id` (at `producer_epoch`) for partition `partition` of
    /// `__consumer_offsets` (every partition when `None`): commit or drop the pending offsets of
    /// the groups there; the marker is written to that partition. Idempotent (a marker for a
    /// producer with nothing pending there is a no-op).
    pub fn complete_txn(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        partition: Option<i32>,
        commit: bool,
    ) -> Result<(), GroupError> {
        let n = self.config.offsets_partitions;
        let mut groups = self.groups.lock();
        let mut in_scope: Vec<i32> = groups
            .values()
            .filter(|g| g.pending_txn_offsets.contains_key(&producer_id))
            .map(|g| partition_for(&g.id, n))
            .filter(|p| partition.is_none_or(|want| want == *p))
            .collect();
        in_scope.sort_unstable();
        in_scope.dedup();
        let records: Vec<GroupRecord> = in_scope
            .iter()
            .map(|p| GroupRecord::TxnEnd { producer_id, producer_epoch, commit, partition: Some(*p) })
            .collect();
        self.persist(&records)?;
        apply_txn_end(&mut groups, producer_id, commit, partition, n);
        Ok(())
    }

    /// Whether a transaction holds an uncommitted offset for `(topic, partition)` of `group_id`
    /// (OffsetFetch with `require_stable` answers UNSTABLE_OFFSET_COMMIT for it, KIP-447).
    pub fn has_pending_txn_offset(&self, group_id: &str, topic: &str, partition: i32) -> bool {
        let groups = self.groups.lock();
        groups.get(group_id).is_some_and(|g| {
            g.pending_txn_offsets.values().any(|p| p.contains_key(&(topic.to_string(), partition)))
        })
    }
}
