//! Transactional ids, their states and the records the transaction coordinator persists (Kafka's
//! `TransactionMetadata` and `TransactionState`, transaction coordinator module).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// Kafka's transaction states (`TransactionState`; the numbers are the ids Kafka writes in its
/// transaction log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TxnState {
    /// No transaction since the producer id was (re)initialized.
    Empty,
    /// Partitions were added; records may be written.
    Ongoing,
    /// EndTxn(commit) accepted: markers are being written.
    PrepareCommit,
    /// EndTxn(abort), a timeout or a fencing InitProducerId: markers are being written.
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    /// Expired (`transactional.id.expiration.ms`): about to be removed.
    Dead,
    /// The epoch is being bumped to fence a producer (Kafka's abort of a timed-out transaction).
    PrepareEpochFence,
}

impl TxnState {
    /// The name Kafka reports (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// Parses a state name as ListTransactions' `state_filters` spell it.
    pub fn from_name(name: &str) -> Option<TxnState> {
        ALL_STATES.into_iter().find(|s| s.name() == name)
    }

    /// Markers are being written: the id cannot start anything new until they are.
    pub fn is_preparing(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence)
    }
}

/// Every state, in Kafka's id order.
pub const ALL_STATES: [TxnState; 8] = [
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
    TxnState::Dead,
    TxnState::PrepareEpochFence,
];

/// `transaction.version` 2 (KIP-890 part 2), at which EndTxn bumps the epoch (Kafka's
/// `TransactionVersion.TV_2`); the level strom finalizes.
pub const TV_2: i16 = 2;

/// A topic partition in a transaction.
pub type TxnPartition = (String, i32);

/// What the coordinator knows of one transactional id (Kafka's `TransactionMetadata`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The producer id before the last change of id (epoch exhaustion), for KIP-360 retries; -1.
    pub last_producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump, for KIP-360 retries; -1.
    pub last_producer_epoch: i16,
    /// `transaction.timeout.ms` the producer asked for.
    pub timeout_ms: i32,
    pub state: TxnState,
    /// Partitions in the current transaction (data partitions and `__consumer_offsets` ones).
    pub partitions: BTreeSet<TxnPartition>,
    /// Broker time (ms) the current transaction started (first partition added); -1 when none.
    pub txn_start_ms: i64,
    /// Broker time (ms) of the last state change.
    pub last_update_ms: i64,
    /// Transactions v2 (KIP-890): the producer id the id moves to when the transaction being ended
    /// exhausted the epoch; -1 (Kafka's `nextProducerId`).
    #[serde(default = "no_producer_id")]
    pub next_producer_id: i64,
    /// The `transaction.version` the last EndTxn was served with: 2 for EndTxn v5+ and the
    /// coordinator's own aborts, else 0 (Kafka's `clientTransactionVersion`).
    #[serde(default)]
    pub client_txn_version: i16,
}

fn no_producer_id() -> i64 {
    -1
}

impl TxnMetadata {
    /// A new id with a fresh producer id and epoch 0.
    pub fn new(transactional_id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> TxnMetadata {
        TxnMetadata {
            transactional_id: transactional_id.to_string(),
            producer_id,
            last_producer_id: -1,
            producer_epoch: 0,
            last_producer_epoch: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            txn_start_ms: -1,
            last_update_ms: now_ms,
            next_producer_id: -1,
            client_txn_version: 0,
        }
    }
}

/// One record of the coordinator's log: the whole metadata of an id after a change, or its removal.
/// Replaying them in order (each a "set" or a "delete") gives the coordinator's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxnRecord {
    Set(TxnMetadata),
    Delete(String),
}
