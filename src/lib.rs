//! strom: a Kafka-wire-compatible broker.
//!
//! A request travels `server` → `api` → components; dependencies point one way.
//!
//! | module | owns |
//! |---|---|
//! | [`config`] | the one typed configuration (YAML file, `STROM_*` env, CLI), validated at start |
//! | [`broker`] | wiring components, the listener task, shutdown |
//! | [`server`] | listener, connection framing, one request in flight per connection |
//! | [`api`] | decoding requests with kafka-protocol, the version table, one file per API family |
//! | [`cluster`] | topic registry (names, ids, partitions, configs), cluster id, crash-safe metadata file |
//! | [`coordinator_log`] | a coordinator's internal log: snapshot + CRC-framed WAL, one replay path |
//! | [`durable_file`] | crash-safe small files (temp, fsync, rename, fsync dir; CRC32C header) |
//! | [`dir_lock`] | the data directory's `.lock`: one broker per directory |
//! | [`descriptors`] | the open-file limit: raised at start, shared between connections and the log |
//! | [`log`] | partition logs on disk: segments, indexes, recovery, retention |
//! | [`group`] | group coordinator: classic rebalance protocol, committed offsets, their log |
//! | [`txn`] | producer ids, the transaction coordinator (KIP-98) and its log |
//! | [`error`] | crate errors and their one mapping to Kafka error codes |

pub mod api;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod coordinator_log;
pub mod descriptors;
pub mod dir_lock;
pub mod durable_file;
pub mod error;
pub mod group;
pub mod log;
pub mod server;
pub mod txn;
