//! A bounded cache of open files shared by every partition log.
//!
//! Segments do not own file descriptors: they ask this cache, which opens files lazily and closes the
//! least recently used ones beyond its capacity. 10,000 partitions therefore cost at most `capacity`
//! descriptors, not three per segment. A handle is an `Arc<File>` used with positioned reads and
//! writes (`pread`/`pwrite`), so a handle closed by eviction while a reader still holds it stays valid
//! until that reader drops it.
//!
//! Out of descriptors (`EMFILE`/`ENFILE`), an open closes the least recently used half of the cache and
//! tries once more: the log gives back its own descriptors before it reports a shortage.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::file_io::is_out_of_descriptors;

/// Default number of files kept open at once.
pub const DEFAULT_CAPACITY: usize = 4096;

struct Entry {
    file: Arc<File>,
    last_used: u64,
}

/// Open files by path, least recently used evicted first.
pub struct FileCache {
    capacity: usize,
    inner: Mutex<(HashMap<PathBuf, Entry>, u64)>,
    /// Tests run out of descriptors with this: after letting `.0` more opens through, fail `.1` with
    /// `EMFILE`.
    #[cfg(test)]
    pub(crate) fault: Mutex<(usize, usize)>,
}

impl FileCache {
    pub fn new(capacity: usize) -> FileCache {
        FileCache {
            capacity: capacity.max(4),
            inner: Mutex::new((HashMap::new(), 0)),
            #[cfg(test)]
            fault: Mutex::new((0, 0)),
        }
    }

    /// The open handle for an existing file (read + write), opening it if needed.
    pub fn get(&self, path: &Path) -> io::Result<Arc<File>> {
        self.get_or_open(path, false)
    }

    /// The open handle for `path`, creating the file if it does not exist.
    pub fn create(&self, path: &Path) -> io::Result<Arc<File>> {
        self.get_or_open(path, true)
    }

    fn get_or_open(&self, path: &Path, create: bool) -> io::Result<Arc<File>> {
        {
            let mut guard = self.inner.lock();
            let (map, tick) = &mut *guard;
            *tick += 1;
            if let Some(e) = map.get_mut(path) {
                e.last_used = *tick;
                return Ok(e.file.clone());
            }
        }
        #[cfg(test)]
        {
            let mut fault = self.fault.lock();
            match *fault {
                (0, 0) => {}
                (0, fail) => {
                    fault.1 = fail - 1;
                    return Err(io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error()));
                }
                (pass, _) => fault.0 = pass - 1,
            }
        }
        // Open outside the lock; a racing opener of the same path just wins or loses the insert.
        let open = || OpenOptions::new().read(true).write(true).create(create).truncate(false).open(path);
        let file = match open() {
            Err(e) if is_out_of_descriptors(&e) => {
                self.evict_oldest_half();
                open()?
            }
            other => other?,
        };
        let file = Arc::new(file);
        let mut guard = self.inner.lock();
        let (map, tick) = &mut *guard;
        *tick += 1;
        if map.len() >= self.capacity {
            if let Some(oldest) = map.iter().min_by_key(|(_, e)| e.last_used).map(|(p, _)| p.clone()) {
                map.remove(&oldest);
            }
        }
        let entry = map.entry(path.to_path_buf()).or_insert(Entry { file, last_used: *tick });
        Ok(entry.file.clone())
    }

    /// Closes the least recently used half of the cached files (those no reader holds right now).
    fn evict_oldest_half(&self) {
        let mut guard = self.inner.lock();
        let map = &mut guard.0;
        let mut by_age: Vec<(u64, PathBuf)> = map.iter().map(|(p, e)| (e.last_used, p.clone())).collect();
        by_age.sort_unstable();
        for (_, p) in by_age.iter().take(map.len().div_ceil(2)) {
            map.remove(p);
        }
    }

    /// Puts `file` in the cache as the handle of `path` (tests inject failing handles this way).
    #[cfg(test)]
    pub(crate) fn insert(&self, path: &Path, file: File) {
        let mut guard = self.inner.lock();
        let (map, tick) = &mut *guard;
        *tick += 1;
        map.insert(path.to_path_buf(), Entry { file: Arc::new(file), last_used: *tick });
    }

    /// Drops the cached handle of `path` (before the file is deleted or renamed).
    pub fn forget(&self, path: &Path) {
        self.inner.lock().0.remove(path);
    }

    /// Drops every cached handle under `dir`.
    pub fn forget_dir(&self, dir: &Path) {
        self.inner.lock().0.retain(|p, _| !p.starts_with(dir));
    }

    /// Number of files currently open through the cache.
    pub fn open_count(&self) -> usize {
        self.inner.lock().0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_beyond_capacity() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(4);
        let paths: Vec<PathBuf> = (0..6).map(|i| dir.path().join(format!("f{i}"))).collect();
        for p in &paths[..4] {
            cache.create(p).unwrap();
        }
        cache.get(&paths[0]).unwrap(); // refresh f0
        cache.create(&paths[4]).unwrap(); // evicts f1
        assert!(cache.get(&paths[5]).is_err(), "get never creates");
        assert_eq!(cache.open_count(), 4);
        let map = &cache.inner.lock().0;
        assert!(map.contains_key(&paths[0]) && !map.contains_key(&paths[1]));
    }
}
