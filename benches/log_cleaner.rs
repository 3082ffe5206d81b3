//! Log cleaner throughput (`PartitionLog::clean`, Kafka's `Cleaner.doClean`): MiB of dirty log
//! cleaned per second, and the memory the clean holds.
//!
//! The log: `DATA` bytes of 1 KiB records in batches of 64 (Kafka clients' usual batch size for
//! 1 KiB records), keys drawn at random from `KEYS` keys, so about `KEYS` KiB survive a clean;
//! 16 MiB segments (1 MiB in the smoke run), the last one active. Once uncompressed, once lz4-compressed (the cleaner then
//! decompresses every batch and recompresses the ones it rewrites, as Kafka's does). Each sample
//! copies the freshly written log into a new directory (not timed), opens it and cleans it fully
//! (several cleans if the offset map fills; with 128 MiB it never does here), with an offset map of
//! Kafka's default `log.cleaner.dedupe.buffer.size` (128 MiB) — the whole budget, as Kafka
//! allocates it; the broker's runner shrinks the map to what the dirty range can need.
//!
//! The figure to compare with Kafka's cleaner is its "MB of log processed in … seconds" line:
//! `scripts/bench` runs both brokers' cleaners on the same produced data (its compaction row);
//! this benchmark isolates strom's cleaner from the broker. At the end MiB/s per codec, bytes
//! read and kept, and the map's memory are printed and written to
//! `target/criterion/strom-cleaner.json` (read by `scripts/bench`).
//!
//! `cargo bench --bench log_cleaner` (about a minute); `STROM_BENCH_QUICK=1` uses a smaller log.
//! Under `cargo test --all-targets` (no `--bench` argument) each benchmark runs once, as a smoke
//! test. Temp dirs live under `target/tmp` (CARGO_TARGET_TMPDIR).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use strom::log::batch::testing::{compressed_batch, record};
use strom::log::cleaner::offset_map::{OffsetMap, BYTES_PER_ENTRY};
use strom::log::cleaner::Throttler;
use strom::log::{FileCache, LogConfig, PartitionLog};

const MIB: u64 = 1 << 20;
/// Kafka's `log.cleaner.dedupe.buffer.size` default.
const MAP_BYTES: usize = 128 << 20;
const KEYS: u64 = 20_000;
const BATCH_RECORDS: i32 = 64;
const VALUE_LEN: usize = 1000;
const CODECS: [(i16, &str); 2] = [(0, "none"), (3, "lz4")];
/// All records are this old, so nothing is held back by time.
const TIMESTAMP: i64 = 1_700_000_000_000;

fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn data_bytes() -> u64 {
    if !bench_mode() {
        8 * MIB
    } else if std::env::var_os("STROM_BENCH_QUICK").is_some() {
        48 * MIB
    } else {
        192 * MIB
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: if bench_mode() { 16 * MIB } else { MIB },
        compacted: true,
        cleanup_delete: false,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    }
}

/// One batch of `BATCH_RECORDS` records with random keys (xorshift state `x`); values are half
/// random bytes, half text, so lz4 has something to compress.
fn batch(x: &mut u64, codec: i16) -> Vec<u8> {
    let text = b"{\"user\":\"someone\",\"action\":\"click\",\"page\":\"/index.html\"}";
    let mut next = || {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    };
    let records: Vec<u8> = (0..BATCH_RECORDS)
        .flat_map(|i| {
            let key = format!("key-{:08}", next() % KEYS);
            let value: Vec<u8> = (0..VALUE_LEN)
                .map(|j| if j < VALUE_LEN / 2 { next() as u8 } else { text[j % text.len()] })
                .collect();
            record(i, 0, Some(key.as_bytes()), Some(&value), &[])
        })
        .collect();
    compressed_batch(BATCH_RECORDS, &records, codec, TIMESTAMP)
}

/// Writes the source log for `codec` into `dir` (flushed, closed) and returns its size in bytes.
fn write_source(dir: &Path, codec: i16) -> u64 {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create source dir");
    let log = PartitionLog::open(dir, config(), Arc::new(FileCache::new(64)), false, TIMESTAMP)
        .expect("open source log");
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ codec as u64;
    let mut written = 0;
    while written < data_bytes() {
        let b = batch(&mut x, codec);
        written += b.len() as u64;
        log.append(&b, 0, TIMESTAMP).expect("append");
    }
    log.flush().expect("flush");
    written
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    std::fs::create_dir_all(to).expect("create work dir");
    for e in std::fs::read_dir(from).expect("read source dir").flatten() {
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy segment file");
    }
}

#[derive(Default, Clone, Copy)]
struct Outcome {
    bytes_read: u64,
    bytes_written: u64,
    records_read: u64,
    records_kept: u64,
    cleans: u64,
}

/// Opens the log in `dir` and cleans it until nothing is dirty; returns what was done and the
/// time the cleans took (opening is not timed).
fn clean_fully(dir: &Path) -> (Outcome, Duration) {
    let log = PartitionLog::open(dir, config(), Arc::new(FileCache::new(64)), true, TIMESTAMP)
        .expect("open work log");
    let mut out = Outcome::default();
    let mut checkpoint = None;
    let started = Instant::now();
    loop {
        let c = log.cleanable(checkpoint, TIMESTAMP + 1000);
        if c.cleanable_bytes == 0 {
            break;
        }
        let mut map = OffsetMap::new(MAP_BYTES, 0.9);
        let s = log.clean(&c, &mut map, &mut Throttler::new(f64::MAX), TIMESTAMP + 1000).expect("clean");
        out.bytes_read += s.bytes_read;
        out.bytes_written += s.bytes_written;
        out.records_read += s.records_read;
        out.records_kept += s.records_kept;
        out.cleans += 1;
        if s.end_offset <= c.first_dirty {
            break;
        }
        checkpoint = Some(s.end_offset);
    }
    (out, started.elapsed())
}

fn main() {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("log_cleaner_bench");
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(if bench_mode() { 15 } else { 1 }));
    let mut summary = Vec::new();
    {
        let mut g = c.benchmark_group("clean");
        for (codec, name) in CODECS {
            let source = root.join(format!("source-{name}"));
            let work = root.join(format!("work-{name}"));
            let size = write_source(&source, codec);
            // The dirty bytes of one clean: every sealed segment (the active one is not cleaned).
            copy_dir(&source, &work);
            let (first, _) = clean_fully(&work);
            assert!(first.bytes_read > size / 2, "the sealed segments are cleaned");
            assert!(first.records_kept <= KEYS, "a clean keeps at most one record per key");
            g.throughput(Throughput::Bytes(first.bytes_read.max(1)));
            let mut runs: Vec<(Outcome, Duration)> = Vec::new();
            g.bench_function(BenchmarkId::new("full", name), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        copy_dir(&source, &work);
                        let (o, t) = clean_fully(&work);
                        runs.push((o, t));
                        total += t;
                    }
                    total
                })
            });
            let secs: f64 = runs.iter().map(|(_, t)| t.as_secs_f64()).sum();
            let read: u64 = runs.iter().map(|(o, _)| o.bytes_read).sum();
            let mib_s = read as f64 / MIB as f64 / secs.max(1e-9);
            summary.push(serde_json::json!({
                "codec": name, "log_bytes": size, "bytes_read": first.bytes_read,
                "bytes_written": first.bytes_written, "records_read": first.records_read,
                "records_kept": first.records_kept, "cleans": first.cleans,
                "map_bytes": (MAP_BYTES / BYTES_PER_ENTRY) * BYTES_PER_ENTRY,
                "mib_per_s": mib_s, "samples": runs.len(),
            }));
            println!(
                "cleaner {name:>4}: {:.1} MiB/s over {} cleans of {:.1} MiB ({} of {} records kept, {:.1} MiB written)",
                mib_s,
                runs.len(),
                first.bytes_read as f64 / MIB as f64,
                first.records_kept,
                first.records_read,
                first.bytes_written as f64 / MIB as f64
            );
            let _ = std::fs::remove_dir_all(&work);
            let _ = std::fs::remove_dir_all(&source);
        }
        g.finish();
    }
    c.final_summary();
    if !bench_mode() {
        return;
    }
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../criterion/strom-cleaner.json");
    if let Some(dir) = out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let quick = std::env::var_os("STROM_BENCH_QUICK").is_some();
    let doc =
        serde_json::json!({ "quick": quick, "data_bytes": data_bytes(), "keys": KEYS, "codecs": summary });
    if let Err(e) = std::fs::write(&out, serde_json::to_vec_pretty(&doc).unwrap_or_default()) {
        eprintln!("writing {}: {e}", out.display());
    }
}
