//! Transactions as one partition's log sees them: transaction markers, the last stable offset and
//! the aborted transactions a `read_committed` consumer needs. The log knows nothing of the
//! coordinator; it sees transactional batches, the markers the coordinator has it write, and
//! producer state.
//!
//! Kafka classes followed: `ProducerAppendInfo` (the rules on append), `ProducerStateManager`
//! (ongoing transactions and the first unstable offset), `EndTransactionMarker` and
//! `ControlRecordType` (the marker's bytes), `TransactionIndex` and `AbortedTxn` (the aborted
//! list), `LocalLog.collectAbortedTransactions` (what a fetch returns).
//!
//! - A transactional batch (attribute bit 4) starts a transaction for its producer at its first
//!   offset unless one is ongoing ([`super::producer_state::ProducerStates::record`]). Until the
//!   producer's marker, its non-transactional batches are refused (INVALID_TXN_STATE).
//! - A marker is a control batch (attribute bits 4 and 5) of one record: key = ControlRecordType
//!   (version i16 = 0, type i16: 0 ABORT, 1 COMMIT), value = EndTxnMarker (version i16 = 0,
//!   coordinatorEpoch i32), base sequence -1, never compressed. It completes the producer's ongoing
//!   transaction; an abort is remembered as an [`AbortedTxn`].
//! - The last stable offset (LSO) is the first offset of the oldest ongoing transaction, or the high
//!   watermark (on one node: the log end offset) when none is ongoing; never below the log start.
//!
//! Durability: like all producer state, a function of the log. Ongoing transactions live in the
//! producer entries, saved in the producer-state snapshot (written at each roll and at close) and
//! rebuilt from the batches after it at start-up, markers parsed from their bytes. Aborted
//! transactions are kept as Kafka keeps them, in the `.txnindex` of the segment holding their
//! marker ([`super::txn_index`]), so they go with their segment under retention and DeleteRecords.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::EndTxnMarker;
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde::{Deserialize, Serialize};

use super::batch::{BatchError, BatchHeader};
use super::producer_state::ProducerStates;

/// ControlRecordType ids of the two transaction markers.
pub const CONTROL_ABORT: i16 = 0;
pub const CONTROL_COMMIT: i16 = 1;
/// Key and value schema version written (Kafka's `CURRENT_CONTROL_RECORD_KEY_VERSION`,
/// `CURRENT_END_TXN_MARKER_VERSION`).
const MARKER_VERSION: i16 = 0;

/// An end-transaction marker: the decision and the coordinator epoch that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnMarker {
    /// COMMIT (true) or ABORT (false).
    pub commit: bool,
    /// Epoch of the transaction coordinator that decided (Kafka's `coordinatorEpoch`).
    pub coordinator_epoch: i32,
}

/// A transaction a marker completed (Kafka's `CompletedTxn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    /// Offset of the transaction's first batch in this partition.
    pub first_offset: i64,
    /// Offset of the marker.
    pub last_offset: i64,
    pub aborted: bool,
}

/// An aborted transaction (Kafka's `AbortedTxn`, one `.txnindex` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedTxn {
    pub producer_id: i64,
    /// Offset of the transaction's first batch in this partition.
    pub first_offset: i64,
    /// Offset of its ABORT marker.
    pub last_offset: i64,
    /// The last stable offset once it was aborted: the first offset of the oldest other ongoing
    /// transaction, or the marker's offset + 1.
    pub last_stable_offset: i64,
}

/// Records an appended (or replayed) batch in the producer state (`marker`: a control batch's
/// parsed marker). Returns the aborted transaction when it was an ABORT marker completing one, for
/// the segment's `.txnindex` (Kafka's `ProducerStateManager.update` / `completeTxn`, whose
/// `lastStableOffset` is the first offset of the oldest transaction still ongoing, or the marker's
/// offset + 1).
pub fn apply(
    producers: &mut ProducerStates,
    h: &BatchHeader,
    marker: Option<TxnMarker>,
    now_ms: i64,
) -> Option<AbortedTxn> {
    let done = producers.record(h, marker, now_ms)?;
    done.aborted.then(|| AbortedTxn {
        producer_id: done.producer_id,
        first_offset: done.first_offset,
        last_offset: done.last_offset,
        last_stable_offset: producers.first_unstable_offset().unwrap_or(done.last_offset + 1),
    })
}

/// The markers of the control batches among `headers` (batches at `ranges` of `data`), by batch
/// index; `None` (no allocation) when there is no control batch, as for every produced batch.
pub fn markers_of(
    data: &[u8],
    ranges: &[std::ops::Range<usize>],
    headers: &[BatchHeader],
) -> Result<Option<Vec<Option<TxnMarker>>>, BatchError> {
    if !headers.iter().any(BatchHeader::is_control) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(headers.len());
    for (r, h) in ranges.iter().zip(headers) {
        out.push(match h.is_control() {
            true => {
                let bytes = data.get(r.clone()).ok_or(BatchError::Corrupt("short batch"))?;
                parse_marker(bytes)?
            }
            false => None,
        });
    }
    Ok(Some(out))
}

/// The last stable offset: the oldest ongoing transaction's first offset (`first_unstable`), or
/// the high watermark; never below the log start nor above the high watermark (Kafka's
/// `UnifiedLog.lastStableOffset` with `maybeIncrementFirstUnstableOffset`).
pub fn last_stable_offset(first_unstable: Option<i64>, log_start: i64, high_watermark: i64) -> i64 {
    first_unstable.map_or(high_watermark, |f| f.max(log_start).min(high_watermark))
}

/// The leading whole batches of `records` that end below `lso` (a slice, no copy).
pub fn below(records: &Bytes, lso: i64) -> Bytes {
    let mut end = 0;
    while let Some(h) = records.get(end..).and_then(BatchHeader::parse) {
        if h.last_offset() >= lso || end + h.total_len() > records.len() {
            break;
        }
        end += h.total_len();
    }
    records.slice(..end)
}

/// Offset after the last whole batch of `records`, if there is one (headers only, no allocation).
pub fn end_offset(records: &[u8]) -> Option<i64> {
    let (mut pos, mut end) = (0, None);
    while let Some(h) = records.get(pos..).and_then(BatchHeader::parse) {
        if pos + h.total_len() > records.len() {
            break;
        }
        end = Some(h.last_offset() + 1);
        pos += h.total_len();
    }
    end
}

/// The marker batch Kafka's `MemoryRecords.withEndTransactionMarker` builds: magic 2, control and
/// transactional, base offset 0 (assigned on append), base sequence -1, one record timestamped
/// `now_ms` (ms).
pub fn marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    marker: TxnMarker,
    now_ms: i64,
) -> Result<Vec<u8>, BatchError> {
    let invalid = |_| BatchError::Invalid("transaction marker does not encode");
    let kind = if marker.commit { CONTROL_COMMIT } else { CONTROL_ABORT };
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&MARKER_VERSION.to_be_bytes());
    key.extend_from_slice(&kind.to_be_bytes());
    let mut value = BytesMut::with_capacity(6);
    value.extend_from_slice(&MARKER_VERSION.to_be_bytes());
    EndTxnMarker::default()
        .with_coordinator_epoch(marker.coordinator_epoch)
        .encode(&mut value, 0)
        .map_err(invalid)?;
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms,
        key: Some(Bytes::from(key)),
        value: Some(value.freeze()),
        headers: Default::default(),
    };
    let mut out = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut out, std::slice::from_ref(&record), &options).map_err(invalid)?;
    Ok(out.to_vec())
}

/// The marker in a control batch (whole batch bytes), as Kafka's `EndTransactionMarker.deserialize`
/// reads it. `Ok(None)` for a control batch without records (Kafka: a transaction cleaned away).
pub fn parse_marker(batch: &[u8]) -> Result<Option<TxnMarker>, BatchError> {
    let h = BatchHeader::parse(batch).ok_or(BatchError::Corrupt("control batch shorter than its header"))?;
    if !h.is_control() {
        return Err(BatchError::Invalid("not a control batch"));
    }
    if h.compression_codec() != 0 {
        return Err(BatchError::Invalid("compressed control batch"));
    }
    if h.record_count <= 0 {
        return Ok(None);
    }
    let mut buf = batch;
    let set =
        RecordBatchDecoder::decode(&mut buf).map_err(|_| BatchError::Invalid("unreadable control record"))?;
    let Some(record) = set.records.first() else { return Ok(None) };
    let key = record.key.as_deref().unwrap_or_default();
    let (Some(version), Some(kind)) = (i16_at(key, 0), i16_at(key, 2)) else {
        return Err(BatchError::Invalid("control record key shorter than 4 bytes"));
    };
    if version < 0 {
        return Err(BatchError::Invalid("negative control record key version"));
    }
    let commit = match kind {
        CONTROL_COMMIT => true,
        CONTROL_ABORT => false,
        _ => return Err(BatchError::Invalid("control record is not a transaction marker")),
    };
    let value = record.value.as_deref().unwrap_or_default();
    match (i16_at(value, 0), value.get(2..)) {
        (Some(v), Some(mut rest)) if v >= 0 && rest.len() >= 4 => {
            let m =
                EndTxnMarker::decode(&mut rest, 0).map_err(|_| BatchError::Invalid("unreadable marker"))?;
            Ok(Some(TxnMarker { commit, coordinator_epoch: m.coordinator_epoch }))
        }
        _ => Err(BatchError::Invalid("invalid end transaction marker value")),
    }
}

fn i16_at(b: &[u8], at: usize) -> Option<i16> {
    b.get(at..at + 2)?.try_into().ok().map(i16::from_be_bytes)
}

#[cfg(test)]
#[path = "transactions_tests.rs"]
mod tests;
