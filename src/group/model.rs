//! Groups, members and the records the coordinator persists.

use std::collections::{BTreeMap, HashMap, HashSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::GroupError;

/// Kafka's classic group states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The name Kafka reports (DescribeGroups, ListGroups).
    pub fn name(&self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    /// Broker time of the commit (ms since the epoch).
    pub commit_ms: i64,
}

/// One transaction's pending offsets of a group: (topic, partition) → (record order, offset).
pub type PendingOffsets = BTreeMap<(String, i32), (u64, CommittedOffset)>;

/// A persisted member (what survives a restart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// One record of the coordinator's log. Each is a "set" or a "delete", so replay is idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GroupRecord {
    /// A committed offset (`None`: deleted).
    Offset { group: String, topic: String, partition: i32, value: Option<CommittedOffset> },
    /// A group's membership after a completed rebalance (`None`: the group is deleted).
    Metadata { group: String, value: Option<GroupMetadataRecord> },
    /// An offset committed in producer `producer_id`'s ongoing transaction (TxnOffsetCommit), at
    /// `producer_epoch` (0 in records written before the epoch was kept).
    TxnOffset {
        group: String,
        producer_id: i64,
        #[serde(default)]
        producer_epoch: i16,
        topic: String,
        partition: i32,
        value: CommittedOffset,
    },
    /// The end of producer `producer_id`'s transaction (its COMMIT/ABORT marker in partition
    /// `partition` of `__consumer_offsets`): the pending offsets of the groups in that partition
    /// (every group when `None`, as records written before partitions existed) become committed
    /// (`commit`) or are dropped.
    TxnEnd {
        producer_id: i64,
        #[serde(default)]
        producer_epoch: i16,
        commit: bool,
        #[serde(default)]
        partition: Option<i32>,
    },
}

/// The membership part of a group, written when a generation becomes Stable or the group empties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMetadataRecord {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: Vec<MemberRecord>,
    /// Broker time (ms) the group became empty, for offset expiry.
    pub empty_since_ms: Option<i64>,
}

/// A response parked until the rebalance it waits for completes.
pub type Parked<T> = oneshot::Sender<Result<T, GroupError>>;

/// What a member receives when its join completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinResult {
    pub generation: i32,
    pub protocol_type: String,
    pub protocol: String,
    pub leader: String,
    pub member_id: String,
    /// Every member with its metadata for the chosen protocol; only the leader gets it.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

/// A live member.
#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    /// Supported protocols in preference order, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub awaiting_join: Option<Parked<JoinResult>>,
    pub awaiting_sync: Option<Parked<super::membership::SyncResult>>,
    /// When the member was last heard from (join, sync, heartbeat).
    pub last_seen: Instant,
}

impl Member {
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(n, _)| n == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    pub fn session_deadline(&self) -> Instant {
        self.last_seen + std::time::Duration::from_millis(self.session_timeout_ms.max(0) as u64)
    }
}

/// One classic consumer group.
#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined, and when they expire.
    pub pending: HashMap<String, Instant>,
    /// Static members: instance id → member id.
    pub static_members: HashMap<String, String>,
    /// When the current rebalance must complete (PreparingRebalance).
    pub rebalance_deadline: Option<Instant>,
    /// When the current rebalance started.
    pub rebalance_started: Option<Instant>,
    /// A new group waits until then for more members before completing its first join.
    pub initial_delay_until: Option<Instant>,
    /// Committed offsets: (topic, partition) → offset.
    pub offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// Broker time (ms) the group last became empty.
    pub empty_since_ms: Option<i64>,
    /// Members that joined during the current rebalance (they may not be expired by a missing rejoin).
    pub new_member_ids: HashSet<String>,
    /// Offsets committed in ongoing transactions (TxnOffsetCommit): producer id → (topic, partition)
    /// → (record order, offset); made visible by the transaction's COMMIT marker unless a later
    /// record committed that partition, dropped by its ABORT marker.
    pub pending_txn_offsets: BTreeMap<i64, PendingOffsets>,
    /// The producer epoch of each producer's pending offsets (written with them).
    pub txn_epochs: BTreeMap<i64, i16>,
    /// The record order of each committed offset: Kafka compares the log offsets of an offset's
    /// records to decide which one a transaction's commit may replace (`OffsetMetadataManager.
    /// replayEndTransactionMarker`). Counted per group as records are applied, so replay counts the
    /// same, and the group log's compaction writes records in this order.
    pub offset_order: HashMap<(String, i32), u64>,
    /// The order given to the group's last offset record.
    pub last_order: u64,
}

impl Group {
    pub fn new(id: &str, now_ms: i64) -> Group {
        Group {
            id: id.to_string(),
            state: GroupState::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            static_members: HashMap::new(),
            rebalance_deadline: None,
            rebalance_started: None,
            initial_delay_until: None,
            offsets: BTreeMap::new(),
            empty_since_ms: Some(now_ms),
            new_member_ids: HashSet::new(),
            pending_txn_offsets: BTreeMap::new(),
            txn_epochs: BTreeMap::new(),
            offset_order: HashMap::new(),
            last_order: 0,
        }
    }

    /// The earliest instant a timer of this group falls due: a member's session deadline (members
    /// parked in JoinGroup or SyncGroup have none), a pending member's expiry, the rebalance
    /// deadline or the end of the initial rebalance delay.
    pub fn next_deadline(&self) -> Option<Instant> {
        let live = matches!(
            self.state,
            GroupState::PreparingRebalance | GroupState::CompletingRebalance | GroupState::Stable
        );
        let sessions = self
            .members
            .values()
            .filter(|m| live && m.awaiting_join.is_none() && m.awaiting_sync.is_none())
            .map(Member::session_deadline);
        self.pending
            .values()
            .copied()
            .chain(self.rebalance_deadline)
            .chain(self.initial_delay_until)
            .chain(sessions)
            .min()
    }

    fn next_order(&mut self) -> u64 {
        self.last_order += 1;
        self.last_order
    }

    /// Applies a committed offset record (OffsetCommit, or its replay).
    pub fn commit_offset(&mut self, key: (String, i32), value: CommittedOffset) {
        let order = self.next_order();
        self.offset_order.insert(key.clone(), order);
        self.offsets.insert(key, value);
    }

    /// Applies an offset deletion record.
    pub fn remove_offset(&mut self, key: &(String, i32)) -> Option<CommittedOffset> {
        self.offset_order.remove(key);
        self.offsets.remove(key)
    }

    /// Applies a TxnOffsetCommit record of `producer_id`'s ongoing transaction (at `epoch`).
    pub fn add_txn_offset(
        &mut self,
        producer_id: i64,
        epoch: i16,
        key: (String, i32),
        value: CommittedOffset,
    ) {
        let order = self.next_order();
        self.txn_epochs.insert(producer_id, epoch);
        self.pending_txn_offsets.entry(producer_id).or_default().insert(key, (order, value));
    }

    /// Applies the end of `producer_id`'s transaction: on commit, each pending offset replaces the
    /// committed one unless that was recorded later.
    pub fn end_txn(&mut self, producer_id: i64, commit: bool) {
        self.txn_epochs.remove(&producer_id);
        let Some(pending) = self.pending_txn_offsets.remove(&producer_id) else { return };
        if !commit {
            return;
        }
        for (key, (order, value)) in pending {
            if self.offset_order.get(&key).is_none_or(|o| *o < order) {
                self.offset_order.insert(key.clone(), order);
                self.offsets.insert(key, value);
            }
        }
    }

    /// The protocols every member supports.
    pub fn common_protocols(&self) -> Vec<String> {
        let mut iter = self.members.values();
        let Some(first) = iter.next() else { return Vec::new() };
        let mut common: Vec<String> = first.protocols.iter().map(|(n, _)| n.clone()).collect();
        for m in iter {
            common.retain(|p| m.protocols.iter().any(|(n, _)| n == p));
        }
        common
    }

    /// Whether a member with these protocols can join (shares a protocol with everyone).
    pub fn supports(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(n, _)| self.common_protocols().contains(n))
    }

    /// Kafka's vote: each member votes for its most preferred protocol among the common ones.
    pub fn select_protocol(&self) -> Option<String> {
        let common = self.common_protocols();
        let mut votes: Vec<(String, usize)> = common.iter().map(|p| (p.clone(), 0)).collect();
        for m in self.members.values() {
            if let Some((name, _)) = m.protocols.iter().find(|(n, _)| common.contains(n)) {
                if let Some(v) = votes.iter_mut().find(|(p, _)| p == name) {
                    v.1 += 1;
                }
            }
        }
        // Ties go to the earliest common protocol (Kafka's maxBy keeps the first maximum).
        votes.into_iter().rev().max_by_key(|(_, n)| *n).map(|(p, _)| p)
    }

    /// The record describing this group's membership now.
    pub fn metadata_record(&self) -> GroupRecord {
        let protocol = self.protocol.clone().unwrap_or_default();
        let members = self
            .members
            .values()
            .map(|m| MemberRecord {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                session_timeout_ms: m.session_timeout_ms,
                rebalance_timeout_ms: m.rebalance_timeout_ms,
                subscription: m.metadata_for(&protocol).to_vec(),
                assignment: m.assignment.to_vec(),
            })
            .collect();
        GroupRecord::Metadata {
            group: self.id.clone(),
            value: Some(GroupMetadataRecord {
                protocol_type: self.protocol_type.clone().unwrap_or_default(),
                generation: self.generation,
                protocol: self.protocol.clone(),
                leader: self.leader.clone(),
                members,
                empty_since_ms: self.empty_since_ms,
            }),
        }
    }
}
