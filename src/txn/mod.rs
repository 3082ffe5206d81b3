//! Producer ids and the transaction coordinator (KIP-98, KIP-447).
//!
//! - [`producer_ids`]: producer ids that are never reused.
//! - [`model`]: transactional ids, their states, the records the coordinator persists.
//! - [`coordinator`]: the state machine (InitProducerId, AddPartitionsToTxn, EndTxn, timeouts) and
//!   its log; markers are written through a [`MarkerWriter`] the broker provides.

pub mod coordinator;
pub mod model;
pub mod producer_ids;

pub use coordinator::{MarkerWriter, TransactionCoordinator, TxnConfig, TxnError};
pub use producer_ids::ProducerIdManager;

#[cfg(test)]
mod tests;
