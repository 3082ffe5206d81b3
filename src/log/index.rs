//! Sparse segment indexes, in Kafka's on-disk formats.
//!
//! Offset index (`<base>.index`): 8-byte entries `relativeOffset u32 BE, position u32 BE`, mapping the
//! base offset of a batch (relative to the segment's base offset) to its byte position in the `.log`
//! file. Time index (`<base>.timeindex`): 12-byte entries `timestamp i64 BE, relativeOffset u32 BE`: the
//! largest timestamp seen so far in the segment and the base offset of the batch that raised it.
//! Both are appended every `index.interval.bytes` of log data, so both are sorted.
//!
//! The active segment keeps its entries in memory and writes them to the files when it is flushed or
//! sealed; a sealed segment answers lookups by binary search with positioned reads on the file, so
//! memory stays O(number of segments) plus the active segments' sparse entries, not O(data).
//!
//! Crash behaviour: an index may lose its tail or hold a torn entry after a crash. Indexes are never
//! trusted blindly: at start-up a sealed segment's index files must be whole entries long and their last
//! entries must point inside the segment ([`read_tails`]; the files are not read whole), a segment made
//! active again drops everything from the first entry that is out of order or points past the log
//! ([`sanitize_offsets`]), every lookup checks that the batch at the position found starts at the offset
//! the entry names (else the segment is scanned from its start), and recovery rebuilds the indexes of
//! every segment it scans.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Bytes per offset-index entry.
pub const OFFSET_ENTRY: usize = 8;
/// Bytes per time-index entry.
pub const TIME_ENTRY: usize = 12;

/// One offset-index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// One time-index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

impl OffsetEntry {
    pub fn encode(&self) -> [u8; OFFSET_ENTRY] {
        let mut b = [0u8; OFFSET_ENTRY];
        b[..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        b[4..].copy_from_slice(&self.position.to_be_bytes());
        b
    }
    pub fn decode(b: &[u8; OFFSET_ENTRY]) -> OffsetEntry {
        OffsetEntry {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

impl TimeEntry {
    pub fn encode(&self) -> [u8; TIME_ENTRY] {
        let mut b = [0u8; TIME_ENTRY];
        b[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        b[8..].copy_from_slice(&self.relative_offset.to_be_bytes());
        b
    }
    pub fn decode(b: &[u8; TIME_ENTRY]) -> TimeEntry {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimeEntry {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

/// Reads entry `i` of a fixed-size-entry file.
fn read_entry<const N: usize>(file: &File, i: u64) -> io::Result<[u8; N]> {
    let mut b = [0u8; N];
    file.read_exact_at(&mut b, i * N as u64)?;
    Ok(b)
}

/// Index of the last entry whose key is ≤ `target` (`None` if the first is already greater),
/// by binary search over `n` entries fetched with `key_of`.
fn floor_search<K: Ord>(
    n: u64,
    target: &K,
    mut key_of: impl FnMut(u64) -> io::Result<K>,
) -> io::Result<Option<u64>> {
    let (mut lo, mut hi) = (0u64, n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if key_of(mid)? <= *target {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    Ok(lo.checked_sub(1))
}

/// Largest offset-index entry with relative offset ≤ `rel`, from memory.
pub fn offset_floor_mem(entries: &[OffsetEntry], rel: u32) -> Option<OffsetEntry> {
    let i = entries.partition_point(|e| e.relative_offset <= rel);
    i.checked_sub(1).and_then(|i| entries.get(i)).copied()
}

/// Largest offset-index entry with relative offset ≤ `rel`, from a sealed index file of `n` entries.
pub fn offset_floor_file(file: &File, n: u64, rel: u32) -> io::Result<Option<OffsetEntry>> {
    let found = floor_search(n, &rel, |i| {
        Ok(OffsetEntry::decode(&read_entry::<OFFSET_ENTRY>(file, i)?).relative_offset)
    })?;
    found.map(|i| Ok(OffsetEntry::decode(&read_entry(file, i)?))).transpose()
}

/// Last time-index entry with timestamp < `ts` (the scan for `ts` starts from there), from memory.
pub fn time_floor_mem(entries: &[TimeEntry], ts: i64) -> Option<TimeEntry> {
    let i = entries.partition_point(|e| e.timestamp < ts);
    i.checked_sub(1).and_then(|i| entries.get(i)).copied()
}

/// Last time-index entry with timestamp < `ts`, from a sealed time-index file of `n` entries.
pub fn time_floor_file(file: &File, n: u64, ts: i64) -> io::Result<Option<TimeEntry>> {
    // floor_search finds the last key ≤ target; "last < ts" is "last ≤ ts - 1".
    let target = ts.saturating_sub(1);
    let found =
        floor_search(n, &target, |i| Ok(TimeEntry::decode(&read_entry::<TIME_ENTRY>(file, i)?).timestamp))?;
    found.map(|i| Ok(TimeEntry::decode(&read_entry(file, i)?))).transpose()
}

/// Entry counts and last entries of a segment's two index files, read without loading the files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexTails {
    pub offset_entries: u64,
    pub time_entries: u64,
    pub last_offset: Option<OffsetEntry>,
    pub last_time: Option<TimeEntry>,
}

/// `None` when either file is missing, unreadable or not a whole number of entries long.
pub fn read_tails(offset_path: &Path, time_path: &Path) -> Option<IndexTails> {
    let (offset_entries, last_offset) = last_entry::<OFFSET_ENTRY>(offset_path)?;
    let (time_entries, last_time) = last_entry::<TIME_ENTRY>(time_path)?;
    Some(IndexTails {
        offset_entries,
        time_entries,
        last_offset: last_offset.map(|b| OffsetEntry::decode(&b)),
        last_time: last_time.map(|b| TimeEntry::decode(&b)),
    })
}

/// Number of entries and the last one of a fixed-size-entry file.
fn last_entry<const N: usize>(path: &Path) -> Option<(u64, Option<[u8; N]>)> {
    let file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    if len % N as u64 != 0 {
        return None;
    }
    let n = len / N as u64;
    match n.checked_sub(1) {
        None => Some((0, None)),
        Some(last) => read_entry::<N>(&file, last).ok().map(|b| (n, Some(b))),
    }
}

/// Reads every entry of an offset index file (used when a segment becomes active again).
pub fn read_offset_entries(bytes: &[u8]) -> Vec<OffsetEntry> {
    bytes
        .chunks_exact(OFFSET_ENTRY)
        .map(|c| {
            let mut a = [0u8; OFFSET_ENTRY];
            a.copy_from_slice(c);
            OffsetEntry::decode(&a)
        })
        .collect()
}

/// Reads every entry of a time index file.
pub fn read_time_entries(bytes: &[u8]) -> Vec<TimeEntry> {
    bytes
        .chunks_exact(TIME_ENTRY)
        .map(|c| {
            let mut a = [0u8; TIME_ENTRY];
            a.copy_from_slice(c);
            TimeEntry::decode(&a)
        })
        .collect()
}

/// Number of leading offset entries that are trustworthy: strictly increasing offsets and positions,
/// positions inside a log of `log_len` bytes.
pub fn sanitize_offsets(entries: &[OffsetEntry], log_len: u64) -> usize {
    let mut prev: Option<OffsetEntry> = None;
    for (i, e) in entries.iter().enumerate() {
        let ordered = prev.is_none_or(|p| e.relative_offset > p.relative_offset && e.position > p.position);
        if !ordered || u64::from(e.position) >= log_len {
            return i;
        }
        prev = Some(*e);
    }
    entries.len()
}

/// Number of leading time entries that are trustworthy: non-decreasing timestamps and offsets.
pub fn sanitize_times(entries: &[TimeEntry], max_relative_offset: u32) -> usize {
    let mut prev: Option<TimeEntry> = None;
    for (i, e) in entries.iter().enumerate() {
        let ordered =
            prev.is_none_or(|p| e.timestamp >= p.timestamp && e.relative_offset >= p.relative_offset);
        if !ordered || e.relative_offset > max_relative_offset {
            return i;
        }
        prev = Some(*e);
    }
    entries.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Write;

    proptest! {
        #[test]
        fn file_and_memory_lookups_agree(mut rels in proptest::collection::btree_set(0u32..100_000, 0..200), probe in 0u32..110_000) {
            let entries: Vec<OffsetEntry> = rels.iter().enumerate().map(|(i, r)| OffsetEntry { relative_offset: *r, position: i as u32 * 10 }).collect();
            let mut f = tempfile::tempfile().unwrap();
            for e in &entries { f.write_all(&e.encode()).unwrap(); }
            let from_file = offset_floor_file(&f, entries.len() as u64, probe).unwrap();
            prop_assert_eq!(from_file, offset_floor_mem(&entries, probe));
            let expected = rels.iter().rev().find(|r| **r <= probe).copied();
            prop_assert_eq!(from_file.map(|e| e.relative_offset), expected);
            rels.clear();
        }

        #[test]
        fn time_lookups_agree(ts in proptest::collection::vec(0i64..1000, 0..100), probe in 0i64..1100) {
            let mut sorted = ts.clone();
            sorted.sort();
            let entries: Vec<TimeEntry> = sorted.iter().enumerate().map(|(i, t)| TimeEntry { timestamp: *t, relative_offset: i as u32 }).collect();
            let mut f = tempfile::tempfile().unwrap();
            for e in &entries { f.write_all(&e.encode()).unwrap(); }
            prop_assert_eq!(time_floor_file(&f, entries.len() as u64, probe).unwrap(), time_floor_mem(&entries, probe));
        }
    }

    #[test]
    fn sanitize_stops_at_disorder_or_out_of_range() {
        let e = |r, p| OffsetEntry { relative_offset: r, position: p };
        assert_eq!(sanitize_offsets(&[e(0, 0), e(5, 100), e(9, 200)], 1000), 3);
        assert_eq!(sanitize_offsets(&[e(0, 0), e(5, 100), e(3, 200)], 1000), 2);
        assert_eq!(sanitize_offsets(&[e(0, 0), e(5, 2000)], 1000), 1);
    }
}
