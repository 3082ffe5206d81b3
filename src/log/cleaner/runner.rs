//! The cleaner's schedule over every log of the broker (Kafka's `LogCleaner` thread with
//! `LogCleanerManager.grabFilthiestCompactedLog`). Holds no files itself: each clean is crash-safe
//! on its own ([`super::swap`]) and the checkpoint is written after each ([`super::checkpoint`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::offset_map::{OffsetMap, BYTES_PER_ENTRY};
use super::{checkpoint, CleanerConfig, Throttler};
use crate::log::{now_ms, LogManager, TopicPartition};

/// The offset map for a dirty range of `dirty_bytes`: the configured budget, or less when the range
/// cannot hold that many records (a record takes at least 7 bytes on disk), so small logs do not
/// allocate the whole buffer.
fn map_for(cfg: &CleanerConfig, dirty_bytes: u64) -> OffsetMap {
    let needed = (dirty_bytes / 7 + 16).saturating_mul(BYTES_PER_ENTRY as u64 * 2);
    OffsetMap::new(
        cfg.dedupe_buffer_bytes.min(usize::try_from(needed).unwrap_or(usize::MAX)),
        cfg.load_factor,
    )
}

impl LogManager {
    /// One cleaner pass at `now`: every compacted log that is due, filthiest first, cleaned fully
    /// (several cleans when its dirty range does not fit one offset map). `checkpoints` holds each
    /// partition's first dirty offset and is written to the data directory after every clean.
    /// Returns how many logs a clean moved on (their first dirty offset advanced).
    pub fn run_cleaner(
        &self,
        cfg: &CleanerConfig,
        checkpoints: &mut BTreeMap<TopicPartition, i64>,
        now: i64,
    ) -> usize {
        let logs = self.all_named();
        let before = checkpoints.len();
        checkpoints.retain(|tp, _| logs.iter().any(|(t, _)| t == tp));
        let mut dirty_checkpoint = checkpoints.len() != before;
        let mut due: Vec<_> = logs
            .into_iter()
            .filter(|(_, log)| log.config().compacted && !log.is_offline())
            .map(|(tp, log)| {
                // Kafka flushes the segments below the new one at each roll, so its recovery point
                // never holds the cleaner back; strom's background flush runs every second, so
                // the segments sealed since are flushed here (nothing to do when there are none).
                if let Err(e) = log.flush_if_due(now) {
                    tracing::debug!(topic = %tp.topic, partition = tp.partition, error = %e, "flush before cleaning failed");
                }
                let c = log.cleanable(checkpoints.get(&tp).copied(), now);
                (tp, log, c)
            })
            .filter(|(_, _, c)| c.due())
            .collect();
        due.sort_by(|a, b| b.2.ratio().total_cmp(&a.2.ratio()));
        let mut throttle = Throttler::new(cfg.io_max_bytes_per_second);
        let mut cleaned = 0;
        for (tp, log, mut c) in due {
            let mut progressed_once = false;
            loop {
                let mut map = map_for(cfg, c.cleanable_bytes);
                let started = std::time::Instant::now();
                match log.clean(&c, &mut map, &mut throttle, now) {
                    Ok(stats) => {
                        tracing::info!(topic = %tp.topic, partition = tp.partition, first_dirty = c.first_dirty,
                            first_uncleanable = c.first_uncleanable, dirty_bytes = c.cleanable_bytes,
                            end_offset = stats.end_offset, bytes_read = stats.bytes_read,
                            bytes_written = stats.bytes_written, records_read = stats.records_read,
                            records_kept = stats.records_kept, groups = stats.groups_swapped,
                            map_entries = map.len(), ms = started.elapsed().as_millis() as u64, "cleaned log");
                        let progressed = stats.end_offset > c.first_dirty;
                        if progressed {
                            progressed_once = true;
                            checkpoints.insert(tp.clone(), stats.end_offset);
                            dirty_checkpoint = true;
                        }
                        if !progressed || stats.end_offset >= c.first_uncleanable {
                            break;
                        }
                        c = log.cleanable(Some(stats.end_offset), now);
                    }
                    Err(e) => {
                        tracing::error!(topic = %tp.topic, partition = tp.partition, error = %e, "log cleaning failed");
                        break;
                    }
                }
            }
            // Only a clean that moved its log on counts: the loop goes again at once after one,
            // and a log that is due but cannot progress must not keep the cleaner spinning.
            cleaned += usize::from(progressed_once);
            if dirty_checkpoint {
                match checkpoint::write(&self.log_dir(), checkpoints) {
                    Ok(()) => dirty_checkpoint = false,
                    Err(e) => tracing::warn!(error = %e, "writing the cleaner checkpoint failed"),
                }
            }
        }
        cleaned
    }

    /// Runs cleaner passes on the blocking pool until `shutdown`: again at once after a pass that
    /// cleaned something or a [`Self::wake_cleaner`], else after `log.cleaner.backoff.ms`. `config`
    /// gives the settings in effect and is read before every pass, so the dynamic `log.cleaner.*`
    /// keys apply live (Kafka's `LogCleaner.reconfigure`); `log.cleaner.enable` is read once.
    pub async fn run_cleaner_loop(
        self: Arc<Self>,
        config: impl Fn() -> CleanerConfig + Send + 'static,
        shutdown: CancellationToken,
    ) {
        if !config().enabled {
            return;
        }
        let mut checkpoints = checkpoint::read(&self.log_dir());
        loop {
            let cfg = config();
            let me = self.clone();
            let c = cfg.clone();
            let pass = tokio::task::spawn_blocking(move || {
                let n = me.run_cleaner(&c, &mut checkpoints, now_ms());
                (n, checkpoints)
            });
            let Ok((n, kept)) = pass.await else { return };
            checkpoints = kept;
            let wait =
                if n > 0 { Duration::from_millis(10) } else { Duration::from_millis(cfg.backoff_ms.max(10)) };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.cleaner_wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Starts a cleaner pass now with the settings then in effect.
    pub fn wake_cleaner(&self) {
        self.cleaner_wake.notify_one();
    }
}
