//! Appends batches to one partition log as fast as it can and prints `ACK <base> <last> <len>` after
//! each append returns. Used by `tests/log_crash.rs`, which kills it with SIGKILL at random points and
//! checks that every acknowledged batch survives. Usage: `log_appender DIR SEED [SEGMENT_BYTES]`.

use std::io::Write;
use std::sync::Arc;

use strom::log::batch::testing::batch_with;
use strom::log::{FileCache, LogConfig, PartitionLog};

/// A valid magic-v2 batch of `count` records whose record bytes are derived from `tag`.
fn batch(count: i32, payload_len: usize, tag: u8) -> Vec<u8> {
    let records: Vec<u8> = (0..payload_len).map(|i| tag.wrapping_add(i as u8)).collect();
    batch_with(count, &records, 1)
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(seed)) = (args.get(1), args.get(2).and_then(|s| s.parse::<u64>().ok())) else {
        eprintln!("usage: log_appender DIR SEED [SEGMENT_BYTES]");
        std::process::exit(2);
    };
    let segment_bytes = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(64 * 1024);
    let config = LogConfig { segment_bytes, index_interval_bytes: 512, ..LogConfig::default() };
    let log = PartitionLog::open(std::path::Path::new(dir), config, Arc::new(FileCache::new(64)), false, 0)?;
    let mut rng = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let mut out = std::io::stdout().lock();
    loop {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let count = (rng % 5) as i32 + 1;
        let len = ((rng >> 8) % 3000) as usize;
        let next = log.log_end_offset();
        let b = batch(count, len, (next % 251) as u8);
        match log.append(&b, 0, 1) {
            Ok(info) => writeln!(out, "ACK {} {} {}", info.base_offset, info.last_offset, len)?,
            Err(e) => {
                eprintln!("append failed: {e}");
                std::process::exit(1);
            }
        }
        out.flush()?;
    }
}
