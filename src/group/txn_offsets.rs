//! Offsets committed inside transactions (KIP-98 TxnOffsetCommit, with KIP-447's member checks): held
//! per producer id until the transaction's marker reaches the group coordinator, then committed or
//! dropped, as Kafka's `OffsetMetadataManager` (`replayEndTransactionMarker`) does.

use std::collections::HashMap;

use super::model::{Group, GroupRecord, GroupState};
use super::offsets::{stored_offset, RequestedOffset};
use super::{GroupCoordinator, GroupError};

/// A TxnOffsetCommit request in domain terms.
#[derive(Debug, Clone)]
pub struct TxnCommitRequest {
    pub group_id: String,
    pub producer_id: i64,
    /// -1 with an empty member id: no member checks (pre-KIP-447 producers).
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub offsets: Vec<RequestedOffset>,
}

/// Moves `producer_id`'s pending offsets of every group into its committed offsets (`commit`) or
/// drops them: the one path for both serving and replay.
pub(crate) fn apply_txn_end(groups: &mut HashMap<String, Group>, producer_id: i64, commit: bool) {
    for g in groups.values_mut() {
        g.end_txn(producer_id, commit);
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
            group.add_txn_offset(req.producer_id, key, value);
        }
        results
    }

    /// The transaction marker of `producer_id` reached the offsets: commit or drop its pending
    /// offsets in every group. Idempotent (a marker for a producer with nothing pending is a no-op).
    pub fn complete_txn(&self, producer_id: i64, commit: bool) -> Result<(), GroupError> {
        let mut groups = self.groups.lock();
        if !groups.values().any(|g| g.pending_txn_offsets.contains_key(&producer_id)) {
            return Ok(());
        }
        self.persist(&[GroupRecord::TxnEnd { producer_id, commit }])?;
        apply_txn_end(&mut groups, producer_id, commit);
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
