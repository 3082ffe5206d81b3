//! The records inside one stored batch, as the cleaner reads and rewrites them.
//!
//! A magic-v2 record (after the batch header, possibly compressed as one stream):
//!
//! ```text
//! length varint | attributes i8 | timestampDelta varlong | offsetDelta varint |
//! keyLength varint, key | valueLength varint, value | headerCount varint, headers...
//! ```
//!
//! The batch keeps its base offset, so offset deltas and everything after them are copied as they
//! are; only the timestamp delta (and so the length) changes, because a rebuilt batch's base
//! timestamp is its first kept record's timestamp or the delete horizon (Kafka's
//! `MemoryRecordsBuilder`). Rebuilt batches are recompressed with the original codec through
//! kafka-protocol's compressors and get a new CRC32C; everything here is in memory.

use std::io::{self, Read};

use bytes::BytesMut;
use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

use crate::log::batch::{
    BatchHeader, ATTR_CONTROL, ATTR_DELETE_HORIZON, ATTR_LOG_APPEND_TIME, ATTR_TRANSACTIONAL, HEADER_LEN,
};
use crate::log::decompress;

/// Kafka's `RecordBatch.NO_TIMESTAMP`.
const NO_TIMESTAMP: i64 = -1;

/// One record of a batch, borrowed from the batch's (decompressed) record bytes.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    /// Absolute offset (base offset + offset delta).
    pub offset: i64,
    /// The record's timestamp (the batch's max timestamp for LogAppendTime batches).
    pub timestamp: i64,
    /// The key; `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// Whether the value is non-null (`false`: a tombstone).
    pub has_value: bool,
    /// Record attributes byte (unused by Kafka, kept).
    attributes: u8,
    /// Bytes from the offset delta to the end of the record.
    tail: &'a [u8],
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads an unsigned LEB128 varint of at most `max` bytes at `*pos`.
fn read_unsigned(b: &[u8], pos: &mut usize, max: u32) -> io::Result<u64> {
    let mut v = 0u64;
    for i in 0..max {
        let byte = *b.get(*pos).ok_or_else(|| invalid("record ends inside a varint"))?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(invalid("varint too long"))
}

fn varint(b: &[u8], pos: &mut usize) -> io::Result<i32> {
    let raw = read_unsigned(b, pos, 5)? as u32;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

fn varlong(b: &[u8], pos: &mut usize) -> io::Result<i64> {
    let raw = read_unsigned(b, pos, 10)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn put_unsigned(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint(out: &mut Vec<u8>, v: i32) {
    put_unsigned(out, ((v << 1) ^ (v >> 31)) as u32 as u64);
}

fn put_varlong(out: &mut Vec<u8>, v: i64) {
    put_unsigned(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// The record bytes of a whole stored batch `batch` (decompressed when it is compressed), at most
/// `max_bytes` of them.
pub fn record_bytes(h: &BatchHeader, batch: &[u8], max_bytes: u64) -> io::Result<Vec<u8>> {
    let body = batch.get(HEADER_LEN..).ok_or_else(|| invalid("batch shorter than its header"))?;
    let codec = h.compression_codec();
    if codec == 0 {
        return Ok(body.to_vec());
    }
    let reader = decompress::reader(codec, body, max_bytes as usize)
        .ok_or_else(|| invalid("unknown compression codec"))??;
    let mut out = Vec::new();
    reader.take(max_bytes.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > max_bytes {
        return Err(invalid("batch decompresses beyond the cleaner's bound"));
    }
    Ok(out)
}

/// Parses the `h.record_count` records of `bytes` (from [`record_bytes`]).
pub fn parse<'a>(h: &BatchHeader, bytes: &'a [u8]) -> io::Result<Vec<RecordView<'a>>> {
    let log_append_time = h.attributes & ATTR_LOG_APPEND_TIME != 0;
    let mut out = Vec::with_capacity(h.record_count.clamp(0, 4096) as usize);
    let mut pos = 0usize;
    for _ in 0..h.record_count.max(0) {
        let len = usize::try_from(varint(bytes, &mut pos)?).map_err(|_| invalid("negative record length"))?;
        let end =
            pos.checked_add(len).filter(|e| *e <= bytes.len()).ok_or_else(|| invalid("short record"))?;
        let rec = bytes.get(pos..end).ok_or_else(|| invalid("short record"))?;
        let mut p = 0usize;
        let attributes = *rec.first().ok_or_else(|| invalid("empty record"))?;
        p += 1;
        let ts_delta = varlong(rec, &mut p)?;
        let tail_start = p;
        let offset_delta = varint(rec, &mut p)?;
        let key_len = varint(rec, &mut p)?;
        let key = if key_len < 0 {
            None
        } else {
            let k_end = p + key_len as usize;
            let k = rec.get(p..k_end).ok_or_else(|| invalid("short key"))?;
            p = k_end;
            Some(k)
        };
        let value_len = varint(rec, &mut p)?;
        out.push(RecordView {
            offset: h.base_offset + i64::from(offset_delta),
            timestamp: if log_append_time {
                h.max_timestamp
            } else {
                h.base_timestamp.wrapping_add(ts_delta)
            },
            key,
            has_value: value_len >= 0,
            attributes,
            tail: rec.get(tail_start..).unwrap_or_default(),
        });
        pos = end;
    }
    Ok(out)
}

/// Whether the batch carries a delete horizon, and which (KIP-534).
pub fn delete_horizon(h: &BatchHeader) -> Option<i64> {
    (h.attributes & ATTR_DELETE_HORIZON != 0).then_some(h.base_timestamp)
}

/// Compresses `raw` record bytes with `codec` (kafka-protocol's compressors, their default levels).
fn compress(codec: i16, raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = BytesMut::new();
    let put = |b: &mut BytesMut| {
        b.extend_from_slice(raw);
        Ok(())
    };
    let r = match codec {
        0 => {
            out.extend_from_slice(raw);
            Ok(())
        }
        1 => Gzip::compress(&mut out, put),
        2 => Snappy::compress(&mut out, put),
        3 => Lz4::compress(&mut out, put),
        4 => Zstd::compress(&mut out, put),
        _ => return Err(invalid("unknown compression codec")),
    };
    r.map_err(|e| io::Error::other(e.to_string()))?;
    Ok(out.to_vec())
}

/// Writes the header fields from the attributes on (offset 21) and the CRC over them.
fn finish(out: &mut [u8]) {
    let len = (out.len() - 12) as i32;
    out[8..12].copy_from_slice(&len.to_be_bytes());
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// The fixed header of a rebuilt batch: `h`'s offsets, producer fields and epoch, with the given
/// attributes, timestamps and count (length and CRC filled by [`finish`]).
fn header(h: &BatchHeader, attributes: i16, base_ts: i64, max_ts: i64, count: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN);
    out.extend_from_slice(&h.base_offset.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&h.partition_leader_epoch.to_be_bytes());
    out.push(2);
    out.extend_from_slice(&0u32.to_be_bytes());
    out.extend_from_slice(&attributes.to_be_bytes());
    out.extend_from_slice(&h.last_offset_delta.to_be_bytes());
    out.extend_from_slice(&base_ts.to_be_bytes());
    out.extend_from_slice(&max_ts.to_be_bytes());
    out.extend_from_slice(&h.producer_id.to_be_bytes());
    out.extend_from_slice(&h.producer_epoch.to_be_bytes());
    out.extend_from_slice(&h.base_sequence.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out
}

/// A batch holding only `kept` of `h`'s records, with `h`'s base and last offset, producer id, epoch,
/// base sequence and leader epoch (Kafka's `buildRetainedRecordsInto`). `horizon` is the delete
/// horizon to stamp (KIP-534), if any; `kept` must not be empty.
pub fn rebuild(h: &BatchHeader, kept: &[RecordView<'_>], horizon: Option<i64>) -> io::Result<Vec<u8>> {
    let first = kept.first().ok_or_else(|| invalid("no record to keep"))?;
    let log_append_time = h.attributes & ATTR_LOG_APPEND_TIME != 0;
    let base_ts = horizon.unwrap_or(first.timestamp);
    let max_ts = if log_append_time {
        h.max_timestamp
    } else {
        kept.iter().map(|r| r.timestamp).max().unwrap_or(first.timestamp)
    };
    let mut raw = Vec::new();
    let mut rec = Vec::new();
    for r in kept {
        rec.clear();
        rec.push(r.attributes);
        put_varlong(&mut rec, r.timestamp.wrapping_sub(base_ts));
        rec.extend_from_slice(r.tail);
        put_varint(&mut raw, rec.len() as i32);
        raw.extend_from_slice(&rec);
    }
    let codec = h.compression_codec();
    let mut attributes = h.attributes & !ATTR_DELETE_HORIZON;
    if horizon.is_some() {
        attributes |= ATTR_DELETE_HORIZON;
    }
    let mut out = header(h, attributes, base_ts, max_ts, kept.len() as i32);
    out.extend_from_slice(&compress(codec, &raw)?);
    finish(&mut out);
    Ok(out)
}

/// An empty batch keeping `h`'s base and last offset, producer id, epoch, base sequence, leader
/// epoch, timestamp type, transactional and control flags and max timestamp, with no records, no
/// codec, no delete horizon and a base timestamp of -1 (Kafka's `DefaultRecordBatch.writeEmptyHeader`,
/// which `MemoryRecords.filterTo` writes for `RETAIN_EMPTY`): a producer's last batch whose records
/// were all removed, kept so its last sequence survives.
pub fn empty(h: &BatchHeader) -> Vec<u8> {
    let attributes = h.attributes & (ATTR_LOG_APPEND_TIME | ATTR_TRANSACTIONAL | ATTR_CONTROL);
    let mut out = header(h, attributes, NO_TIMESTAMP, h.max_timestamp, 0);
    finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch;
    use bytes::Bytes;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    fn rec(offset: i64, key: &str, value: Option<&str>) -> Record {
        let mut headers = kafka_protocol::indexmap::IndexMap::new();
        headers.insert(StrBytes::from_static_str("h"), Some(Bytes::from_static(b"v")));
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 3,
            producer_id: 7,
            producer_epoch: 1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: offset as i32,
            timestamp: 1000 + offset,
            key: Some(Bytes::from(key.to_string())),
            value: value.map(|v| Bytes::from(v.to_string())),
            headers,
        }
    }

    fn encode(records: &[Record], compression: Compression) -> Vec<u8> {
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(&mut buf, records, &RecordEncodeOptions { version: 2, compression })
            .unwrap();
        buf.to_vec()
    }

    #[test]
    fn a_rebuilt_batch_keeps_offsets_producer_fields_and_codec_and_decodes() {
        for compression in
            [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd]
        {
            let records: Vec<Record> = (0..4).map(|i| rec(i, &format!("k{i}"), Some("v"))).collect();
            let b = encode(&records, compression);
            let h = batch::validate(&b).unwrap();
            let bytes = record_bytes(&h, &b, 1 << 20).unwrap();
            let all = parse(&h, &bytes).unwrap();
            assert_eq!(all.len(), 4);
            let kept: Vec<_> = all.iter().copied().filter(|r| r.offset == 1 || r.offset == 2).collect();
            let out = rebuild(&h, &kept, Some(99_999)).unwrap();
            let nh = batch::validate_stored(&out).unwrap();
            assert_eq!((nh.base_offset, nh.last_offset()), (0, 3));
            assert_eq!((nh.producer_id, nh.producer_epoch, nh.base_sequence), (7, 1, 0));
            assert_eq!(nh.compression_codec(), h.compression_codec());
            assert_eq!(delete_horizon(&nh), Some(99_999));
            let mut bytes_in = Bytes::from(out);
            let set = RecordBatchDecoder::decode(&mut bytes_in).unwrap();
            let got: Vec<(i64, i64, Option<Bytes>)> =
                set.records.iter().map(|r| (r.offset, r.timestamp, r.key.clone())).collect();
            assert_eq!(
                got,
                vec![(1, 1001, Some(Bytes::from_static(b"k1"))), (2, 1002, Some(Bytes::from_static(b"k2")))]
            );
            assert_eq!(set.records[0].headers.len(), 1);
        }
    }

    #[test]
    fn an_empty_batch_keeps_the_last_offset_and_sequence() {
        let records: Vec<Record> = (0..3).map(|i| rec(i, "k", None)).collect();
        let b = encode(&records, Compression::Gzip);
        let h = batch::validate(&b).unwrap();
        let e = empty(&h);
        let nh = batch::validate_stored(&e).unwrap();
        assert_eq!((nh.record_count, nh.last_offset(), nh.base_sequence), (0, 2, 0));
        assert_eq!(nh.compression_codec(), 0);
        assert!(batch::validate(&e).is_err(), "a producer may not send an empty batch");
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Bytes from Apache Kafka 4.4.0: an idempotent producer (id 0) wrote k=v1 and k=v2, another
    /// wrote k=v3, each send one batch rolled into its own segment (segment.ms=100, timestamps a
    /// second apart; then z=zz), log.cleaner.backoff.ms=100 and min.cleanable.dirty.ratio=0.01. The
    /// cleaned segment (kafka-dump-log) starts with producer 0's last batch (offset 1, sequence 1),
    /// emptied: base timestamp -1, max timestamp and everything else kept.
    #[test]
    fn an_emptied_batch_has_kafkas_bytes() {
        let original = unhex(concat!(
            "00000000000000010000003b00000000023e6ca5b4000000000000000001a2310908ec000001a2310908ec",
            "00000000000000000000000000010000000112000000026b04763200",
        ));
        let kafka = unhex(concat!(
            "00000000000000010000003100000000024134fe00000000000000ffffffffffffffff000001a2310908ec",
            "000000000000000000000000000100000000",
        ));
        let h = batch::validate_stored(&original).unwrap();
        assert_eq!(empty(&h), kafka);
    }

    #[test]
    fn garbage_records_fail_without_panicking() {
        let records = vec![rec(0, "k", Some("v"))];
        let b = encode(&records, Compression::None);
        let h = batch::validate(&b).unwrap();
        for cut in 0..b.len() - HEADER_LEN {
            let _ = parse(&h, &b[HEADER_LEN..HEADER_LEN + cut]);
        }
    }
}
