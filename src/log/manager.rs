//! All partition logs of the broker: opening them at start-up (with or without recovery), the
//! background duties (retention, time-based rolling, scheduled flushes) and the clean-shutdown marker.
//!
//! The marker `<data>/.strom-clean-shutdown` is written, after every log was flushed, as the last step
//! of a clean stop. At start-up it is read and removed at once (and the removal made durable), so a
//! crash at any later point is recognised as unclean and triggers recovery.

use std::collections::HashMap;
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
    /// Bumped after appends; long-polling fetches wait for a change.
    appends: tokio::sync::watch::Sender<u64>,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl LogManager {
    /// Prepares the data directory; consumes the clean-shutdown marker.
    pub fn open(data_dir: &Path, open_files: usize) -> io::Result<LogManager> {
        std::fs::create_dir_all(data_dir)?;
        let marker = data_dir.join(CLEAN_SHUTDOWN_MARKER);
        let clean_start = marker.exists();
        if clean_start {
            std::fs::remove_file(&marker)?;
            sync_dir(data_dir)?;
        } else {
            tracing::info!(data_dir = %data_dir.display(), "no clean-shutdown marker: logs will be recovered");
        }
        Ok(LogManager {
            data_dir: data_dir.to_path_buf(),
            files: Arc::new(FileCache::new(open_files)),
            logs: RwLock::new(HashMap::new()),
            clean_start,
            appends: tokio::sync::watch::channel(0).0,
        })
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
        let log = Arc::new(PartitionLog::open(&dir, config, self.files.clone(), self.clean_start, now_ms())?);
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

    /// One pass of the background duties; retention only when `with_retention`.
    pub fn run_duties(&self, now: i64, with_retention: bool) {
        for log in self.all() {
            if let Err(e) = log.flush_if_due(now).and_then(|()| log.roll_if_old(now)) {
                tracing::error!(dir = %log.dir().display(), error = %e, "background flush or roll failed");
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

    /// Flushes every log and writes the clean-shutdown marker (only if every flush succeeded).
    pub fn close(&self) -> io::Result<()> {
        let mut all_ok = true;
        for log in self.all() {
            if let Err(e) = log.close() {
                tracing::error!(dir = %log.dir().display(), error = %e, "flush at shutdown failed");
                all_ok = false;
            }
        }
        if all_ok {
            crate::durable_file::write_atomic(&self.data_dir.join(CLEAN_SHUTDOWN_MARKER), &now_ms())?;
        }
        Ok(())
    }
}
