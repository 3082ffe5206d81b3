//! The group coordinator: Kafka's classic rebalance protocol and committed offsets.
//!
//! - [`model`]: groups, members, and the records the coordinator persists.
//! - [`membership`]: the state machine (Empty → PreparingRebalance → CompletingRebalance → Stable,
//!   Dead when deleted): join, sync, heartbeat, leave, timeouts.
//! - [`offsets`]: committing, fetching, deleting and expiring offsets; describe/list/delete groups.
//! - [`store`]: the internal log the state is persisted in and replayed from (one replay path).
//!
//! All state sits behind one lock that is never held across an `.await`. A JoinGroup or SyncGroup that
//! must wait for the rebalance parks a oneshot sender in its member and awaits the receiver after the
//! lock is released. Time-based transitions (rebalance and session timeouts, the initial rebalance
//! delay, offset expiry) happen in [`GroupCoordinator::tick`], driven by a background task every
//! 100 ms and by tests with a paused clock.

pub mod log_format;
pub mod membership;
pub mod model;
pub mod offsets;
pub mod store;
pub mod txn_offsets;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use thiserror::Error;

use model::{CommittedOffset, Group, GroupRecord};
use store::GroupLog;

/// Why a group operation failed; mapped to Kafka codes in `crate::error`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GroupError {
    #[error("The configured groupId is invalid.")]
    InvalidGroupId,
    #[error("The session timeout is not within the range allowed by the broker.")]
    InvalidSessionTimeout,
    #[error("The group member's supported protocols are incompatible with those of existing members.")]
    InconsistentGroupProtocol,
    #[error("The coordinator is not aware of this member.")]
    UnknownMemberId,
    /// Carries the member id assigned to the joining member (JoinGroup v4+).
    #[error("The group member needs to have a valid member id before actually entering a consumer group.")]
    MemberIdRequired(String),
    #[error("The broker rejected this static consumer since another consumer with the same group.instance.id has registered with a different member.id.")]
    FencedInstanceId,
    #[error("Specified group generation id is not valid.")]
    IllegalGeneration,
    #[error("The group is rebalancing, so a rejoin is needed.")]
    RebalanceInProgress,
    #[error("The coordinator is not available.")]
    CoordinatorNotAvailable,
    /// The group's partition of `__consumer_offsets` does not exist (a hand-made topic with fewer
    /// partitions than `offsets.topic.num.partitions`), so no broker coordinates it.
    #[error("This is not the correct coordinator.")]
    NotCoordinator,
    #[error("The group id does not exist.")]
    GroupIdNotFound,
    #[error("The group is not empty.")]
    NonEmptyGroup,
    #[error("The consumer group is actively subscribed to the topic.")]
    GroupSubscribedToTopic,
    #[error("The metadata field of the offset request was too large.")]
    OffsetMetadataTooLarge,
    #[error("storage error: {0}")]
    Storage(String),
}

/// Coordinator settings (Kafka's broker keys).
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// `group.initial.rebalance.delay.ms`
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms` / `group.max.session.timeout.ms`
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// `offsets.retention.minutes`, in ms.
    pub offsets_retention_ms: i64,
    /// `offset.metadata.max.bytes`
    pub max_metadata_bytes: usize,
    /// Compact the internal log once this many bytes were appended since the last compaction.
    pub compact_after_bytes: u64,
    /// `offsets.topic.num.partitions`: a group's records go to partition
    /// `abs(hash(group id)) % offsets_partitions` of `__consumer_offsets`.
    pub offsets_partitions: i32,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            offsets_retention_ms: 7 * 24 * 3_600_000,
            max_metadata_bytes: 4096,
            compact_after_bytes: 16 << 20,
            offsets_partitions: 50,
        }
    }
}

/// The coordinator of every group on this broker.
pub struct GroupCoordinator {
    pub(crate) groups: Mutex<HashMap<String, Group>>,
    pub(crate) log: Arc<GroupLog>,
    pub(crate) config: CoordinatorConfig,
}

impl GroupCoordinator {
    /// Replays the internal log into memory.
    pub fn open(
        log: Arc<GroupLog>,
        config: CoordinatorConfig,
        now_ms: i64,
    ) -> std::io::Result<GroupCoordinator> {
        let records = log.replay()?;
        let mut groups = HashMap::new();
        for r in &records {
            replay(&mut groups, r, now_ms, config.offsets_partitions);
        }
        tracing::info!(groups = groups.len(), records = records.len(), "group coordinator loaded");
        let c = GroupCoordinator { groups: Mutex::new(groups), log, config };
        c.compact()?;
        Ok(c)
    }

    /// Writes records; called with the groups lock held so the log order is the order of changes.
    pub(crate) fn persist(&self, records: &[GroupRecord]) -> Result<(), GroupError> {
        if records.is_empty() {
            return Ok(());
        }
        self.log.append(records).map_err(|e| {
            tracing::error!(error = %e, "writing the group log failed");
            GroupError::Storage(e.to_string())
        })
    }

    /// Rewrites the internal log as the current state if enough was appended since last time.
    pub fn maybe_compact(&self) {
        if self.log.uncompacted_bytes() >= self.config.compact_after_bytes {
            if let Err(e) = self.compact() {
                tracing::error!(error = %e, "compacting the group log failed");
            }
        }
    }

    fn compact(&self) -> std::io::Result<()> {
        let groups = self.groups.lock();
        self.log.compact(&live_records(&groups))
    }

    /// The current state as records (what compaction and migration write).
    pub fn live_records(&self) -> Vec<GroupRecord> {
        live_records(&self.groups.lock())
    }

    /// Forgets every group, as Kafka's coordinator unloads its partitions when `__consumer_offsets`
    /// is deleted: their records went with the topic. Members waiting in JoinGroup or SyncGroup are
    /// answered UNKNOWN_MEMBER_ID.
    pub fn unload_all(&self) {
        let n = {
            let mut groups = self.groups.lock();
            let n = groups.len();
            groups.clear();
            n
        };
        tracing::warn!(
            groups = n,
            "__consumer_offsets was deleted: every group and committed offset is gone"
        );
    }

    /// fsyncs the internal log (background, and at shutdown).
    pub fn flush(&self) -> std::io::Result<()> {
        self.log.sync()
    }

    /// Runs the coordinator's timers until `shutdown`.
    pub async fn run_background(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        // Wakes at the next group timer (session, rebalance, delay), and at least every 100 ms for
        // offset expiry; the group log is compacted and synced every second.
        let scan = std::time::Duration::from_millis(100);
        let mut housekeeping = tokio::time::Instant::now();
        let mut next: Option<tokio::time::Instant> = None;
        loop {
            let cap = tokio::time::Instant::now() + scan;
            let wake = next.map_or(cap, |d| d.min(cap));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(wake) => {}
            }
            next = self.tick(tokio::time::Instant::now(), crate::log::now_ms());
            if housekeeping.elapsed() >= std::time::Duration::from_secs(1) {
                housekeeping = tokio::time::Instant::now();
                let me = self.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    me.maybe_compact();
                    if let Err(e) = me.flush() {
                        tracing::error!(error = %e, "syncing the group log failed");
                    }
                })
                .await;
            }
        }
    }
}

/// Every group's state as records: its metadata, then its committed and pending offsets in the order
/// they were applied (so replay orders them the same).
fn live_records(groups: &HashMap<String, Group>) -> Vec<GroupRecord> {
    let mut live = Vec::new();
    for g in groups.values() {
        live.push(g.metadata_record());
        // Offset records in the order they were applied, so replay orders them the same.
        let mut offsets: Vec<(u64, GroupRecord)> = Vec::new();
        for ((topic, partition), value) in &g.offsets {
            let order = g.offset_order.get(&(topic.clone(), *partition)).copied().unwrap_or(0);
            let record = GroupRecord::Offset {
                group: g.id.clone(),
                topic: topic.clone(),
                partition: *partition,
                value: Some(value.clone()),
            };
            offsets.push((order, record));
        }
        for (producer_id, pending) in &g.pending_txn_offsets {
            for ((topic, partition), (order, value)) in pending {
                let record = GroupRecord::TxnOffset {
                    group: g.id.clone(),
                    producer_id: *producer_id,
                    producer_epoch: g.txn_epochs.get(producer_id).copied().unwrap_or(0),
                    topic: topic.clone(),
                    partition: *partition,
                    value: value.clone(),
                };
                offsets.push((*order, record));
            }
        }
        offsets.sort_by_key(|(order, _)| *order);
        live.extend(offsets.into_iter().map(|(_, r)| r));
    }
    live
}

/// Applies one persisted record: the single path used both at start-up and (through the handlers'
/// identical in-memory changes) while serving. A group comes back as it was last Stable (members,
/// assignments, generation) or Empty, as in Kafka: live members go on heartbeating and committing,
/// and members that do not come back expire after their session timeout.
fn replay(groups: &mut HashMap<String, Group>, r: &GroupRecord, now_ms: i64, partitions: i32) {
    match r {
        GroupRecord::Offset { group, topic, partition, value } => {
            let g = groups.entry(group.clone()).or_insert_with(|| Group::new(group, now_ms));
            match value {
                Some(v) => g.commit_offset((topic.clone(), *partition), v.clone()),
                None => {
                    g.remove_offset(&(topic.clone(), *partition));
                }
            }
        }
        GroupRecord::Metadata { group, value: Some(m) } => {
            let g = groups.entry(group.clone()).or_insert_with(|| Group::new(group, now_ms));
            g.generation = m.generation;
            g.protocol_type = (!m.protocol_type.is_empty()).then(|| m.protocol_type.clone());
            restore_members(g, m);
        }
        GroupRecord::Metadata { group, value: None } => {
            groups.remove(group);
        }
        GroupRecord::TxnOffset { group, producer_id, producer_epoch, topic, partition, value } => {
            let g = groups.entry(group.clone()).or_insert_with(|| Group::new(group, now_ms));
            g.add_txn_offset(*producer_id, *producer_epoch, (topic.clone(), *partition), value.clone());
        }
        GroupRecord::TxnEnd { producer_id, commit, partition, .. } => {
            txn_offsets::apply_txn_end(groups, *producer_id, *commit, *partition, partitions)
        }
    }
}

fn restore_members(g: &mut Group, m: &model::GroupMetadataRecord) {
    let now = tokio::time::Instant::now();
    g.members.clear();
    g.static_members.clear();
    let protocol = m.protocol.clone().unwrap_or_default();
    for r in &m.members {
        if let Some(i) = &r.instance_id {
            g.static_members.insert(i.clone(), r.member_id.clone());
        }
        g.members.insert(
            r.member_id.clone(),
            model::Member {
                id: r.member_id.clone(),
                instance_id: r.instance_id.clone(),
                client_id: r.client_id.clone(),
                client_host: r.client_host.clone(),
                session_timeout_ms: r.session_timeout_ms,
                rebalance_timeout_ms: r.rebalance_timeout_ms,
                protocols: vec![(protocol.clone(), bytes::Bytes::from(r.subscription.clone()))],
                assignment: bytes::Bytes::from(r.assignment.clone()),
                awaiting_join: None,
                awaiting_sync: None,
                last_seen: now,
            },
        );
    }
    if g.members.is_empty() {
        g.state = model::GroupState::Empty;
        g.protocol = None;
        g.leader = None;
        g.empty_since_ms = Some(m.empty_since_ms.unwrap_or(crate::log::now_ms()));
    } else {
        g.state = model::GroupState::Stable;
        g.protocol = m.protocol.clone();
        g.leader = m.leader.clone();
        g.empty_since_ms = None;
    }
}

/// A committed offset as returned by OffsetFetch.
pub type FetchedOffset = Option<CommittedOffset>;
