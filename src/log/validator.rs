//! Record-level validation of a produced batch, as Kafka's `LogValidator` does it: every record's
//! framing, varints, lengths, offset and timestamp deltas, key and headers, and the record count
//! against the records actually present.
//!
//! An uncompressed batch is walked in place over its bytes; a compressed one is decompressed as a
//! stream (see [`super::decompress`]) and walked the same way, keys and values skipped rather than
//! copied, with at most [`RecordRules::max_decompressed_bytes`] read. Nothing here allocates in
//! proportion to a count or length taken from the batch.
//!
//! Record layout (magic v2, after the 61-byte batch header), each field a zigzag varint unless noted:
//!
//! ```text
//! length | attributes i8 | timestampDelta (varlong) | offsetDelta | keyLength | key
//!        | valueLength | value | headerCount | (headerKeyLength headerKey headerValueLength headerValue)*
//! ```
//!
//! A key or value length of -1 is null. Two checks are stricter than Kafka's reader, which takes any
//! negative length as null and decodes header keys with replacement characters: strom refuses other
//! negative lengths and header keys that are not UTF-8, because consumers that decode strictly (such
//! as kafka-protocol's own decoder) would otherwise stop at that record forever.

use std::io::{self, Read};

use super::batch::{BatchHeader, ATTR_LOG_APPEND_TIME, HEADER_LEN};
use super::decompress::{self, CODEC_NONE};

/// What a topic asks of each record, resolved by the caller from the topic's configs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRules {
    /// Largest decompressed payload read from one compressed batch, in bytes; beyond it the batch is
    /// refused. Derived from the topic's `max.message.bytes`.
    pub max_decompressed_bytes: u64,
    /// Largest record of a compressed batch, in bytes (its length field): the topic's
    /// `max.decompressed.message.bytes` (Kafka 4.4, INVALID_RECORD beyond it). Records of an
    /// uncompressed batch are not checked against it, as in Kafka.
    pub max_record_bytes: u64,
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub compacted: bool,
    /// The topic's `message.timestamp.type` and, for CreateTime, the accepted range.
    pub timestamps: TimestampRule,
}

/// The timestamp check Kafka's `LogValidator.validateTimestamp` applies to each record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampRule {
    /// `CreateTime`: a record's timestamp (unless -1) may be at most `before_ms` older and
    /// `after_ms` newer than `now_ms` (`message.timestamp.before.max.ms` / `.after.max.ms`; ms).
    CreateTime { now_ms: i64, before_ms: i64, after_ms: i64 },
    /// `LogAppendTime`: the broker stamps the batch; a batch already marked LogAppendTime by the
    /// producer is refused.
    LogAppendTime,
}

/// What the walk learned about a valid batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordsInfo {
    /// The largest record timestamp (ms; -1 when no record has one). Kafka writes this into the
    /// batch's maxTimestamp when the producer's value differs.
    pub max_timestamp: i64,
}

/// One record refused by a per-record rule (Kafka's `ProduceResponse.RecordError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordProblem {
    /// Index of the record within its batch.
    pub batch_index: i32,
    pub message: String,
}

/// Why a batch's records were refused; the API layer maps each to Kafka's error code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordsError {
    /// The records cannot be read as the header describes them (Kafka: `InvalidRecordException`
    /// thrown while iterating, INVALID_RECORD). The text is for the broker's log: Kafka sends none.
    Invalid(String),
    /// Kafka fails on these with an exception that is not an API error (UNKNOWN_SERVER_ERROR): a
    /// payload that cannot be decompressed, an unknown codec id, an over-long record-length varint
    /// in an uncompressed batch, records of a compressed batch whose offset deltas are out of order.
    Unreadable(String),
    /// Records that were read but break a rule, collected over the whole batch (Kafka:
    /// `RecordValidationException`): INVALID_TIMESTAMP when any is a timestamp problem, else
    /// INVALID_RECORD. `total` counts every refused record; `problems` lists the first
    /// [`MAX_RECORD_PROBLEMS`] of them (Kafka lists all, which a batch of millions of tiny compressed
    /// records would turn into gigabytes of messages).
    Records { timestamp: bool, problems: Vec<RecordProblem>, total: usize },
    /// Decompressed, the records exceed this many bytes ([`RecordRules::max_decompressed_bytes`]).
    /// Kafka has no such bound; strom answers MESSAGE_TOO_LARGE.
    TooLarge(u64),
}

/// Most refused records listed in one answer (each with its message).
pub const MAX_RECORD_PROBLEMS: usize = 10_000;

/// Why reading stopped early.
enum Stop {
    /// The data ended.
    Eof,
    /// A field ran past the record's declared length.
    Overrun,
    /// A varint longer than 5 (varlong: 10) bytes.
    VarintTooLong,
    /// A varint with bits set beyond 32 (varlong: 64).
    VarintOverflow,
    /// A key, value or header length below -1.
    NegativeLength(i32),
    /// A header key that is not UTF-8.
    NotUtf8,
    /// The decompressor failed.
    Io(io::Error),
    /// More than the decompression bound was produced.
    Bound(u64),
}

/// A forward-only byte source: a slice, or a decompressing stream.
trait Source {
    fn byte(&mut self) -> Result<u8, Stop>;
    fn skip(&mut self, n: u64) -> Result<(), Stop>;
    /// Skips `n` bytes, reporting whether they are UTF-8.
    fn skip_utf8(&mut self, n: u64) -> Result<bool, Stop>;
    fn at_end(&mut self) -> Result<bool, Stop>;
    /// Bytes left, when known without reading (slices).
    fn remaining(&self) -> Option<u64>;
}

struct SliceSource<'a> {
    b: &'a [u8],
}

impl Source for SliceSource<'_> {
    #[inline]
    fn byte(&mut self) -> Result<u8, Stop> {
        let (&first, rest) = self.b.split_first().ok_or(Stop::Eof)?;
        self.b = rest;
        Ok(first)
    }
    #[inline]
    fn skip(&mut self, n: u64) -> Result<(), Stop> {
        let n = usize::try_from(n).map_err(|_| Stop::Eof)?;
        self.b = self.b.get(n..).ok_or(Stop::Eof)?;
        Ok(())
    }
    fn skip_utf8(&mut self, n: u64) -> Result<bool, Stop> {
        let n = usize::try_from(n).map_err(|_| Stop::Eof)?;
        let (text, rest) = self.b.split_at_checked(n).ok_or(Stop::Eof)?;
        self.b = rest;
        Ok(std::str::from_utf8(text).is_ok())
    }
    fn at_end(&mut self) -> Result<bool, Stop> {
        Ok(self.b.is_empty())
    }
    fn remaining(&self) -> Option<u64> {
        Some(self.b.len() as u64)
    }
}

/// Size of the window a compressed stream is read through.
const STREAM_CHUNK: usize = 16 * 1024;

struct StreamSource<R> {
    r: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Decompressed bytes produced so far, and the most allowed.
    total: u64,
    limit: u64,
}

impl<R: Read> StreamSource<R> {
    fn new(r: R, limit: u64) -> Self {
        StreamSource { r, buf: vec![0; STREAM_CHUNK].into_boxed_slice(), start: 0, end: 0, total: 0, limit }
    }

    /// Refills the window; `false` at the end of the stream.
    fn fill(&mut self) -> Result<bool, Stop> {
        loop {
            match self.r.read(&mut self.buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.total += n as u64;
                    if self.total > self.limit {
                        return Err(Stop::Bound(self.limit));
                    }
                    (self.start, self.end) = (0, n);
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(Stop::Eof),
                Err(e) => return Err(Stop::Io(e)),
            }
        }
    }
}

impl<R: Read> Source for StreamSource<R> {
    fn byte(&mut self) -> Result<u8, Stop> {
        if self.start == self.end && !self.fill()? {
            return Err(Stop::Eof);
        }
        let b = self.buf.get(self.start).copied().ok_or(Stop::Eof)?;
        self.start += 1;
        Ok(b)
    }
    fn skip(&mut self, mut n: u64) -> Result<(), Stop> {
        loop {
            let here = ((self.end - self.start) as u64).min(n);
            self.start += here as usize;
            n -= here;
            if n == 0 {
                return Ok(());
            }
            if !self.fill()? {
                return Err(Stop::Eof);
            }
        }
    }
    fn skip_utf8(&mut self, mut n: u64) -> Result<bool, Stop> {
        // A character may straddle two windows: its first bytes wait in `carry`.
        let (mut carry, mut carried) = ([0u8; 4], 0usize);
        let mut valid = true;
        while n > 0 {
            if self.start == self.end && !self.fill()? {
                return Err(Stop::Eof);
            }
            let take = ((self.end - self.start) as u64).min(n) as usize;
            let chunk = self.buf.get(self.start..self.start + take).ok_or(Stop::Eof)?;
            let mut at = 0;
            while valid && carried > 0 && at < chunk.len() {
                carry[carried] = chunk[at];
                (carried, at) = (carried + 1, at + 1);
                match std::str::from_utf8(&carry[..carried]) {
                    Ok(_) => carried = 0,
                    Err(e) if e.error_len().is_some() || carried == 4 => valid = false,
                    Err(_) => {}
                }
            }
            if valid && carried == 0 {
                if let Err(e) = std::str::from_utf8(&chunk[at..]) {
                    let tail = &chunk[at + e.valid_up_to()..];
                    if e.error_len().is_some() || tail.len() > 3 {
                        valid = false;
                    } else {
                        carry[..tail.len()].copy_from_slice(tail);
                        carried = tail.len();
                    }
                }
            }
            self.start += take;
            n -= take as u64;
        }
        Ok(valid && carried == 0)
    }
    fn at_end(&mut self) -> Result<bool, Stop> {
        Ok(self.start == self.end && !self.fill()?)
    }
    fn remaining(&self) -> Option<u64> {
        None
    }
}

/// Reads within one record's declared length.
struct Body<'s, S> {
    src: &'s mut S,
    left: u64,
}

impl<S: Source> Body<'_, S> {
    #[inline]
    fn byte(&mut self) -> Result<u8, Stop> {
        self.left = self.left.checked_sub(1).ok_or(Stop::Overrun)?;
        self.src.byte()
    }

    /// Skips a length-prefixed field's bytes (-1 is null: nothing to skip); other negative lengths
    /// are refused.
    #[inline]
    fn skip_field(&mut self, len: i32) -> Result<(), Stop> {
        let Ok(len) = u64::try_from(len) else {
            return if len == -1 { Ok(()) } else { Err(Stop::NegativeLength(len)) };
        };
        self.left = self.left.checked_sub(len).ok_or(Stop::Overrun)?;
        self.src.skip(len)
    }

    /// Skips a header key's bytes (never null), refusing one that is not UTF-8.
    fn skip_header_key(&mut self, len: i32) -> Result<(), Stop> {
        let len = u64::try_from(len).map_err(|_| Stop::NegativeLength(len))?;
        self.left = self.left.checked_sub(len).ok_or(Stop::Overrun)?;
        if self.src.skip_utf8(len)? {
            Ok(())
        } else {
            Err(Stop::NotUtf8)
        }
    }

    #[inline]
    fn varint(&mut self) -> Result<i32, Stop> {
        read_unsigned(|| self.byte(), 5).map(zigzag32)
    }

    #[inline]
    fn varlong(&mut self) -> Result<i64, Stop> {
        let raw = read_unsigned(|| self.byte(), 10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }
}

/// The i32 a zigzag varint's unsigned value stands for (`read_unsigned` keeps it within 32 bits).
#[inline]
fn zigzag32(raw: u64) -> i32 {
    let raw = raw as u32;
    ((raw >> 1) as i32) ^ -((raw & 1) as i32)
}

/// An unsigned LEB128 value of at most `max_bytes` bytes (5 for a varint, 10 for a varlong). Java's
/// `ByteUtils` silently drops bits past 32 (varint) or 64 (varlong); strom refuses them
/// ([`Stop::VarintOverflow`]), as librdkafka's consumer stalls on such a record.
#[inline]
fn read_unsigned(mut next: impl FnMut() -> Result<u8, Stop>, max_bytes: u32) -> Result<u64, Stop> {
    let mut value = 0u64;
    let bits = if max_bytes == 5 { 32 } else { 64 };
    for i in 0..max_bytes {
        let b = next()?;
        if i + 1 == max_bytes && b & 0x80 != 0 {
            break; // Kafka checks this first: a varint longer than its type
        }
        let payload = u64::from(b & 0x7f);
        let shift = 7 * i;
        if shift + 7 > bits && payload >> (bits - shift) != 0 {
            return Err(Stop::VarintOverflow);
        }
        value |= payload.wrapping_shl(shift);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Stop::VarintTooLong)
}

/// The fields of one record that the rules look at.
struct RecordFields {
    timestamp_delta: i64,
    offset_delta: i32,
    /// Key and value lengths as written (-1: null).
    key_len: i32,
    value_len: i32,
}

/// Reads one record, checking its framing; a decompressed record longer than `max_record` bytes is
/// refused (Kafka's `DefaultRecord.readFrom(InputStream, …, maxRecordSize)`).
fn read_record<S: Source>(src: &mut S, max_record: u64) -> Result<RecordFields, RecordsError> {
    let len = match read_unsigned(|| src.byte(), 5) {
        Ok(raw) => zigzag32(raw),
        // Kafka reads an uncompressed batch's record length outside its error translation.
        Err(Stop::VarintTooLong) if src.remaining().is_some() => {
            return Err(RecordsError::Unreadable("Varint is too long (record length)".into()))
        }
        Err(s) => return Err(stop_error(s, "record length")),
    };
    let Ok(len) = u64::try_from(len) else {
        return Err(RecordsError::Invalid(format!("Invalid negative record size {len}")));
    };
    if src.remaining().is_none() && len > max_record {
        return Err(RecordsError::Invalid(format!(
            "Invalid record size: {len} exceeds the configured maximum record size of {max_record}."
        )));
    }
    if let Some(rem) = src.remaining().filter(|rem| *rem < len) {
        return Err(RecordsError::Invalid(format!(
            "Invalid record size: expected {len} bytes in record payload, but instead the buffer has only {rem} remaining bytes."
        )));
    }
    let mut body = Body { src, left: len };
    let fields = (|| {
        body.byte()?; // attributes: unused in magic v2
        let timestamp_delta = body.varlong()?;
        let offset_delta = body.varint()?;
        let key_len = body.varint()?;
        body.skip_field(key_len)?;
        let value_len = body.varint()?;
        body.skip_field(value_len)?;
        let headers = body.varint()?;
        if headers < 0 {
            return Ok(Err(format!("Found invalid number of record headers {headers}")));
        }
        if u64::from(headers.unsigned_abs()) > body.left {
            return Ok(Err(format!(
                "Found invalid number of record headers. {headers} is larger than the remaining size of the buffer"
            )));
        }
        for _ in 0..headers {
            let key_len = body.varint()?;
            if key_len < 0 {
                return Ok(Err(format!("Invalid negative header key size {key_len}")));
            }
            body.skip_header_key(key_len)?;
            let value_len = body.varint()?;
            body.skip_field(value_len)?;
        }
        Ok(Ok(RecordFields { timestamp_delta, offset_delta, key_len, value_len }))
    })()
    .map_err(|s| stop_error(s, "record"))?
    .map_err(RecordsError::Invalid)?;
    if body.left != 0 {
        return Err(RecordsError::Invalid(format!(
            "Invalid record size: expected to read {len} bytes in record payload, but instead read {}",
            len - body.left
        )));
    }
    Ok(fields)
}

fn stop_error(stop: Stop, what: &str) -> RecordsError {
    match stop {
        Stop::Eof => RecordsError::Invalid("Incorrect declared batch size, premature EOF reached".into()),
        Stop::Overrun | Stop::VarintTooLong => {
            RecordsError::Invalid(format!("Found invalid record structure ({what})"))
        }
        Stop::VarintOverflow => RecordsError::Invalid(format!("Varint overflows its type in {what}")),
        Stop::NegativeLength(len) => {
            RecordsError::Invalid(format!("Invalid negative field length {len} in {what}"))
        }
        Stop::NotUtf8 => RecordsError::Invalid(format!("Record header key is not UTF-8 in {what}")),
        Stop::Io(e) => RecordsError::Unreadable(format!("Failed to decompress record stream: {e}")),
        Stop::Bound(limit) => RecordsError::TooLarge(limit),
    }
}

/// Walks every record of `batch` (one whole, CRC-checked batch whose header is `h`) and applies
/// `rules`. `topic` and `partition` name the partition in messages, as Kafka's do.
pub fn validate_records(
    batch: &[u8],
    h: &BatchHeader,
    rules: &RecordRules,
    topic: &str,
    partition: i32,
) -> Result<RecordsInfo, RecordsError> {
    let tp = TopicPartitionName(topic, partition);
    let partition = &tp;
    let records = batch.get(HEADER_LEN..).unwrap_or_default();
    match h.compression_codec() {
        CODEC_NONE => walk(&mut SliceSource { b: records }, h, rules, partition),
        codec => {
            // A snappy block is decompressed whole: no block may exceed the whole bound.
            let max_block = usize::try_from(rules.max_decompressed_bytes).unwrap_or(usize::MAX);
            let reader = decompress::reader(codec, records, max_block)
                .ok_or_else(|| RecordsError::Unreadable(format!("Unknown compression type id: {codec}")))?
                .map_err(|e| RecordsError::Unreadable(format!("Failed to decompress record stream: {e}")))?;
            walk(&mut StreamSource::new(reader, rules.max_decompressed_bytes), h, rules, partition)
        }
    }
}

/// `topic-N`, formatted only into the messages of refused records.
struct TopicPartitionName<'a>(&'a str, i32);

impl std::fmt::Display for TopicPartitionName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

fn walk<S: Source>(
    src: &mut S,
    h: &BatchHeader,
    rules: &RecordRules,
    partition: &TopicPartitionName<'_>,
) -> Result<RecordsInfo, RecordsError> {
    let batch_log_append_time = h.attributes & ATTR_LOG_APPEND_TIME != 0;
    let mut problems = Vec::new();
    let mut timestamp_problem = false;
    let mut total = 0usize;
    let mut max_timestamp = -1i64;
    for index in 0..h.record_count {
        let r = read_record(src, rules.max_record_bytes)?;
        if r.offset_delta != index {
            // Kafka stores such an uncompressed batch as it is (its records then claim offsets
            // outside it); strom refuses it. A compressed one fails in Kafka as a server error.
            let m = format!(
                "Record {index} has offset delta {} in a batch whose records must count 0..{} in order",
                r.offset_delta, h.last_offset_delta
            );
            return Err(if h.compression_codec() == CODEC_NONE {
                RecordsError::Invalid(m)
            } else {
                RecordsError::Unreadable(m)
            });
        }
        // Kafka reads a LogAppendTime batch's records as stamped with its max timestamp.
        let timestamp = if batch_log_append_time {
            h.max_timestamp
        } else {
            h.base_timestamp.wrapping_add(r.timestamp_delta)
        };
        max_timestamp = max_timestamp.max(timestamp);
        let message = if rules.compacted && r.key_len < 0 {
            // LogValidator.validateRecord: the key is checked first, the timestamp only if it passed.
            Some(format!("Compacted topic cannot accept message without key in topic partition {partition}"))
        } else {
            let m = timestamp_problem_of(&r, index, timestamp, h, batch_log_append_time, rules);
            timestamp_problem |= m.is_some();
            m
        };
        if let Some(message) = message {
            total += 1;
            if problems.len() < MAX_RECORD_PROBLEMS {
                problems.push(RecordProblem { batch_index: index, message });
            }
        }
    }
    if !src.at_end().map_err(|s| stop_error(s, "batch end"))? {
        return Err(RecordsError::Invalid(
            "Incorrect declared batch size, records still remaining in file".into(),
        ));
    }
    if !problems.is_empty() {
        return Err(RecordsError::Records { timestamp: timestamp_problem, problems, total });
    }
    Ok(RecordsInfo { max_timestamp })
}

/// LogValidator.validateTimestamp: a CreateTime record with a timestamp is range-checked (as a
/// difference from now, so no bound overflows); otherwise a batch the producer marked
/// LogAppendTime is refused. Returns Kafka's message for a refused record.
fn timestamp_problem_of(
    r: &RecordFields,
    index: i32,
    timestamp: i64,
    h: &BatchHeader,
    batch_log_append_time: bool,
    rules: &RecordRules,
) -> Option<String> {
    let offset = h.base_offset.wrapping_add(i64::from(index));
    match rules.timestamps {
        TimestampRule::CreateTime { now_ms, before_ms, after_ms } if timestamp != -1 => {
            let diff = now_ms.wrapping_sub(timestamp);
            (diff > before_ms || diff.wrapping_neg() > after_ms).then(|| {
                format!(
                    "Timestamp {timestamp} of message with offset {offset} is out of range. The timestamp should be within [{}, {}]",
                    now_ms.wrapping_sub(before_ms),
                    now_ms.wrapping_add(after_ms)
                )
            })
        }
        _ => batch_log_append_time.then(|| {
            // Kafka names the record class it read: compressed records are read key- and value-less.
            let class = if h.compression_codec() == CODEC_NONE { "DefaultRecord" } else { "PartialDefaultRecord" };
            format!(
                "Invalid timestamp type in message {class}(offset={offset}, timestamp={timestamp}, key={} bytes, value={} bytes). Producer should not set timestamp type to LogAppendTime.",
                r.key_len.max(0),
                r.value_len.max(0)
            )
        }),
    }
}

#[cfg(test)]
#[path = "validator_tests.rs"]
mod tests;
