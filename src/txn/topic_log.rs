//! The transaction coordinator's log as Kafka keeps it: the internal topic `__transaction_state`,
//! `transaction.state.log.num.partitions` partitions, each transactional id's records in partition
//! `abs(hash(id)) % partitions` (Kafka's `TransactionStateManager.partitionFor`), in Kafka's record
//! format ([`super::log_format`]), readable by any consumer.
//!
//! The topic is created on the first write, as Kafka creates it on the first use of a transactional
//! id. Its size is bounded by snapshots: [`RecordLog::compact`] appends the live records of each
//! partition again and then moves the partition's log start past everything before them, so no
//! state is ever only below the log start. A crash between the two steps leaves duplicates, which
//! replay resolves (the last record of an id wins).

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::coordinator::partition_for;
use super::log_format;
use super::model::TxnRecord;
use crate::cluster::{Cluster, NewTopic, Topic};
use crate::coordinator_log::RecordLog;
use crate::log::{now_ms, PartitionLog};

/// The internal topic's name.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// The coordinator's log in `__transaction_state`.
pub struct TopicTxnLog {
    cluster: Arc<Cluster>,
    partitions: i32,
    /// Runs the (async) topic creation from the coordinator's blocking threads.
    runtime: tokio::runtime::Handle,
    appended: AtomicU64,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

impl TopicTxnLog {
    pub fn new(cluster: Arc<Cluster>, partitions: i32, runtime: tokio::runtime::Handle) -> TopicTxnLog {
        TopicTxnLog { cluster, partitions: partitions.max(1), runtime, appended: AtomicU64::new(0) }
    }

    /// The topic, created (with Kafka's configs for it) if `create` and it does not exist. Blocking:
    /// call from a blocking thread, as the coordinator's callers do.
    fn topic(&self, create: bool) -> io::Result<Option<Arc<Topic>>> {
        if let Some(t) = self.cluster.snapshot().get(TRANSACTION_STATE_TOPIC) {
            return Ok(Some(t.clone()));
        }
        if !create {
            return Ok(None);
        }
        let spec = NewTopic {
            name: TRANSACTION_STATE_TOPIC.to_string(),
            num_partitions: self.partitions,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: vec![
                ("cleanup.policy".into(), Some("compact".into())),
                ("compression.type".into(), Some("uncompressed".into())),
                ("segment.bytes".into(), Some("104857600".into())),
                ("unclean.leader.election.enable".into(), Some("false".into())),
            ],
        };
        let cluster = self.cluster.clone();
        let created = self.runtime.block_on(async move { cluster.create_topics(&[spec], false).await });
        match created.into_iter().next() {
            Some(Ok(t)) => Ok(Some(t)),
            // Created meanwhile by another writer.
            _ => self
                .cluster
                .snapshot()
                .get(TRANSACTION_STATE_TOPIC)
                .cloned()
                .map(Some)
                .ok_or_else(|| other(format!("{TRANSACTION_STATE_TOPIC} could not be created"))),
        }
    }

    /// The log of partition `p` of the topic.
    fn log(&self, p: i32) -> io::Result<Arc<PartitionLog>> {
        self.cluster
            .logs
            .partition(TRANSACTION_STATE_TOPIC, p)
            .ok_or_else(|| other(format!("{TRANSACTION_STATE_TOPIC}-{p} has no log")))
    }

    /// Appends `records` as one batch per partition of `partitions` they fall in.
    fn write(&self, partitions: i32, records: &[TxnRecord]) -> io::Result<u64> {
        let mut by_partition: BTreeMap<i32, Vec<Record>> = BTreeMap::new();
        let now = now_ms();
        for r in records {
            let Some((key, value)) = log_format::encode(r) else {
                return Err(other("a transactional id too long for the transaction log"));
            };
            let id = match r {
                TxnRecord::Set(m) => &m.transactional_id,
                TxnRecord::Delete(id) => id,
            };
            let batch = by_partition.entry(partition_for(id, partitions)).or_default();
            batch.push(Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: batch.len() as i64,
                sequence: -1,
                timestamp: now,
                key: Some(key),
                value,
                headers: Default::default(),
            });
        }
        let mut bytes = 0;
        for (p, recs) in by_partition {
            let mut buf = BytesMut::new();
            RecordBatchEncoder::encode(
                &mut buf,
                &recs,
                &RecordEncodeOptions { version: 2, compression: Compression::None },
            )
            .map_err(other)?;
            self.log(p)?.append(&buf, 0, now).map_err(other)?;
            bytes += buf.len() as u64;
        }
        Ok(bytes)
    }
}

impl RecordLog<TxnRecord> for TopicTxnLog {
    fn append(&self, records: &[TxnRecord]) -> io::Result<()> {
        let Some(topic) = self.topic(true)? else { return Err(other("no transaction log")) };
        let n = self.write(topic.partitions, records)?;
        self.appended.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    fn replay(&self) -> io::Result<Vec<TxnRecord>> {
        let Some(topic) = self.topic(false)? else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        let mut skipped = 0usize;
        for p in 0..topic.partitions {
            let log = self.log(p)?;
            let (mut offset, end) = (log.log_start_offset(), log.log_end_offset());
            while offset < end {
                let r = log.read(offset, 1 << 20, true).map_err(other)?;
                if r.records.is_empty() {
                    break;
                }
                let mut buf: Bytes = r.records.clone();
                let sets = RecordBatchDecoder::decode_all(&mut buf).map_err(other)?;
                let mut next = offset;
                for set in sets {
                    for rec in set.records {
                        next = next.max(rec.offset + 1);
                        if rec.offset < offset {
                            continue;
                        }
                        match rec.key.as_ref().and_then(|k| log_format::decode(k, rec.value.as_ref())) {
                            Some(t) => out.push(t),
                            None => skipped += 1,
                        }
                    }
                }
                if next <= offset {
                    break;
                }
                offset = next;
            }
        }
        if skipped > 0 {
            tracing::warn!(records = skipped, "skipped unreadable records in {TRANSACTION_STATE_TOPIC}");
        }
        Ok(out)
    }

    fn compact(&self, live: &[TxnRecord]) -> io::Result<()> {
        let Some(topic) = self.topic(false)? else { return Ok(()) };
        let logs = (0..topic.partitions).map(|p| self.log(p)).collect::<io::Result<Vec<_>>>()?;
        let ends: Vec<i64> = logs.iter().map(|l| l.log_end_offset()).collect();
        self.write(topic.partitions, live)?;
        for (log, end) in logs.iter().zip(ends) {
            if end > log.log_start_offset() {
                log.delete_records(end, now_ms()).map_err(other)?;
            }
        }
        self.appended.store(0, Ordering::Relaxed);
        Ok(())
    }

    fn uncompacted_bytes(&self) -> u64 {
        self.appended.load(Ordering::Relaxed)
    }

    fn sync(&self) -> io::Result<()> {
        match self.topic(false)? {
            Some(topic) => (0..topic.partitions).try_for_each(|p| self.log(p)?.flush()),
            None => Ok(()),
        }
    }
}
