//! Feeds arbitrary bytes, as the records of one produced batch, to the checks a Produce request's
//! batch goes through before it reaches the log: the header and CRC32C (`log::batch::validate`), then
//! every record (`log::validator::validate_records`, uncompressed or through each codec's bounded
//! stream).
//!
//! The first byte picks the codec and the rules (compacted or not, LogAppendTime or CreateTime); the
//! next four the record count; the rest are the records. The batch is built around them with a
//! correct CRC, so the fuzzer spends its time inside the records rather than failing the CRC.
//!
//! A crash is a panic, an abort (an allocation sized from a count or length in the batch), or a
//! timeout/OOM reported by libFuzzer (run with e.g. `-rss_limit_mb=512 -timeout=10`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use strom::log::batch::{self, testing::{batch_with, with_codec}};
use strom::log::validator::{validate_records, RecordRules, TimestampRule};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Some((count, records)) = rest.split_first_chunk::<4>() else { return };
    let count = i32::from_be_bytes(*count);
    let mut b = batch_with(count, records, 1_700_000_000_000);
    if selector & 0x40 != 0 {
        b[22] |= batch::ATTR_LOG_APPEND_TIME as u8;
    }
    let b = with_codec(b, i16::from(selector & 0x07));
    let Ok(h) = batch::validate(&b) else { return };
    let timestamps = if selector & 0x10 != 0 {
        TimestampRule::LogAppendTime
    } else {
        TimestampRule::CreateTime { now_ms: 1_700_000_000_000, before_ms: 3_600_000, after_ms: 3_600_000 }
    };
    // A small bound, so a "bomb" the fuzzer finds is cut off quickly.
    let rules = RecordRules { max_decompressed_bytes: 4 << 20, compacted: selector & 0x08 != 0, timestamps };
    let _ = validate_records(&b, &h, &rules, "fuzz", 0);
});
