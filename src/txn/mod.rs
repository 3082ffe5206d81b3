//! Producer ids and the transaction coordinator (KIP-98, KIP-447).
//!
//! - [`producer_ids`]: producer ids that are never reused.
//! - [`model`]: transactional ids, their states, the records the coordinator persists.
//! - [`coordinator`]: the state machine (InitProducerId, AddPartitionsToTxn, EndTxn, timeouts) and
//!   its log; markers are written through a [`MarkerWriter`] the broker provides.
//! - [`topic_log`], [`log_format`]: that log as Kafka keeps it, the internal topic
//!   `__transaction_state` in Kafka's record format.
//! - `end_txn`: EndTxn, transactions v1 (EndTxn v0–v4) and v2 (v5+, KIP-890 part 2).

pub mod coordinator;
mod end_txn;
pub mod log_format;
pub mod model;
pub mod producer_ids;
pub mod topic_log;

pub use coordinator::{MarkerWriter, TransactionCoordinator, TxnConfig, TxnError};
pub use producer_ids::ProducerIdManager;

#[cfg(test)]
mod tests;
