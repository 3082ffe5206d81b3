//! Idempotent and transactional producer state of one partition (Kafka's `ProducerStateManager`,
//! `ProducerStateEntry`, `ProducerAppendInfo`): for each producer id, its epoch, the sequence numbers
//! and offsets of its last five batches (Kafka keeps five: the most a producer may have in flight),
//! the coordinator epoch of its last transaction marker and the first offset of its ongoing
//! transaction here. Used on append to answer duplicates with their original offsets, refuse gaps
//! (OUT_OF_ORDER_SEQUENCE_NUMBER), fenced epochs (INVALID_PRODUCER_EPOCH), non-transactional writes
//! inside a transaction (INVALID_TXN_STATE) and markers of a fenced coordinator
//! (TRANSACTION_COORDINATOR_FENCED). The transaction side is described in [`super::transactions`].
//!
//! Durability: the state is a function of the batch headers in the log. It is snapshotted (see
//! [`Snapshot`]) with the offset it covers; at start-up the snapshot is loaded and the headers of
//! every batch after that offset are replayed, so a restart or `kill -9` loses nothing.

use std::collections::{BTreeMap, HashMap, VecDeque};

/// A batch's base sequence when it has none (Kafka's `RecordBatch.NO_SEQUENCE`).
pub const NO_SEQUENCE: i32 = -1;

use serde::{Deserialize, Serialize};

use super::batch::BatchHeader;
use super::transactions::{AbortedTxn, CompletedTxn, TxnMarker};

/// Batches remembered per producer.
pub const MAX_BATCHES: usize = 5;

/// Sequence numbers and offsets of one appended batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
}

/// One producer's state in this partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerEntry {
    pub epoch: i16,
    /// Oldest first, at most [`MAX_BATCHES`].
    pub batches: VecDeque<BatchMeta>,
    /// Broker time (ms) of the producer's last append here, for expiry.
    pub last_append_ms: i64,
    /// Coordinator epoch of the last transaction marker written for this producer (-1: none yet).
    #[serde(default = "no_coordinator_epoch")]
    pub coordinator_epoch: i32,
    /// First offset of the producer's ongoing transaction in this partition (Kafka's
    /// `currentTxnFirstOffset`); `None` outside a transaction.
    #[serde(default)]
    pub current_txn_first_offset: Option<i64>,
    /// Max timestamp (ms) of the producer's last batch or marker (Kafka's `lastTimestamp`); -1 if none.
    #[serde(default = "no_timestamp")]
    pub last_timestamp: i64,
}

fn no_coordinator_epoch() -> i32 {
    -1
}

fn no_timestamp() -> i64 {
    -1
}

/// One producer as DescribeProducers reports it (Kafka's `DescribeProducersResponseData.ProducerState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerSummary {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// Sequence number of the last record appended (-1: none in this epoch).
    pub last_sequence: i32,
    /// Max timestamp (ms) of the last batch or marker; -1 if unknown.
    pub last_timestamp: i64,
    /// Coordinator epoch of the last transaction marker (-1: none).
    pub coordinator_epoch: i32,
    /// First offset of the ongoing transaction, -1 when there is none.
    pub current_txn_start_offset: i64,
}

/// What to do with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// Already appended: answer with these offsets, write nothing.
    Duplicate(BatchMeta),
}

/// Why a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    #[error("out of order sequence number for producer {producer_id}: found {found}, expected {expected}")]
    OutOfOrder { producer_id: i64, found: i32, expected: i32 },
    #[error("producer {producer_id} epoch {found} is older than the current epoch {current}")]
    FencedEpoch { producer_id: i64, found: i16, current: i16 },
    /// Kafka's `InvalidTxnStateException` from `ProducerAppendInfo.appendDataBatch`.
    #[error("expected a transactional write from producer {producer_id}: its transaction is ongoing")]
    NotTransactional { producer_id: i64 },
    /// Kafka's `TransactionCoordinatorFencedException` from `ProducerAppendInfo.checkCoordinatorEpoch`.
    #[error(
        "transaction marker for producer {producer_id} has coordinator epoch {found}, older than {current}"
    )]
    CoordinatorFenced { producer_id: i64, found: i32, current: i32 },
}

/// Kafka's sequence arithmetic: sequences wrap from i32::MAX to 0.
pub fn add_to_sequence(seq: i32, n: i32) -> i32 {
    if seq > i32::MAX - n {
        n - (i32::MAX - seq) - 1
    } else {
        seq + n
    }
}

/// The last sequence number of a batch.
pub fn last_sequence(h: &BatchHeader) -> i32 {
    add_to_sequence(h.base_sequence, h.last_offset_delta)
}

/// A producer's last entry in the log as the cleaner needs it (Kafka's `LastRecord`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastRecord {
    /// Last offset of its newest data batch of the current epoch; `None` when a marker (of a newer
    /// epoch) is its last entry.
    pub last_data_offset: Option<i64>,
    pub epoch: i16,
}

/// All producers' state of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerStates {
    producers: HashMap<i64, ProducerEntry>,
    /// Ongoing transactions: first offset → producer id (Kafka's `ongoingTxns`). The same facts as the
    /// entries' `current_txn_first_offset`, ordered so the oldest is found at once.
    #[serde(default)]
    ongoing: BTreeMap<i64, i64>,
}

/// A snapshot of the state together with the log offset it covers (everything below it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub offset: i64,
    pub states: ProducerStates,
    /// Aborted transactions whose markers are below `offset`, as snapshots written before the
    /// per-segment `.txnindex` files held them (read to migrate them; never written).
    #[serde(default)]
    pub aborted: LegacyAborted,
}

/// The aborted list of older snapshots (`{"entries": [...]}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LegacyAborted {
    #[serde(default)]
    pub entries: Vec<AbortedTxn>,
}

/// [`Snapshot`] as written: borrowed, so the states are not copied to be saved.
#[derive(Serialize)]
pub struct SnapshotRef<'a> {
    pub offset: i64,
    pub states: &'a ProducerStates,
}

impl ProducerStates {
    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Each producer's last entry in the log (Kafka's `lastRecordsOfActiveProducers`): the batches
    /// the log cleaner keeps even when it removes all their records.
    pub fn last_records(&self) -> HashMap<i64, LastRecord> {
        self.producers
            .iter()
            .map(|(pid, e)| {
                (
                    *pid,
                    LastRecord { last_data_offset: e.batches.back().map(|b| b.last_offset), epoch: e.epoch },
                )
            })
            .collect()
    }

    /// First offset of the oldest ongoing transaction (Kafka's `firstUndecidedOffset`).
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.keys().next().copied()
    }

    /// Ongoing transactions as (first offset, producer id), oldest first.
    pub fn ongoing(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing.iter().map(|(o, p)| (*o, *p))
    }

    /// Every producer as DescribeProducers shows it (unordered).
    pub fn summaries(&self) -> Vec<ProducerSummary> {
        self.producers
            .iter()
            .map(|(id, e)| ProducerSummary {
                producer_id: *id,
                producer_epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_timestamp: e.last_timestamp,
                coordinator_epoch: e.coordinator_epoch,
                current_txn_start_offset: e.current_txn_first_offset.unwrap_or(-1),
            })
            .collect()
    }

    /// Checks a transaction marker's coordinator epoch (Kafka's `checkCoordinatorEpoch`; the producer
    /// epoch is checked by [`Self::check`]).
    pub fn check_marker(&self, producer_id: i64, marker: &TxnMarker) -> Result<(), ProducerError> {
        match self.producers.get(&producer_id) {
            Some(e) if e.coordinator_epoch > marker.coordinator_epoch => {
                Err(ProducerError::CoordinatorFenced {
                    producer_id,
                    found: marker.coordinator_epoch,
                    current: e.coordinator_epoch,
                })
            }
            _ => Ok(()),
        }
    }

    /// Checks a batch (header as sent) against the state, without changing it.
    pub fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, ProducerError> {
        if h.producer_id < 0 {
            return Ok(SequenceCheck::Append);
        }
        // An unknown producer (new, or expired) may start at any sequence, as in Kafka (KIP-360).
        let Some(e) = self.producers.get(&h.producer_id) else { return Ok(SequenceCheck::Append) };
        if h.producer_epoch < e.epoch {
            return Err(ProducerError::FencedEpoch {
                producer_id: h.producer_id,
                found: h.producer_epoch,
                current: e.epoch,
            });
        }
        // Markers carry no sequence numbers (Kafka's appendEndTxnMarker checks epochs only).
        if h.is_control() {
            return Ok(SequenceCheck::Append);
        }
        // A coordinator's write (Kafka's AppendOrigin.COORDINATOR: offsets in `__consumer_offsets`)
        // carries no sequence and is not checked for one; clients' batches with a producer id always
        // carry one (the produce path refuses them otherwise).
        if h.base_sequence == NO_SEQUENCE {
            return Ok(SequenceCheck::Append);
        }
        if h.producer_epoch > e.epoch {
            if h.base_sequence != 0 {
                return Err(ProducerError::OutOfOrder {
                    producer_id: h.producer_id,
                    found: h.base_sequence,
                    expected: 0,
                });
            }
        } else {
            let last = last_sequence(h);
            if let Some(dup) = e.batches.iter().find(|b| b.first_seq == h.base_sequence && b.last_seq == last)
            {
                return Ok(SequenceCheck::Duplicate(*dup));
            }
            let expected = e.batches.back().map_or(h.base_sequence, |b| add_to_sequence(b.last_seq, 1));
            if h.base_sequence != expected {
                return Err(ProducerError::OutOfOrder {
                    producer_id: h.producer_id,
                    found: h.base_sequence,
                    expected,
                });
            }
        }
        if e.current_txn_first_offset.is_some() && !h.is_transactional() {
            return Err(ProducerError::NotTransactional { producer_id: h.producer_id });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records an appended batch (header with its assigned offsets) and, for a transaction marker
    /// (`marker`, parsed from a control batch), completes the producer's ongoing transaction, which
    /// is returned. Also used for replay.
    pub fn record(
        &mut self,
        h: &BatchHeader,
        marker: Option<TxnMarker>,
        now_ms: i64,
    ) -> Option<CompletedTxn> {
        if h.producer_id < 0 {
            return None;
        }
        let e = self.producers.entry(h.producer_id).or_insert_with(|| ProducerEntry {
            epoch: h.producer_epoch,
            batches: VecDeque::new(),
            last_append_ms: now_ms,
            coordinator_epoch: -1,
            current_txn_first_offset: None,
            last_timestamp: -1,
        });
        if h.producer_epoch != e.epoch {
            e.epoch = h.producer_epoch;
            e.batches.clear();
        }
        e.last_append_ms = now_ms;
        e.last_timestamp = h.max_timestamp;
        if h.is_control() {
            // Kafka's appendEndTxnMarker: a marker with no transaction ongoing only updates the state.
            let marker = marker?;
            e.coordinator_epoch = marker.coordinator_epoch;
            let first_offset = e.current_txn_first_offset.take()?;
            self.ongoing.remove(&first_offset);
            return Some(CompletedTxn {
                producer_id: h.producer_id,
                first_offset,
                last_offset: h.base_offset,
                aborted: !marker.commit,
            });
        }
        e.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: last_sequence(h),
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
        });
        while e.batches.len() > MAX_BATCHES {
            e.batches.pop_front();
        }
        if h.is_transactional() && e.current_txn_first_offset.is_none() {
            e.current_txn_first_offset = Some(h.base_offset);
            self.ongoing.insert(h.base_offset, h.producer_id);
        }
        None
    }

    /// Forgets the producers whose last batch or marker is at least `expiration_ms` older than
    /// `now_ms`, except those with a transaction ongoing (Kafka's `isProducerExpired`: the age is
    /// measured from the batch's max timestamp, `lastTimestamp`, not from when it was appended; an
    /// entry without one, from an older snapshot, counts from its append); returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            let last = if e.last_timestamp >= 0 { e.last_timestamp } else { e.last_append_ms };
            e.current_txn_first_offset.is_some() || now_ms.saturating_sub(last) < expiration_ms
        });
        before - self.producers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::{self, testing};

    fn header(pid: i64, epoch: i16, seq: i32, count: i32, base_offset: i64) -> BatchHeader {
        let mut b = testing::batch(count, 1, 1);
        b[43..51].copy_from_slice(&pid.to_be_bytes());
        b[51..53].copy_from_slice(&epoch.to_be_bytes());
        b[53..57].copy_from_slice(&seq.to_be_bytes());
        batch::set_base_offset(&mut b, base_offset);
        BatchHeader::parse(&b).unwrap()
    }

    #[test]
    fn in_order_duplicate_gap_and_fencing() {
        let mut s = ProducerStates::default();
        let a = header(7, 0, 0, 3, 100);
        assert_eq!(s.check(&a), Ok(SequenceCheck::Append));
        s.record(&a, None, 1);
        // The same batch again is a duplicate carrying its original offsets.
        let dup = s.check(&header(7, 0, 0, 3, 0)).unwrap();
        assert_eq!(
            dup,
            SequenceCheck::Duplicate(BatchMeta {
                first_seq: 0,
                last_seq: 2,
                base_offset: 100,
                last_offset: 102
            })
        );
        // Next in sequence is fine; a gap is not.
        assert_eq!(s.check(&header(7, 0, 3, 1, 0)), Ok(SequenceCheck::Append));
        assert!(matches!(
            s.check(&header(7, 0, 5, 1, 0)),
            Err(ProducerError::OutOfOrder { expected: 3, .. })
        ));
        // A new epoch must start at 0; an old epoch is fenced.
        assert!(matches!(s.check(&header(7, 1, 3, 1, 0)), Err(ProducerError::OutOfOrder { .. })));
        let bumped = header(7, 1, 0, 1, 103);
        assert_eq!(s.check(&bumped), Ok(SequenceCheck::Append));
        s.record(&bumped, None, 2);
        assert!(matches!(s.check(&header(7, 0, 3, 1, 0)), Err(ProducerError::FencedEpoch { .. })));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut s = ProducerStates::default();
        for i in 0..7 {
            s.record(&header(1, 0, i, 1, i64::from(i)), None, 0);
        }
        assert_eq!(s.get(1).unwrap().batches.len(), MAX_BATCHES);
        assert!(matches!(s.check(&header(1, 0, 6, 1, 0)), Ok(SequenceCheck::Duplicate(_))));
        assert!(matches!(s.check(&header(1, 0, 0, 1, 0)), Err(ProducerError::OutOfOrder { .. })));
    }

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(add_to_sequence(i32::MAX, 1), 0);
        assert_eq!(add_to_sequence(i32::MAX - 1, 3), 1);
        let mut s = ProducerStates::default();
        s.record(&header(1, 0, i32::MAX - 1, 2, 0), None, 0);
        assert_eq!(s.check(&header(1, 0, 0, 1, 0)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn producers_expire_by_their_last_batch_timestamp() {
        let at = |pid: i64, max_timestamp: i64| {
            let mut b = testing::batch(1, 1, max_timestamp);
            b[43..51].copy_from_slice(&pid.to_be_bytes());
            b[53..57].copy_from_slice(&0i32.to_be_bytes());
            BatchHeader::parse(&b).unwrap()
        };
        let mut s = ProducerStates::default();
        // Appended late (broker time 2000) but timestamped 0: Kafka ages it from the timestamp.
        s.record(&at(1, 0), None, 2000);
        s.record(&at(2, 1000), None, 1000);
        s.record(&at(3, 1400), None, 1400);
        // Kafka expires at exactly the expiration (`now - lastTimestamp >= producerIdExpirationMs`).
        assert_eq!(s.expire(1600, 600), 2);
        assert!(s.get(1).is_none() && s.get(2).is_none() && s.get(3).is_some());
    }
}
