//! Record batch (magic v2) headers: parsing, validation and the in-place edits the log makes.
//!
//! Byte layout of a batch header (all big-endian), as on the wire and on disk:
//!
//! ```text
//!  0 baseOffset i64          outside the CRC: the log writes the assigned offset here
//!  8 batchLength i32         bytes after this field
//! 12 partitionLeaderEpoch i32
//! 16 magic i8 (= 2)
//! 17 crc u32                 CRC32C of bytes [21, 12 + batchLength)
//! 21 attributes i16          bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control,
//!                            6 delete horizon (KIP-534: baseTimestamp holds it; set by the cleaner)
//! 23 lastOffsetDelta i32
//! 27 baseTimestamp i64
//! 35 maxTimestamp i64
//! 43 producerId i64
//! 51 producerEpoch i16
//! 53 baseSequence i32
//! 57 recordCount i32
//! 61 records...
//! ```
//!
//! Nothing here decodes records: validation and offset assignment touch only the header, so batches
//! travel from the socket to the segment file as they came.

use thiserror::Error;

/// Size of the fixed batch header.
pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength` counts: baseOffset + batchLength.
pub const LOG_OVERHEAD: usize = 12;
/// Leading bytes the log rewrites when appending (baseOffset, batchLength, partitionLeaderEpoch): all
/// before the magic byte and outside the CRC.
pub const PATCHED_PREFIX: usize = 16;
/// Attribute bit: timestamps are LogAppendTime.
pub const ATTR_LOG_APPEND_TIME: i16 = 1 << 3;
/// Attribute bit: the batch belongs to a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 1 << 4;
/// Attribute bit: control batch (transaction markers).
pub const ATTR_CONTROL: i16 = 1 << 5;
/// Attribute bit: baseTimestamp is the delete horizon of the batch's tombstones (KIP-534).
pub const ATTR_DELETE_HORIZON: i16 = 1 << 6;
/// Attribute bits holding the compression codec.
pub const ATTR_CODEC_MASK: i16 = 0x07;

/// Why a batch was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Kafka: CORRUPT_MESSAGE.
    #[error("corrupt record batch: {0}")]
    Corrupt(&'static str),
    /// Kafka: INVALID_RECORD.
    #[error("invalid record batch: {0}")]
    Invalid(&'static str),
    /// Kafka: UNSUPPORTED_FOR_MESSAGE_FORMAT (magic v0/v1).
    #[error("record batch magic {0} is not supported")]
    UnsupportedMagic(i8),
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// The header fields of one batch. Constructed only from at least [`HEADER_LEN`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `b`; `None` if fewer than [`HEADER_LEN`] bytes.
    pub fn parse(b: &[u8]) -> Option<BatchHeader> {
        if b.len() < HEADER_LEN {
            return None;
        }
        Some(BatchHeader {
            base_offset: i64_at(b, 0),
            batch_length: i32_at(b, 8),
            partition_leader_epoch: i32_at(b, 12),
            magic: b[16] as i8,
            crc: u32::from_be_bytes([b[17], b[18], b[19], b[20]]),
            attributes: i16_at(b, 21),
            last_offset_delta: i32_at(b, 23),
            base_timestamp: i64_at(b, 27),
            max_timestamp: i64_at(b, 35),
            producer_id: i64_at(b, 43),
            producer_epoch: i16_at(b, 51),
            base_sequence: i32_at(b, 53),
            record_count: i32_at(b, 57),
        })
    }

    /// Total bytes of the batch including baseOffset and batchLength.
    pub fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn compression_codec(&self) -> i16 {
        self.attributes & ATTR_CODEC_MASK
    }
}

/// Reads just baseOffset and batchLength (the first 12 bytes), for walking a file.
pub fn peek_offset_and_len(b: &[u8]) -> Option<(i64, i32)> {
    if b.len() < LOG_OVERHEAD {
        return None;
    }
    Some((i64_at(b, 0), i32_at(b, 8)))
}

/// Checks one complete produced batch (exactly `b.len()` bytes): magic, lengths, counts and CRC32C.
pub fn validate(b: &[u8]) -> Result<BatchHeader, BatchError> {
    let h = check_framing(b)?;
    if h.record_count <= 0 && !h.is_control() {
        return Err(BatchError::Invalid("batch has no records"));
    }
    if h.last_offset_delta < 0 || (h.record_count > 0 && h.last_offset_delta != h.record_count - 1) {
        return Err(BatchError::Invalid("last offset delta does not match the record count"));
    }
    Ok(h)
}

/// Checks one complete batch as stored in a segment: magic, lengths and CRC32C. Looser than
/// [`validate`] on counts, because the log cleaner keeps a batch's offset range while removing
/// records (fewer records than offsets) and keeps a producer's last batch even when empty (Kafka's
/// `DefaultRecordBatch.writeEmptyHeader`).
pub fn validate_stored(b: &[u8]) -> Result<BatchHeader, BatchError> {
    let h = check_framing(b)?;
    if h.last_offset_delta < 0 || h.record_count < 0 || h.record_count > h.last_offset_delta.saturating_add(1)
    {
        return Err(BatchError::Invalid("last offset delta does not match the record count"));
    }
    Ok(h)
}

/// Magic, lengths and CRC32C of one complete batch.
fn check_framing(b: &[u8]) -> Result<BatchHeader, BatchError> {
    if b.len() < 17 {
        return Err(BatchError::Corrupt("batch shorter than its header"));
    }
    let magic = b[16] as i8;
    if magic != 2 {
        return if (0..2).contains(&magic) {
            Err(BatchError::UnsupportedMagic(magic))
        } else {
            Err(BatchError::Corrupt("unknown magic"))
        };
    }
    let h = BatchHeader::parse(b).ok_or(BatchError::Corrupt("batch shorter than its header"))?;
    if h.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 || h.total_len() != b.len() {
        return Err(BatchError::Corrupt("batch length does not match its size"));
    }
    if crc32c::crc32c(&b[21..]) != h.crc {
        return Err(BatchError::Corrupt("CRC32C mismatch"));
    }
    Ok(h)
}

/// Splits a concatenation of whole batches (a Produce `records` field) into batch byte ranges.
pub fn split_batches(b: &[u8]) -> Result<Vec<std::ops::Range<usize>>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < b.len() {
        let (_, len) = peek_offset_and_len(&b[pos..]).ok_or(BatchError::Corrupt("truncated batch header"))?;
        let total = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(LOG_OVERHEAD))
            .ok_or(BatchError::Corrupt("negative batch length"))?;
        let end = pos
            .checked_add(total)
            .filter(|e| *e <= b.len())
            .ok_or(BatchError::Corrupt("batch longer than the data"))?;
        out.push(pos..end);
        pos = end;
    }
    Ok(out)
}

/// The first [`PATCHED_PREFIX`] bytes of `batch` as the log writes them: with the assigned base offset
/// and the leader epoch (both outside the CRC). `None` for a batch shorter than that.
pub fn patched_prefix(batch: &[u8], base_offset: i64, leader_epoch: i32) -> Option<[u8; PATCHED_PREFIX]> {
    let mut prefix: [u8; PATCHED_PREFIX] = batch.get(..PATCHED_PREFIX)?.try_into().ok()?;
    set_base_offset(&mut prefix, base_offset);
    set_leader_epoch(&mut prefix, leader_epoch);
    Some(prefix)
}

/// Writes the assigned base offset into a batch (outside the CRC: no recompute needed).
pub fn set_base_offset(b: &mut [u8], base_offset: i64) {
    b[..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Writes the partition leader epoch (outside the CRC).
pub fn set_leader_epoch(b: &mut [u8], epoch: i32) {
    b[12..16].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch LogAppendTime with `now_ms` as its max timestamp and recomputes the CRC.
pub fn set_log_append_time(b: &mut [u8], now_ms: i64) {
    set_max_timestamp(b, now_ms, true);
}

/// Sets the batch's max timestamp (ms) and timestamp type (LogAppendTime or CreateTime) and
/// recomputes the CRC, as Kafka's `DefaultRecordBatch.setMaxTimestamp`. `b` is a whole batch.
pub fn set_max_timestamp(b: &mut [u8], max_timestamp: i64, log_append_time: bool) {
    let attrs = i16_at(b, 21);
    let attrs = if log_append_time { attrs | ATTR_LOG_APPEND_TIME } else { attrs & !ATTR_LOG_APPEND_TIME };
    b[21..23].copy_from_slice(&attrs.to_be_bytes());
    b[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Valid batches built without an encoder (uncompressed; records are opaque to the log), for tests,
/// benchmarks and the crash-test appender. The broker never uses them.
pub mod testing {

    /// A valid magic-v2 batch of `count` records, each with a null key and a value of `payload_len`
    /// filler bytes, all timestamped `max_timestamp`.
    pub fn batch(count: i32, payload_len: usize, max_timestamp: i64) -> Vec<u8> {
        let value = vec![0xABu8; payload_len];
        let records: Vec<u8> =
            (0..count.max(0)).flat_map(|i| record(i, 0, None, Some(&value), &[])).collect();
        batch_with(count, &records, max_timestamp)
    }

    /// One record's bytes (length prefix included): offset and timestamp deltas, key, value (`None`
    /// is null) and headers (key, value).
    pub fn record(
        offset_delta: i32,
        timestamp_delta: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&[u8], Option<&[u8]>)],
    ) -> Vec<u8> {
        let mut body = vec![0u8]; // attributes
        put_varlong(&mut body, timestamp_delta);
        put_varlong(&mut body, offset_delta.into());
        let put_field = |b: &mut Vec<u8>, f: Option<&[u8]>| match f {
            Some(f) => {
                put_varlong(b, f.len() as i64);
                b.extend_from_slice(f);
            }
            None => put_varlong(b, -1),
        };
        put_field(&mut body, key);
        put_field(&mut body, value);
        put_varlong(&mut body, headers.len() as i64);
        for (k, v) in headers {
            put_field(&mut body, Some(k));
            put_field(&mut body, *v);
        }
        let mut out = Vec::with_capacity(body.len() + 5);
        put_varlong(&mut out, body.len() as i64);
        out.extend_from_slice(&body);
        out
    }

    /// Appends `v` as a zigzag varint (a varlong; for values that fit an i32 the bytes are the same).
    pub fn put_varlong(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.push((z as u8) | 0x80);
            z >>= 7;
        }
        out.push(z as u8);
    }

    /// A batch of `count` records whose (uncompressed) bytes are `records`, compressed with `codec`
    /// (attribute bits 0-2; 0-4 compress as Kafka does, any other id leaves the bytes as they are).
    pub fn compressed_batch(count: i32, records: &[u8], codec: i16, max_timestamp: i64) -> Vec<u8> {
        use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
        let fill = |b: &mut bytes::BytesMut| -> anyhow::Result<()> {
            b.extend_from_slice(records);
            Ok(())
        };
        let mut out = bytes::BytesMut::new();
        let compressed = match codec {
            1 => Gzip::compress(&mut out, fill),
            2 => Snappy::compress(&mut out, fill),
            3 => Lz4::compress(&mut out, fill),
            4 => Zstd::compress(&mut out, fill),
            _ => fill(&mut out),
        };
        if compressed.is_err() {
            out = bytes::BytesMut::from(records);
        }
        with_codec(batch_with(count, &out, max_timestamp), codec)
    }

    /// Sets the codec bits of a batch's attributes and recomputes its CRC.
    pub fn with_codec(mut b: Vec<u8>, codec: i16) -> Vec<u8> {
        let attrs = (super::i16_at(&b, 21) & !super::ATTR_CODEC_MASK) | (codec & super::ATTR_CODEC_MASK);
        b[21..23].copy_from_slice(&attrs.to_be_bytes());
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// A magic-v2 batch claiming `count` records whose bytes are `records` (taken as they are).
    pub fn batch_with(count: i32, records: &[u8], max_timestamp: i64) -> Vec<u8> {
        let mut b = Vec::with_capacity(super::HEADER_LEN + records.len());
        b.extend_from_slice(&0i64.to_be_bytes());
        let batch_length = (super::HEADER_LEN - super::LOG_OVERHEAD + records.len()) as i32;
        b.extend_from_slice(&batch_length.to_be_bytes());
        b.extend_from_slice(&0i32.to_be_bytes()); // leader epoch
        b.push(2); // magic
        b.extend_from_slice(&0u32.to_be_bytes()); // crc, set below
        b.extend_from_slice(&0i16.to_be_bytes()); // attributes
        b.extend_from_slice(&count.wrapping_sub(1).to_be_bytes());
        b.extend_from_slice(&max_timestamp.to_be_bytes()); // base timestamp
        b.extend_from_slice(&max_timestamp.to_be_bytes());
        b.extend_from_slice(&(-1i64).to_be_bytes());
        b.extend_from_slice(&(-1i16).to_be_bytes());
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.extend_from_slice(&count.to_be_bytes());
        b.extend_from_slice(records);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::testing::batch;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn valid_batch_passes_and_reports_header() {
        let b = batch(3, 10, 1234);
        let h = validate(&b).unwrap();
        assert_eq!((h.record_count, h.last_offset_delta, h.max_timestamp), (3, 2, 1234));
        assert_eq!(h.total_len(), b.len());
    }

    #[test]
    fn offset_and_epoch_do_not_touch_the_crc() {
        let mut b = batch(2, 5, 1);
        set_base_offset(&mut b, 77);
        set_leader_epoch(&mut b, 4);
        let h = validate(&b).unwrap();
        assert_eq!((h.base_offset, h.partition_leader_epoch, h.last_offset()), (77, 4, 78));
    }

    #[test]
    fn log_append_time_recomputes_the_crc() {
        let mut b = batch(1, 5, 1);
        set_log_append_time(&mut b, 999);
        let h = validate(&b).unwrap();
        assert_eq!(h.max_timestamp, 999);
        assert!(h.attributes & ATTR_LOG_APPEND_TIME != 0);
    }

    #[test]
    fn refusals_have_kafka_meanings() {
        let good = batch(2, 5, 1);
        let mut bad_crc = good.clone();
        bad_crc[70] ^= 1;
        assert_eq!(validate(&bad_crc), Err(BatchError::Corrupt("CRC32C mismatch")));
        let mut v1 = good.clone();
        v1[16] = 1;
        assert_eq!(validate(&v1), Err(BatchError::UnsupportedMagic(1)));
        assert!(matches!(validate(&good[..good.len() - 1]), Err(BatchError::Corrupt(_))));
        let mut wrong_delta = good.clone();
        wrong_delta[23..27].copy_from_slice(&5i32.to_be_bytes());
        let crc = crc32c::crc32c(&wrong_delta[21..]);
        wrong_delta[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(validate(&wrong_delta), Err(BatchError::Invalid(_))));
    }

    #[test]
    fn split_finds_each_batch_and_refuses_lying_lengths() {
        let mut all = batch(1, 3, 1);
        all.extend(batch(4, 2, 2));
        let ranges = split_batches(&all).unwrap();
        assert_eq!(ranges.len(), 2);
        assert!(validate(&all[ranges[1].clone()]).is_ok());
        let mut lie = all.clone();
        lie[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(split_batches(&lie).is_err());
        lie[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(split_batches(&lie).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = validate(&bytes);
            let _ = split_batches(&bytes);
            let _ = BatchHeader::parse(&bytes);
        }

        #[test]
        fn any_single_bit_flip_in_crc_range_is_caught(count in 1i32..5, len in 0usize..40, flip in 0usize..1000) {
            let mut b = batch(count, len, 5);
            let at = 21 + flip % (b.len() - 21);
            b[at] ^= 0x10;
            prop_assert!(validate(&b).is_err());
        }
    }
}
