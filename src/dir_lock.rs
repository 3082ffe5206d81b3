//! The data directory's lock: `<data>/.lock`, locked exclusively (`flock`) for as long as the broker
//! runs, so a second strom pointed at the same directory refuses to start instead of serving from it
//! (Kafka keeps a `.lock` file in each log directory for the same reason). After locking, the holder
//! writes its PID into the file, and a refused start names it.
//!
//! An flock belongs to the open file: it goes when the [`DirLock`] is dropped or the process ends, even
//! by SIGKILL, so a `.lock` file left behind never blocks a later start.
//!
//! A start that fails after locking leaves no trace: the directories the lock created are removed when
//! it is dropped, unless the broker [`DirLock::keep`]s them (Kafka refuses a bad configuration before it
//! creates anything; strom's later failures, e.g. a port in use, clean up after themselves).

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Name of the lock file inside the data directory.
pub const LOCK_FILE: &str = ".lock";

/// The held lock; released when dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    created: Created,
}

impl DirLock {
    /// The broker started: the directory stays when the lock goes.
    pub fn keep(&mut self) {
        self.created.0 = None;
    }
}

/// The top-most directory a lock created, removed on drop unless taken.
#[derive(Debug)]
struct Created(Option<PathBuf>);

impl Drop for Created {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(error = %e, dir = %dir.display(), "removing the data directory of a failed start");
            }
        }
    }
}

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("data directory {dir} is in use by another strom (pid {pid}, holding {lock})", dir = .dir.display(), lock = .lock.display())]
    InUse { dir: PathBuf, pid: String, lock: PathBuf },
    #[error("data directory {dir} (log.dirs / --data-dir): {file} is a file, not a directory", dir = .dir.display(), file = .file.display())]
    NotADirectory { dir: PathBuf, file: PathBuf },
    #[error("cannot lock data directory {dir} ({lock}): {source}", dir = .dir.display(), lock = .lock.display())]
    Io { dir: PathBuf, lock: PathBuf, source: io::Error },
}

/// Creates `data_dir` if needed and locks it, or says who holds it.
pub fn lock(data_dir: &Path) -> Result<DirLock, LockError> {
    let lock_path = data_dir.join(LOCK_FILE);
    let io_err = |source| LockError::Io { dir: data_dir.to_path_buf(), lock: lock_path.clone(), source };
    let created = data_dir.ancestors().take_while(|d| !d.as_os_str().is_empty() && !d.exists()).last();
    let created = created.map(Path::to_path_buf);
    // The nearest existing path must be a directory ("File exists" from mkdir would not say which).
    if let Some(existing) = data_dir.ancestors().find(|d| !d.as_os_str().is_empty() && d.exists()) {
        if !existing.is_dir() {
            return Err(LockError::NotADirectory {
                dir: data_dir.to_path_buf(),
                file: existing.to_path_buf(),
            });
        }
    }
    std::fs::create_dir_all(data_dir).map_err(io_err)?;
    // From here on, an early return removes what was created.
    let created = Created(created);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(io_err)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            // The holder may not have written its PID yet.
            let pid = Some(text.trim()).filter(|t| !t.is_empty()).unwrap_or("unknown").to_string();
            return Err(LockError::InUse { dir: data_dir.to_path_buf(), pid, lock: lock_path });
        }
        Err(e) => return Err(io_err(e.into())),
    }
    let pid = format!("{}\n", std::process::id());
    file.set_len(0).and_then(|()| file.write_all_at(pid.as_bytes(), 0)).map_err(io_err)?;
    Ok(DirLock { _file: file, created })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = lock(&data).unwrap();
        let err = lock(&data).unwrap_err().to_string();
        assert!(err.contains(&data.display().to_string()), "{err}");
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        drop(first);
        assert!(lock(&data).is_ok());
    }

    #[test]
    fn a_data_dir_that_is_a_file_is_named_as_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        for data in [file.clone(), file.join("below")] {
            let err = lock(&data).unwrap_err().to_string();
            assert!(err.contains(&format!("{} is a file, not a directory", file.display())), "{err}");
        }
        assert_eq!(std::fs::read(&file).unwrap(), b"x", "the file is left alone");
    }

    #[test]
    fn directories_a_lock_created_go_with_it_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a").join("data");
        drop(lock(&data).unwrap());
        assert!(!dir.path().join("a").exists(), "a failed start leaves no new directory");
        let mut kept = lock(&data).unwrap();
        kept.keep();
        drop(kept);
        assert!(data.join(LOCK_FILE).exists());
        drop(lock(&data).unwrap());
        assert!(data.exists(), "a directory that existed before stays");
    }
}
