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
//! Transactions (seam): transactional batches and control batches (markers) are copied unchanged
//! and their keys are not put in the offset map, so an open or aborted transaction never removes
//! other records and its own records stay. Kafka removes aborted transactions' records and, after
//! `delete.retention.ms`, markers of transactions with no record left; that is not done yet.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;

use super::super::cleaner::offset_map::{key_hash, OffsetMap};
use super::super::cleaner::{records, swap, Throttler};
use super::super::segment::Segment;
use super::{storage, LogError, PartitionLog};
use crate::durable_file;
use crate::log::batch::{self, BatchHeader, LOG_OVERHEAD};
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
    /// No record at or above this is cleaned: the active segment's base, the last stable offset,
    /// and the first segment younger than `min.compaction.lag.ms`, whichever is lowest.
    pub first_uncleanable: i64,
    /// Bytes of the segments below `first_dirty`.
    pub clean_bytes: u64,
    /// Bytes of the segments in [`first_dirty`, `first_uncleanable`).
    pub cleanable_bytes: u64,
    /// A dirty record is older than `max.compaction.lag.ms`.
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

impl PartitionLog {
    /// The cleanable range of this log at `now_ms`, given the checkpointed first dirty offset.
    pub fn cleanable(&self, checkpoint: Option<i64>, now_ms: i64) -> Cleanable {
        let st = self.state.read();
        let cfg = &st.config;
        let active_base = st.segments.keys().next_back().copied().unwrap_or(st.next_offset);
        let lso = transactions::last_stable_offset(
            st.producers.first_unstable_offset(),
            st.log_start_offset,
            st.next_offset,
        );
        let first_dirty = checkpoint.filter(|c| *c >= st.log_start_offset && *c <= active_base);
        let first_dirty = first_dirty.unwrap_or(st.log_start_offset);
        let mut first_uncleanable = lso.min(active_base);
        let sealed: Vec<SegmentInfo> = st
            .segments
            .values()
            .filter(|s| s.base_offset < active_base)
            .map(|s| SegmentInfo {
                base_offset: s.base_offset,
                next_offset: s.next_offset().max(s.base_offset),
                size: s.size(),
                max_timestamp: s.max_timestamp().0,
                log_path: s.log_path().to_path_buf(),
            })
            .collect();
        if cfg.min_compaction_lag_ms > 0 {
            let young = sealed.iter().find(|s| {
                s.next_offset > first_dirty
                    && s.max_timestamp > now_ms.saturating_sub(cfg.min_compaction_lag_ms)
            });
            if let Some(s) = young {
                first_uncleanable = first_uncleanable.min(s.base_offset);
            }
        }
        let first_uncleanable = first_uncleanable.max(first_dirty);
        let segments: Vec<SegmentInfo> =
            sealed.into_iter().filter(|s| s.base_offset < first_uncleanable).collect();
        let dirty = |s: &&SegmentInfo| s.next_offset > first_dirty;
        let clean_bytes = segments.iter().filter(|s| !dirty(s)).map(|s| s.size).sum();
        let cleanable_bytes = segments.iter().filter(dirty).map(|s| s.size).sum();
        // Kafka's maxCompactionDelay, by the oldest dirty segment's newest timestamp.
        let needs_compaction_now = cfg.max_compaction_lag_ms < i64::MAX
            && segments.iter().filter(dirty).any(|s| {
                s.max_timestamp >= 0 && s.max_timestamp < now_ms.saturating_sub(cfg.max_compaction_lag_ms)
            });
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
        let latest = self.build_offset_map(c, map, throttle, bound).map_err(storage)?;
        if latest < c.first_dirty {
            return Ok(stats);
        }
        let end_offset = latest + 1;
        let last_data: HashMap<i64, i64> = {
            let st = self.state.read();
            st.producers.last_data_offsets()
        };
        let todo: Vec<SegmentInfo> =
            c.segments.iter().filter(|s| s.base_offset < end_offset).cloned().collect();
        for group in group_by_size(&todo, cfg.segment_bytes) {
            let filter =
                Filter { map, now_ms, delete_retention_ms: cfg.delete_retention_ms, last_data: &last_data };
            self.clean_group(&group, &filter, throttle, bound, now_ms, &mut stats).map_err(storage)?;
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
    ) -> io::Result<i64> {
        let mut latest = -1i64;
        'segments: for seg in c.segments.iter().filter(|s| s.next_offset > c.first_dirty) {
            let mut reader = BatchReader::open(seg)?;
            while let Some(h) = reader.next()? {
                throttle.maybe_throttle(h.total_len() as u64);
                if h.last_offset() < c.first_dirty {
                    continue;
                }
                if !h.is_control() && !h.is_transactional() {
                    let bytes = records::record_bytes(&h, &reader.buf, bound)?;
                    for r in records::parse(&h, &bytes)? {
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
        throttle: &mut Throttler,
        bound: u64,
        now_ms: i64,
        stats: &mut CleanStats,
    ) -> io::Result<()> {
        let Some(first) = group.first() else { return Ok(()) };
        let base = first.base_offset;
        let (cleaned_log, cleaned_txn) = swap::cleaned_paths(&self.dir, base);
        let written = self.write_cleaned(group, filter, throttle, bound, &cleaned_log, &cleaned_txn, stats);
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
            return Err(e);
        }
        for b in &old {
            st.segments.remove(b);
            st.unsynced_sealed.retain(|x| x != b);
        }
        let (seg, _) =
            Segment::open_and_recover(&self.dir, base, &self.files, st.config.index_interval_bytes, now_ms)?;
        st.segments.insert(base, seg);
        stats.groups_swapped += 1;
        Ok(())
    }

    /// Writes the kept batches of `group` to `log_path` and its aborted-transaction entries to
    /// `txn_path`, both fsynced. Returns whether anything differs from the originals.
    #[allow(clippy::too_many_arguments)]
    fn write_cleaned(
        &self,
        group: &[SegmentInfo],
        filter: &Filter<'_>,
        throttle: &mut Throttler,
        bound: u64,
        log_path: &std::path::Path,
        txn_path: &std::path::Path,
        stats: &mut CleanStats,
    ) -> io::Result<bool> {
        let mut out = BufWriter::with_capacity(1 << 16, File::create(log_path)?);
        let mut changed = false;
        let mut txn_entries = Vec::new();
        for seg in group {
            let mut reader = BatchReader::open(seg)?;
            while let Some(h) = reader.next()? {
                throttle.maybe_throttle(h.total_len() as u64);
                stats.bytes_read += h.total_len() as u64;
                let kept = filter.batch(&h, &reader.buf, bound, stats)?;
                throttle.maybe_throttle(match &kept {
                    Kept::Original => reader.buf.len() as u64,
                    Kept::Rebuilt(b) => b.len() as u64,
                    Kept::Nothing => 0,
                });
                match kept {
                    Kept::Original => {
                        stats.bytes_written += reader.buf.len() as u64;
                        out.write_all(&reader.buf)?;
                    }
                    Kept::Rebuilt(b) => {
                        changed = true;
                        stats.bytes_written += b.len() as u64;
                        out.write_all(&b)?;
                    }
                    Kept::Nothing => changed = true,
                }
            }
            let txn =
                txn_index::TxnIndex::path_for(&self.dir, &crate::log::segment::file_stem(seg.base_offset));
            match std::fs::read(&txn) {
                Ok(mut b) => {
                    b.truncate(b.len() - b.len() % txn_index::ENTRY);
                    txn_entries.extend_from_slice(&b);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let f = out.into_inner().map_err(|e| e.into_error())?;
        durable_file::fdatasync(&f)?;
        if !txn_entries.is_empty() {
            let mut t = File::create(txn_path)?;
            t.write_all(&txn_entries)?;
            durable_file::fdatasync(&t)?;
        }
        Ok(changed)
    }
}

/// What happens to one batch.
enum Kept {
    Original,
    Rebuilt(Vec<u8>),
    Nothing,
}

/// Kafka's cleaner `RecordFilter` for one clean.
struct Filter<'a> {
    map: &'a OffsetMap,
    now_ms: i64,
    delete_retention_ms: i64,
    /// Each active producer's last data offset (their last batch is kept even when emptied).
    last_data: &'a HashMap<i64, i64>,
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

    /// Kafka's `MemoryRecords.filterTo` for one batch.
    fn batch(&self, h: &BatchHeader, bytes: &[u8], bound: u64, stats: &mut CleanStats) -> io::Result<Kept> {
        if h.is_control() || h.is_transactional() {
            return Ok(Kept::Original); // the transactions seam (module doc)
        }
        let raw = records::record_bytes(h, bytes, bound)?;
        let all = records::parse(h, &raw)?;
        let horizon = records::delete_horizon(h);
        let kept: Vec<_> = all.iter().copied().filter(|r| self.retain(r, horizon)).collect();
        stats.records_read += all.len() as u64;
        stats.records_kept += kept.len() as u64;
        if kept.is_empty() {
            let last_of_producer =
                h.producer_id >= 0 && self.last_data.get(&h.producer_id) == Some(&h.last_offset());
            return Ok(match (last_of_producer, all.is_empty()) {
                (true, true) => Kept::Original,
                (true, false) => Kept::Rebuilt(records::empty(h)),
                (false, _) => Kept::Nothing,
            });
        }
        let tombstones = kept.iter().any(|r| !r.has_value);
        let set_horizon = tombstones && horizon.is_none();
        if kept.len() == all.len() && !set_horizon {
            return Ok(Kept::Original);
        }
        let horizon =
            if set_horizon { Some(self.now_ms.saturating_add(self.delete_retention_ms)) } else { horizon };
        records::rebuild(h, &kept, horizon).map(Kept::Rebuilt)
    }
}
