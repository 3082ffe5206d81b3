//! Positioned file I/O the standard library lacks on stable Rust: a vectored positioned write
//! (`pwritev`), so a batch is written from the request buffer plus a patched header without first being
//! copied into one buffer; a positioned read into fresh, uninitialised memory, so a read does not
//! zero a buffer it is about to overwrite; and reads of large ranges as memory mappings of the page
//! cache, so records bound for a socket are copied once (page cache → socket), not twice.
//!
//! [`is_shortage`] sorts I/O errors: running out of space or descriptors passes once the resource is
//! back, so the log cuts its partial write and carries on; anything else stops it.

use std::fs::File;
use std::io::{self, IoSlice};

use bytes::Bytes;

/// Reads at least this long are served as memory mappings; shorter ones are copied (a mapping costs
/// two system calls and a TLB flush when it goes, more than copying a few pages).
pub const MAP_MIN: usize = 64 * 1024;

/// Most iovecs one `pwritev` call takes (Linux `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// Whether `e` is a shortage that passes by itself: no space (`ENOSPC`), quota exceeded (`EDQUOT`), or no
/// file descriptor left in the process (`EMFILE`) or the system (`ENFILE`). A failed fsync never is
/// (see [`crate::durable_file::SyncFailed`]): it carries no OS error code of its own.
pub fn is_shortage(e: &io::Error) -> bool {
    use rustix::io::Errno;
    is_out_of_descriptors(e) || is_errno(e, &[Errno::NOSPC, Errno::DQUOT])
}

/// Whether `e` is `EMFILE` (process) or `ENFILE` (system): no file descriptor left.
pub fn is_out_of_descriptors(e: &io::Error) -> bool {
    use rustix::io::Errno;
    is_errno(e, &[Errno::MFILE, Errno::NFILE])
}

fn is_errno(e: &io::Error, codes: &[rustix::io::Errno]) -> bool {
    e.raw_os_error().is_some_and(|code| codes.iter().any(|c| c.raw_os_error() == code))
}

/// Writes every byte of `bufs` at `offset`, retrying short writes.
pub fn write_all_vectored_at(file: &File, mut bufs: &mut [IoSlice<'_>], mut offset: u64) -> io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0); // skip leading empty slices
    while !bufs.is_empty() {
        let n = bufs.len().min(IOV_MAX);
        let written = rustix::io::pwritev(file, &bufs[..n], offset)?;
        if written == 0 {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "pwritev wrote nothing"));
        }
        offset += written as u64;
        IoSlice::advance_slices(&mut bufs, written);
    }
    Ok(())
}

/// Reads exactly `len` bytes at `offset` into a new buffer (not zeroed first).
pub fn read_exact_at(file: &File, len: usize, mut offset: u64) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(len);
    while buf.len() < len {
        // pread fills the uninitialised spare capacity and extends `buf` by what it read.
        let n = rustix::io::pread(file, rustix::buffer::spare_capacity(&mut buf), offset)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than expected"));
        }
        offset += n as u64;
    }
    // The allocator may have given more capacity than asked, and pread may have used it.
    buf.truncate(len);
    Ok(buf)
}

/// `len` bytes at `offset`, mapped from the page cache when long enough, else copied.
///
/// A mapping is only made over bytes the log has already written and never rewrites: segments are
/// append-only and are truncated only by recovery, before anything reads them; a deleted segment's
/// mapping stays valid until its last `Bytes` is dropped.
pub fn read_at(file: &File, len: usize, offset: u64) -> io::Result<Bytes> {
    if len < MAP_MIN {
        return Ok(Bytes::from(read_exact_at(file, len, offset)?));
    }
    let end = offset.checked_add(len as u64).ok_or_else(|| io::Error::other("read past 2^64"))?;
    if end > file.metadata()?.len() {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than expected"));
    }
    // SAFETY: the mapped range lies inside the file (checked above) and holds bytes that are never
    // modified or truncated while the broker serves them (see above); it is only ever read.
    let map = unsafe { memmap2::MmapOptions::new().offset(offset).len(len).populate().map(file) };
    match map {
        Ok(map) => Ok(Bytes::from_owner(map)),
        // E.g. vm.max_map_count reached under very many concurrent reads: copy instead.
        Err(_) => Ok(Bytes::from(read_exact_at(file, len, offset)?)),
    }
}

/// Size of the filesystem holding `path`, in bytes: `(total, usable)`, as Java's `FileStore`
/// reports them for Kafka's DescribeLogDirs (`getTotalSpace` = blocks × fragment size,
/// `getUsableSpace` = blocks available to unprivileged users × fragment size). Errors are those of
/// `statvfs(2)` (e.g. the path does not exist).
pub fn disk_space(path: &std::path::Path) -> io::Result<(u64, u64)> {
    let s = rustix::fs::statvfs(path)?;
    Ok((s.f_blocks.saturating_mul(s.f_frsize), s.f_bavail.saturating_mul(s.f_frsize)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileExt;

    #[test]
    fn vectored_write_and_uninit_read_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(dir.path().join("f"))
            .unwrap();
        f.write_all_at(b"xxxx", 0).unwrap();
        // Many slices (more than IOV_MAX) including empty ones.
        let parts: Vec<Vec<u8>> = (0..3000).map(|i| vec![(i % 251) as u8; i % 3]).collect();
        let mut slices: Vec<IoSlice> = parts.iter().map(|p| IoSlice::new(p)).collect();
        write_all_vectored_at(&f, &mut slices, 4).unwrap();
        let expected: Vec<u8> = b"xxxx".iter().copied().chain(parts.iter().flatten().copied()).collect();
        assert_eq!(read_exact_at(&f, expected.len(), 0).unwrap(), expected);
        assert_eq!(read_exact_at(&f, 3, 2).unwrap(), expected[2..5].to_vec());
        assert!(read_exact_at(&f, expected.len() + 1, 0).is_err());
    }

    #[test]
    fn shortages_are_told_apart_from_failures() {
        for code in [rustix::io::Errno::NOSPC, rustix::io::Errno::MFILE] {
            assert!(is_shortage(&io::Error::from_raw_os_error(code.raw_os_error())));
        }
        assert!(!is_shortage(&io::Error::from_raw_os_error(rustix::io::Errno::IO.raw_os_error())));
        // An fsync that failed for lack of space is still a failed fsync.
        let sync = crate::durable_file::sync_failed(io::Error::from_raw_os_error(
            rustix::io::Errno::NOSPC.raw_os_error(),
        ));
        assert!(!is_shortage(&sync) && crate::durable_file::is_sync_failure(&sync));
    }

    #[test]
    fn mapped_and_copied_reads_agree() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        std::io::Write::write_all(&mut f, &data).unwrap();
        for (len, at) in [(10, 0), (MAP_MIN - 1, 5), (MAP_MIN, 4097), (200_000, 12_345), (300_000, 0)] {
            assert_eq!(&read_at(&f, len, at as u64).unwrap()[..], &data[at..at + len], "{len} at {at}");
        }
        assert!(read_at(&f, MAP_MIN, 300_000 - MAP_MIN as u64 + 1).is_err(), "past the end");
    }
}
