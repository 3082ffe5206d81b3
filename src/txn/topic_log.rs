//! The transaction coordinator's log as Kafka keeps it: the internal topic `__transaction_state`,
//! `transaction.state.log.num.partitions` partitions, each transactional id's records in partition
//! `abs(hash(id)) % partitions` (Kafka's `TransactionStateManager.partitionFor`), in Kafka's record
//! format ([`super::log_format`]), readable by any consumer. The mechanics (creation on the first
//! write, replay, compaction) are the shared [`TopicRecordLog`]'s.

use bytes::Bytes;

use super::log_format;
use super::model::TxnRecord;
use crate::coordinator_log::topic::{Entry, Marker, Place, TopicCodec, TopicRecordLog};

/// The internal topic's name.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// [`TxnRecord`]s as records of `__transaction_state`.
pub struct TxnCodec;

impl TopicCodec for TxnCodec {
    type Record = TxnRecord;

    fn topic(&self) -> &'static str {
        TRANSACTION_STATE_TOPIC
    }

    /// Kafka's `TransactionLog` topic configs (`TransactionStateManager.transactionTopicConfigs`).
    fn configs(&self) -> Vec<(String, Option<String>)> {
        vec![
            ("cleanup.policy".into(), Some("compact".into())),
            ("compression.type".into(), Some("uncompressed".into())),
            ("segment.bytes".into(), Some("104857600".into())),
            ("unclean.leader.election.enable".into(), Some("false".into())),
        ]
    }

    fn encode(&self, r: &TxnRecord, _now_ms: i64) -> Option<Entry> {
        let (key, value) = log_format::encode(r)?;
        let id = match r {
            TxnRecord::Set(m) => &m.transactional_id,
            TxnRecord::Delete(id) => id,
        };
        Some(Entry::Data { place: Place::Key(id.clone()), key, value, producer: None })
    }

    fn decode(&self, key: &Bytes, value: Option<&Bytes>, _producer: Option<(i64, i16)>) -> Option<TxnRecord> {
        log_format::decode(key, value)
    }

    fn decode_marker(&self, _: Marker) -> Option<TxnRecord> {
        None
    }
}

/// The coordinator's log in `__transaction_state`.
pub type TopicTxnLog = TopicRecordLog<TxnCodec>;

/// The log over `cluster`'s `__transaction_state` with `partitions` partitions.
pub fn open(
    cluster: std::sync::Arc<crate::cluster::Cluster>,
    partitions: i32,
    runtime: tokio::runtime::Handle,
) -> TopicTxnLog {
    TopicRecordLog::new(cluster, TxnCodec, partitions, runtime)
}
