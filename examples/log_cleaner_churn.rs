//! Overwrites keys of one compacted partition log as fast as it can and cleans it every few writes
//! (small segments, a small offset map so cleans take several passes). Prints `ACK <key> <offset>`
//! after each append returns; record values are their own offsets, every 13th write a tombstone.
//! Used by `tests/log_cleaner_crash.rs`, which kills it with SIGKILL at random points (often inside a
//! clean or a swap) and checks that every key's newest acknowledged record survives.
//! Usage: `log_cleaner_churn DIR SEED`.

use std::io::Write;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use strom::log::cleaner::offset_map::OffsetMap;
use strom::log::cleaner::Throttler;
use strom::log::{FileCache, LogConfig, PartitionLog};

/// Keys written (`k0`..).
const KEYS: u64 = 40;

/// Small segments (rolled by size every ~25 writes), cleaned as soon as anything is dirty.
fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 2048,
        index_interval_bytes: 256,
        compacted: true,
        cleanup_delete: false,
        min_cleanable_dirty_ratio: 0.0,
        delete_retention_ms: i64::MAX / 4,
        ..LogConfig::default()
    }
}

fn record(key: u64, value: Option<String>) -> Vec<u8> {
    let r = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 1000,
        key: Some(Bytes::from(format!("k{key}"))),
        value: value.map(Bytes::from),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::Snappy };
    RecordBatchEncoder::encode(&mut buf, [&r], &options)
        .map_err(std::io::Error::other)
        .map(|()| buf.to_vec())
        .unwrap_or_default()
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(seed)) = (args.get(1), args.get(2).and_then(|s| s.parse::<u64>().ok())) else {
        eprintln!("usage: log_cleaner_churn DIR SEED");
        std::process::exit(2);
    };
    let log =
        PartitionLog::open(std::path::Path::new(dir), config(), Arc::new(FileCache::new(64)), false, 0)?;
    let mut rng = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut out = std::io::stdout().lock();
    let mut checkpoint = None;
    for i in 0u64.. {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let key = rng % KEYS;
        let offset = log.log_end_offset();
        let value = (i % 13 != 12).then(|| offset.to_string());
        let info = log.append(&record(key, value), 0, 1000).map_err(std::io::Error::other)?;
        writeln!(out, "ACK {key} {}", info.base_offset)?;
        out.flush()?;
        if i % 25 == 24 {
            let c = log.cleanable(checkpoint, 2000);
            let mut map = OffsetMap::new(24 * 16, 0.9);
            let stats = log
                .clean(&c, &mut map, &mut Throttler::new(f64::MAX), 2000)
                .map_err(std::io::Error::other)?;
            checkpoint = Some(stats.end_offset);
        }
    }
    Ok(())
}
