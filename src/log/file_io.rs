//! Positioned file I/O the standard library lacks on stable Rust: a vectored positioned write
//! (`pwritev`), so a batch is written from the request buffer plus a patched header without first being
//! copied into one buffer, and a positioned read into fresh, uninitialised memory, so a read does not
//! zero a buffer it is about to overwrite.

use std::fs::File;
use std::io::{self, IoSlice};

/// Most iovecs one `pwritev` call takes (Linux `IOV_MAX`).
const IOV_MAX: usize = 1024;

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
}
