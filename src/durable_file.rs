//! Crash-safe small files: the cluster metadata (`<data>/strom-metadata.json`) and the per-partition
//! checkpoints of the log.
//!
//! Layout: one header line `strom-metadata v1 crc32c=<8 hex digits>\n`, then a JSON body. The CRC32C
//! covers the body bytes exactly.
//!
//! Writing: the new content goes to `<name>.tmp`, which is fsynced, renamed over the
//! real file, and then the directory is fsynced so the rename itself is durable. A crash at any point
//! leaves either the old file or the new one in place, never a mix; a stray `.tmp` is ignored and
//! overwritten by the next write. Reading: a file whose header or CRC does not match is refused
//! (start-up stops with an error) instead of being taken for an empty cluster.
//!
//! A failed fsync (here or anywhere in the log) is reported as a [`SyncFailed`] error: after one, the
//! kernel may have dropped the dirty pages it could not write, so callers treat it as permanent, unlike a
//! write refused for lack of space.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};

const HEADER: &str = "strom v1 crc32c=";

/// An fsync that failed. The page cache can no longer be trusted to hold what was written, so this is
/// never a passing shortage: whoever sees it stops writing and does not mark the data clean.
#[derive(Debug, thiserror::Error)]
#[error("fsync failed: {0}")]
pub struct SyncFailed(#[source] pub io::Error);

/// Wraps an fsync error as [`SyncFailed`] (keeping its kind).
pub fn sync_failed(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), SyncFailed(e))
}

/// Whether `e` is (or wraps) a failed fsync.
pub fn is_sync_failure(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<SyncFailed>())
}

/// `fsync` of the file and its metadata; a failure is a [`SyncFailed`].
pub fn fsync(f: &File) -> io::Result<()> {
    f.sync_all().map_err(sync_failed)
}

/// `fdatasync` (data and the size, not the timestamps); a failure is a [`SyncFailed`].
pub fn fdatasync(f: &File) -> io::Result<()> {
    f.sync_data().map_err(sync_failed)
}

/// fsyncs a directory, making renames and new or removed entries in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fsync(&File::open(dir)?)
}

/// Writes `value` to `path` atomically and durably.
pub fn write_atomic<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let body = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    let crc = crc32c::crc32c(&body);
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(format!("{HEADER}{crc:08x}\n").as_bytes())?;
        f.write_all(&body)?;
        fsync(&f)?;
    }
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Writes `value` atomically (temp file, rename) but without fsyncs: for files whose loss after a
/// power failure is harmless (they are either the old content, the new, or missing).
pub fn write_atomic_unsynced<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let body = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    let crc = crc32c::crc32c(&body);
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut content = format!("{HEADER}{crc:08x}\n").into_bytes();
    content.extend_from_slice(&body);
    fs::write(&tmp, content)?;
    fs::rename(&tmp, path)
}

/// Reads a file written by [`write_atomic`]; `Ok(None)` when it does not exist.
pub fn read_checked<T: DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let corrupt =
        |why: &str| io::Error::new(io::ErrorKind::InvalidData, format!("{}: {why}", path.display()));
    let newline = bytes.iter().position(|&b| b == b'\n').ok_or_else(|| corrupt("no header line"))?;
    let (header, rest) = bytes.split_at(newline);
    let body = rest.get(1..).unwrap_or_default();
    let header = std::str::from_utf8(header).map_err(|_| corrupt("header is not text"))?;
    let want = header
        .strip_prefix(HEADER)
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or_else(|| corrupt("unrecognised header"))?;
    if crc32c::crc32c(body) != want {
        return Err(corrupt("checksum mismatch (torn or corrupted write)"));
    }
    serde_json::from_slice(body).map(Some).map_err(|e| corrupt(&format!("bad content: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn round_trips_and_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("strom-metadata.json");
        assert_eq!(read_checked::<BTreeMap<String, i32>>(&p).unwrap(), None);
        let v: BTreeMap<String, i32> = [("a".to_string(), 1), ("b".to_string(), 2)].into();
        write_atomic(&p, &v).unwrap();
        assert_eq!(read_checked::<BTreeMap<String, i32>>(&p).unwrap(), Some(v));

        let mut bytes = fs::read(&p).unwrap();
        let last = bytes.len() - 2;
        bytes[last] ^= 0x01;
        fs::write(&p, &bytes).unwrap();
        assert!(read_checked::<BTreeMap<String, i32>>(&p).is_err());

        // A truncated (torn) file is refused too.
        let good = {
            write_atomic(&p, &BTreeMap::from([("x".to_string(), 7)])).unwrap();
            fs::read(&p).unwrap()
        };
        fs::write(&p, &good[..good.len() / 2]).unwrap();
        assert!(read_checked::<BTreeMap<String, i32>>(&p).is_err());
    }
}
