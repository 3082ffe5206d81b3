//! The data directory's lock: `<data>/.lock`, locked exclusively (`flock`) for as long as the broker
//! runs, so a second strom pointed at the same directory refuses to start instead of serving from it
//! (Kafka keeps a `.lock` file in each log directory for the same reason). After locking, the holder
//! writes its PID into the file, and a refused start names it.
//!
//! An flock belongs to the open file: it goes when the [`DirLock`] is dropped or the process ends, even
//! by SIGKILL, so a `.lock` file left behind never blocks a later start.

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
}

/// Why the data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("data directory {dir} is in use by another strom (pid {pid}, holding {lock})", dir = .dir.display(), lock = .lock.display())]
    InUse { dir: PathBuf, pid: String, lock: PathBuf },
    #[error("cannot lock data directory {dir} ({lock}): {source}", dir = .dir.display(), lock = .lock.display())]
    Io { dir: PathBuf, lock: PathBuf, source: io::Error },
}

/// Creates `data_dir` if needed and locks it, or says who holds it.
pub fn lock(data_dir: &Path) -> Result<DirLock, LockError> {
    let lock_path = data_dir.join(LOCK_FILE);
    let io_err = |source| LockError::Io { dir: data_dir.to_path_buf(), lock: lock_path.clone(), source };
    std::fs::create_dir_all(data_dir).map_err(io_err)?;
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
    Ok(DirLock { _file: file })
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
}
