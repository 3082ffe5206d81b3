//! One partition's log: an ordered set of segments, the next offset, the log start offset, retention,
//! flushing and recovery.
//!
//! Directory `<data>/<topic>-<partition>/` holds the segments and two checkpoints, each written
//! crash-safely (see [`crate::durable_file`]): `recovery-point` (every byte below this offset has been
//! fsynced) and `log-start-offset` (records below it are deleted, e.g. by DeleteRecords).
//!
//! Log compaction's side (cleanable range, one clean, the swap) is in `cleaner/partition_clean.rs`;
//! an interrupted swap is finished or rolled back before the segments are listed at open
//! ([`super::cleaner::swap`]). Producer state and transactions (snapshot and replay, markers, the
//! last stable offset, `read_committed` reads) are in the child module `partition_txn.rs`; their rules in
//! [`super::transactions`] and [`super::producer_state`].
//!
//! Thread-safety: one `RwLock` per partition. Appends take it for writing; reads share it. Different
//! partitions never wait for each other.
//!
//! Durability: by default the OS flushes (Kafka's default). `flush.messages=1` fsyncs before an append
//! returns. After an unclean stop, every segment from the one holding the recovery point onwards is
//! re-validated (CRC32C) and a torn or corrupt tail is truncated; segments after a corrupt one are
//! deleted, so nothing after a torn point is ever served. A log opened as clean whose files turn out
//! not to end on a whole batch is recovered the same way (with a warning naming the file).
//!
//! Failed writes. A write refused for lack of space (`ENOSPC`, `EDQUOT`) or descriptors (`EMFILE`,
//! `ENFILE`) fails that request with KAFKA_STORAGE_ERROR (retriable); its partial bytes are cut back
//! to the last whole batch and a failed roll leaves the old active segment in place, so the next append
//! simply tries again and succeeds once the resource is back. Any other failure, and every failed
//! fsync (the page cache can no longer be trusted), takes the log offline: it refuses appends until
//! restart. Either way the log reports [`PartitionLog::needs_recovery`], so it is never marked clean
//! and its tail is re-validated at the next start.

use std::collections::BTreeMap;
use std::io::{self, IoSlice};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::RwLock;

use super::batch::{self, BatchError, BatchHeader};
use super::config::LogConfig;
use super::file_cache::FileCache;
use super::file_io;
use super::producer_state::{self, ProducerError, ProducerStates, SequenceCheck};
use super::segment::{self, Segment};
use super::transactions::{self, TxnMarker};
use crate::durable_file;

/// Why a log operation failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LogError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("offset {offset} is outside [{log_start}, {log_end}]")]
    OffsetOutOfRange { offset: i64, log_start: i64, log_end: i64 },
    #[error("storage error: {0}")]
    Storage(String),
    #[error("{0}")]
    OutOfOrderSequence(String),
    #[error("{0}")]
    InvalidProducerEpoch(String),
    /// Kafka: INVALID_TXN_STATE (a non-transactional batch inside a producer's transaction).
    #[error("{0}")]
    InvalidTxnState(String),
    /// Kafka: TRANSACTION_COORDINATOR_FENCED (a marker from an older coordinator epoch).
    #[error("{0}")]
    TransactionCoordinatorFenced(String),
}

impl From<ProducerError> for LogError {
    fn from(e: ProducerError) -> Self {
        match e {
            ProducerError::OutOfOrder { .. } => LogError::OutOfOrderSequence(e.to_string()),
            ProducerError::FencedEpoch { .. } => LogError::InvalidProducerEpoch(e.to_string()),
            ProducerError::NotTransactional { .. } => LogError::InvalidTxnState(e.to_string()),
            ProducerError::CoordinatorFenced { .. } => LogError::TransactionCoordinatorFenced(e.to_string()),
        }
    }
}

fn storage(e: io::Error) -> LogError {
    LogError::Storage(e.to_string())
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker time stamped on the batches, when the topic uses LogAppendTime.
    pub log_append_time: Option<i64>,
    pub log_start_offset: i64,
    /// The batch had been appended before (idempotent retry); the offsets are the original ones.
    pub duplicate: bool,
}

/// Whole batches read from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadResult {
    pub records: Bytes,
    /// Offset after the last record (on one node, also the high watermark).
    pub log_end_offset: i64,
    pub log_start_offset: i64,
    /// The last stable offset when read (see [`PartitionLog::last_stable_offset`]).
    pub last_stable_offset: i64,
}

#[derive(Debug)]
struct State {
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    next_offset: i64,
    /// Every record below this offset is on disk (fsynced).
    recovery_point: i64,
    /// Records appended since the last fsync, and when the oldest of them was appended (ms).
    unflushed_records: i64,
    oldest_unflushed_ms: Option<i64>,
    /// Sealed segments not yet fsynced (base offsets).
    unsynced_sealed: Vec<i64>,
    config: LogConfig,
    /// Idempotent and transactional producers' state, ongoing transactions included.
    producers: ProducerStates,
    /// Offset of the last ABORT marker in the segments' `.txnindex` files (-1: none), so
    /// `read_committed` reads past it look at no index.
    last_abort_marker: i64,
}

/// A partition's log.
pub struct PartitionLog {
    dir: PathBuf,
    files: Arc<FileCache>,
    state: RwLock<State>,
    /// A write failed in a way that leaves the files unknown (not a shortage, or a failed fsync):
    /// appends are refused until restart.
    failed: AtomicBool,
    /// A write failed at all since the log was opened: the next start must recover it.
    unclean: AtomicBool,
    /// The last write failed for lack of space or descriptors (warned once, until one succeeds).
    short: AtomicBool,
    /// Told of every transaction marker appended, so long-polling fetches see the last stable
    /// offset move (set by the log manager; Produce tells it of data itself).
    marker_listener: OnceLock<tokio::sync::watch::Sender<u64>>,
}

const RECOVERY_POINT: &str = "recovery-point";
const LOG_START: &str = "log-start-offset";
const PRODUCER_STATE: &str = "producer-state";

fn read_checkpoint(dir: &Path, name: &str) -> Option<i64> {
    match durable_file::read_checked::<i64>(&dir.join(name)) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(dir = %dir.display(), checkpoint = name, error = %e, "ignoring unreadable checkpoint");
            None
        }
    }
}

impl PartitionLog {
    /// Opens (or creates) the log in `dir`. With `clean` (a clean shutdown marker was found) nothing is
    /// scanned; otherwise segments from the recovery point on are validated and repaired. A log opened
    /// as clean that turns out inconsistent (a segment not ending on a whole batch) is recovered instead.
    pub fn open(
        dir: &Path,
        config: LogConfig,
        files: Arc<FileCache>,
        clean: bool,
        now_ms: i64,
    ) -> io::Result<PartitionLog> {
        if clean {
            match Self::open_as(dir, config.clone(), files.clone(), true, now_ms) {
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    tracing::warn!(dir = %dir.display(), error = %e,
                        "log does not match the clean-shutdown marker; recovering it");
                    files.forget_dir(dir);
                }
                other => return other,
            }
        }
        Self::open_as(dir, config, files, false, now_ms)
    }

    fn open_as(
        dir: &Path,
        config: LogConfig,
        files: Arc<FileCache>,
        clean: bool,
        now_ms: i64,
    ) -> io::Result<PartitionLog> {
        std::fs::create_dir_all(dir)?;
        super::cleaner::swap::recover(dir, &files)?;
        let mut bases: Vec<i64> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| segment::parse_log_name(&e.file_name().to_string_lossy()))
            .collect();
        bases.sort_unstable();
        let recovery_point = if clean { i64::MAX } else { read_checkpoint(dir, RECOVERY_POINT).unwrap_or(0) };
        let mut segments = BTreeMap::new();
        let mut corrupt_from: Option<usize> = None;
        for (i, base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            let needs_recovery = !clean && next_base.is_none_or(|n| n > recovery_point);
            if !needs_recovery {
                segments.insert(*base, Segment::open(dir, *base, next_base, &files, now_ms)?);
            } else {
                let (seg, outcome) =
                    Segment::open_and_recover(dir, *base, &files, config.index_interval_bytes, now_ms)?;
                // A segment that ends before the next one starts was torn: later segments cannot be trusted.
                let torn = next_base.is_some_and(|n| seg.next_offset() < n) && outcome.truncated_bytes > 0;
                segments.insert(*base, seg);
                if torn {
                    corrupt_from = Some(i + 1);
                    break;
                }
            }
        }
        if let Some(from) = corrupt_from {
            for base in &bases[from..] {
                tracing::warn!(dir = %dir.display(), base, "deleting segment after a corrupt one");
                Segment::delete_files(dir, *base, &files)?;
            }
        }
        let log_start_checkpoint = read_checkpoint(dir, LOG_START).unwrap_or(0);
        let first_base = segments.keys().next().copied().unwrap_or(0);
        let next_offset = segments
            .values()
            .next_back()
            .map_or(log_start_checkpoint, |s| s.next_offset().max(s.base_offset));
        let log_start_offset = log_start_checkpoint.max(first_base).min(next_offset);
        match segments.values_mut().next_back() {
            Some(active) => active.activate(&files)?,
            None => {
                let seg = Segment::create(dir, next_offset, &files, now_ms)?;
                segments.insert(next_offset, seg);
            }
        }
        let log = PartitionLog {
            dir: dir.to_path_buf(),
            files,
            state: RwLock::new(State {
                segments,
                log_start_offset,
                next_offset,
                recovery_point: if clean { next_offset } else { recovery_point.min(next_offset) },
                unflushed_records: 0,
                oldest_unflushed_ms: None,
                unsynced_sealed: Vec::new(),
                config,
                producers: ProducerStates::default(),
                last_abort_marker: -1,
            }),
            failed: AtomicBool::new(false),
            unclean: AtomicBool::new(false),
            short: AtomicBool::new(false),
            marker_listener: OnceLock::new(),
        };
        log.restore_producer_state(now_ms)?;
        Ok(log)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_end_offset(&self) -> i64 {
        self.state.read().next_offset
    }

    pub fn log_start_offset(&self) -> i64 {
        self.state.read().log_start_offset
    }

    pub fn config(&self) -> LogConfig {
        self.state.read().config.clone()
    }

    pub fn set_config(&self, config: LogConfig) {
        self.state.write().config = config;
    }

    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.state.read().segments.values().map(Segment::size).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.state.read().segments.len()
    }

    /// Whether a write failed since the log was opened: it must not be marked clean at shutdown.
    pub fn needs_recovery(&self) -> bool {
        self.unclean.load(Ordering::SeqCst)
    }

    /// Whether the log refuses appends after a write or fsync failure that was not a shortage.
    pub fn is_offline(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    /// Records a failed write or fsync and turns it into the request's error: a shortage of space or
    /// descriptors is retried by later appends; anything else takes the log offline.
    fn fail(&self, e: io::Error) -> LogError {
        if self.note_failure(&e) {
            LogError::Storage(format!("{e} (nothing was written; retry later)"))
        } else {
            storage(e)
        }
    }

    /// Sets the failure flags for `e`; returns whether it is a passing shortage.
    fn note_failure(&self, e: &io::Error) -> bool {
        self.unclean.store(true, Ordering::SeqCst);
        if file_io::is_shortage(e) {
            if !self.short.swap(true, Ordering::SeqCst) {
                tracing::warn!(dir = %self.dir.display(), error = %e,
                    "log write failed for lack of space or descriptors; partial write cut back, retrying with later appends");
            }
            return true;
        }
        if !self.failed.swap(true, Ordering::SeqCst) {
            tracing::error!(dir = %self.dir.display(), error = %e, "log write failed; refusing further appends");
        }
        false
    }

    /// Notes a successful write after a shortage.
    fn resumed(&self) {
        if self.short.load(Ordering::Relaxed) && self.short.swap(false, Ordering::SeqCst) {
            tracing::info!(dir = %self.dir.display(), "log writes resumed");
        }
    }

    /// Validates and appends one or more whole batches (a Produce `records` field). Offsets are
    /// assigned here; nothing is written unless every batch is valid.
    pub fn append(&self, data: &[u8], leader_epoch: i32, now_ms: i64) -> Result<AppendInfo, LogError> {
        let ranges = batch::split_batches(data)?;
        if ranges.is_empty() {
            return Err(LogError::Batch(BatchError::Corrupt("no record batch")));
        }
        // Each batch's header, parsed once by validation and used for everything below.
        let validated: Vec<BatchHeader> = ranges
            .iter()
            .map(|r| data.get(r.clone()).map_or(Err(BatchError::Corrupt("short batch")), batch::validate))
            .collect::<Result<_, _>>()?;
        self.append_batches(data, &ranges, &validated, leader_epoch, now_ms)
    }

    /// Appends one whole batch that the caller has already checked with [`batch::validate`] (whose
    /// result is `header`): the produce path, which validates the header and every record before
    /// this and so need not compute the CRC32C a second time. Otherwise as [`Self::append`].
    pub fn append_validated(
        &self,
        batch: &[u8],
        header: BatchHeader,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        if header.total_len() != batch.len() {
            return Err(LogError::Batch(BatchError::Corrupt("batch length does not match its size")));
        }
        let whole = 0..batch.len();
        self.append_batches(batch, std::slice::from_ref(&whole), &[header], leader_epoch, now_ms)
    }

    /// Appends the batches at `ranges` of `data`, whose validated headers are `validated`.
    fn append_batches(
        &self,
        data: &[u8],
        ranges: &[std::ops::Range<usize>],
        validated: &[BatchHeader],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(LogError::Storage("log is offline after an I/O error".into()));
        }
        let markers = transactions::markers_of(data, ranges, validated)?;
        let marker_at = |i: usize| markers.as_ref().and_then(|m| m.get(i).copied().flatten());
        let mut st = self.state.write();
        let st = &mut *st;
        if let Some(dup) = Self::check_sequences(st, validated, marker_at)? {
            return Ok(AppendInfo {
                base_offset: dup.base_offset,
                last_offset: dup.last_offset,
                log_append_time: None,
                log_start_offset: st.log_start_offset,
                duplicate: true,
            });
        }
        let base_offset = st.next_offset;
        let append_time = st.config.log_append_time.then_some(now_ms);
        // LogAppendTime changes bytes under the CRC, so those batches are patched in a copy. Otherwise
        // only the first 16 bytes of each batch change (base offset, leader epoch: outside the CRC):
        // they are written from a patched copy and the rest straight from the request.
        let stamped: Option<Vec<u8>> = append_time.map(|t| {
            let mut copy = data.to_vec();
            for r in ranges {
                batch::set_log_append_time(&mut copy[r.clone()], t);
            }
            copy
        });
        let source = stamped.as_deref().unwrap_or(data);
        let mut pieces = Vec::with_capacity(ranges.len());
        let mut headers = Vec::with_capacity(ranges.len());
        let mut next = base_offset;
        let mut records = 0i64;
        for (r, validated) in ranges.iter().zip(validated) {
            let batch_bytes = source.get(r.clone()).ok_or(BatchError::Corrupt("short batch"))?;
            let prefix = batch::patched_prefix(batch_bytes, next, leader_epoch)
                .ok_or(BatchError::Corrupt("short batch"))?;
            // LogAppendTime rewrote attributes and max timestamp in the copy: read them from there.
            let mut h = match stamped {
                Some(_) => BatchHeader::parse(batch_bytes).ok_or(BatchError::Corrupt("short batch"))?,
                None => *validated,
            };
            h.base_offset = next;
            h.partition_leader_epoch = leader_epoch;
            records += i64::from(h.last_offset_delta) + 1;
            next = h.last_offset() + 1;
            pieces.push((prefix, batch_bytes.get(batch::PATCHED_PREFIX..).unwrap_or_default()));
            headers.push((r.start as u64, h));
        }
        let mut bufs: Vec<IoSlice> = Vec::with_capacity(ranges.len() * 2);
        for (prefix, rest) in &pieces {
            bufs.push(IoSlice::new(prefix));
            bufs.push(IoSlice::new(rest));
        }
        let last_offset = next - 1;
        let len = data.len() as u64;
        let max_timestamp = headers.iter().map(|(_, h)| h.max_timestamp).max().unwrap_or(-1);
        self.maybe_roll(st, len, last_offset, max_timestamp, now_ms)
            .and_then(|()| {
                let active = st
                    .segments
                    .values_mut()
                    .next_back()
                    .ok_or_else(|| io::Error::other("no active segment"))?;
                active.append(&self.files, &mut bufs, len, &headers, st.config.index_interval_bytes)
            })
            .map_err(|e| self.fail(e))?;
        self.resumed();
        st.next_offset = next;
        for (i, (_, h)) in headers.iter().enumerate() {
            if let Some(abort) = transactions::apply(&mut st.producers, h, marker_at(i), now_ms) {
                st.last_abort_marker = abort.last_offset;
                if let Some(active) = st.segments.values_mut().next_back() {
                    active.txn_index_mut().append(abort);
                }
            }
        }
        st.unflushed_records += records;
        st.oldest_unflushed_ms.get_or_insert(now_ms);
        if st.unflushed_records >= st.config.flush_messages {
            // Acknowledged records must be on disk: fdatasync the segment data only. Indexes and the
            // recovery point are rebuilt or re-derived by recovery, so they wait for the background flush.
            let active = st
                .segments
                .values()
                .next_back()
                .ok_or_else(|| LogError::Storage("no active segment".into()))?;
            active.sync_data(&self.files).map_err(|e| self.fail(e))?;
            st.unflushed_records = 0;
        }
        Ok(AppendInfo {
            base_offset,
            last_offset,
            log_append_time: append_time,
            log_start_offset: st.log_start_offset,
            duplicate: false,
        })
    }

    /// Checks idempotent-producer sequences and transaction rules of every batch (`marker_at(i)`:
    /// batch i's transaction marker). A single batch already appended is reported as a duplicate; a
    /// duplicate inside a multi-batch append is refused as out of order.
    fn check_sequences(
        st: &State,
        headers: &[BatchHeader],
        marker_at: impl Fn(usize) -> Option<TxnMarker>,
    ) -> Result<Option<producer_state::BatchMeta>, LogError> {
        let mut staged: Option<ProducerStates> = None;
        for (i, h) in headers.iter().enumerate() {
            let states = staged.as_ref().unwrap_or(&st.producers);
            let check = states.check(h)?;
            if let Some(m) = marker_at(i) {
                states.check_marker(h.producer_id, &m)?;
            }
            match check {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate(meta) if headers.len() == 1 => return Ok(Some(meta)),
                SequenceCheck::Duplicate(_) => {
                    return Err(LogError::OutOfOrderSequence(format!(
                        "duplicate batch {i} inside a multi-batch append"
                    )))
                }
            }
            if headers.len() > 1 {
                staged.get_or_insert_with(|| st.producers.clone()).record(h, marker_at(i), 0);
            }
        }
        Ok(None)
    }

    /// Rolls to a new segment if the active one cannot take `incoming` more bytes, cannot index
    /// `last_offset`, or is older than `segment.ms` (Kafka's `LogSegment.shouldRoll`): measured from
    /// its first batch's max timestamp to `incoming_max_timestamp` (the new batches' largest), or by
    /// the wall clock since it was created when its first batch has no timestamp.
    fn maybe_roll(
        &self,
        st: &mut State,
        incoming: u64,
        last_offset: i64,
        incoming_max_timestamp: i64,
        now_ms: i64,
    ) -> io::Result<()> {
        let segment_bytes = st.config.segment_bytes;
        let segment_ms = st.config.segment_ms;
        let Some(active) = st.segments.values_mut().next_back() else {
            return Ok(());
        };
        if active.is_empty() {
            return Ok(());
        }
        let full = active.size() + incoming > segment_bytes;
        let waited = match active.rolling_based_timestamp(&self.files)? {
            Some(first) if first >= 0 => incoming_max_timestamp.saturating_sub(first),
            _ => now_ms - active.created_ms,
        };
        if !(full || waited > segment_ms || !active.can_hold_offset(last_offset)) {
            return Ok(());
        }
        self.roll_locked(st, now_ms)
    }

    /// Seals the active segment and starts a new one at the log end. The new segment is created first
    /// and sealing is idempotent, so a roll that fails (no space, no descriptors) changes nothing and is
    /// retried by the next append.
    fn roll_locked(&self, st: &mut State, now_ms: i64) -> io::Result<()> {
        let base = st.next_offset;
        let Some(active) = st.segments.values_mut().next_back() else {
            return Err(io::Error::other("no active segment"));
        };
        if active.is_empty() {
            return Ok(());
        }
        let seg = Segment::create(&self.dir, base, &self.files, now_ms)?;
        if let Err(e) = active.seal(&self.files) {
            let _ = seg.delete(&self.files);
            return Err(e);
        }
        st.unsynced_sealed.push(active.base_offset);
        st.segments.insert(base, seg);
        tracing::debug!(dir = %self.dir.display(), base, "rolled segment");
        Ok(())
    }

    /// Rolls the active segment if it is older than `segment.ms` (an append does this itself; the
    /// broker does not roll idle segments, as Kafka does not).
    pub fn roll_if_old(&self, now_ms: i64) -> Result<(), LogError> {
        let mut st = self.state.write();
        let st = &mut *st;
        let too_old = st
            .segments
            .values()
            .next_back()
            .is_some_and(|a| !a.is_empty() && now_ms - a.created_ms >= st.config.segment_ms);
        if too_old {
            self.roll_locked(st, now_ms).map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    /// fsyncs everything appended so far and advances the recovery point.
    /// Does nothing when everything is already on disk, so a caller that flushes periodically (the
    /// coordinators sync their internal topics' partitions every second) costs no fsync while idle.
    pub fn flush(&self) -> io::Result<()> {
        let mut st = self.state.write();
        let synced = st.recovery_point == st.next_offset
            && st.unsynced_sealed.is_empty()
            && st.segments.values().next_back().is_none_or(|a| a.txn_index().is_synced());
        if synced {
            return Ok(());
        }
        self.flush_locked(&mut st).inspect_err(|e| {
            self.note_failure(e);
        })
    }

    fn flush_locked(&self, st: &mut State) -> io::Result<()> {
        let rolled = !st.unsynced_sealed.is_empty();
        // A segment leaves the list only once synced, so a flush that fails half-way is retried whole.
        while let Some(&base) = st.unsynced_sealed.first() {
            if let Some(seg) = st.segments.get_mut(&base) {
                seg.sync(&self.files)?;
            }
            st.unsynced_sealed.remove(0);
        }
        if let Some(active) = st.segments.values_mut().next_back() {
            active.sync(&self.files)?;
        }
        st.unflushed_records = 0;
        st.oldest_unflushed_ms = None;
        st.recovery_point = st.next_offset;
        if rolled {
            // Kafka snapshots producer state at each roll, bounding the replay at start-up.
            self.write_producer_snapshot(st)?;
        }
        durable_file::write_atomic(&self.dir.join(RECOVERY_POINT), &st.recovery_point)
    }

    /// Background duty: fsync sealed segments, and everything when `flush.ms` has passed.
    pub fn flush_if_due(&self, now_ms: i64) -> Result<(), LogError> {
        let mut st = self.state.write();
        let due = st.oldest_unflushed_ms.is_some_and(|t| now_ms - t >= st.config.flush_ms);
        if due || !st.unsynced_sealed.is_empty() {
            self.flush_locked(&mut st).map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    /// Reads whole batches from the one containing `offset`, up to `max_bytes`. With `min_one`, the
    /// first batch is returned even when it is larger than `max_bytes` (KIP-74).
    pub fn read(&self, offset: i64, max_bytes: usize, min_one: bool) -> Result<ReadResult, LogError> {
        let st = self.state.read();
        self.read_locked(&st, offset, max_bytes, min_one, false)
    }

    /// [`Self::read`]; with `committed`, only the whole batches below the last stable offset.
    fn read_locked(
        &self,
        st: &State,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        committed: bool,
    ) -> Result<ReadResult, LogError> {
        let (log_start, log_end) = (st.log_start_offset, st.next_offset);
        if offset < log_start || offset > log_end {
            return Err(LogError::OffsetOutOfRange { offset, log_start, log_end });
        }
        let lso = transactions::last_stable_offset(st.producers.first_unstable_offset(), log_start, log_end);
        let upto = if committed { lso } else { log_end };
        let empty = ReadResult {
            records: Bytes::new(),
            log_end_offset: log_end,
            log_start_offset: log_start,
            last_stable_offset: lso,
        };
        // Nothing fits a zero budget unless one batch is owed (a fetch whose response is already full).
        if offset >= upto || (max_bytes == 0 && !min_one) {
            return Ok(empty);
        }
        let start_key = st.segments.range(..=offset).next_back().map_or(offset, |(k, _)| *k);
        for seg in st.segments.range(start_key..).map(|(_, s)| s) {
            if let Some(records) = seg.read(&self.files, offset, max_bytes, min_one).map_err(storage)? {
                let records = if upto < log_end { transactions::below(&records, upto) } else { records };
                return Ok(ReadResult { records, ..empty });
            }
        }
        Ok(empty)
    }

    /// The first batch (whole bytes) at or after the log start whose max timestamp is ≥ `ts`.
    pub fn batch_for_timestamp(&self, ts: i64) -> Result<Option<Bytes>, LogError> {
        let st = self.state.read();
        for seg in st.segments.values() {
            if seg.next_offset() <= st.log_start_offset {
                continue;
            }
            if let Some(b) = seg.find_batch_by_time(&self.files, ts).map_err(storage)? {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the base offset of the batch holding it.
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let st = self.state.read();
        st.segments
            .values()
            .map(Segment::max_timestamp)
            .filter(|(ts, off)| *ts >= 0 && *off >= st.log_start_offset)
            .max_by_key(|(ts, off)| (*ts, -off))
    }

    /// Deletes segments past `retention.ms` or beyond `retention.bytes`; returns how many.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<usize, LogError> {
        let mut st = self.state.write();
        let st = &mut *st;
        let cfg = st.config.clone();
        if !cfg.cleanup_delete {
            return Ok(0);
        }
        let expired = |s: &Segment| {
            cfg.retention_ms >= 0
                && s.max_timestamp().0 >= 0
                && s.max_timestamp().0 < now_ms - cfg.retention_ms
        };
        // An expired active segment is rolled first so it can go too (as Kafka does).
        if st.segments.values().next_back().is_some_and(|a| !a.is_empty() && expired(a)) {
            self.roll_locked(st, now_ms).map_err(|e| self.fail(e))?;
        }
        let mut total: i64 = st.segments.values().map(|s| s.size() as i64).sum();
        let mut doomed = Vec::new();
        let sealed: Vec<i64> = st.segments.keys().copied().collect();
        for base in sealed.iter().take(sealed.len().saturating_sub(1)) {
            let Some(seg) = st.segments.get(base) else {
                continue;
            };
            let over_size = cfg.retention_bytes >= 0 && total - seg.size() as i64 >= cfg.retention_bytes;
            if expired(seg) || over_size {
                total -= seg.size() as i64;
                doomed.push(*base);
            } else {
                break;
            }
        }
        self.delete_segments(st, &doomed)?;
        Ok(doomed.len())
    }

    fn delete_segments(&self, st: &mut State, bases: &[i64]) -> Result<(), LogError> {
        if !bases.is_empty() {
            // Producer state (ongoing transactions) must not depend on the batches about to go.
            self.write_producer_snapshot(st).map_err(storage)?;
        }
        for base in bases {
            if let Some(seg) = st.segments.remove(base) {
                st.unsynced_sealed.retain(|b| b != base);
                seg.delete(&self.files).map_err(storage)?;
            }
        }
        let first = st.segments.keys().next().copied().unwrap_or(st.next_offset);
        if first > st.log_start_offset {
            st.log_start_offset = first;
            durable_file::write_atomic(&self.dir.join(LOG_START), &st.log_start_offset).map_err(storage)?;
        }
        Ok(())
    }

    /// DeleteRecords: moves the log start offset to `before` (-1 = the log end) and deletes the
    /// segments wholly below it. Returns the new log start offset.
    pub fn delete_records(&self, before: i64, now_ms: i64) -> Result<i64, LogError> {
        let mut st = self.state.write();
        let st = &mut *st;
        let target = if before == -1 { st.next_offset } else { before };
        if target < 0 || target > st.next_offset {
            return Err(LogError::OffsetOutOfRange {
                offset: before,
                log_start: st.log_start_offset,
                log_end: st.next_offset,
            });
        }
        if target <= st.log_start_offset {
            return Ok(st.log_start_offset);
        }
        // Snapshot and checkpoint first: a write refused for lack of space then changes nothing, and
        // producer state no longer depends on the records below the new start.
        self.write_producer_snapshot(st).map_err(storage)?;
        durable_file::write_atomic(&self.dir.join(LOG_START), &target).map_err(storage)?;
        st.log_start_offset = target;
        if target == st.next_offset {
            self.roll_locked(st, now_ms).map_err(|e| self.fail(e))?;
        }
        let doomed: Vec<i64> = st
            .segments
            .iter()
            .rev()
            .skip(1)
            .filter(|(_, s)| s.next_offset() <= target)
            .map(|(b, _)| *b)
            .collect();
        self.delete_segments(st, &doomed)?;
        Ok(st.log_start_offset)
    }

    /// Flushes everything and snapshots producer state (clean shutdown).
    pub fn close(&self) -> io::Result<()> {
        let mut st = self.state.write();
        self.flush_locked(&mut st).and_then(|()| self.write_producer_snapshot(&mut st)).inspect_err(|e| {
            self.note_failure(e);
        })
    }
}

#[path = "partition_txn.rs"]
mod txn;

#[path = "cleaner/partition_clean.rs"]
mod clean;
pub use clean::{CleanStats, Cleanable};

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;
