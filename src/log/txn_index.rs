//! A segment's aborted-transaction index, `<base offset, 20 digits>.txnindex`, in Kafka's format
//! (`TransactionIndex`, `AbortedTxn`): 34-byte entries `version i16 (0), producerId i64,
//! firstOffset i64, lastOffset i64, lastStableOffset i64`, big-endian, one per ABORT marker in the
//! segment, in marker order (so ascending `lastOffset`). The file exists only once the segment holds
//! an abort.
//!
//! Like the offset index, new entries are kept in memory and written when the segment is flushed,
//! sealed or producer state is snapshotted ([`TxnIndex::persist`]); reads see both. Below the
//! producer-state snapshot's offset every entry is in the file; above it, start-up truncates the file
//! ([`TxnIndex::truncate_from`]) and the replay of the log re-appends what the markers say, so a
//! crash never leaves an entry the log does not back, nor misses one it does.
//!
//! Memory: only the entries not yet written (at most those of the active segment since its last
//! flush). A sealed segment's entries are read from the file on demand: a binary search for the
//! first entry a fetch needs, then forward in chunks.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::file_cache::FileCache;
use super::transactions::AbortedTxn;
use crate::durable_file;

/// Bytes per entry (Kafka's `AbortedTxn.TOTAL_SIZE`).
pub const ENTRY: usize = 34;
/// Entry version written (Kafka's `AbortedTxn.CURRENT_VERSION`).
const VERSION: i16 = 0;
/// Entries read at once when scanning forward.
const CHUNK: u64 = 256;

/// The file name suffix.
pub const SUFFIX: &str = "txnindex";

pub fn encode(t: &AbortedTxn) -> [u8; ENTRY] {
    let mut b = [0u8; ENTRY];
    b[..2].copy_from_slice(&VERSION.to_be_bytes());
    b[2..10].copy_from_slice(&t.producer_id.to_be_bytes());
    b[10..18].copy_from_slice(&t.first_offset.to_be_bytes());
    b[18..26].copy_from_slice(&t.last_offset.to_be_bytes());
    b[26..34].copy_from_slice(&t.last_stable_offset.to_be_bytes());
    b
}

/// One entry; `None` when it is short or of a version other than 0 (Kafka refuses those too).
pub fn decode(b: &[u8]) -> Option<AbortedTxn> {
    let i64_at = |at: usize| b.get(at..at + 8).and_then(|s| s.try_into().ok()).map(i64::from_be_bytes);
    let version = i16::from_be_bytes(b.get(..2)?.try_into().ok()?);
    (version == VERSION).then_some(())?;
    Some(AbortedTxn {
        producer_id: i64_at(2)?,
        first_offset: i64_at(10)?,
        last_offset: i64_at(18)?,
        last_stable_offset: i64_at(26)?,
    })
}

/// Adds to `out` the entries of `entries` (in marker order, starting anywhere) that overlap
/// `[fetch_offset, upper_bound)`: marker at or after the fetch offset, first offset below the bound.
/// Returns true once an entry's last stable offset reaches the bound: no later entry can overlap
/// (Kafka's `TransactionIndex.collectAbortedTxns`).
pub fn collect_into(
    entries: impl IntoIterator<Item = AbortedTxn>,
    fetch_offset: i64,
    upper_bound: i64,
    out: &mut Vec<AbortedTxn>,
) -> bool {
    for t in entries {
        if t.last_offset >= fetch_offset && t.first_offset < upper_bound {
            out.push(t);
        }
        if t.last_stable_offset >= upper_bound {
            return true;
        }
    }
    false
}

/// One segment's aborted-transaction index.
#[derive(Debug)]
pub struct TxnIndex {
    path: PathBuf,
    /// Whole entries in the file.
    persisted: u64,
    /// Entries not written yet, in marker order after the file's.
    pending: Vec<AbortedTxn>,
    /// Entries written since the file was last fsynced.
    unsynced: bool,
}

impl TxnIndex {
    pub fn path_for(dir: &Path, stem: &str) -> PathBuf {
        dir.join(format!("{stem}.{SUFFIX}"))
    }

    /// The index at `path`: the whole entries of the file if it exists (a torn trailing entry is
    /// ignored and overwritten by the next one), else none.
    pub fn open(path: PathBuf) -> io::Result<TxnIndex> {
        let len = match std::fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e),
        };
        Ok(TxnIndex { path, persisted: len / ENTRY as u64, pending: Vec::new(), unsynced: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Entries in all (file and memory).
    pub fn len(&self) -> u64 {
        self.persisted + self.pending.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether every entry is written and fsynced.
    pub fn is_synced(&self) -> bool {
        self.pending.is_empty() && !self.unsynced
    }

    /// Adds an abort whose marker follows every entry's.
    pub fn append(&mut self, t: AbortedTxn) {
        self.pending.push(t);
    }

    /// Writes the pending entries to the file (creating it).
    pub fn persist(&mut self, files: &FileCache) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let bytes: Vec<u8> = self.pending.iter().flat_map(encode).collect();
        files.create(&self.path)?.write_all_at(&bytes, self.persisted * ENTRY as u64)?;
        self.persisted += self.pending.len() as u64;
        self.pending.clear();
        self.unsynced = true;
        Ok(())
    }

    /// [`Self::persist`], then fdatasync the file if anything was written since the last sync.
    pub fn sync(&mut self, files: &FileCache) -> io::Result<()> {
        self.persist(files)?;
        if self.unsynced {
            durable_file::fdatasync(&*files.get(&self.path)?)?;
            self.unsynced = false;
        }
        Ok(())
    }

    fn entry_at(file: &File, i: u64) -> io::Result<AbortedTxn> {
        let mut b = [0u8; ENTRY];
        file.read_exact_at(&mut b, i * ENTRY as u64)?;
        decode(&b).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("bad entry {i}")))
    }

    /// Index in the file of the first entry whose marker is at or after `offset`.
    fn first_from(&self, file: &File, offset: i64) -> io::Result<u64> {
        let (mut lo, mut hi) = (0u64, self.persisted);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if Self::entry_at(file, mid)?.last_offset < offset {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    /// Adds the entries overlapping `[fetch_offset, upper_bound)` to `out` (see [`collect_into`]);
    /// true when no later segment can hold one.
    pub fn collect(
        &self,
        files: &FileCache,
        fetch_offset: i64,
        upper_bound: i64,
        out: &mut Vec<AbortedTxn>,
    ) -> io::Result<bool> {
        if self.persisted > 0 {
            let file = files.get(&self.path).map_err(|e| self.named(e))?;
            let mut i = self.first_from(&file, fetch_offset).map_err(|e| self.named(e))?;
            while i < self.persisted {
                let n = CHUNK.min(self.persisted - i);
                let mut buf = vec![0u8; n as usize * ENTRY];
                file.read_exact_at(&mut buf, i * ENTRY as u64).map_err(|e| self.named(e))?;
                if collect_into(buf.chunks_exact(ENTRY).filter_map(decode), fetch_offset, upper_bound, out) {
                    return Ok(true);
                }
                i += n;
            }
        }
        let from = self.pending.partition_point(|t| t.last_offset < fetch_offset);
        Ok(collect_into(self.pending[from..].iter().copied(), fetch_offset, upper_bound, out))
    }

    /// The last entry's marker offset, if any.
    pub fn last_marker(&self, files: &FileCache) -> io::Result<Option<i64>> {
        if let Some(t) = self.pending.last() {
            return Ok(Some(t.last_offset));
        }
        if self.persisted == 0 {
            return Ok(None);
        }
        let file = files.get(&self.path).map_err(|e| self.named(e))?;
        Self::entry_at(&file, self.persisted - 1).map(|t| Some(t.last_offset)).map_err(|e| self.named(e))
    }

    /// Drops every entry whose marker is at or after `offset` (Kafka's `TransactionIndex.truncateTo`).
    pub fn truncate_from(&mut self, files: &FileCache, offset: i64) -> io::Result<()> {
        self.pending.retain(|t| t.last_offset < offset);
        if self.persisted == 0 {
            return Ok(());
        }
        let file = files.get(&self.path).map_err(|e| self.named(e))?;
        let keep = self.first_from(&file, offset).map_err(|e| self.named(e))?;
        if keep < self.persisted || file.metadata()?.len() != keep * ENTRY as u64 {
            file.set_len(keep * ENTRY as u64).map_err(|e| self.named(e))?;
            self.persisted = keep;
            self.unsynced = true;
        }
        Ok(())
    }

    fn named(&self, e: io::Error) -> io::Error {
        io::Error::new(e.kind(), format!("{}: {e}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(pid: i64, first: i64, last: i64, lso: i64) -> AbortedTxn {
        AbortedTxn { producer_id: pid, first_offset: first, last_offset: last, last_stable_offset: lso }
    }

    #[test]
    fn entries_have_kafkas_layout() {
        let b = encode(&t(7, 1, 2, 3));
        assert_eq!(&b[..2], &[0, 0]);
        assert_eq!(&b[2..10], &7i64.to_be_bytes());
        assert_eq!(&b[26..], &3i64.to_be_bytes());
        assert_eq!(decode(&b), Some(t(7, 1, 2, 3)));
        let mut v1 = b;
        v1[1] = 1;
        assert_eq!(decode(&v1), None, "only version 0 is read");
        assert_eq!(decode(&b[..33]), None);
    }

    #[test]
    fn collect_stops_early_only_when_nothing_later_can_match() {
        // Interleaved transactions: (first, marker, LSO after it).
        let list = [t(1, 0, 5, 3), t(2, 3, 7, 8), t(3, 8, 9, 10)];
        let pids = |fetch, upper| {
            let mut out = Vec::new();
            let done = collect_into(list, fetch, upper, &mut out);
            (out.iter().map(|t| t.producer_id).collect::<Vec<_>>(), done)
        };
        assert_eq!(pids(0, 1), (vec![1], true));
        assert_eq!(pids(0, 4), (vec![1, 2], true));
        assert_eq!(pids(6, 20), (vec![2, 3], false));
        assert_eq!(pids(10, 20), (vec![], false));
    }

    proptest! {
        /// Whatever is persisted, pending, truncated or reopened, a collect answers as the same
        /// scan over the whole list in memory.
        #[test]
        fn file_and_memory_answer_as_one_list(
            gaps in proptest::collection::vec((1i64..5, 0i64..4), 0..600),
            persist_at in proptest::collection::vec(any::<u16>(), 0..4),
            truncate in proptest::option::of(any::<u16>()),
            probes in proptest::collection::vec((any::<u16>(), 1i64..60), 8),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let files = FileCache::new(8);
            let path = dir.path().join("00000000000000000000.txnindex");
            let mut idx = TxnIndex::open(path.clone()).unwrap();
            let mut all = Vec::new();
            let mut at = 0i64;
            for (i, (gap, len)) in gaps.iter().enumerate() {
                at += gap + len;
                let entry = t(i as i64, at - len, at, at + 1);
                idx.append(entry);
                all.push(entry);
                if persist_at.iter().any(|p| usize::from(*p) % gaps.len().max(1) == i) {
                    idx.persist(&files).unwrap();
                }
            }
            if let Some(cut) = truncate {
                let cut = i64::from(cut) % (at + 2);
                idx.sync(&files).unwrap();
                idx.truncate_from(&files, cut).unwrap();
                all.retain(|e| e.last_offset < cut);
                idx = TxnIndex::open(path).unwrap();
            }
            prop_assert_eq!(idx.len(), all.len() as u64);
            prop_assert_eq!(idx.last_marker(&files).unwrap(), all.last().map(|e| e.last_offset));
            for (pick, span) in probes {
                let fetch = i64::from(pick) % (at + 2);
                let (mut got, mut want) = (Vec::new(), Vec::new());
                let done = idx.collect(&files, fetch, fetch + span, &mut got).unwrap();
                let start = all.partition_point(|e| e.last_offset < fetch);
                prop_assert_eq!(done, collect_into(all[start..].iter().copied(), fetch, fetch + span, &mut want));
                prop_assert_eq!(got, want);
            }
        }
    }
}
