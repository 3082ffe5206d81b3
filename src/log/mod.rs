//! The partition log: the storage engine under every partition.
//!
//! - [`batch`]: record batch headers (magic v2): validation, offset assignment, LogAppendTime.
//! - [`validator`]: every record of a produced batch checked as Kafka's `LogValidator` does;
//!   [`decompress`] its bounded streaming decoders.
//! - [`index`]: the sparse offset and time indexes (Kafka's on-disk formats).
//! - [`segment`]: one `.log` file with its indexes; read, append, recovery.
//! - [`partition`]: a partition's segments, offsets, retention, flushing and crash recovery.
//! - [`producer_state`]: idempotent and transactional producers' sequences, duplicates, epochs and
//!   ongoing transactions.
//! - [`transactions`]: transaction markers, the last stable offset and the aborted transactions
//!   `read_committed` fetches return; [`txn_index`] the per-segment aborted-transaction index.
//! - [`file_cache`]: a bounded set of open files shared by all logs.
//! - [`config`]: the settings one log runs with.
//! - [`manager`]: every log of the broker, background duties, the clean-shutdown marker.
//! - [`cleaner`]: log compaction (`cleanup.policy=compact`): offset map, rewrite, crash-safe swap,
//!   `cleaner-offset-checkpoint`.
//!
//! On disk, per partition directory `<data>/<topic>-<partition>/`:
//! `<20-digit base offset>.log` (batches exactly as on the wire), `.index` (8-byte entries: relative
//! offset u32, position u32), `.timeindex` (12-byte entries: timestamp i64, relative offset u32),
//! `.txnindex` (34-byte entries of the aborted transactions whose markers are in the segment), and
//! the `recovery-point` and `log-start-offset` checkpoints, the cleaner's transient `.cleaned`,
//! `.swap` and `.swap-bases` files (see [`cleaner::swap`]), and the `producer-state` snapshot (producer
//! entries with their ongoing transactions).

#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod batch;
pub mod cleaner;
pub mod config;
pub mod decompress;
pub mod file_cache;
pub mod file_io;
pub mod index;
pub mod manager;
pub mod partition;
pub mod producer_state;
pub mod segment;
pub mod transactions;
pub mod txn_index;
pub mod validator;

pub use config::LogConfig;
pub use file_cache::FileCache;
pub use manager::{now_ms, LogManager, TopicPartition};
pub use partition::{AppendInfo, LogError, PartitionLog, ReadResult};
pub use producer_state::ProducerSummary;
pub use transactions::AbortedTxn;
