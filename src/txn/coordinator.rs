//! The transaction coordinator (KIP-98, Kafka's `TransactionCoordinator`): per transactional id the
//! producer id, epoch, state and partitions, changed by InitProducerId, AddPartitionsToTxn,
//! AddOffsetsToTxn and EndTxn and by its timers, persisted as [`TxnRecord`]s in its own log and
//! replayed from it at start-up (one replay path).
//!
//! Ending a transaction: the state moves to PrepareCommit/PrepareAbort and is persisted (the point
//! of no return), the COMMIT/ABORT markers are written to every partition of the transaction through
//! a [`MarkerWriter`], then CompleteCommit/CompleteAbort is persisted. While markers are pending the
//! id answers CONCURRENT_TRANSACTIONS. Markers that could not be written (e.g. disk full), and
//! transactions found in a Prepare state at start-up (`kill -9` between the two writes), are
//! completed by [`TransactionCoordinator::tick`].
//!
//! All state sits behind one lock, never held while markers are written.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI16, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use super::model::{TxnMetadata, TxnPartition, TxnRecord, TxnState, TV_2};
use super::ProducerIdManager;
pub use crate::coordinator_log::partition_for;
use crate::coordinator_log::RecordLog;

/// The coordinator epoch written in markers. One node is the only coordinator there has been.
pub const COORDINATOR_EPOCH: i32 = 0;

/// An epoch at which the producer id is rotated instead of bumped (Kafka keeps `Short.MAX_VALUE`
/// itself for fencing: `TransactionMetadata.isEpochExhausted`).
pub const EXHAUSTED_EPOCH: i16 = i16::MAX - 1;

/// Why a transaction operation failed; mapped to Kafka codes in `crate::error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("The transaction timeout is larger than the maximum value allowed by the broker (as configured by transaction.max.timeout.ms).")]
    InvalidTransactionTimeout,
    #[error("The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing.")]
    ConcurrentTransactions,
    #[error("There is a newer producer with the same transactionalId which fences the current one.")]
    ProducerFenced,
    #[error("The producer attempted to use a producer id which is not currently assigned to its transactional id.")]
    InvalidProducerIdMapping,
    #[error("The producer attempted a transactional operation in an invalid state.")]
    InvalidTxnState,
    #[error("The transactionalId could not be found.")]
    TransactionalIdNotFound,
    #[error("The server encountered an error with the transaction. The client can abort the transaction to continue using this transactional ID.")]
    TransactionAbortable,
    #[error("storage error: {0}")]
    Storage(String),
}

/// Writes transaction markers to partitions (the partition logs and the group coordinator's
/// offsets). Implemented by the broker wiring, so `txn/` needs neither.
pub trait MarkerWriter: Send + Sync {
    /// Writes a COMMIT (`commit`) or ABORT marker of `producer_id` at `producer_epoch` to each
    /// partition. A partition that no longer exists counts as written. `Err` names what failed.
    fn write_markers(
        &self,
        partitions: &BTreeSet<TxnPartition>,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), String>;
}

/// Coordinator settings (Kafka's broker keys).
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`
    pub id_expiration_ms: i64,
    /// `offsets.topic.num.partitions`: AddOffsetsToTxn adds the group's partition of `__consumer_offsets`.
    pub offsets_partitions: i32,
    /// Compact the log once this many bytes were appended since the last compaction.
    pub compact_after_bytes: u64,
}

impl Default for TxnConfig {
    fn default() -> Self {
        TxnConfig {
            max_timeout_ms: 900_000,
            id_expiration_ms: 7 * 24 * 3_600_000,
            offsets_partitions: 50,
            compact_after_bytes: 16 << 20,
        }
    }
}

/// The transaction coordinator of this broker.
pub struct TransactionCoordinator {
    pub(super) ids: Mutex<HashMap<String, TxnMetadata>>,
    log: Arc<dyn RecordLog<TxnRecord>>,
    pub(super) producer_ids: Arc<ProducerIdManager>,
    markers: Arc<dyn MarkerWriter>,
    pub config: TxnConfig,
    /// The finalized `transaction.version` (Kafka's `txnManager.transactionVersionLevel()`): the
    /// version of the aborts the coordinator starts itself (a fence, a timeout), kept in their
    /// records. Clients' requests go by their own version (EndTxn v5+ is TV_2, as in Kafka 4.4).
    server_txn_version: AtomicI16,
}

/// A producer id and epoch.
pub type ProducerIdAndEpoch = (i64, i16);

impl TransactionCoordinator {
    /// Sets the finalized `transaction.version` (at start and after UpdateFeatures).
    pub fn set_transaction_version(&self, level: i16) {
        self.server_txn_version.store(level, Ordering::Relaxed);
    }

    fn transaction_version(&self) -> i16 {
        self.server_txn_version.load(Ordering::Relaxed)
    }

    /// Forgets every transactional id, as Kafka's coordinator unloads its partitions when
    /// `__transaction_state` is deleted: their records went with the topic.
    pub fn unload_all(&self) {
        let n = {
            let mut ids = self.ids.lock();
            let n = ids.len();
            ids.clear();
            n
        };
        tracing::warn!(
            transactional_ids = n,
            "__transaction_state was deleted: every transactional id is gone"
        );
    }
}

/// What the caller of an epoch-changing step must do next.
pub(super) enum Next {
    Done(Result<ProducerIdAndEpoch, TxnError>),
    /// Write markers, then complete; then answer with the inner result.
    WriteMarkers {
        id: String,
        result: Result<ProducerIdAndEpoch, TxnError>,
    },
}

impl TransactionCoordinator {
    /// Replays the coordinator's log. Transactions found preparing are completed by the first tick.
    pub fn open(
        log: Arc<dyn RecordLog<TxnRecord>>,
        producer_ids: Arc<ProducerIdManager>,
        markers: Arc<dyn MarkerWriter>,
        config: TxnConfig,
    ) -> std::io::Result<TransactionCoordinator> {
        let records = log.replay()?;
        let mut ids = HashMap::new();
        for r in &records {
            match r {
                TxnRecord::Set(m) => {
                    // Kafka's transaction log does not keep lastProducerEpoch: a KIP-360 retry
                    // across a restart is fenced, as after a coordinator failover.
                    let m = TxnMetadata { last_producer_epoch: -1, ..m.clone() };
                    ids.insert(m.transactional_id.clone(), m);
                }
                TxnRecord::Delete(id) => {
                    ids.remove(id);
                }
            }
        }
        tracing::info!(
            transactional_ids = ids.len(),
            records = records.len(),
            "transaction coordinator loaded"
        );
        let dead = records.len() - records.len().min(ids.len());
        let server_txn_version = AtomicI16::new(TV_2);
        let c = TransactionCoordinator {
            ids: Mutex::new(ids),
            log,
            producer_ids,
            markers,
            config,
            server_txn_version,
        };
        // Rewriting the live state costs a write per id: only when most of what was replayed is dead.
        if dead > records.len() / 2 {
            c.compact()?;
        }
        Ok(c)
    }

    fn persist(&self, m: &TxnMetadata) -> Result<(), TxnError> {
        self.log.append(&[TxnRecord::Set(m.clone())]).map_err(|e| {
            tracing::error!(error = %e, "writing the transaction log failed");
            TxnError::Storage(e.to_string())
        })
    }

    /// Applies `change` to a copy of `id`'s metadata, persists it, then makes it current: the log
    /// never lags what was answered, and a failed write changes nothing.
    pub(super) fn update(
        &self,
        ids: &mut HashMap<String, TxnMetadata>,
        m: &TxnMetadata,
        change: impl FnOnce(&mut TxnMetadata),
    ) -> Result<TxnMetadata, TxnError> {
        let mut next = m.clone();
        change(&mut next);
        self.persist(&next)?;
        ids.insert(next.transactional_id.clone(), next.clone());
        Ok(next)
    }

    /// InitProducerId with a transactional id (blocking: may allocate a producer id and write markers).
    /// `expected` is KIP-360's current producer id and epoch, when the producer sends them.
    pub fn init_producer_id(
        &self,
        transactional_id: &str,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
        now_ms: i64,
    ) -> Result<ProducerIdAndEpoch, TxnError> {
        if timeout_ms <= 0 || timeout_ms > self.config.max_timeout_ms {
            return Err(TxnError::InvalidTransactionTimeout);
        }
        let next = {
            let mut ids = self.ids.lock();
            match ids.get(transactional_id).cloned() {
                None => {
                    let pid = self.producer_ids.next_id().map_err(|e| TxnError::Storage(e.to_string()))?;
                    let m = TxnMetadata::new(transactional_id, pid, timeout_ms, now_ms);
                    self.persist(&m)?;
                    ids.insert(transactional_id.to_string(), m);
                    Next::Done(Ok((pid, 0)))
                }
                Some(m) => self.init_existing(&mut ids, m, timeout_ms, expected, now_ms)?,
            }
        };
        self.finish(next, now_ms)
    }

    /// InitProducerId for a known id, as Kafka's `TransactionCoordinator.handleInitProducerId`.
    fn init_existing(
        &self,
        ids: &mut HashMap<String, TxnMetadata>,
        m: TxnMetadata,
        timeout_ms: i32,
        expected: Option<ProducerIdAndEpoch>,
        now_ms: i64,
    ) -> Result<Next, TxnError> {
        if m.state.is_preparing() {
            return Ok(Next::Done(Err(TxnError::ConcurrentTransactions)));
        }
        // KIP-360: the producer id it names must be this id's, or the previous one after a rotation.
        if let Some((pid, epoch)) = expected {
            let rotated_retry = pid == m.last_producer_id && epoch >= EXHAUSTED_EPOCH;
            if pid != m.producer_id && !rotated_retry {
                return Ok(Next::Done(Err(TxnError::ProducerFenced)));
            }
        }
        if m.state == TxnState::Ongoing {
            // Fence the old producer: bump the epoch and abort its transaction with the new epoch;
            // this request is answered CONCURRENT_TRANSACTIONS, and its retry bumps again.
            let tv = self.transaction_version();
            let fenced = self.update(ids, &m, |n| fence(n, now_ms, tv))?;
            return Ok(Next::WriteMarkers {
                id: fenced.transactional_id,
                result: Err(TxnError::ConcurrentTransactions),
            });
        }
        // Empty, CompleteCommit, CompleteAbort.
        let expected_epoch = expected.map(|(_, e)| e);
        let exhausted = m.producer_epoch >= EXHAUSTED_EPOCH;
        let (pid, epoch, last_pid, last_epoch) =
            if exhausted && expected_epoch.is_none_or(|e| e == m.producer_epoch) {
                let pid = self.producer_ids.next_id().map_err(|e| TxnError::Storage(e.to_string()))?;
                let last_epoch = if expected.is_some() { m.producer_epoch } else { -1 };
                (pid, 0, m.producer_id, last_epoch)
            } else {
                match expected_epoch {
                    None => (m.producer_id, m.producer_epoch + 1, m.last_producer_id, -1),
                    Some(e) if e == m.producer_epoch => (m.producer_id, e + 1, m.last_producer_id, e),
                    // A retry of an InitProducerId whose answer was lost: the same answer, no bump.
                    Some(e) if e == m.last_producer_epoch => {
                        return Ok(Next::Done(Ok((m.producer_id, m.producer_epoch))));
                    }
                    Some(_) => return Ok(Next::Done(Err(TxnError::ProducerFenced))),
                }
            };
        let n = self.update(ids, &m, |n| {
            n.producer_id = pid;
            n.producer_epoch = epoch;
            n.last_producer_id = last_pid;
            n.last_producer_epoch = last_epoch;
            n.timeout_ms = timeout_ms;
            n.state = TxnState::Empty;
            n.partitions.clear();
            n.txn_start_ms = -1;
            n.last_update_ms = now_ms;
        })?;
        Ok(Next::Done(Ok((n.producer_id, n.producer_epoch))))
    }

    /// Checks that a request's producer id and epoch are the id's current ones.
    pub(super) fn check_producer(m: &TxnMetadata, producer_id: i64, epoch: i16) -> Result<(), TxnError> {
        if producer_id != m.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if epoch != m.producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(())
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn: adds partitions to the ongoing transaction, starting
    /// one if none is ongoing.
    pub fn add_partitions(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[TxnPartition],
        now_ms: i64,
    ) -> Result<(), TxnError> {
        let mut ids = self.ids.lock();
        let m = ids.get(transactional_id).cloned().ok_or(TxnError::InvalidProducerIdMapping)?;
        Self::check_producer(&m, producer_id, epoch)?;
        if m.state.is_preparing() {
            return Err(TxnError::ConcurrentTransactions);
        }
        if m.state == TxnState::Dead {
            return Err(TxnError::InvalidTxnState);
        }
        if m.state == TxnState::Ongoing && partitions.iter().all(|p| m.partitions.contains(p)) {
            return Ok(());
        }
        self.update(&mut ids, &m, |n| {
            if n.state != TxnState::Ongoing {
                n.state = TxnState::Ongoing;
                n.partitions.clear();
                n.txn_start_ms = now_ms;
            }
            n.partitions.extend(partitions.iter().cloned());
            n.last_update_ms = now_ms;
        })?;
        Ok(())
    }

    /// Whether `partition` is in the ongoing transaction of `producer_id` at `epoch`: AddPartitionsToTxn
    /// with `verify_only` (KIP-890 part 1), the check a partition makes before appending a
    /// transactional batch. A partition not in the transaction is TRANSACTION_ABORTABLE.
    pub fn verify_partition(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        partition: &TxnPartition,
    ) -> Result<(), TxnError> {
        let ids = self.ids.lock();
        let m = ids.get(transactional_id).ok_or(TxnError::InvalidProducerIdMapping)?;
        Self::check_producer(m, producer_id, epoch)?;
        if m.state.is_preparing() {
            Err(TxnError::ConcurrentTransactions)
        } else if m.partitions.contains(partition) {
            Ok(())
        } else {
            Err(TxnError::TransactionAbortable)
        }
    }

    /// The partition of `__consumer_offsets` that holds `group_id`'s offsets (Kafka's
    /// `GroupCoordinatorService.partitionFor`).
    pub fn offsets_partition(&self, group_id: &str) -> i32 {
        partition_for(group_id, self.config.offsets_partitions)
    }

    pub(super) fn finish(&self, next: Next, now_ms: i64) -> Result<ProducerIdAndEpoch, TxnError> {
        match next {
            Next::Done(r) => r,
            Next::WriteMarkers { id, result } => {
                // The Prepare state is durable: a failure here is retried by `tick`, not answered.
                if let Err(e) = self.complete(&id, now_ms) {
                    tracing::warn!(transactional_id = %id, error = %e, "transaction markers pending; retried");
                }
                result
            }
        }
    }

    /// Writes the markers of `id`'s prepared transaction and moves it to CompleteCommit/CompleteAbort.
    fn complete(&self, id: &str, now_ms: i64) -> Result<(), String> {
        let Some(m) = self.ids.lock().get(id).cloned() else { return Ok(()) };
        let commit = match m.state {
            TxnState::PrepareCommit => true,
            TxnState::PrepareAbort => false,
            _ => return Ok(()),
        };
        self.markers.write_markers(&m.partitions, m.producer_id, m.producer_epoch, commit)?;
        let mut ids = self.ids.lock();
        // Only this thread moves an id out of a Prepare state, so it is unchanged.
        if ids.get(id).is_some_and(|cur| cur.state == m.state && cur.producer_epoch == m.producer_epoch) {
            self.update(&mut ids, &m, |n| {
                n.state = if commit { TxnState::CompleteCommit } else { TxnState::CompleteAbort };
                n.partitions.clear();
                n.txn_start_ms = -1;
                n.last_update_ms = now_ms;
                // Transactions v2: the commit or abort that exhausted the epoch moves the id to the
                // producer id allocated for it, at epoch 0 (Kafka's `prepareComplete`).
                if n.client_txn_version >= TV_2 && n.next_producer_id >= 0 {
                    n.last_producer_id = n.producer_id;
                    n.producer_id = n.next_producer_id;
                    n.producer_epoch = 0;
                }
                n.next_producer_id = -1;
            })
            .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    /// Timers (blocking): completes prepared transactions whose markers are pending, aborts
    /// transactions open past their timeout (bumping the epoch, which fences their producer, as
    /// Kafka's `abortTimedOutTransactions` does), removes ids idle past `transactional.id.expiration.ms`.
    pub fn tick(&self, now_ms: i64) {
        let mut pending = Vec::new();
        {
            let mut ids = self.ids.lock();
            let all: Vec<TxnMetadata> = ids.values().cloned().collect();
            for m in all {
                match m.state {
                    TxnState::PrepareCommit | TxnState::PrepareAbort => pending.push(m.transactional_id),
                    TxnState::Ongoing if now_ms - m.txn_start_ms > i64::from(m.timeout_ms) => {
                        tracing::info!(transactional_id = %m.transactional_id, producer_id = m.producer_id,
                            "aborting a transaction open past its timeout");
                        let tv = self.transaction_version();
                        let r = self.update(&mut ids, &m, |n| fence(n, now_ms, tv));
                        if r.is_ok() {
                            pending.push(m.transactional_id);
                        }
                    }
                    TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                        if now_ms - m.last_update_ms > self.config.id_expiration_ms
                            && self.log.append(&[TxnRecord::Delete(m.transactional_id.clone())]).is_ok() =>
                    {
                        ids.remove(&m.transactional_id);
                    }
                    _ => {}
                }
            }
        }
        for id in pending {
            if let Err(e) = self.complete(&id, now_ms) {
                tracing::warn!(transactional_id = %id, error = %e, "transaction markers still pending");
            }
        }
    }

    /// The metadata of `transactional_id` (DescribeTransactions).
    pub fn describe(&self, transactional_id: &str) -> Option<TxnMetadata> {
        self.ids.lock().get(transactional_id).cloned()
    }

    /// Every id's metadata (ListTransactions), in id order.
    pub fn list(&self) -> Vec<TxnMetadata> {
        let mut all: Vec<TxnMetadata> = self.ids.lock().values().cloned().collect();
        all.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        all
    }

    /// Rewrites the log as the current state if enough was appended since last time.
    pub fn maybe_compact(&self) {
        if self.log.uncompacted_bytes() >= self.config.compact_after_bytes {
            if let Err(e) = self.compact() {
                tracing::error!(error = %e, "compacting the transaction log failed");
            }
        }
    }

    fn compact(&self) -> std::io::Result<()> {
        let ids = self.ids.lock();
        let live: Vec<TxnRecord> = ids.values().cloned().map(TxnRecord::Set).collect();
        self.log.compact(&live)
    }

    /// fsyncs the log (background, and at shutdown).
    pub fn flush(&self) -> std::io::Result<()> {
        self.log.sync()
    }

    /// Runs the timers every `interval` until `shutdown` (Kafka's
    /// `transaction.abort.timed.out.transaction.cleanup.interval.ms`, default 10 s; the first tick
    /// runs at once, completing what a crash left prepared).
    pub async fn run_background(
        self: Arc<Self>,
        interval: std::time::Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        loop {
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || {
                me.tick(crate::log::now_ms());
                me.maybe_compact();
                if let Err(e) = me.flush() {
                    tracing::error!(error = %e, "syncing the transaction log failed");
                }
            })
            .await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(interval) => {}
            }
        }
    }
}

/// Kafka's epoch fence of an ongoing transaction (InitProducerId from a new producer, a timeout):
/// `prepareFenceProducerEpoch`, then the abort the coordinator sends itself with its own
/// `transaction.version` `tv` (the finalized one): PrepareAbort at the next epoch, the fenced one kept
/// as the last epoch. Kafka 4.4 answers the same epochs at TV 1 and TV 2 (probed: InitProducerId's
/// fence, then its retry); only the record's client transaction version differs.
fn fence(n: &mut TxnMetadata, now_ms: i64, tv: i16) {
    n.last_producer_epoch = n.producer_epoch;
    n.producer_epoch = n.producer_epoch.saturating_add(1);
    n.state = TxnState::PrepareAbort;
    n.client_txn_version = tv;
    n.last_update_ms = now_ms;
}
