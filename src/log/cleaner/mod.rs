//! The log cleaner: log compaction for topics whose `cleanup.policy` contains `compact` (Kafka's
//! `LogCleaner`, `Cleaner`, `LogCleanerManager`).
//!
//! - [`offset_map`]: the key-hash → newest-offset map with a fixed memory budget.
//! - [`records`]: reading the records of a stored batch and rebuilding a batch with fewer.
//! - [`swap`]: the crash-safe `.cleaned` → `.swap` → final-name protocol and its recovery.
//! - [`checkpoint`]: `cleaner-offset-checkpoint`, the first dirty offset of each partition.
//! - `partition_clean.rs` (a child of the partition log): the cleanable range and one clean.
//!
//! One pass ([`crate::log::LogManager::run_cleaner`]) cleans every compacted log that is due —
//! dirty ratio above `min.cleanable.dirty.ratio`, or a dirty sealed segment whose first batch is
//! older than `max.compaction.lag.ms` — filthiest first, each in as many cleans as its offset map needs, and
//! checkpoints its new first dirty offset after each. It runs on the blocking pool every
//! `log.cleaner.backoff.ms`, apart from the flush/retention duties.

pub mod checkpoint;
pub mod offset_map;
pub mod records;
pub mod runner;
pub mod swap;
pub mod txn_state;

use std::time::{Duration, Instant};

/// Broker-wide cleaner settings (Kafka's `CleanerConfig`).
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `log.cleaner.enable`.
    pub enabled: bool,
    /// Memory for the offset map, bytes (`log.cleaner.dedupe.buffer.size`, split over
    /// `log.cleaner.threads` as Kafka does).
    pub dedupe_buffer_bytes: usize,
    /// Share of the map's slots filled before a pass stops (`log.cleaner.io.buffer.load.factor`).
    pub load_factor: f64,
    /// Read + write budget, bytes per second (`log.cleaner.io.max.bytes.per.second`; infinite by default).
    pub io_max_bytes_per_second: f64,
    /// Sleep between passes that found nothing to clean, ms (`log.cleaner.backoff.ms`).
    pub backoff_ms: u64,
}

impl Default for CleanerConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        CleanerConfig {
            enabled: true,
            dedupe_buffer_bytes: 128 << 20,
            load_factor: 0.9,
            io_max_bytes_per_second: f64::MAX,
            backoff_ms: 15_000,
        }
    }
}

impl CleanerConfig {
    /// From broker config values by Kafka key; absent or unparsable keys keep Kafka's defaults.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> CleanerConfig {
        let d = CleanerConfig::default();
        let num = |k: &str| get(k).and_then(|v| v.parse::<f64>().ok());
        let threads = num("log.cleaner.threads").unwrap_or(1.0).max(1.0);
        CleanerConfig {
            enabled: get("log.cleaner.enable").is_none_or(|v| v != "false"),
            dedupe_buffer_bytes: num("log.cleaner.dedupe.buffer.size")
                .map_or(d.dedupe_buffer_bytes, |v| (v / threads).clamp(0.0, i32::MAX as f64) as usize),
            load_factor: num("log.cleaner.io.buffer.load.factor").unwrap_or(d.load_factor),
            io_max_bytes_per_second: num("log.cleaner.io.max.bytes.per.second")
                .filter(|v| *v > 0.0)
                .unwrap_or(d.io_max_bytes_per_second),
            backoff_ms: num("log.cleaner.backoff.ms").map_or(d.backoff_ms, |v| v.max(0.0) as u64),
        }
    }
}

/// Keeps the cleaner's I/O at or below a rate (Kafka's `Throttler`): after each chunk, sleeps as
/// long as the bytes so far are ahead of the rate.
#[derive(Debug)]
pub struct Throttler {
    /// Bytes per second allowed.
    rate: f64,
    start: Instant,
    /// Bytes since `start`.
    bytes: u64,
}

impl Throttler {
    pub fn new(bytes_per_second: f64) -> Throttler {
        Throttler { rate: bytes_per_second, start: Instant::now(), bytes: 0 }
    }

    /// Counts `bytes` of I/O and sleeps if that puts the cleaner ahead of its rate.
    pub fn maybe_throttle(&mut self, bytes: u64) {
        self.bytes += bytes;
        if !self.rate.is_finite() || self.rate >= f64::MAX {
            return;
        }
        let due = Duration::from_secs_f64(self.bytes as f64 / self.rate);
        let elapsed = self.start.elapsed();
        if due > elapsed {
            std::thread::sleep(due - elapsed);
        }
    }
}

#[cfg(test)]
mod tests;
