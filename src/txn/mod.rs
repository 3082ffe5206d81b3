//! Producer ids (and, later, the transaction coordinator).

pub mod producer_ids;

pub use producer_ids::ProducerIdManager;
