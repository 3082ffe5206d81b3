//! Committed offsets (commit, fetch, delete, expiry) and the group admin operations (describe, list,
//! delete groups).

use std::collections::HashMap;

use bytes::Bytes;
use tokio::time::Instant;

use super::model::{CommittedOffset, Group, GroupRecord, GroupState};
use super::{FetchedOffset, GroupCoordinator, GroupError};

/// An OffsetCommit request in domain terms.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    pub group_id: String,
    /// -1 for commits from consumers that do not use group management.
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub offsets: Vec<RequestedOffset>,
    /// OffsetCommit v9+: a generation for a group that does not exist is GROUP_ID_NOT_FOUND
    /// (ILLEGAL_GENERATION for older versions).
    pub unknown_group_is_not_found: bool,
}

/// One offset of a commit: (topic, partition, offset, leader epoch, metadata).
pub type RequestedOffset = (String, i32, i64, i32, Option<String>);

/// A requested offset as it is stored, or OFFSET_METADATA_TOO_LARGE: the one rule both OffsetCommit
/// and TxnOffsetCommit apply per offset.
pub(crate) fn stored_offset(
    requested: &RequestedOffset,
    max_metadata_bytes: usize,
    now_ms: i64,
) -> Result<((String, i32), CommittedOffset), GroupError> {
    let (topic, partition, offset, leader_epoch, metadata) = requested;
    let metadata = metadata.clone().unwrap_or_default();
    if metadata.len() > max_metadata_bytes {
        return Err(GroupError::OffsetMetadataTooLarge);
    }
    let value = CommittedOffset { offset: *offset, leader_epoch: *leader_epoch, metadata, commit_ms: now_ms };
    Ok(((topic.clone(), *partition), value))
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    /// (member id, instance id, client id, client host, metadata, assignment)
    pub members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedGroup {
    pub group_id: String,
    pub protocol_type: String,
    pub state: GroupState,
}

impl GroupCoordinator {
    /// Commits offsets; one result per offset, in order. Partition existence is checked by the caller.
    pub fn commit(&self, req: &CommitRequest, now_ms: i64) -> Vec<Result<(), GroupError>> {
        let all = |e: GroupError| req.offsets.iter().map(|_| Err(e.clone())).collect();
        if req.group_id.is_empty() {
            return all(GroupError::InvalidGroupId);
        }
        let mut groups = self.groups.lock();
        if !groups.contains_key(&req.group_id) {
            if req.generation >= 0 {
                return all(if req.unknown_group_is_not_found {
                    GroupError::GroupIdNotFound
                } else {
                    GroupError::IllegalGeneration
                });
            }
            groups.insert(req.group_id.clone(), Group::new(&req.group_id, now_ms));
        }
        let Some(group) = groups.get_mut(&req.group_id) else {
            return all(GroupError::CoordinatorNotAvailable);
        };
        let simple = req.generation < 0 && group.state == GroupState::Empty;
        if !simple {
            if let Some(i) = &req.instance_id {
                if group.static_members.get(i).is_some_and(|id| *id != req.member_id) {
                    return all(GroupError::FencedInstanceId);
                }
            }
            let Some(member) = group.members.get_mut(&req.member_id) else {
                return all(GroupError::UnknownMemberId);
            };
            if req.generation != group.generation {
                return all(GroupError::IllegalGeneration);
            }
            if group.state == GroupState::CompletingRebalance {
                return all(GroupError::RebalanceInProgress);
            }
            member.last_seen = Instant::now();
        }
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(req.offsets.len());
        for requested in &req.offsets {
            match stored_offset(requested, self.config.max_metadata_bytes, now_ms) {
                Ok(((topic, partition), value)) => {
                    records.push(GroupRecord::Offset {
                        group: group.id.clone(),
                        topic: topic.clone(),
                        partition,
                        value: Some(value.clone()),
                    });
                    group.commit_offset((topic, partition), value);
                    results.push(Ok(()));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if let Err(e) = self.persist(&records) {
            return all(e);
        }
        results
    }

    /// Committed offsets of `group_id`: the listed partitions, or every committed one (`None`).
    pub fn fetch_offsets(
        &self,
        group_id: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Vec<((String, i32), FetchedOffset)> {
        let groups = self.groups.lock();
        let group = groups.get(group_id);
        match partitions {
            Some(list) => {
                list.iter().map(|tp| (tp.clone(), group.and_then(|g| g.offsets.get(tp).cloned()))).collect()
            }
            None => group
                .map(|g| g.offsets.iter().map(|(tp, o)| (tp.clone(), Some(o.clone()))).collect())
                .unwrap_or_default(),
        }
    }

    /// A group's state and members; `None` if the group does not exist.
    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = self.groups.lock();
        let g = groups.get(group_id)?;
        let stable = g.state == GroupState::Stable;
        let protocol = g.protocol.clone().unwrap_or_default();
        let members = g
            .members
            .values()
            .map(|m| {
                let (meta, assignment) = if stable {
                    (m.metadata_for(&protocol), m.assignment.clone())
                } else {
                    (Bytes::new(), Bytes::new())
                };
                (
                    m.id.clone(),
                    m.instance_id.clone(),
                    m.client_id.clone(),
                    m.client_host.clone(),
                    meta,
                    assignment,
                )
            })
            .collect();
        Some(GroupDescription {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol: if stable { protocol } else { String::new() },
            members,
        })
    }

    pub fn list(&self) -> Vec<ListedGroup> {
        let groups = self.groups.lock();
        let mut out: Vec<ListedGroup> = groups
            .values()
            .map(|g| ListedGroup {
                group_id: g.id.clone(),
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                state: g.state,
            })
            .collect();
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out
    }

    /// Deletes empty groups and their offsets; one result per id.
    pub fn delete_groups(&self, ids: &[String]) -> Vec<Result<(), GroupError>> {
        let mut groups = self.groups.lock();
        // Timers due by now fire first (a member whose session ended is gone), whatever the
        // background task's scheduling.
        self.run_timers(&mut groups, tokio::time::Instant::now(), crate::log::now_ms());
        ids.iter()
            .map(|id| {
                let g = groups.get(id).ok_or(GroupError::GroupIdNotFound)?;
                if g.state != GroupState::Empty {
                    return Err(GroupError::NonEmptyGroup);
                }
                let mut records: Vec<GroupRecord> = g
                    .offsets
                    .keys()
                    .map(|(t, p)| GroupRecord::Offset {
                        group: id.clone(),
                        topic: t.clone(),
                        partition: *p,
                        value: None,
                    })
                    .collect();
                records.push(GroupRecord::Metadata { group: id.clone(), value: None });
                self.persist(&records)?;
                groups.remove(id);
                Ok(())
            })
            .collect()
    }

    /// Deletes committed offsets (OffsetDelete). `subscribed(metadata)` lists the topics a member's
    /// subscription names (consumer protocol); offsets of subscribed topics of an active group are kept.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
        subscribed: impl Fn(&[u8]) -> Vec<String>,
    ) -> Result<Vec<Result<(), GroupError>>, GroupError> {
        let mut groups = self.groups.lock();
        let g = groups.get_mut(group_id).ok_or(GroupError::GroupIdNotFound)?;
        let active_topics: Vec<String> =
            if g.state == GroupState::Empty || g.protocol_type.as_deref() != Some("consumer") {
                Vec::new()
            } else {
                let protocol = g.protocol.clone().unwrap_or_default();
                g.members.values().flat_map(|m| subscribed(&m.metadata_for(&protocol))).collect()
            };
        let mut records = Vec::new();
        let results = partitions
            .iter()
            .map(|(t, p)| {
                if active_topics.contains(t) {
                    return Err(GroupError::GroupSubscribedToTopic);
                }
                if g.remove_offset(&(t.clone(), *p)).is_some() {
                    records.push(GroupRecord::Offset {
                        group: group_id.to_string(),
                        topic: t.clone(),
                        partition: *p,
                        value: None,
                    });
                }
                Ok(())
            })
            .collect();
        self.persist(&records)?;
        Ok(results)
    }

    /// `offsets.retention.minutes`: offsets of a group empty for that long are deleted, and so is the
    /// group. Offsets committed without group management expire that long after their commit.
    pub(crate) fn expire_offsets(&self, groups: &mut HashMap<String, Group>, now_ms: i64) {
        let retention = self.config.offsets_retention_ms;
        let mut records = Vec::new();
        let mut dead = Vec::new();
        for g in groups.values_mut() {
            // Offsets pending in a transaction keep their group until the transaction ends.
            if g.state != GroupState::Empty || !g.pending.is_empty() || !g.pending_txn_offsets.is_empty() {
                continue;
            }
            let group_expired =
                g.protocol_type.is_some() && g.empty_since_ms.is_some_and(|t| now_ms - t >= retention);
            let expired: Vec<(String, i32)> = g
                .offsets
                .iter()
                .filter(|(_, o)| {
                    group_expired || (g.protocol_type.is_none() && now_ms - o.commit_ms >= retention)
                })
                .map(|(tp, _)| tp.clone())
                .collect();
            for (t, p) in expired {
                g.remove_offset(&(t.clone(), p));
                records.push(GroupRecord::Offset {
                    group: g.id.clone(),
                    topic: t,
                    partition: p,
                    value: None,
                });
            }
            if g.offsets.is_empty() && (group_expired || g.protocol_type.is_none()) {
                records.push(GroupRecord::Metadata { group: g.id.clone(), value: None });
                dead.push(g.id.clone());
            }
        }
        for id in &dead {
            groups.remove(id);
            tracing::info!(group = %id, "group expired (offsets.retention.minutes)");
        }
        if let Err(e) = self.persist(&records) {
            tracing::error!(error = %e, "persisting offset expiry failed");
        }
    }
}
