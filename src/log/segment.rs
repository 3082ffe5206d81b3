//! One log segment: `<base offset, 20 digits>.log` holding record batches exactly as they travel on the
//! wire (offsets assigned), plus its sparse `.index` and `.timeindex` (formats in [`super::index`]).
//!
//! Thread-safety: a `Segment` is owned by its partition log's lock. Reads return `Bytes` that stay
//! valid after the lock is released: small ranges are copied with `pread`, ranges of 64 KiB or more are
//! mappings of the page cache (see [`super::file_io`]), so records go to the socket with one copy.
//!
//! Crash behaviour: the `.log` file may end in a partial batch and the indexes may miss entries or hold
//! torn ones. [`Segment::recover`] re-reads every batch, checks its CRC32C and offset order, truncates
//! the file at the first bad byte and rebuilds both indexes from what remains.
//!
//! A write that fails while the broker runs (no space, no descriptors) may have written part of its
//! bytes: [`Segment::append`] cuts the file back to its last whole batch before it reports the error, so
//! the segment stays appendable. Creating a segment that fails half-way removes what it made.

use std::fs::File;
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::batch::{self, BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use super::file_cache::FileCache;
use super::file_io;
use super::index::{self, OffsetEntry, TimeEntry};
use super::txn_index::TxnIndex;
use crate::durable_file;

/// File name stem of a segment: the base offset in 20 digits.
pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// Parses a segment base offset from a `.log` file name.
pub fn parse_log_name(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Index entries of the segment being appended to, kept in memory.
#[derive(Debug, Default)]
struct ActiveIndexes {
    offsets: Vec<OffsetEntry>,
    times: Vec<TimeEntry>,
}

/// One segment of a partition log.
#[derive(Debug)]
pub struct Segment {
    /// Offset of the first record this segment may hold.
    pub base_offset: i64,
    log_path: PathBuf,
    index_path: PathBuf,
    time_path: PathBuf,
    /// Bytes of whole batches in the `.log` file.
    size: u64,
    /// Offset after the last record in this segment (`base_offset` when empty).
    next_offset: i64,
    /// Largest batch max-timestamp in this segment (-1 when none) and that batch's base offset.
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    /// Log bytes appended since the last index entry.
    bytes_since_index: u64,
    /// In-memory indexes while this is the active segment; `None` once sealed. New entries are
    /// written to the index files only when the segment is flushed or sealed: below the recovery
    /// point every index file is complete, above it recovery rebuilds the indexes anyway.
    active: Option<ActiveIndexes>,
    /// Entries in the index files (all of them once sealed; lookups on a sealed segment use the files).
    offset_entries: u64,
    time_entries: u64,
    /// Wall-clock time (ms) of the first append, for time-based rolling of a segment whose first
    /// batch has no timestamp.
    pub created_ms: i64,
    /// Max timestamp of the first batch (Kafka's `rollingBasedTimestamp`); `None` until read.
    first_batch_timestamp: Option<i64>,
    /// The aborted transactions whose ABORT markers are in this segment (`.txnindex`).
    txn_index: TxnIndex,
}

/// Result of scanning a segment during recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryOutcome {
    /// Bytes cut from the end of the `.log` file.
    pub truncated_bytes: u64,
    /// Number of valid batches kept.
    pub batches: u64,
}

/// `e` with `path` in its message (start-up errors name the file), keeping its kind.
fn in_file(path: &Path, e: io::Error) -> io::Error {
    let shown = path.display().to_string();
    if e.to_string().contains(&shown) {
        return e;
    }
    io::Error::new(e.kind(), format!("{shown}: {e}"))
}

fn corrupt(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Segment {
    fn paths(dir: &Path, base_offset: i64) -> (PathBuf, PathBuf, PathBuf) {
        let stem = file_stem(base_offset);
        (
            dir.join(format!("{stem}.log")),
            dir.join(format!("{stem}.index")),
            dir.join(format!("{stem}.timeindex")),
        )
    }

    fn txn_index_path(dir: &Path, base_offset: i64) -> PathBuf {
        TxnIndex::path_for(dir, &file_stem(base_offset))
    }

    /// Creates a new, empty, active segment. On failure no file of it is left behind.
    pub fn create(dir: &Path, base_offset: i64, files: &FileCache, now_ms: i64) -> io::Result<Segment> {
        let (log_path, index_path, time_path) = Self::paths(dir, base_offset);
        let paths = [&log_path, &index_path, &time_path];
        for p in paths {
            if let Err(e) = files.create(p).and_then(|f| f.set_len(0)) {
                for q in paths {
                    files.forget(q);
                    let _ = std::fs::remove_file(q);
                }
                return Err(e);
            }
        }
        let txn_path = Self::txn_index_path(dir, base_offset);
        files.forget(&txn_path);
        match std::fs::remove_file(&txn_path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        Ok(Segment {
            txn_index: TxnIndex::open(txn_path)?,
            base_offset,
            log_path,
            index_path,
            time_path,
            size: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            bytes_since_index: 0,
            active: Some(ActiveIndexes::default()),
            offset_entries: 0,
            time_entries: 0,
            created_ms: now_ms,
            first_batch_timestamp: None,
        })
    }

    /// Opens an existing segment without scanning it (clean shutdown, or below the recovery point).
    /// `next_base` is the base offset of the following segment, which bounds this one's offsets.
    /// Indexes that are missing or fail their sanity checks are rebuilt by a scan.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        next_base: Option<i64>,
        files: &FileCache,
        now_ms: i64,
    ) -> io::Result<Segment> {
        let mut seg = Self::unscanned(dir, base_offset, now_ms)?;
        let size = seg.size;
        // Only the lengths and the last entries are checked here (as Kafka's index sanity check does),
        // so start-up does not read every index; lookups re-check the position an entry gives.
        let tails = index::read_tails(&seg.index_path, &seg.time_path);
        let max_rel = next_base.map_or(u32::MAX, |n| u32::try_from(n - base_offset - 1).unwrap_or(u32::MAX));
        let index_ok = tails.as_ref().is_some_and(|t| {
            t.last_offset.is_none_or(|e| u64::from(e.position) < size && e.relative_offset <= max_rel)
                && t.last_time.is_none_or(|e| e.relative_offset <= max_rel)
        });
        let Some(tails) = tails.filter(|_| index_ok) else {
            tracing::warn!(segment = %seg.log_path.display(), "index missing or corrupt; rebuilding");
            seg.recover(files, None).map_err(|e| in_file(&seg.log_path, e))?;
            return Ok(seg);
        };
        seg.offset_entries = tails.offset_entries;
        seg.time_entries = tails.time_entries;
        if let Some(last) = tails.last_time {
            seg.max_timestamp = last.timestamp;
            seg.offset_of_max_timestamp = base_offset + i64::from(last.relative_offset);
        }
        // The end offset: the next segment's base for a sealed one; else walk from the last index entry.
        seg.next_offset = match next_base {
            Some(n) if size > 0 => n,
            _ => {
                let start = tails.last_offset.map_or(0, |e| u64::from(e.position));
                let log = files.get(&seg.log_path).map_err(|e| in_file(&seg.log_path, e))?;
                seg.walk_to_end(&log, start).map_err(|e| in_file(&seg.log_path, e))?
            }
        };
        if size == 0 {
            seg.next_offset = base_offset;
        }
        Ok(seg)
    }

    /// Opens an existing segment by validating every batch ([`Segment::recover`]): after an unclean stop.
    pub fn open_and_recover(
        dir: &Path,
        base_offset: i64,
        files: &FileCache,
        index_interval: u64,
        now_ms: i64,
    ) -> io::Result<(Segment, RecoveryOutcome)> {
        let mut seg = Self::unscanned(dir, base_offset, now_ms)?;
        let outcome = seg.recover(files, Some(index_interval)).map_err(|e| in_file(&seg.log_path, e))?;
        Ok((seg, outcome))
    }

    /// A sealed segment over an existing `.log` file, with nothing read but the file's size. No file
    /// is opened: sealed segments open lazily on first read.
    fn unscanned(dir: &Path, base_offset: i64, now_ms: i64) -> io::Result<Segment> {
        let (log_path, index_path, time_path) = Self::paths(dir, base_offset);
        let size = std::fs::metadata(&log_path).map_err(|e| in_file(&log_path, e))?.len();
        let txn_path = Self::txn_index_path(dir, base_offset);
        Ok(Segment {
            txn_index: TxnIndex::open(txn_path.clone()).map_err(|e| in_file(&txn_path, e))?,
            base_offset,
            log_path,
            index_path,
            time_path,
            size,
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            bytes_since_index: 0,
            active: None,
            offset_entries: 0,
            time_entries: 0,
            created_ms: now_ms,
            first_batch_timestamp: None,
        })
    }

    /// Reads the batch header at `pos` of a file whose batches were validated when written.
    fn header_at(&self, log: &File, pos: u64, head: &mut [u8; HEADER_LEN]) -> io::Result<BatchHeader> {
        log.read_exact_at(head, pos)?;
        let h = BatchHeader::parse(head).ok_or_else(|| corrupt("short header".into()))?;
        if h.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(corrupt(format!("{}: bad batch length at {pos}", self.log_path.display())));
        }
        Ok(h)
    }

    /// Walks batch headers from `pos` to the end of the file; returns the offset after the last batch.
    /// A file that does not end on a whole batch is reported as corrupt (the caller recovers the log).
    fn walk_to_end(&mut self, log: &File, mut pos: u64) -> io::Result<i64> {
        let mut next = self.base_offset;
        let mut head = [0u8; HEADER_LEN];
        while pos < self.size {
            let h = if pos + HEADER_LEN as u64 <= self.size {
                Some(self.header_at(log, pos, &mut head)?)
            } else {
                None
            };
            let Some(h) = h.filter(|h| pos + h.total_len() as u64 <= self.size) else {
                return Err(corrupt(format!(
                    "{}: the batch at byte {pos} runs past the end of the file ({} bytes)",
                    self.log_path.display(),
                    self.size
                )));
            };
            next = h.last_offset() + 1;
            if h.max_timestamp > self.max_timestamp {
                self.max_timestamp = h.max_timestamp;
                self.offset_of_max_timestamp = h.base_offset;
            }
            pos += h.total_len() as u64;
        }
        Ok(next)
    }

    /// Re-reads the whole segment, validating each batch (CRC32C, lengths, offsets ≥ `min_offset`
    /// and increasing). Truncates at the first invalid byte and rebuilds both indexes.
    pub fn recover(&mut self, files: &FileCache, index_interval: Option<u64>) -> io::Result<RecoveryOutcome> {
        let interval = index_interval.unwrap_or(4096);
        let log = files.get(&self.log_path)?;
        let file_len = log.metadata()?.len();
        let mut offsets = Vec::new();
        let mut times: Vec<TimeEntry> = Vec::new();
        let (mut pos, mut since_index, mut batches) = (0u64, 0u64, 0u64);
        let mut expected_min = self.base_offset;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = self.base_offset;
        self.first_batch_timestamp = None;
        let mut next = self.base_offset;
        let mut head = [0u8; LOG_OVERHEAD];
        let mut buf = Vec::new();
        while pos + LOG_OVERHEAD as u64 <= file_len {
            log.read_exact_at(&mut head, pos)?;
            let Some((base, len)) = batch::peek_offset_and_len(&head) else {
                break;
            };
            let Some(total) = usize::try_from(len).ok().map(|l| l + LOG_OVERHEAD) else {
                break;
            };
            if pos + total as u64 > file_len || base < expected_min || total < HEADER_LEN {
                break;
            }
            buf.resize(total, 0);
            log.read_exact_at(&mut buf, pos)?;
            let Ok(h) = batch::validate_stored(&buf) else { break };
            if h.last_offset() - self.base_offset > i64::from(u32::MAX) {
                break;
            }
            if since_index >= interval && batches > 0 {
                let rel = (h.base_offset - self.base_offset) as u32;
                offsets.push(OffsetEntry { relative_offset: rel, position: pos as u32 });
                if self.max_timestamp > times.last().map_or(-1, |t| t.timestamp) {
                    let rel_ts = (self.offset_of_max_timestamp - self.base_offset) as u32;
                    times.push(TimeEntry { timestamp: self.max_timestamp, relative_offset: rel_ts });
                }
                since_index = 0;
            }
            if h.max_timestamp > self.max_timestamp {
                self.max_timestamp = h.max_timestamp;
                self.offset_of_max_timestamp = h.base_offset;
            }
            since_index += total as u64;
            pos += total as u64;
            batches += 1;
            expected_min = h.last_offset() + 1;
            next = expected_min;
        }
        let truncated = file_len - pos;
        if truncated > 0 {
            tracing::warn!(segment = %self.log_path.display(), valid_bytes = pos, truncated_bytes = truncated,
                "truncating torn or corrupt tail");
            log.set_len(pos)?;
            durable_file::fsync(&log)?;
        }
        self.size = pos;
        self.next_offset = next;
        self.bytes_since_index = since_index;
        self.rewrite_indexes(files, &offsets, &times)?;
        if self.active.is_some() {
            self.active = Some(ActiveIndexes { offsets, times });
        }
        Ok(RecoveryOutcome { truncated_bytes: truncated, batches })
    }

    fn rewrite_indexes(
        &mut self,
        files: &FileCache,
        offsets: &[OffsetEntry],
        times: &[TimeEntry],
    ) -> io::Result<()> {
        let ob: Vec<u8> = offsets.iter().flat_map(|e| e.encode()).collect();
        let tb: Vec<u8> = times.iter().flat_map(|e| e.encode()).collect();
        for (path, bytes) in [(&self.index_path, ob), (&self.time_path, tb)] {
            let f = files.create(path)?;
            f.set_len(0)?;
            f.write_all_at(&bytes, 0)?;
        }
        self.offset_entries = offsets.len() as u64;
        self.time_entries = times.len() as u64;
        Ok(())
    }

    /// Makes this segment the active one again (after a restart): loads its indexes into memory.
    /// Entries that are out of order or point past the log are dropped (the file is rewritten).
    pub fn activate(&mut self, files: &FileCache) -> io::Result<()> {
        if self.active.is_none() {
            let mut offsets =
                index::read_offset_entries(&std::fs::read(&self.index_path).unwrap_or_default());
            let mut times = index::read_time_entries(&std::fs::read(&self.time_path).unwrap_or_default());
            let (good_offsets, good_times) =
                (index::sanitize_offsets(&offsets, self.size), index::sanitize_times(&times, u32::MAX));
            if good_offsets < offsets.len() || good_times < times.len() {
                tracing::warn!(segment = %self.log_path.display(), "dropping disordered index entries");
                offsets.truncate(good_offsets);
                times.truncate(good_times);
                self.rewrite_indexes(files, &offsets, &times)?;
            }
            let last_indexed = offsets.last().map_or(0, |e| u64::from(e.position));
            self.bytes_since_index = self.size.saturating_sub(last_indexed);
            self.offset_entries = offsets.len() as u64;
            self.time_entries = times.len() as u64;
            self.active = Some(ActiveIndexes { offsets, times });
        }
        Ok(())
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Largest timestamp in the segment (-1 if none) and the base offset of its batch.
    pub fn max_timestamp(&self) -> (i64, i64) {
        (self.max_timestamp, self.offset_of_max_timestamp)
    }

    /// The max timestamp of this segment's first batch (Kafka's `rollingBasedTimestamp`), which
    /// time-based rolling measures from; read from the file on first use, `None` while empty.
    pub fn rolling_based_timestamp(&mut self, files: &FileCache) -> io::Result<Option<i64>> {
        if self.first_batch_timestamp.is_none() && self.size >= HEADER_LEN as u64 {
            let log = files.get(&self.log_path)?;
            let mut head = [0u8; HEADER_LEN];
            self.first_batch_timestamp = Some(self.header_at(&log, 0, &mut head)?.max_timestamp);
        }
        Ok(self.first_batch_timestamp)
    }

    /// [`Self::rolling_based_timestamp`] without remembering it (for readers holding the log's lock
    /// shared, as the cleaner does): Kafka's `LogSegment.getFirstBatchTimestamp`, `None` while empty.
    pub fn first_batch_timestamp(&self, files: &FileCache) -> io::Result<Option<i64>> {
        if self.first_batch_timestamp.is_some() || self.size < HEADER_LEN as u64 {
            return Ok(self.first_batch_timestamp);
        }
        let log = files.get(&self.log_path)?;
        let mut head = [0u8; HEADER_LEN];
        Ok(Some(self.header_at(&log, 0, &mut head)?.max_timestamp))
    }

    /// Whether appending `last_offset` would overflow the 32-bit relative offsets of the indexes.
    pub fn can_hold_offset(&self, last_offset: i64) -> bool {
        last_offset - self.base_offset <= i64::from(u32::MAX)
    }

    /// Appends validated batches (offsets already assigned) in one positioned vectored write of `bufs`
    /// (`len` bytes in all). `headers` describe the batches, in order, by position relative to the start
    /// of the write.
    pub fn append(
        &mut self,
        files: &FileCache,
        bufs: &mut [IoSlice<'_>],
        len: u64,
        headers: &[(u64, BatchHeader)],
        index_interval: u64,
    ) -> io::Result<()> {
        let log = files.get(&self.log_path)?;
        if let Err(e) = file_io::write_all_vectored_at(&log, bufs, self.size) {
            // Part of the bytes may be in the file: cut them so it ends on a whole batch again. If even
            // that fails, the error says so and is not a passing shortage any more.
            return Err(match log.set_len(self.size) {
                Ok(()) => e,
                Err(cut) => io::Error::other(format!(
                    "{}: {e}; cutting the partial write back to {} bytes failed too: {cut}",
                    self.log_path.display(),
                    self.size
                )),
            });
        }
        if self.size == 0 {
            self.first_batch_timestamp = headers.first().map(|(_, h)| h.max_timestamp);
        }
        for (rel_pos, h) in headers {
            let pos = self.size + rel_pos;
            if self.bytes_since_index >= index_interval && pos > 0 {
                let offset_entry = OffsetEntry {
                    relative_offset: (h.base_offset - self.base_offset) as u32,
                    position: pos as u32,
                };
                let last_ts = self.last_time_entry().map_or(-1, |t| t.timestamp);
                let time_entry = (self.max_timestamp > last_ts).then(|| TimeEntry {
                    timestamp: self.max_timestamp,
                    relative_offset: (self.offset_of_max_timestamp - self.base_offset) as u32,
                });
                if let Some(a) = self.active.as_mut() {
                    a.offsets.push(offset_entry);
                    a.times.extend(time_entry);
                }
                self.bytes_since_index = 0;
            }
            if h.max_timestamp > self.max_timestamp {
                self.max_timestamp = h.max_timestamp;
                self.offset_of_max_timestamp = h.base_offset;
            }
            self.bytes_since_index += h.total_len() as u64;
            self.next_offset = h.last_offset() + 1;
        }
        self.size += len;
        Ok(())
    }

    fn last_time_entry(&self) -> Option<TimeEntry> {
        self.active.as_ref().and_then(|a| a.times.last().copied())
    }

    /// Writes the in-memory index entries that are not in the index files yet.
    fn persist_indexes(&mut self, files: &FileCache) -> io::Result<()> {
        let Some(a) = self.active.as_ref() else {
            return Ok(());
        };
        let new_offsets = a.offsets.get(self.offset_entries as usize..).unwrap_or_default();
        if !new_offsets.is_empty() {
            let bytes: Vec<u8> = new_offsets.iter().flat_map(|e| e.encode()).collect();
            let at = self.offset_entries * index::OFFSET_ENTRY as u64;
            files.get(&self.index_path)?.write_all_at(&bytes, at)?;
            self.offset_entries = a.offsets.len() as u64;
        }
        let new_times = a.times.get(self.time_entries as usize..).unwrap_or_default();
        if !new_times.is_empty() {
            let bytes: Vec<u8> = new_times.iter().flat_map(|e| e.encode()).collect();
            files.get(&self.time_path)?.write_all_at(&bytes, self.time_entries * index::TIME_ENTRY as u64)?;
            self.time_entries = a.times.len() as u64;
        }
        Ok(())
    }

    /// Seals the segment: records a final time-index entry and drops the in-memory indexes. Sealing a
    /// sealed segment does nothing, so a roll that failed half-way can be retried.
    pub fn seal(&mut self, files: &FileCache) -> io::Result<()> {
        if self.active.is_none() {
            return Ok(());
        }
        self.persist_indexes(files)?;
        self.txn_index.persist(files)?;
        let last_ts = self.last_time_entry().map_or(-1, |t| t.timestamp);
        if self.max_timestamp > last_ts {
            let rel = (self.offset_of_max_timestamp - self.base_offset) as u32;
            let entry = TimeEntry { timestamp: self.max_timestamp, relative_offset: rel };
            files
                .get(&self.time_path)?
                .write_all_at(&entry.encode(), self.time_entries * index::TIME_ENTRY as u64)?;
            self.time_entries += 1;
        }
        self.active = None;
        Ok(())
    }

    /// fdatasyncs the `.log` file only (records durable; indexes can be rebuilt).
    pub fn sync_data(&self, files: &FileCache) -> io::Result<()> {
        durable_file::fdatasync(&*files.get(&self.log_path)?)
    }

    /// Writes pending index entries and fsyncs the log and index files.
    pub fn sync(&mut self, files: &FileCache) -> io::Result<()> {
        self.persist_indexes(files)?;
        durable_file::fdatasync(&*files.get(&self.log_path)?)?;
        durable_file::fdatasync(&*files.get(&self.index_path)?)?;
        durable_file::fdatasync(&*files.get(&self.time_path)?)?;
        self.txn_index.sync(files)
    }

    /// The aborted transactions whose ABORT markers are in this segment (`.txnindex`). Entries
    /// appended are written at the next flush, seal or [`TxnIndex::sync`].
    pub fn txn_index(&self) -> &TxnIndex {
        &self.txn_index
    }

    pub fn txn_index_mut(&mut self) -> &mut TxnIndex {
        &mut self.txn_index
    }

    /// Where a scan for `offset` starts: the position of the last indexed batch at or before it, and
    /// the base offset that batch must have.
    fn scan_start(&self, files: &FileCache, offset: i64) -> io::Result<(u64, Option<i64>)> {
        let rel = u32::try_from((offset - self.base_offset).max(0)).unwrap_or(u32::MAX);
        let entry = match &self.active {
            Some(a) => index::offset_floor_mem(&a.offsets, rel),
            None => index::offset_floor_file(&*files.get(&self.index_path)?, self.offset_entries, rel)?,
        };
        Ok(entry.map_or((0, None), |e| {
            (u64::from(e.position), Some(self.base_offset + i64::from(e.relative_offset)))
        }))
    }

    /// An index entry whose batch does not start where it says (a damaged index file) is not trusted:
    /// the scan starts from the beginning of the segment instead.
    fn distrust_index(&self, pos: u64, expected: Option<i64>, found: Option<i64>) -> bool {
        let bad = pos > 0 && expected.is_some() && found != expected;
        if bad {
            tracing::warn!(segment = %self.log_path.display(), pos, "index entry does not match the log; scanning");
        }
        bad
    }

    /// Reads whole batches starting with the one containing `offset`, up to `max_bytes`; with
    /// `min_one` at least one whole batch (KIP-74). Returns `None` if no batch here holds `offset` or
    /// later (the caller moves on to the next segment).
    ///
    /// One read usually does it: `max_bytes` from the index position land in a buffer that is
    /// returned (sliced, not copied) from the first wanted batch on. Only when that batch is not
    /// wholly inside the window are headers walked and the batches read again exactly.
    pub fn read(
        &self,
        files: &FileCache,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> io::Result<Option<Bytes>> {
        let log = files.get(&self.log_path)?;
        let (mut start, expected) = self.scan_start(files, offset)?;
        let mut window = self.read_window(&log, start, max_bytes)?;
        if self.distrust_index(start, expected, batch::peek_offset_and_len(&window).map(|(b, _)| b)) {
            start = 0;
            window = self.read_window(&log, start, max_bytes)?;
        }
        // Walk the headers inside the window to the first batch holding `offset` or later.
        let mut p = 0usize;
        while let Some(h) = window.get(p..).and_then(BatchHeader::parse) {
            if h.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
                return Err(corrupt(format!("{}: bad batch length at {}", self.log_path.display(), start)));
            }
            let len = h.total_len();
            if h.last_offset() < offset {
                p += len;
                continue;
            }
            if !min_one && len > max_bytes {
                return Ok(Some(Bytes::new()));
            }
            if p + len > window.len() {
                break; // the first wanted batch does not fit the window
            }
            let end = p + whole_batches_len(&window[p..]);
            return Ok(Some(window.slice(p..end)));
        }
        self.read_exact_batches(&log, start + p as u64, offset, max_bytes, min_one)
    }

    /// Up to `max_bytes` (at least a batch header's worth) of the log from `pos`, as far as it goes.
    fn read_window(&self, log: &File, pos: u64, max_bytes: usize) -> io::Result<Bytes> {
        let len = self.size.saturating_sub(pos).min(max_bytes.max(HEADER_LEN) as u64) as usize;
        file_io::read_at(log, len, pos)
    }

    /// The slow path of [`Segment::read`]: walk headers from `pos` (a batch boundary) with small reads,
    /// then read the wanted batches exactly.
    fn read_exact_batches(
        &self,
        log: &File,
        mut pos: u64,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> io::Result<Option<Bytes>> {
        let mut head = [0u8; HEADER_LEN];
        let first_len = loop {
            if pos + HEADER_LEN as u64 > self.size {
                return Ok(None);
            }
            let h = self.header_at(log, pos, &mut head)?;
            if h.last_offset() >= offset {
                break h.total_len();
            }
            pos += h.total_len() as u64;
        };
        if !min_one && first_len > max_bytes {
            return Ok(Some(Bytes::new()));
        }
        let available = (self.size - pos) as usize;
        let want = first_len.max(max_bytes.min(available)).min(available);
        let buf = file_io::read_at(log, want, pos)?;
        let end = whole_batches_len(&buf).max(first_len.min(buf.len()));
        Ok(Some(buf.slice(..end)))
    }

    /// The first batch (whole bytes) whose max timestamp is ≥ `ts`, if any.
    pub fn find_batch_by_time(&self, files: &FileCache, ts: i64) -> io::Result<Option<Bytes>> {
        if self.max_timestamp < ts {
            return Ok(None);
        }
        let entry = match &self.active {
            Some(a) => index::time_floor_mem(&a.times, ts),
            None => index::time_floor_file(&*files.get(&self.time_path)?, self.time_entries, ts)?,
        };
        let start_offset =
            entry.map_or(self.base_offset, |e| self.base_offset + i64::from(e.relative_offset));
        let log = files.get(&self.log_path)?;
        let (mut pos, expected) = self.scan_start(files, start_offset)?;
        let mut head = [0u8; HEADER_LEN];
        if pos + HEADER_LEN as u64 <= self.size {
            let first = self.header_at(&log, pos, &mut head).ok().map(|h| h.base_offset);
            if self.distrust_index(pos, expected, first) {
                pos = 0;
            }
        }
        while pos + HEADER_LEN as u64 <= self.size {
            let h = self.header_at(&log, pos, &mut head)?;
            if h.max_timestamp >= ts {
                return Ok(Some(file_io::read_at(&log, h.total_len(), pos)?));
            }
            pos += h.total_len() as u64;
        }
        Ok(None)
    }

    /// Deletes the segment's files.
    pub fn delete(&self, files: &FileCache) -> io::Result<()> {
        let txn = self.txn_index.path().to_path_buf();
        Self::delete_files_at([&self.log_path, &self.index_path, &self.time_path, &txn], files)
    }

    /// Deletes the files of the segment at `base_offset` in `dir` without reading them.
    pub fn delete_files(dir: &Path, base_offset: i64, files: &FileCache) -> io::Result<()> {
        let (log, index, time) = Self::paths(dir, base_offset);
        Self::delete_files_at([&log, &index, &time, &Self::txn_index_path(dir, base_offset)], files)
    }

    fn delete_files_at(paths: [&PathBuf; 4], files: &FileCache) -> io::Result<()> {
        for p in paths {
            files.forget(p);
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
}

/// Length of the whole batches at the start of `buf` (a trailing partial batch is left out).
fn whole_batches_len(buf: &[u8]) -> usize {
    let mut end = 0usize;
    while let Some((_, len)) = buf.get(end..).and_then(batch::peek_offset_and_len) {
        let next = end + LOG_OVERHEAD + len.max(0) as usize;
        if next > buf.len() {
            break;
        }
        end = next;
    }
    end
}
