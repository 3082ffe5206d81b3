//! Allocation of producer ids that are never reused, even across restarts and `kill -9`.
//!
//! Ids are handed out from blocks of [`BLOCK_SIZE`]. Before the first id of a block is given out, the
//! end of that block is written durably to `<data>/producer-id-block`; after a restart allocation
//! resumes at that end, so an id is never given twice (ids left in a block at a crash are skipped).

use std::io;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::durable_file;

/// Ids reserved per durable write.
pub const BLOCK_SIZE: i64 = 1000;

struct Block {
    next: i64,
    end: i64,
}

/// Hands out producer ids.
pub struct ProducerIdManager {
    path: PathBuf,
    block: Mutex<Block>,
}

impl ProducerIdManager {
    /// Opens the allocator; the next id is the end of the last reserved block.
    pub fn open(data_dir: &Path) -> io::Result<ProducerIdManager> {
        let path = data_dir.join("producer-id-block");
        let start = durable_file::read_checked::<i64>(&path)?.unwrap_or(0).max(0);
        Ok(ProducerIdManager { path, block: Mutex::new(Block { next: start, end: start }) })
    }

    /// The next producer id (blocking: may write the block file).
    pub fn next_id(&self) -> io::Result<i64> {
        let mut b = self.block.lock();
        if b.next >= b.end {
            let end =
                b.next.checked_add(BLOCK_SIZE).ok_or_else(|| io::Error::other("producer ids exhausted"))?;
            durable_file::write_atomic(&self.path, &end)?;
            b.end = end;
        }
        let id = b.next;
        b.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let first: Vec<i64> = {
            let m = ProducerIdManager::open(dir.path()).unwrap();
            (0..3).map(|_| m.next_id().unwrap()).collect()
        };
        assert_eq!(first, vec![0, 1, 2]);
        let m = ProducerIdManager::open(dir.path()).unwrap();
        let after = m.next_id().unwrap();
        assert!(after > 2, "restart continues past the reserved block ({after})");
        let many: Vec<i64> = (0..2500).map(|_| m.next_id().unwrap()).collect();
        assert!(many.windows(2).all(|w| w[1] == w[0] + 1));
    }
}
