//! The cleaner's side of [`PartitionLog`] (Kafka's `Cleaner.doClean` over one `UnifiedLog`): which
//! range is cleanable (`LogCleanerManager.cleanableOffsets`), building the offset map, rewriting
//! groups of sealed segments and swapping them in ([`super::cleaner::swap`] has the file protocol
//! and what a crash leaves).
//!
//! Only sealed segments are read or replaced. Reads go straight to the (immutable) segment files
//! without the log's lock; the lock is taken for writing only for the swap, after checking that
//! the segments are still the ones read (retention or DeleteRecords may have removed them; then
//! the clean of that group is abandoned).
//!
//! Transactions: only offsets below the last stable offset are cleaned, so every transaction seen
//! is decided. Records of aborted transactions are removed (and never enter the offset map);
//! committed transactional records are compacted like any other; markers go once no batch of their
//! transaction is left and `delete.retention.ms` has passed ([`super::super::cleaner::txn_state`]
//! has Kafka's rules). The cleaned segment's `.txnindex` keeps only the aborts whose marker stays
//! because a batch of theirs was still there.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use super::super::cleaner::offset_map::{key_hash, OffsetMap};
use super::super::cleaner::txn_state::{CleanedTxns, Control};
use super::super::cleaner::{records, swap, Throttler};
use super::super::segment::Segment;
use super::{storage, LogError, PartitionLog};
use crate::durable_file;
use crate::log::batch::{self, BatchHeader, LOG_OVERHEAD};
use crate::log::producer_state::LastRecord;
use crate::log::transactions;
use crate::log::txn_index;

/// A sealed segment as the cleaner sees it.
#[derive(Debug, Clone)]
pub struct SegmentInfo {
    pub base_offset: i64,
    /// Offset after its last record (its base when empty).
    pub next_offset: i64,
    pub size: u64,
    /// Newest batch max-timestamp in it (-1 if none).
    pub max_timestamp: i64,
    log_path: PathBuf,
}

/// What one log offers the cleaner now (Kafka's `LogToClean` with `cleanableOffsets`).
#[derive(Debug, Clone)]
pub struct Cleanable {
    /// Records below this were cleaned before (the checkpoint, within the log).
    pub first_dirty: i64,
    /// No record at or above this is cleaned: the base of the segment holding the lowest of the
    /// active segment's base, the last stable offset, the recovery point and the first segment
    /// younger than `min.compaction.lag.ms` (whole segments are cleaned, as in Kafka).
    pub first_uncleanable: i64,
    /// Bytes of the segments starting below `first_dirty`.
    pub clean_bytes: u64,
    /// Bytes of the segments from the one holding `first_dirty` to `first_uncleanable`.
    pub cleanable_bytes: u64,
    /// A dirty sealed segment's first batch is older than `max.compaction.lag.ms`.
    pub needs_compaction_now: bool,
    /// `min.cleanable.dirty.ratio` of the log.
    pub min_ratio: f64,
    /// Every sealed segment below `first_uncleanable`, in offset order.
    segments: Vec<SegmentInfo>,
}

impl Cleanable {
    /// Dirty bytes / all bytes of the cleanable range (Kafka's `cleanableRatio`).
    pub fn ratio(&self) -> f64 {
        let total = self.clean_bytes + self.cleanable_bytes;
        if total == 0 {
            0.0
        } else {
            self.cleanable_bytes as f64 / total as f64
        }
    }

    /// Base offsets of the sealed segments below `first_uncleanable`.
    pub fn segment_bases(&self) -> Vec<i64> {
        self.segments.iter().map(|s| s.base_offset).collect()
    }

    /// Whether the cleaner should clean this log now (Kafka's `grabFilthiestCompactedLog` filter).
    pub fn due(&self) -> bool {
        (self.needs_compaction_now && self.cleanable_bytes > 0) || self.ratio() > self.min_ratio
    }
}

/// What one clean did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanStats {
    /// The new first dirty offset (to checkpoint).
    pub end_offset: i64,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_kept: u64,
    /// Groups of segments replaced.
    pub groups_swapped: u64,
}

/// Reads the batches of a sealed segment file in order.
struct BatchReader {
    inner: BufReader<File>,
    left: u64,
    buf: Vec<u8>,
}

impl BatchReader {
    fn open(seg: &SegmentInfo) -> io::Result<BatchReader> {
        let f = File::open(&seg.log_path)?;
        Ok(BatchReader { inner: BufReader::with_capacity(1 << 16, f), left: seg.size, buf: Vec::new() })
    }

    /// The next whole batch (CRC-checked) and its header; `None` at the end.
    fn next(&mut self) -> io::Result<Option<BatchHeader>> {
        if self.left < LOG_OVERHEAD as u64 {
            return Ok(None);
        }
        self.buf.resize(LOG_OVERHEAD, 0);
        self.inner.read_exact(&mut self.buf)?;
        let (_, len) = batch::peek_offset_and_len(&self.buf).ok_or_else(|| corrupt("short batch header"))?;
        let total = usize::try_from(len).map_err(|_| corrupt("negative batch length"))? + LOG_OVERHEAD;
        if total as u64 > self.left {
            return Err(corrupt("batch runs past the segment's end"));
        }
        self.buf.resize(total, 0);
        self.inner.read_exact(&mut self.buf[LOG_OVERHEAD..])?;
        self.left -= total as u64;
        batch::validate_stored(&self.buf).map(Some).map_err(|e| corrupt(&e.to_string()))
    }
}

fn corrupt(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("while cleaning: {msg}"))
}

/// The decompressed size a batch may have while cleaning (as the produce path bounds it).
fn record_bound(max_message_bytes: usize) -> u64 {
    (max_message_bytes.max(1 << 20) as u64).saturating_mul(crate::log::config::DECOMPRESSION_FACTOR)
}

/// Kafka's `groupSegmentsBySize`: consecutive segments whose sizes sum to at most `max_size` and
/// whose offsets fit the index's 32-bit relative offsets.
fn group_by_size(segments: &[SegmentInfo], max_size: u64) -> Vec<Vec<SegmentInfo>> {
    let mut groups: Vec<Vec<SegmentInfo>> = Vec::new();
    let mut it = segments.iter().peekable();
    while let Some(first) = it.next() {
        let mut group = vec![first.clone()];
        let mut size = first.size;
        while let Some(next) = it.peek() {
            let fits_offsets =
                next.size == 0 || next.next_offset - 1 - first.base_offset <= i64::from(i32::MAX);
            if size + next.size > max_size || !fits_offsets {
                break;
            }
            size += next.size;
            group.push((*next).clone());
            it.next();
        }
        groups.push(group);
    }
    groups
}

/// The base offset of the segment holding `offset` (the last one starting at or below it), or
/// `offset` when it is below every segment (Kafka's `LogSegments.floorSegment`).
fn floor_base(segments: &[SegmentInfo], offset: i64) -> i64 {
    segments.iter().take_while(|s| s.base_offset <= offset).last().map_or(offset, |s| s.base_offset)
}

impl PartitionLog {
    /// The cleanable range of this log at `now_ms`, given the checkpointed first dirty offset
    /// (Kafka's `LogCleanerManager.cleanableOffsets`, then `LogToClean`'s byte counts and
    /// `maxCompactionDelay`).
    pub fn cleanable(&self, checkpoint: Option<i64>, now_ms: i64) -> Cleanable {
        let st = self.state.read();
        let cfg = &st.config;
        let active_base = st.segments.keys().next_back().copied().unwrap_or(st.next_offset);
        let lso = transactions::last_stable_offset(
            st.producers.first_unstable_offset(),
            st.log_start_offset,
            st.next_offset,
        );
        // A checkpoint outside the log (truncated, or ahead of its end) restarts from its start.
        let first_dirty = checkpoint.filter(|c| *c >= st.log_start_offset && *c <= st.next_offset);
        let first_dirty = first_dirty.unwrap_or(st.log_start_offset);
        let all: Vec<SegmentInfo> = st
            .segments
            .values()
            .map(|s| SegmentInfo {
                base_offset: s.base_offset,
                next_offset: s.next_offset().max(s.base_offset),
                size: s.size(),
                max_timestamp: s.max_timestamp().0,
                log_path: s.log_path().to_path_buf(),
            })
            .collect();
        // The sealed segments from the one holding `first_dirty` (Kafka's `nonActiveLogSegmentsFrom`).
        let dirty_sealed = || {
            let from = floor_base(&all, first_dirty);
            all.iter().filter(move |s| s.base_offset >= from && s.base_offset < active_base)
        };
        // Also only what is fsynced, so the producer-state snapshot (written by the flush after a
        // roll, as Kafka writes one at each roll) covers it: a restart then never replays cleaned
        // segments, whose markers may have lost their batches. (The cleaner flushes a log with
        // unsynced sealed segments before asking, as Kafka flushes at each roll.)
        let mut bound = lso.min(active_base).min(st.recovery_point);
        if cfg.min_compaction_lag_ms > 0 {
            let lag_start = now_ms.saturating_sub(cfg.min_compaction_lag_ms);
            if let Some(young) = dirty_sealed().find(|s| s.max_timestamp > lag_start) {
                bound = bound.min(young.base_offset);
            }
        }
        let bound = bound.max(first_dirty);
        // Cleaning stops at the start of the segment holding the bound (Kafka's
        // `calculateCleanableBytes`): a segment is cleaned whole or not at all.
        let first_uncleanable = if bound >= active_base { active_base } else { floor_base(&all, bound) };
        let clean_bytes = all.iter().filter(|s| s.base_offset < first_dirty).map(|s| s.size).sum();
        let cleanable_bytes = if first_dirty < first_uncleanable {
            let from = floor_base(&all, first_dirty);
            let range = all.iter().filter(|s| s.base_offset >= from && s.base_offset < first_uncleanable);
            range.map(|s| s.size).sum()
        } else {
            0
        };
        // Kafka's maxCompactionDelay: the earliest first-batch timestamp of the sealed segments from
        // the first dirty one on (uncleanable ones too) against `max.compaction.lag.ms`.
        let clean_until = now_ms.saturating_sub(cfg.max_compaction_lag_ms.max(0));
        let needs_compaction_now = clean_until > 0
            && dirty_sealed().any(|s| {
                let first = st.segments.get(&s.base_offset).map(|seg| seg.first_batch_timestamp(&self.files));
                matches!(first, Some(Ok(Some(t))) if t > 0 && t < clean_until)
            });
        let segments: Vec<SegmentInfo> =
            all.iter().filter(|s| s.base_offset < first_uncleanable).cloned().collect();
        Cleanable {
            first_dirty,
            first_uncleanable,
            clean_bytes,
            cleanable_bytes,
            needs_compaction_now,
            min_ratio: cfg.min_cleanable_dirty_ratio,
            segments,
        }
    }

    /// Cleans the log once (Kafka's `Cleaner.doClean`): maps the newest offset of each key in the
    /// dirty range (as far as `map` holds), then rewrites every sealed segment up to the mapped end,
    /// in groups of at most `segment.bytes`, swapping each in atomically.
    pub fn clean(
        &self,
        c: &Cleanable,
        map: &mut OffsetMap,
        throttle: &mut Throttler,
        now_ms: i64,
    ) -> Result<CleanStats, LogError> {
        let cfg = self.config();
        let bound = record_bound(cfg.max_message_bytes);
        let mut stats = CleanStats { end_offset: c.first_dirty, ..CleanStats::default() };
        let latest = self.build_offset_map(c, map, throttle, bound)?;
        if latest < c.first_dirty {
            return Ok(stats);
        }
        let end_offset = latest + 1;
        let todo: Vec<SegmentInfo> =
            c.segments.iter().filter(|s| s.base_offset < end_offset).cloned().collect();
        // Carried from group to group, as a transaction may span them (Kafka's cleanSegments).
        let mut txns = CleanedTxns::default();
        for group in group_by_size(&todo, cfg.segment_bytes) {
            let last_records = self.state.read().producers.last_records();
            let filter = Filter {
                map,
                now_ms,
                delete_retention_ms: cfg.delete_retention_ms,
                last_records: &last_records,
                round_upper: c.first_uncleanable,
                bound,
            };
            self.clean_group(&group, &filter, &mut txns, throttle, &mut stats)?;
        }
        stats.end_offset = end_offset;
        Ok(stats)
    }

    /// Puts the newest offset of every key in [`first_dirty`, `first_uncleanable`) into `map`, until
    /// it is full. Returns the last offset covered (Kafka's `map.latestOffset`).
    fn build_offset_map(
        &self,
        c: &Cleanable,
        map: &mut OffsetMap,
        throttle: &mut Throttler,
        bound: u64,
    ) -> Result<i64, LogError> {
        let mut latest = -1i64;
        let mut txns = CleanedTxns::default();
        txns.add_aborted(self.aborted_between(c.first_dirty, c.first_uncleanable)?);
        'segments: for seg in c.segments.iter().filter(|s| s.next_offset > c.first_dirty) {
            let mut reader = BatchReader::open(seg).map_err(storage)?;
            while let Some(h) = reader.next().map_err(storage)? {
                throttle.maybe_throttle(h.total_len() as u64);
                if h.last_offset() < c.first_dirty {
                    continue;
                }
                // Markers carry no keys; records of aborted transactions must not shadow others.
                let skip = if h.is_control() {
                    txns.on_control(&h, control_of(&reader.buf));
                    true
                } else {
                    txns.on_batch(&h)
                };
                if !skip {
                    let bytes = records::record_bytes(&h, &reader.buf, bound).map_err(storage)?;
                    for r in records::parse(&h, &bytes).map_err(storage)? {
                        let Some(key) = r.key else { continue };
                        if r.offset < c.first_dirty || r.offset >= c.first_uncleanable {
                            continue;
                        }
                        if map.is_full() || !map.put(key_hash(key), r.offset) {
                            break 'segments;
                        }
                        latest = latest.max(r.offset);
                    }
                }
                if h.last_offset() < c.first_uncleanable {
                    latest = latest.max(h.last_offset());
                }
            }
        }
        Ok(latest)
    }

    /// Rewrites one group into a `.cleaned` file and swaps it in.
    fn clean_group(
        &self,
        group: &[SegmentInfo],
        filter: &Filter<'_>,
        txns: &mut CleanedTxns,
        throttle: &mut Throttler,
        stats: &mut CleanStats,
    ) -> Result<(), LogError> {
        let Some(first) = group.first() else { return Ok(()) };
        let base = first.base_offset;
        let (cleaned_log, cleaned_txn) = swap::cleaned_paths(&self.dir, base);
        let paths = (cleaned_log.as_path(), cleaned_txn.as_path());
        let written = self.write_cleaned(group, filter, txns, throttle, paths, stats);
        let changed = match written {
            Ok(changed) => changed,
            Err(e) => {
                swap::discard(&self.dir, base);
                return Err(e);
            }
        };
        if !changed && group.len() == 1 {
            swap::discard(&self.dir, base);
            return Ok(());
        }
        let mut st = self.state.write();
        let unchanged =
            group.iter().all(|g| st.segments.get(&g.base_offset).is_some_and(|s| s.size() == g.size));
        let still_sealed =
            st.segments.keys().next_back().is_some_and(|a| group.iter().all(|g| g.base_offset < *a));
        if !unchanged || !still_sealed {
            swap::discard(&self.dir, base);
            return Ok(());
        }
        let old: Vec<i64> = group.iter().map(|g| g.base_offset).collect();
        if let Err(e) = swap::commit(&self.dir, &self.files, base, &old) {
            // After the commit point the files on disk are the new ones: recovery must finish it.
            self.note_failure(&e);
            return Err(storage(e));
        }
        for b in &old {
            st.segments.remove(b);
            st.unsynced_sealed.retain(|x| x != b);
        }
        let (seg, _) = Segment::open_and_recover(
            &self.dir,
            base,
            &self.files,
            st.config.index_interval_bytes,
            filter.now_ms,
        )
        .map_err(storage)?;
        st.segments.insert(base, seg);
        stats.groups_swapped += 1;
        Ok(())
    }

    /// Writes the kept batches of `group` to `paths.0` and the aborted-transaction entries still
    /// needed to `paths.1`, both fsynced. Returns whether anything differs from the originals.
    fn write_cleaned(
        &self,
        group: &[SegmentInfo],
        filter: &Filter<'_>,
        txns: &mut CleanedTxns,
        throttle: &mut Throttler,
        (log_path, txn_path): (&std::path::Path, &std::path::Path),
        stats: &mut CleanStats,
    ) -> Result<bool, LogError> {
        let mut out = BufWriter::with_capacity(1 << 16, File::create(log_path).map_err(storage)?);
        let mut changed = false;
        for (i, seg) in group.iter().enumerate() {
            // The whole segment's range: the new index is rebuilt from what the walk keeps.
            let upper = group.get(i + 1).map_or(seg.next_offset, |n| n.base_offset);
            txns.add_aborted(self.aborted_between(seg.base_offset, upper)?);
            let mut reader = BatchReader::open(seg).map_err(storage)?;
            while let Some(h) = reader.next().map_err(storage)? {
                throttle.maybe_throttle(h.total_len() as u64);
                stats.bytes_read += h.total_len() as u64;
                let kept = filter.batch(&h, &reader.buf, txns, stats).map_err(storage)?;
                let bytes: &[u8] = match &kept {
                    Kept::Original => &reader.buf,
                    Kept::Rebuilt(b) => b,
                    Kept::Nothing => &[],
                };
                throttle.maybe_throttle(bytes.len() as u64);
                stats.bytes_written += bytes.len() as u64;
                out.write_all(bytes).map_err(storage)?;
                changed |= !matches!(kept, Kept::Original);
            }
        }
        let f = out.into_inner().map_err(|e| storage(e.into_error()))?;
        durable_file::fdatasync(&f).map_err(storage)?;
        let entries: Vec<u8> = txns.take_index().iter().flat_map(txn_index::encode).collect();
        changed |= entries != self.stored_txn_entries(group).map_err(storage)?;
        if !entries.is_empty() {
            let mut t = File::create(txn_path).map_err(storage)?;
            t.write_all(&entries).map_err(storage)?;
            durable_file::fdatasync(&t).map_err(storage)?;
        }
        Ok(changed)
    }

    /// The whole entries of the `.txnindex` files of `group`'s segments, concatenated.
    fn stored_txn_entries(&self, group: &[SegmentInfo]) -> io::Result<Vec<u8>> {
        let mut all = Vec::new();
        for seg in group {
            let path =
                txn_index::TxnIndex::path_for(&self.dir, &crate::log::segment::file_stem(seg.base_offset));
            match std::fs::read(&path) {
                Ok(mut b) => {
                    b.truncate(b.len() - b.len() % txn_index::ENTRY);
                    all.extend_from_slice(&b);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(all)
    }
}

/// The control record of a stored control batch as the cleaner reads it.
fn control_of(batch: &[u8]) -> Control {
    match transactions::parse_marker(batch) {
        Ok(Some(m)) => Control::Marker(m),
        Ok(None) => Control::Empty,
        Err(_) => Control::Other,
    }
}

/// What happens to one batch.
enum Kept {
    Original,
    Rebuilt(Vec<u8>),
    Nothing,
}

/// `h` (stored as `bytes`) kept with no records: Kafka writes the empty header even for a batch that
/// was empty already, so one emptied by an older strom (another base timestamp) is rewritten too.
fn emptied(h: &BatchHeader, bytes: &[u8]) -> Kept {
    let empty = records::empty(h);
    if empty == bytes {
        Kept::Original
    } else {
        Kept::Rebuilt(empty)
    }
}

/// Kafka's cleaner `RecordFilter` for one clean.
struct Filter<'a> {
    map: &'a OffsetMap,
    now_ms: i64,
    delete_retention_ms: i64,
    /// Each active producer's last entry (that batch is kept even when emptied).
    last_records: &'a HashMap<i64, LastRecord>,
    /// The first uncleanable offset: the batch ending just below it is kept even when emptied, so
    /// the log's end offset survives a restart.
    round_upper: i64,
    /// The decompressed size a batch may have.
    bound: u64,
}

impl Filter<'_> {
    /// Kafka's `shouldRetainRecord`.
    fn retain(&self, r: &records::RecordView<'_>, horizon: Option<i64>) -> bool {
        if r.offset > self.map.latest_offset() {
            return true;
        }
        let Some(key) = r.key else { return false };
        let latest_for_key = r.offset >= self.map.get(key_hash(key));
        let retained_value = r.has_value || horizon.is_none_or(|h| self.now_ms < h);
        latest_for_key && retained_value
    }

    /// Whether `h` must stay, emptied if need be (Kafka's `BatchRetention.RETAIN_EMPTY`): the
    /// producer's last data batch, or its last marker when that is of a newer epoch (fencing needs
    /// it), or the round's last batch.
    fn retain_empty(&self, h: &BatchHeader) -> bool {
        let last_of_producer = h.producer_id >= 0
            && self.last_records.get(&h.producer_id).is_some_and(|last| match last.last_data_offset {
                Some(offset) => h.last_offset() == offset,
                None => h.is_control() && h.producer_epoch == last.epoch,
            });
        last_of_producer || h.last_offset() + 1 == self.round_upper
    }

    /// Kafka's `checkBatchRetention` and `MemoryRecords.filterTo` for one batch.
    fn batch(
        &self,
        h: &BatchHeader,
        bytes: &[u8],
        txns: &mut CleanedTxns,
        stats: &mut CleanStats,
    ) -> io::Result<Kept> {
        let horizon = records::delete_horizon(h);
        // Markers piggy-back on the tombstone horizon: one that may go is stamped first.
        let (may_go, discard_records) = if h.is_control() {
            let may_go = txns.on_control(h, control_of(bytes));
            (may_go, may_go && horizon.is_some_and(|t| t <= self.now_ms))
        } else {
            let aborted = txns.on_batch(h);
            (false, aborted)
        };
        let retain_empty = self.retain_empty(h);
        if discard_records {
            stats.records_read += h.record_count.max(0) as u64;
            return Ok(if retain_empty { emptied(h, bytes) } else { Kept::Nothing });
        }
        let raw = records::record_bytes(h, bytes, self.bound)?;
        let all = records::parse(h, &raw)?;
        let kept: Vec<_> = match h.is_control() {
            true => all.clone(),
            false => all.iter().copied().filter(|r| self.retain(r, horizon)).collect(),
        };
        stats.records_read += all.len() as u64;
        stats.records_kept += kept.len() as u64;
        if kept.is_empty() {
            return Ok(if retain_empty { emptied(h, bytes) } else { Kept::Nothing });
        }
        let set_horizon = horizon.is_none() && (may_go || kept.iter().any(|r| !r.has_value));
        if kept.len() == all.len() && !set_horizon {
            return Ok(Kept::Original);
        }
        let horizon =
            if set_horizon { Some(self.now_ms.saturating_add(self.delete_retention_ms)) } else { horizon };
        records::rebuild(h, &kept, horizon).map(Kept::Rebuilt)
    }
}
