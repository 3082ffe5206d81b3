//! All partition logs of the broker: opening them at start-up (with or without recovery), the
//! background duties (retention, scheduled flushes) and the clean-shutdown marker. Segments roll by
//! time only when an append arrives (or retention finds the active segment expired), as Kafka's
//! `UnifiedLog.maybeRoll` does: an idle segment is not sealed, so compaction sees what Kafka's sees.
//!
//! The marker `<data>/.strom-clean-shutdown` is written, after every log was flushed, as the last step
//! of a clean stop. At start-up it is read and removed at once (and the removal made durable), so a
//! crash at any later point is recognised as unclean and triggers recovery.
//!
//! The marker (a [`crate::durable_file`]) lists the partitions whose writes failed for lack of space or
//! descriptors while the broker ran: those are recovered at the next start, the others open without a
//! scan. A log taken offline by any other failure (a failed fsync above all) means no marker at all:
//! every log is recovered. An unreadable marker counts as absent.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio_util::sync::CancellationToken;

use super::{FileCache, LogConfig, PartitionLog};

const CLEAN_SHUTDOWN_MARKER: &str = ".strom-clean-shutdown";
/// Per-partition file naming the topic id that owns the directory.
const PARTITION_METADATA: &str = "partition.metadata";

/// Content of the clean-shutdown marker.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct CleanShutdown {
    /// When the broker stopped (ms since the epoch).
    stopped_ms: i64,
    /// Directory names (`<topic>-<partition>`) of logs to recover anyway: a write failed in them.
    recover: Vec<String>,
}

/// A partition addressed by topic name and index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> TopicPartition {
        TopicPartition { topic: topic.into(), partition }
    }

    /// The partition's directory name, `<topic>-<partition>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Owner of every partition log.
pub struct LogManager {
    data_dir: PathBuf,
    files: Arc<FileCache>,
    /// Logs by topic name, then partition (looked up without building a key on every request).
    logs: RwLock<HashMap<String, HashMap<i32, Arc<PartitionLog>>>>,
    /// Whether the previous run stopped cleanly (logs opened without a scan).
    clean_start: bool,
    /// Partition directories the marker says to recover despite a clean stop.
    recover: HashSet<String>,
    /// Bumped after appends; long-polling fetches wait for a change.
    appends: tokio::sync::watch::Sender<u64>,
    /// Starts a cleaner pass at once (its settings changed), as Kafka restarts its cleaner threads
    /// on a reconfiguration.
    pub(crate) cleaner_wake: tokio::sync::Notify,
}

/// Whether `data_dir` holds partition logs (a directory of each): a new, empty data directory has no
/// logs to recover, so no missing clean-shutdown marker is worth a line.
fn holds_logs(data_dir: &Path) -> bool {
    std::fs::read_dir(data_dir)
        .map(|entries| entries.flatten().any(|e| e.file_type().is_ok_and(|t| t.is_dir())))
        .unwrap_or(true)
}

impl LogManager {
    /// Prepares the data directory; consumes the clean-shutdown marker. `open_files` bounds the
    /// descriptors the logs keep open (see [`FileCache`]).
    pub fn open(data_dir: &Path, open_files: usize) -> io::Result<LogManager> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", data_dir.display())))?;
        let marker = data_dir.join(CLEAN_SHUTDOWN_MARKER);
        let found = match crate::durable_file::read_checked::<CleanShutdown>(&marker) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable clean-shutdown marker: every log will be recovered");
                None
            }
        };
        if marker.exists() {
            let removed =
                std::fs::remove_file(&marker).and_then(|()| crate::durable_file::sync_dir(data_dir));
            removed.map_err(|e| io::Error::new(e.kind(), format!("removing {}: {e}", marker.display())))?;
        }
        let clean_start = found.is_some();
        let recover: HashSet<String> = found.map(|m| m.recover.into_iter().collect()).unwrap_or_default();
        if !clean_start && holds_logs(data_dir) {
            tracing::info!(data_dir = %data_dir.display(), "no clean-shutdown marker: logs will be recovered");
        } else if !recover.is_empty() {
            tracing::info!(partitions = ?recover, "writes failed in these logs before the last stop: recovering them");
        }
        Ok(LogManager {
            data_dir: data_dir.to_path_buf(),
            files: Arc::new(FileCache::new(open_files)),
            logs: RwLock::new(HashMap::new()),
            clean_start,
            recover,
            appends: tokio::sync::watch::channel(0).0,
            cleaner_wake: tokio::sync::Notify::new(),
        })
    }

    /// The data directory every partition log lives in (Kafka's one `log.dirs` entry), made absolute
    /// without resolving links, as Kafka's `LogManager` reports a log dir (`File.getAbsolutePath`).
    pub fn log_dir(&self) -> PathBuf {
        std::path::absolute(&self.data_dir).unwrap_or_else(|_| self.data_dir.clone())
    }

    /// The size in bytes of every open partition log (the sum of its segments' `.log` files, Kafka's
    /// `UnifiedLog.size`), ordered by topic and partition.
    pub fn partition_sizes(&self) -> Vec<(TopicPartition, u64)> {
        let logs = self.logs.read();
        let mut sizes: Vec<(TopicPartition, u64)> = logs
            .iter()
            .flat_map(|(topic, parts)| {
                parts.iter().map(|(p, log)| (TopicPartition::new(topic.clone(), *p), log.size_bytes()))
            })
            .collect();
        sizes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        sizes
    }

    pub fn clean_start(&self) -> bool {
        self.clean_start
    }

    /// Files currently held open by every log together (bounded by the file cache's capacity).
    pub fn open_file_count(&self) -> usize {
        self.files.open_count()
    }

    /// Number of open partition logs.
    pub fn log_count(&self) -> usize {
        self.logs.read().values().map(HashMap::len).sum()
    }

    /// Wakes fetches waiting for data (called after a produce request appended something).
    pub fn notify_appended(&self) {
        self.appends.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every later [`LogManager::notify_appended`].
    pub fn subscribe_appends(&self) -> tokio::sync::watch::Receiver<u64> {
        self.appends.subscribe()
    }

    /// Opens (creating if needed) the log of `tp`; returns the already open one if any.
    ///
    /// `owner_id` identifies the topic incarnation (its topic id). It is kept in the directory's
    /// `partition.metadata`; a directory left behind by an older topic of the same name (a deletion
    /// interrupted by a crash) is wiped instead of resurrecting its records.
    pub fn open_log(
        &self,
        tp: &TopicPartition,
        owner_id: &str,
        config: LogConfig,
    ) -> io::Result<Arc<PartitionLog>> {
        if let Some(log) = self.get(tp) {
            return Ok(log);
        }
        let dir = self.data_dir.join(tp.dir_name());
        let meta = dir.join(PARTITION_METADATA);
        match crate::durable_file::read_checked::<String>(&meta) {
            Ok(Some(id)) if id == owner_id => {}
            Ok(Some(_)) => {
                tracing::warn!(dir = %dir.display(), "partition directory belongs to an older topic; wiping it");
                self.files.forget_dir(&dir);
                std::fs::remove_dir_all(&dir)?;
            }
            // No owner recorded (a crash right after creating the directory), or an unreadable file:
            // adopt the directory rather than risk wiping records.
            Ok(None) | Err(_) => {}
        }
        std::fs::create_dir_all(&dir)?;
        if !meta.exists() {
            // Unsynced: if a power loss eats it, the directory is simply adopted (see above).
            crate::durable_file::write_atomic_unsynced(&meta, &owner_id)?;
        }
        let clean = self.clean_start && !self.recover.contains(&tp.dir_name());
        let log = PartitionLog::open(&dir, config, self.files.clone(), clean, now_ms())
            .map_err(|e| io::Error::new(e.kind(), format!("opening the log in {}: {e}", dir.display())))?;
        // Transaction markers move the last stable offset: they wake long-polling fetches too.
        log.notify_markers_to(self.appends.clone());
        let log = Arc::new(log);
        let mut logs = self.logs.write();
        Ok(logs.entry(tp.topic.clone()).or_default().entry(tp.partition).or_insert(log).clone())
    }

    pub fn get(&self, tp: &TopicPartition) -> Option<Arc<PartitionLog>> {
        self.partition(&tp.topic, tp.partition)
    }

    /// The open log of `partition` of `topic`.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        self.logs.read().get(topic).and_then(|t| t.get(&partition)).cloned()
    }

    /// Forgets a topic's logs (before its directories are removed) and closes their files.
    pub fn remove_topic(&self, topic: &str) {
        let removed = self.logs.write().remove(topic).unwrap_or_default();
        for log in removed.into_values() {
            self.files.forget_dir(log.dir());
        }
    }

    /// Applies new settings to a topic's logs.
    pub fn reconfigure_topic(&self, topic: &str, config: &LogConfig) {
        for log in self.logs.read().get(topic).into_iter().flat_map(HashMap::values) {
            log.set_config(config.clone());
        }
    }

    fn all(&self) -> Vec<Arc<PartitionLog>> {
        self.logs.read().values().flat_map(HashMap::values).cloned().collect()
    }

    /// Every log with its partition's name.
    pub(crate) fn all_named(&self) -> Vec<(TopicPartition, Arc<PartitionLog>)> {
        let logs = self.logs.read();
        let named = logs
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |(p, l)| (TopicPartition::new(t, *p), l.clone())));
        named.collect()
    }

    /// One pass of the background duties; retention only when `with_retention`.
    pub fn run_duties(&self, now: i64, with_retention: bool) {
        for log in self.all() {
            if let Err(e) = log.flush_if_due(now) {
                // The log has said what the failure means for it (once, not every second).
                tracing::debug!(dir = %log.dir().display(), error = %e, "background flush failed");
            }
            if with_retention {
                match log.enforce_retention(now) {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(dir = %log.dir().display(), segments = n, "retention deleted segments")
                    }
                    Err(e) => {
                        tracing::error!(dir = %log.dir().display(), error = %e, "retention failed")
                    }
                }
            }
        }
    }

    /// Runs the background duties until `shutdown`: flush/roll checks every second, retention every
    /// `retention_check` (Kafka's `log.retention.check.interval.ms`). Blocking file work runs on the
    /// blocking pool, never on the request path.
    pub async fn run_background(self: Arc<Self>, retention_check: Duration, shutdown: CancellationToken) {
        let mut last_retention = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let with_retention = last_retention.elapsed() >= retention_check;
            if with_retention {
                last_retention = tokio::time::Instant::now();
            }
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || me.run_duties(now_ms(), with_retention)).await;
        }
    }

    /// Every `check_interval` until `shutdown`, forgets in every log the producers whose last batch is
    /// `expiration_ms()` old (Kafka's `PeriodicProducerExpirationCheck` every
    /// `producer.id.expiration.check.interval.ms`). `expiration_ms` is read at each check, so a
    /// dynamic `producer.id.expiration.ms` applies from the next one.
    pub async fn run_producer_expiry(
        self: Arc<Self>,
        check_interval: Duration,
        expiration_ms: impl Fn() -> i64 + Send + 'static,
        shutdown: CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(check_interval) => {}
            }
            let (expiration, now) = (expiration_ms(), now_ms());
            let expired: usize = self.all().iter().map(|log| log.expire_producers(now, expiration)).sum();
            if expired > 0 {
                tracing::debug!(expired, expiration_ms = expiration, "expired producer ids");
            }
        }
    }

    /// Flushes every log and writes the clean-shutdown marker, listing the logs a write failed in. No
    /// marker is written when a log is offline (a failure other than a shortage, e.g. a failed fsync).
    pub fn close(&self) -> io::Result<()> {
        let mut recover = Vec::new();
        let mut offline = Vec::new();
        for log in self.all() {
            if let Err(e) = log.close() {
                tracing::error!(dir = %log.dir().display(), error = %e, "flush at shutdown failed");
            }
            let name = log.dir().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if log.is_offline() {
                offline.push(name);
            } else if log.needs_recovery() {
                recover.push(name);
            }
        }
        if !offline.is_empty() {
            tracing::warn!(partitions = ?offline, "logs offline after I/O errors: no clean-shutdown marker, every log will be recovered at the next start");
            return Ok(());
        }
        recover.sort();
        let marker = CleanShutdown { stopped_ms: now_ms(), recover };
        crate::durable_file::write_atomic(&self.data_dir.join(CLEAN_SHUTDOWN_MARKER), &marker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::testing::batch;
    use crate::log::LogError;
    use std::process::Command;

    /// A tmpfs of a given size mounted on a fresh directory, unmounted when dropped.
    struct SmallFs(tempfile::TempDir);

    impl SmallFs {
        /// `None`, with the reason printed, where mounting is not allowed (not root, no tmpfs).
        fn mount(bytes: u64) -> Option<SmallFs> {
            let dir = tempfile::tempdir().ok()?;
            let size = format!("size={bytes}");
            match Command::new("mount").args(["-t", "tmpfs", "-o", &size, "tmpfs"]).arg(dir.path()).output() {
                Ok(o) if o.status.success() => Some(SmallFs(dir)),
                Ok(o) => {
                    eprintln!("skipped: cannot mount a tmpfs: {}", String::from_utf8_lossy(&o.stderr).trim());
                    None
                }
                Err(e) => {
                    eprintln!("skipped: cannot run mount: {e}");
                    None
                }
            }
        }
    }

    impl Drop for SmallFs {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
        }
    }

    fn log_file(dir: &Path, base: i64) -> PathBuf {
        dir.join(format!("{}.log", crate::log::segment::file_stem(base)))
    }

    #[test]
    fn a_write_refused_for_lack_of_space_is_cut_back_retried_and_recovered() {
        let Some(fs) = SmallFs::mount(256 * 1024) else { return };
        let data = fs.0.path().join("data");
        let tp = TopicPartition::new("t", 0);
        let logs = LogManager::open(&data, 16).unwrap();
        let log = logs.open_log(&tp, "id", LogConfig::default()).unwrap();
        log.append(&batch(1, 100, 5), 0, 1).unwrap();
        // Fill the filesystem, then free two pages: the third 3 KB batch fits only in part.
        let filler = fs.0.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        while std::io::Write::write_all(&mut f, &[7u8; 4096]).is_ok() {}
        let len = f.metadata().unwrap().len();
        f.set_len(len - 8192).unwrap();
        let mut acked = 1;
        let err = loop {
            match log.append(&batch(1, 3000, 5), 0, 1) {
                Ok(_) => acked += 1,
                Err(e) => break e,
            }
        };
        assert!(acked >= 2, "some appends fit ({acked})");
        assert!(matches!(&err, LogError::Storage(m) if m.contains("No space")), "{err}");
        assert!(!log.is_offline() && log.needs_recovery());
        let seg = log_file(log.dir(), 0);
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), log.size_bytes(), "partial write cut back");
        // Space comes back: the very next append works, at the next offset.
        drop(f);
        std::fs::remove_file(&filler).unwrap();
        assert_eq!(log.append(&batch(1, 3000, 5), 0, 1).unwrap().base_offset, acked);
        acked += 1;
        // A clean stop lists the log for recovery; a torn tail left after it is repaired at the start.
        logs.close().unwrap();
        let marker: CleanShutdown =
            crate::durable_file::read_checked(&data.join(CLEAN_SHUTDOWN_MARKER)).unwrap().unwrap();
        assert_eq!(marker.recover, vec!["t-0".to_string()]);
        drop((log, logs));
        let torn = &batch(1, 3000, 5)[..1000];
        let mut seg_file = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
        std::io::Write::write_all(&mut seg_file, torn).unwrap();
        let logs = LogManager::open(&data, 16).unwrap();
        assert!(logs.clean_start());
        let log = logs.open_log(&tp, "id", LogConfig::default()).unwrap();
        assert_eq!(log.log_end_offset(), acked);
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), log.size_bytes());
    }

    #[test]
    fn any_other_write_failure_takes_the_log_offline_and_leaves_no_marker() {
        let dir = tempfile::tempdir().unwrap();
        let tp = TopicPartition::new("t", 0);
        let logs = LogManager::open(dir.path(), 16).unwrap();
        let log = logs.open_log(&tp, "id", LogConfig::default()).unwrap();
        for _ in 0..3 {
            log.append(&batch(2, 20, 5), 0, 1).unwrap();
        }
        // The segment's handle becomes read-only: writes fail with EBADF and cannot be cut back.
        let seg = log_file(log.dir(), 0);
        logs.files.insert(&seg, std::fs::File::open(&seg).unwrap());
        assert!(matches!(log.append(&batch(2, 20, 5), 0, 1), Err(LogError::Storage(_))));
        assert!(log.is_offline() && log.needs_recovery());
        assert!(log.append(&batch(2, 20, 5), 0, 1).is_err(), "offline until restart");
        // Whatever the failed write left behind (here: half a batch) is never taken for clean.
        let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
        std::io::Write::write_all(&mut f, &batch(2, 20, 5)[..40]).unwrap();
        logs.close().unwrap();
        assert!(!dir.path().join(CLEAN_SHUTDOWN_MARKER).exists());
        drop((log, logs));
        let logs = LogManager::open(dir.path(), 16).unwrap();
        assert!(!logs.clean_start());
        let log = logs.open_log(&tp, "id", LogConfig::default()).unwrap();
        assert_eq!(log.log_end_offset(), 6);
        assert_eq!(log.append(&batch(1, 20, 5), 0, 1).unwrap().base_offset, 6);
    }

    #[test]
    fn a_log_that_cannot_be_opened_is_reported_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let seg = log_file(&dir.path().join("t-0"), 0);
        std::fs::create_dir_all(&seg).unwrap(); // a directory where the segment should be
        let logs = LogManager::open(dir.path(), 16).unwrap();
        let Err(err) = logs.open_log(&TopicPartition::new("t", 0), "id", LogConfig::default()) else {
            panic!("opened a log whose segment is a directory");
        };
        assert!(err.to_string().contains(&seg.display().to_string()), "{err}");
    }

    #[test]
    fn a_torn_tail_under_a_clean_marker_is_recovered_not_refused() {
        let dir = tempfile::tempdir().unwrap();
        let tp = TopicPartition::new("t", 0);
        let logs = LogManager::open(dir.path(), 16).unwrap();
        let log = logs.open_log(&tp, "id", LogConfig::default()).unwrap();
        log.append(&batch(2, 20, 5), 0, 1).unwrap();
        logs.close().unwrap();
        let seg = log_file(log.dir(), 0);
        drop((log, logs));
        // A marker that lies (as an older strom could write one): the start must still succeed.
        let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
        std::io::Write::write_all(&mut f, &batch(2, 20, 5)[..70]).unwrap();
        let logs = LogManager::open(dir.path(), 16).unwrap();
        assert!(logs.clean_start());
        let log = logs.open_log(&tp, "id", LogConfig::default()).unwrap();
        assert_eq!(log.log_end_offset(), 2);
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), log.size_bytes());
    }
}
