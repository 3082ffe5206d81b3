//! The settings one partition log runs with (resolved from its topic's configs by the caller).

use super::validator::{RecordRules, TimestampRule};

/// How many times `max.message.bytes` a compressed batch may decompress to. Producers cap batches
/// before compression at about `max.message.bytes` (librdkafka's `batch.size`, the Java producer's
/// estimate), so real batches stay far below; a "bomb" is cut off after this much work.
pub const DECOMPRESSION_FACTOR: u64 = 64;

/// Per-log settings; units in the field names.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Roll the active segment before it would exceed this many bytes (`segment.bytes`).
    pub segment_bytes: u64,
    /// Roll the active segment once it is this old (`segment.ms`).
    pub segment_ms: i64,
    /// Delete segments whose newest record is older than this; -1 keeps forever (`retention.ms`).
    pub retention_ms: i64,
    /// `cleanup.policy` contains `compact`: every produced record needs a key.
    pub compacted: bool,
    /// Whether time and size retention apply (`cleanup.policy` contains `delete`).
    pub cleanup_delete: bool,
    /// How long (ms) a tombstone stays readable after the clean that first kept it
    /// (`delete.retention.ms`; Kafka's KIP-534 delete horizon).
    pub delete_retention_ms: i64,
    /// Records younger than this (ms, by their segment's newest timestamp) are not compacted
    /// (`min.compaction.lag.ms`).
    pub min_compaction_lag_ms: i64,
    /// A dirty record older than this (ms) forces a clean whatever the dirty ratio
    /// (`max.compaction.lag.ms`).
    pub max_compaction_lag_ms: i64,
    /// Clean once dirty bytes / (clean + dirty bytes) reach this (`min.cleanable.dirty.ratio`).
    pub min_cleanable_dirty_ratio: f64,
    /// Delete oldest segments while the log is larger than this; -1 = no limit (`retention.bytes`).
    pub retention_bytes: i64,
    /// Log bytes between sparse index entries (`index.interval.bytes`).
    pub index_interval_bytes: u64,
    /// fsync after this many unflushed records; 1 = before acknowledging (`flush.messages`).
    pub flush_messages: i64,
    /// fsync when the oldest unflushed data is this old (`flush.ms`).
    pub flush_ms: i64,
    /// Stamp batches with the broker's clock (`message.timestamp.type=LogAppendTime`).
    pub log_append_time: bool,
    /// Largest batch accepted, in bytes (`max.message.bytes`).
    pub max_message_bytes: usize,
    /// How far in the past / future (ms) a CreateTime timestamp may be
    /// (`message.timestamp.before.max.ms` / `message.timestamp.after.max.ms`).
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    /// Largest decompressed size (bytes) of a produced batch's records
    /// (`max.decompressed.message.bytes`, Kafka 4.4); strom's own bound applies below it.
    pub max_decompressed_message_bytes: u64,
}

impl Default for LogConfig {
    /// Kafka's defaults.
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3_600_000,
            retention_ms: 7 * 24 * 3_600_000,
            retention_bytes: -1,
            cleanup_delete: true,
            compacted: false,
            delete_retention_ms: 86_400_000,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            min_cleanable_dirty_ratio: 0.5,
            index_interval_bytes: 4096,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            log_append_time: false,
            max_message_bytes: 1_048_588,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3_600_000,
            max_decompressed_message_bytes: 2_147_483_639,
        }
    }
}

impl LogConfig {
    /// Builds from topic config values looked up by Kafka key; absent or unparsable keys keep Kafka's
    /// defaults (values were validated when the topic was created).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> LogConfig {
        let d = LogConfig::default();
        let num = |k: &str, default: i64| get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(default);
        LogConfig {
            segment_bytes: num("segment.bytes", d.segment_bytes as i64).max(1) as u64,
            segment_ms: num("segment.ms", d.segment_ms).max(1),
            retention_ms: num("retention.ms", d.retention_ms),
            retention_bytes: num("retention.bytes", d.retention_bytes),
            cleanup_delete: get("cleanup.policy").is_none_or(|p| p.split(',').any(|x| x.trim() == "delete")),
            compacted: get("cleanup.policy").is_some_and(|p| p.split(',').any(|x| x.trim() == "compact")),
            delete_retention_ms: num("delete.retention.ms", d.delete_retention_ms).max(0),
            min_compaction_lag_ms: num("min.compaction.lag.ms", d.min_compaction_lag_ms).max(0),
            max_compaction_lag_ms: num("max.compaction.lag.ms", d.max_compaction_lag_ms).max(1),
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio")
                .and_then(|v| v.parse::<f64>().ok())
                .filter(|r| (0.0..=1.0).contains(r))
                .unwrap_or(d.min_cleanable_dirty_ratio),
            index_interval_bytes: num("index.interval.bytes", d.index_interval_bytes as i64).max(0) as u64,
            flush_messages: num("flush.messages", d.flush_messages).max(1),
            flush_ms: num("flush.ms", d.flush_ms).max(0),
            log_append_time: get("message.timestamp.type").as_deref() == Some("LogAppendTime"),
            max_message_bytes: num("max.message.bytes", d.max_message_bytes as i64).max(0) as usize,
            timestamp_before_max_ms: num("message.timestamp.before.max.ms", d.timestamp_before_max_ms),
            timestamp_after_max_ms: num("message.timestamp.after.max.ms", d.timestamp_after_max_ms),
            max_decompressed_message_bytes: num(
                "max.decompressed.message.bytes",
                d.max_decompressed_message_bytes as i64,
            )
            .max(0) as u64,
        }
    }

    /// The per-record rules of a produced batch at `now_ms` (Kafka's `LogValidator` inputs). A
    /// compressed batch may decompress to at most [`DECOMPRESSION_FACTOR`] × `max.message.bytes`
    /// (at least that many MiB; strom's own bound against decompression bombs), and each of its
    /// records to at most `max.decompressed.message.bytes` (Kafka 4.4's per-record bound).
    pub fn record_rules(&self, now_ms: i64) -> RecordRules {
        let timestamps = if self.log_append_time {
            TimestampRule::LogAppendTime
        } else {
            TimestampRule::CreateTime {
                now_ms,
                before_ms: self.timestamp_before_max_ms,
                after_ms: self.timestamp_after_max_ms,
            }
        };
        RecordRules {
            max_decompressed_bytes: (self.max_message_bytes.max(1 << 20) as u64)
                .saturating_mul(DECOMPRESSION_FACTOR),
            max_record_bytes: self.max_decompressed_message_bytes,
            compacted: self.compacted,
            timestamps,
        }
    }

    /// Whether every append must be fsynced before it is acknowledged.
    pub fn sync_every_append(&self) -> bool {
        self.flush_messages <= 1 || self.flush_ms == 0
    }
}
