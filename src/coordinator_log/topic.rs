//! A coordinator's log kept as Kafka keeps it: an internal topic (`__consumer_offsets`,
//! `__transaction_state`) whose partitions hold the coordinator's records in Kafka's record format,
//! each keyed record in partition `abs(hash(key)) % partitions` ([`partition_for`]), readable by
//! any consumer. What the records are is the [`TopicCodec`]'s business; this is the mechanics
//! shared by both coordinators (Kafka's `CoordinatorRuntime` appending to and `CoordinatorLoaderImpl`
//! loading from the partitions).
//!
//! - Writes: the records of one append that fall in one partition are written as one batch per
//!   run of records with the same producer (a transactional offset commit is a transactional batch of
//!   its producer, as Kafka writes it), without sequence numbers (`baseSequence` -1, Kafka's
//!   coordinator writes); a transaction's end is a COMMIT/ABORT control marker in its partition.
//! - The topic is created (with the codec's configs, Kafka's) on the first write, or earlier by the
//!   caller ([`TopicRecordLog::ensure_topic`]), as Kafka creates it on first use.
//! - Replay reads every partition from its log start, in partition order and in log order within a
//!   partition; markers are handed to the codec with their partition.
//! - Size: [`RecordLog::compact`] appends the live records again and then moves each partition's log
//!   start past everything before them (strom has no log cleaner yet), so no state is ever only
//!   below the log start. A crash between the two steps leaves duplicates, which replay resolves
//!   (the last record of a key wins).

use std::collections::BTreeMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::RecordLog;
use crate::cluster::{Cluster, NewTopic, Topic};
use crate::log::{now_ms, PartitionLog};

/// Kafka's `Utils.abs(key.hashCode()) % partitions`: Java's String hash over UTF-16 code units, with
/// `Integer.MIN_VALUE` mapped to 0 (`GroupCoordinatorService.partitionFor`,
/// `TransactionStateManager.partitionFor`).
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    let hash = key.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)));
    let abs = if hash == i32::MIN { 0 } else { hash.abs() };
    abs % partitions.max(1)
}

/// Where a record goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// The partition of this key ([`partition_for`]): a group id, a transactional id.
    Key(String),
    /// This partition.
    Partition(i32),
}

/// What one coordinator record is in the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A data record (`value` `None`: a tombstone); `producer`: (id, epoch) of a transactional write.
    Data { place: Place, key: Bytes, value: Option<Bytes>, producer: Option<(i64, i16)> },
    /// A COMMIT or ABORT control marker of a producer's transaction.
    Marker(Marker),
}

/// A transaction's COMMIT (`commit`) or ABORT control marker in a partition of the topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub partition: i32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
}

/// How a coordinator's records `R` map to its internal topic's records.
pub trait TopicCodec: Send + Sync {
    /// The coordinator's record.
    type Record;
    /// The topic's name.
    fn topic(&self) -> &'static str;
    /// The topic configs Kafka creates it with.
    fn configs(&self) -> Vec<(String, Option<String>)>;
    /// The topic entry of `r` at `now_ms`; `None` if `r` cannot be written (a name too long for
    /// the format).
    fn encode(&self, r: &Self::Record, now_ms: i64) -> Option<Entry>;
    /// The record of a data record (`producer`: the id and epoch of a transactional batch);
    /// `None` skips it.
    fn decode(
        &self,
        key: &Bytes,
        value: Option<&Bytes>,
        producer: Option<(i64, i16)>,
    ) -> Option<Self::Record>;
    /// The record of a transaction marker in `partition`; `None` skips it.
    fn decode_marker(&self, marker: Marker) -> Option<Self::Record>;
}

/// A [`RecordLog`] over an internal topic.
pub struct TopicRecordLog<C> {
    cluster: Arc<Cluster>,
    codec: C,
    /// `offsets.topic.num.partitions` / `transaction.state.log.num.partitions`.
    partitions: i32,
    /// Runs the (async) topic creation when a write finds no topic and runs outside the runtime.
    runtime: tokio::runtime::Handle,
    /// Bytes appended since the last compaction.
    appended: AtomicU64,
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Offset of the producer's base sequence in a v2 batch header, and of the CRC and what it covers.
const BASE_SEQUENCE_AT: usize = 53;
const CRC_AT: usize = 17;
const CRC_FROM: usize = 21;

/// Sets a v2 batch's base sequence to -1 (no sequence, a coordinator's write) and its CRC again.
fn clear_sequence(batch: &mut [u8]) -> io::Result<()> {
    let seq = batch.get_mut(BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4).ok_or_else(|| other("short batch"))?;
    seq.copy_from_slice(&(-1i32).to_be_bytes());
    let crc = crc32c::crc32c(batch.get(CRC_FROM..).unwrap_or_default());
    batch
        .get_mut(CRC_AT..CRC_AT + 4)
        .ok_or_else(|| other("short batch"))?
        .copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// Records of one partition in append order: data runs (one batch each) and markers.
enum Write {
    Batch { producer: Option<(i64, i16)>, records: Vec<(Bytes, Option<Bytes>)> },
    Marker(Marker),
}

impl<C> TopicRecordLog<C> {
    pub fn new(cluster: Arc<Cluster>, codec: C, partitions: i32, runtime: tokio::runtime::Handle) -> Self {
        TopicRecordLog { cluster, codec, partitions: partitions.max(1), runtime, appended: AtomicU64::new(0) }
    }

    /// The configured partition count (where records of a key go).
    pub fn partitions(&self) -> i32 {
        self.partitions
    }
}

impl<C: TopicCodec> TopicRecordLog<C> {
    fn spec(&self) -> NewTopic {
        NewTopic {
            name: self.codec.topic().to_string(),
            num_partitions: self.partitions,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: self.codec.configs(),
        }
    }

    fn existing(&self) -> Option<Arc<Topic>> {
        self.cluster.snapshot().get(self.codec.topic()).cloned()
    }

    /// Creates the topic unless it exists (async: from the API layer, e.g. FindCoordinator).
    pub async fn ensure_topic(&self) -> io::Result<Arc<Topic>> {
        if let Some(t) = self.existing() {
            return Ok(t);
        }
        let created = self.cluster.create_topics(&[self.spec()], false).await;
        match created.into_iter().next() {
            Some(Ok(t)) => Ok(t),
            // Created meanwhile by another writer.
            _ => self.existing().ok_or_else(|| other(format!("{} could not be created", self.codec.topic()))),
        }
    }

    /// The topic, created if `create` and it does not exist. Creation blocks the calling thread: a
    /// blocking thread, or a worker of a multi-thread runtime (`block_in_place`); on a current-thread
    /// runtime it runs on a thread of its own (callers there create it first when they can,
    /// [`Self::ensure_topic`]).
    fn topic(&self, create: bool) -> io::Result<Option<Arc<Topic>>> {
        if let Some(t) = self.existing() {
            return Ok(Some(t));
        }
        if !create {
            return Ok(None);
        }
        let created = match tokio::runtime::Handle::try_current() {
            Err(_) => self.runtime.block_on(self.ensure_topic()),
            Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(|| self.runtime.block_on(self.ensure_topic()))
            }
            Ok(_) => std::thread::scope(|s| {
                s.spawn(|| {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?
                        .block_on(self.ensure_topic())
                })
                .join()
                .unwrap_or_else(|_| Err(other("creating the topic panicked")))
            }),
        };
        created.map(Some)
    }

    /// The log of partition `p` of the topic.
    fn log(&self, p: i32) -> io::Result<Arc<PartitionLog>> {
        let name = self.codec.topic();
        self.cluster.logs.partition(name, p).ok_or_else(|| other(format!("{name}-{p} has no log")))
    }

    /// Groups `records` by partition, in order, into batches and markers.
    fn plan(&self, records: &[C::Record], now: i64) -> io::Result<BTreeMap<i32, Vec<Write>>> {
        let mut plan: BTreeMap<i32, Vec<Write>> = BTreeMap::new();
        for r in records {
            let entry = self
                .codec
                .encode(r, now)
                .ok_or_else(|| other(format!("a record {} cannot hold", self.codec.topic())))?;
            match entry {
                Entry::Data { place, key, value, producer } => {
                    let p = match place {
                        Place::Key(k) => partition_for(&k, self.partitions),
                        Place::Partition(p) => p,
                    };
                    let writes = plan.entry(p).or_default();
                    match writes.last_mut() {
                        Some(Write::Batch { producer: last, records }) if *last == producer => {
                            records.push((key, value))
                        }
                        _ => writes.push(Write::Batch { producer, records: vec![(key, value)] }),
                    }
                }
                Entry::Marker(m) => plan.entry(m.partition).or_default().push(Write::Marker(m)),
            }
        }
        Ok(plan)
    }

    /// Appends `records`; returns the bytes written.
    fn write(&self, topic: &Topic, records: &[C::Record]) -> io::Result<u64> {
        let now = now_ms();
        let mut bytes = 0;
        for (p, writes) in self.plan(records, now)? {
            let log = self.log(p)?;
            for w in writes {
                match w {
                    Write::Batch { producer, records } => {
                        let buf = encode_batch(producer, &records, now)?;
                        log.append(&buf, topic.leader_epoch, now).map_err(other)?;
                        bytes += buf.len() as u64;
                    }
                    Write::Marker(m) => {
                        let epoch = crate::txn::coordinator::COORDINATOR_EPOCH;
                        log.append_txn_marker(
                            m.producer_id,
                            m.producer_epoch,
                            epoch,
                            m.commit,
                            topic.leader_epoch,
                            now,
                        )
                        .map_err(other)?;
                        bytes += 78;
                    }
                }
            }
        }
        Ok(bytes)
    }

    /// Every record of partition `p` from its log start.
    fn replay_partition(&self, p: i32, out: &mut Vec<C::Record>, skipped: &mut usize) -> io::Result<()> {
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
                    let decoded = if rec.control {
                        // A control record's key: version int16, type int16 (0 ABORT, 1 COMMIT).
                        let commit = rec.key.as_ref().and_then(|k| k.get(2..4)).map(|t| t == [0, 1]);
                        commit.and_then(|commit| {
                            self.codec.decode_marker(Marker {
                                partition: p,
                                producer_id: rec.producer_id,
                                producer_epoch: rec.producer_epoch,
                                commit,
                            })
                        })
                    } else {
                        let producer = rec.transactional.then_some((rec.producer_id, rec.producer_epoch));
                        rec.key.as_ref().and_then(|k| self.codec.decode(k, rec.value.as_ref(), producer))
                    };
                    match decoded {
                        Some(d) => out.push(d),
                        None => *skipped += 1,
                    }
                }
            }
            if next <= offset {
                break;
            }
            offset = next;
        }
        Ok(())
    }
}

/// One v2 batch of `records` (uncompressed, Kafka's default for coordinator writes), transactional
/// when `producer` is set, without sequence numbers.
fn encode_batch(
    producer: Option<(i64, i16)>,
    records: &[(Bytes, Option<Bytes>)],
    now: i64,
) -> io::Result<BytesMut> {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    let records: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Equal to the offset so the encoder writes one batch; cleared to -1 below.
            sequence: i as i32,
            timestamp: now,
            key: Some(key.clone()),
            value: value.clone(),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions { version: 2, compression: Compression::None },
    )
    .map_err(other)?;
    clear_sequence(&mut buf)?;
    Ok(buf)
}

impl<C: TopicCodec> RecordLog<C::Record> for TopicRecordLog<C> {
    fn append(&self, records: &[C::Record]) -> io::Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let Some(topic) = self.topic(true)? else { return Err(other("no topic")) };
        let n = self.write(&topic, records)?;
        self.appended.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    fn replay(&self) -> io::Result<Vec<C::Record>> {
        let Some(topic) = self.topic(false)? else { return Ok(Vec::new()) };
        let (mut out, mut skipped) = (Vec::new(), 0usize);
        for p in 0..topic.partitions {
            self.replay_partition(p, &mut out, &mut skipped)?;
        }
        if skipped > 0 {
            tracing::warn!(
                records = skipped,
                topic = self.codec.topic(),
                "skipped records replay does not know"
            );
        }
        Ok(out)
    }

    fn compact(&self, live: &[C::Record]) -> io::Result<()> {
        let Some(topic) = self.topic(false)? else { return Ok(()) };
        let logs = (0..topic.partitions).map(|p| self.log(p)).collect::<io::Result<Vec<_>>>()?;
        let ends: Vec<i64> = logs.iter().map(|l| l.log_end_offset()).collect();
        self.write(&topic, live)?;
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
