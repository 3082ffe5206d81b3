//! A coordinator's internal log (groups, transactions): a narrow trait, a file implementation and
//! an in-memory one for tests.
//!
//! File layout of a [`FileRecordLog`] directory:
//! - `snapshot`: every live record at the time of the last compaction, written crash-safely
//!   ([`crate::durable_file`]).
//! - `wal`: records appended since, each framed as `len u32 BE | crc32c u32 BE | JSON bytes`.
//!
//! Every record is an idempotent "set" or "delete", so replaying the WAL on top of a snapshot that
//! already contains some of its records gives the same state. A crash can leave a torn last WAL frame:
//! replay stops at the first frame whose length or CRC is wrong and truncates the file there.
//! Compaction (snapshot rewrite, then WAL truncation) keeps start-up time independent of how many
//! changes were ever made.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::durable_file;

pub mod topic;
pub mod wire;

pub use topic::partition_for;

/// Where a coordinator persists its records (`R`: one state change, idempotent on replay).
pub trait RecordLog<R>: Send + Sync {
    /// Appends records; they must survive a crash of the process once this returns.
    fn append(&self, records: &[R]) -> io::Result<()>;
    /// Every record to replay at start-up, in order.
    fn replay(&self) -> io::Result<Vec<R>>;
    /// Replaces the whole log by `live` (the current state as records).
    fn compact(&self, live: &[R]) -> io::Result<()>;
    /// Bytes appended since the last compaction.
    fn uncompacted_bytes(&self) -> u64;
    /// fsyncs appended records.
    fn sync(&self) -> io::Result<()>;
}

/// Largest WAL frame accepted on replay (a larger length is a torn or corrupt frame).
const MAX_FRAME: u32 = 64 << 20;

/// The file-backed log in one directory (`snapshot` and `wal`).
pub struct FileRecordLog<R> {
    dir: PathBuf,
    wal: Mutex<(File, u64)>,
    records: PhantomData<fn() -> R>,
}

impl<R> FileRecordLog<R> {
    /// Opens (creating it if needed) the log in `dir`.
    pub fn open(dir: &Path) -> io::Result<FileRecordLog<R>> {
        std::fs::create_dir_all(dir)?;
        let file = OpenOptions::new().read(true).append(true).create(true).open(dir.join("wal"))?;
        let len = file.metadata()?.len();
        Ok(FileRecordLog { dir: dir.to_path_buf(), wal: Mutex::new((file, len)), records: PhantomData })
    }

    fn snapshot_path(&self) -> PathBuf {
        self.dir.join("snapshot")
    }
}

fn frame<R: Serialize>(r: &R) -> io::Result<Vec<u8>> {
    let body = serde_json::to_vec(r).map_err(io::Error::other)?;
    let mut out = Vec::with_capacity(body.len() + 8);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Parses WAL frames; returns the records and the length of the valid prefix.
fn parse_frames<R: DeserializeOwned>(bytes: &[u8]) -> (Vec<R>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(head) = bytes.get(pos..pos + 8) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        if len > MAX_FRAME {
            break;
        }
        let Some(body) = bytes.get(pos + 8..pos + 8 + len as usize) else { break };
        if crc32c::crc32c(body) != crc {
            break;
        }
        match serde_json::from_slice(body) {
            Ok(r) => out.push(r),
            Err(_) => break,
        }
        pos += 8 + len as usize;
    }
    (out, pos)
}

impl<R: Serialize + DeserializeOwned> RecordLog<R> for FileRecordLog<R> {
    fn append(&self, records: &[R]) -> io::Result<()> {
        let mut buf = Vec::new();
        for r in records {
            buf.extend(frame(r)?);
        }
        let mut wal = self.wal.lock();
        if let Err(e) = wal.0.write_all(&buf) {
            // A partial frame (disk full) would sit in front of every later frame and end replay
            // there: cut it, so the next append lands where replay will look for it.
            let len = wal.1;
            return Err(match wal.0.set_len(len) {
                Ok(()) => e,
                Err(cut) => io::Error::other(format!(
                    "{e}; cutting {} back to {len} bytes failed: {cut}",
                    self.dir.display()
                )),
            });
        }
        wal.1 += buf.len() as u64;
        Ok(())
    }

    fn replay(&self) -> io::Result<Vec<R>> {
        let mut records: Vec<R> = durable_file::read_checked(&self.snapshot_path())?.unwrap_or_default();
        let mut wal = self.wal.lock();
        let mut bytes = Vec::new();
        File::open(self.dir.join("wal"))?.read_to_end(&mut bytes)?;
        let (tail, valid) = parse_frames(&bytes);
        if valid < bytes.len() {
            tracing::warn!(
                file = %self.dir.join("wal").display(),
                valid_bytes = valid,
                dropped_bytes = bytes.len() - valid,
                "truncating torn coordinator log tail"
            );
            wal.0.set_len(valid as u64)?;
            wal.0.sync_all()?;
            wal.1 = valid as u64;
        }
        records.extend(tail);
        Ok(records)
    }

    fn compact(&self, live: &[R]) -> io::Result<()> {
        let mut wal = self.wal.lock();
        durable_file::write_atomic(&self.snapshot_path(), &live)?;
        wal.0.set_len(0)?;
        wal.0.sync_all()?;
        wal.1 = 0;
        Ok(())
    }

    fn uncompacted_bytes(&self) -> u64 {
        self.wal.lock().1
    }

    fn sync(&self) -> io::Result<()> {
        self.wal.lock().0.sync_data()
    }
}

/// An in-memory log (tests).
pub struct MemoryRecordLog<R> {
    records: Mutex<Vec<R>>,
}

impl<R> Default for MemoryRecordLog<R> {
    fn default() -> Self {
        MemoryRecordLog { records: Mutex::new(Vec::new()) }
    }
}

impl<R: Clone + Send> RecordLog<R> for MemoryRecordLog<R> {
    fn append(&self, records: &[R]) -> io::Result<()> {
        self.records.lock().extend_from_slice(records);
        Ok(())
    }
    fn replay(&self) -> io::Result<Vec<R>> {
        Ok(self.records.lock().clone())
    }
    fn compact(&self, live: &[R]) -> io::Result<()> {
        *self.records.lock() = live.to_vec();
        Ok(())
    }
    fn uncompacted_bytes(&self) -> u64 {
        self.records.lock().len() as u64
    }
    fn sync(&self) -> io::Result<()> {
        Ok(())
    }
}
