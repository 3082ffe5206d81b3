//! Partition log throughput against the plain-file baseline on the same disk, measured in the same run.
//!
//! Three groups, each comparing `strom` with a `raw` baseline over the same bytes and batch sizes
//! (16 KiB and 1 MiB magic-v2 batches):
//!
//! - `append`: `PartitionLog::append` vs sequential `write_all` of the same bytes to one plain file.
//!   Both land in the page cache; every 256 MiB the log / file is deleted and recreated outside the
//!   timed region, so the disk never fills and writeback never dominates.
//! - `read`: `PartitionLog::read(offset, batch size, true)` walking a 256 MiB log from the page cache
//!   vs `read_at` of the same byte ranges of the same segment file, opened as a plain file, into one
//!   reused buffer (and, to tell the allocation cost apart, into a freshly allocated zeroed buffer).
//!   Each side then copies the bytes once into a reused "socket" buffer, as sending them would: strom's
//!   reads of 64 KiB or more are page-cache mappings that copy nothing before that point.
//! - `append_to_disk`: the same appends and writes, each timed chunk (128 MiB) ending with everything
//!   on the disk (`PartitionLog::flush` vs `fdatasync`): throughput against the disk's sequential write
//!   bandwidth, where `append` measures against page-cache writes alone (the stricter comparison).
//! - `append_fsync`: append with `flush.messages=1` (fsync before the append returns) vs `write_all`
//!   + `fdatasync` per batch.
//!
//! Besides criterion's own runs, each pair is also measured interleaved ("paired"): short chunks of strom
//! and raw alternate, order flipped every pair, and the median of the per-pair ratios is reported. That
//! ratio holds up when other work on the machine changes the speed of both sides during the run.
//!
//! At the end the ratios strom/raw (throughput) are printed and written to
//! `target/criterion/strom-log-ratios.json` (read by `scripts/bench` for docs/benchmarks.md).
//!
//! `cargo bench --bench log_append` (about 2–3 minutes); `STROM_BENCH_QUICK=1` shortens every run.
//! Under `cargo test --all-targets` (no `--bench` argument) every benchmark runs once, as a smoke test.
//! Temp dirs live under `target/tmp` (CARGO_TARGET_TMPDIR), on the same disk as the target dir.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput};
use strom::log::batch::BatchHeader;
use strom::log::{FileCache, LogConfig, PartitionLog};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;
/// Batch sizes under test (whole batch bytes, header included).
const SIZES: [(usize, &str); 2] = [(16 * KIB, "16KiB"), (MIB, "1MiB")];
/// Data written before the log / file is thrown away and recreated (outside the timed region).
const RESET_BYTES: usize = 256 * MIB;
/// Bytes of data the read benchmarks walk through.
const READ_DATA: usize = 256 * MIB;
/// Records per batch (the record bytes are opaque filler to the log).
const RECORDS_PER_KIB: usize = 1;

/// A valid magic-v2 batch of exactly `total` bytes holding `total / 1 KiB` records (CRC32C over [21..]).
fn make_batch(total: usize, seed: u8) -> Vec<u8> {
    let count = ((total / KIB) * RECORDS_PER_KIB).max(1) as i32;
    let mut x = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
    let filler: Vec<u8> = (0..total - strom::log::batch::HEADER_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    let b = strom::log::batch::testing::batch_with(count, &filler, 1_700_000_000_000);
    assert!(b.len() == total && strom::log::batch::validate(&b).is_ok(), "bench batch must be valid");
    b
}

fn bench_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("log_append_bench");
    std::fs::create_dir_all(&root).expect("create bench dir");
    root
}

/// `cargo bench` passes `--bench`; `cargo test --all-targets` does not, and then criterion runs every
/// benchmark once as a smoke test: the paired measurement and the big read data set are skipped too.
fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}

fn read_data() -> usize {
    if bench_mode() {
        READ_DATA
    } else {
        4 * MIB
    }
}

fn quick() -> bool {
    std::env::var_os("STROM_BENCH_QUICK").is_some_and(|v| !v.is_empty() && v != "0")
}

fn now_ms() -> i64 {
    strom::log::now_ms()
}

/// A fresh partition log in a fresh directory.
struct Log {
    dir: PathBuf,
    log: Option<PartitionLog>,
    config: LogConfig,
    written: usize,
}

impl Log {
    fn new(dir: PathBuf, config: LogConfig) -> Log {
        let mut l = Log { dir, log: None, config, written: 0 };
        l.reset();
        l
    }

    fn reset(&mut self) {
        self.log = None;
        let _ = std::fs::remove_dir_all(&self.dir);
        let log =
            PartitionLog::open(&self.dir, self.config.clone(), Arc::new(FileCache::new(64)), false, now_ms())
                .expect("open log");
        self.log = Some(log);
        self.written = 0;
    }

    fn log(&self) -> &PartitionLog {
        self.log.as_ref().expect("open log")
    }
}

/// A fresh plain file written sequentially.
struct Raw {
    path: PathBuf,
    file: File,
    written: usize,
}

impl Raw {
    fn new(path: PathBuf) -> Raw {
        let file = Raw::open(&path);
        Raw { path, file, written: 0 }
    }

    fn open(path: &Path) -> File {
        let _ = std::fs::remove_file(path);
        OpenOptions::new()
            .create(true)
            .write(true)
            .read(true)
            .truncate(true)
            .open(path)
            .expect("open raw file")
    }

    fn reset(&mut self) {
        self.file = Raw::open(&self.path);
        self.written = 0;
    }
}

/// One timed operation: runs `iters` iterations and returns the time they took (setup excluded).
type Op<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

/// Paired ratios measured besides criterion: strom and raw alternate in short chunks (order flipped every
/// pair), so a change in background load hits both sides alike. Per pair: raw time / strom time.
#[derive(Default)]
struct Paired {
    rows: Vec<(String, String, Vec<f64>)>,
}

impl Paired {
    fn measure(&mut self, group: &str, name: &str, strom: &mut Op, raw: &mut Op, iters: u64) {
        if !bench_mode() {
            return;
        }
        let pairs = if quick() { 7 } else { 21 };
        // Warm both once.
        strom(iters);
        raw(iters);
        let mut ratios = Vec::with_capacity(pairs);
        for i in 0..pairs {
            let (s, r) = if i % 2 == 0 {
                let s = strom(iters);
                (s, raw(iters))
            } else {
                let r = raw(iters);
                (strom(iters), r)
            };
            ratios.push(r.as_secs_f64() / s.as_secs_f64());
        }
        ratios.sort_by(f64::total_cmp);
        println!(
            "paired {group}/{name}: ratio strom/raw median {:.3} (min {:.3}, max {:.3}, {pairs} pairs of {iters} batches)",
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1]
        );
        self.rows.push((group.to_string(), name.to_string(), ratios));
    }

    fn get(&self, group: &str, name: &str) -> Option<&Vec<f64>> {
        self.rows.iter().find(|(g, n, _)| g == group && n == name).map(|(_, _, r)| r)
    }
}

/// When the bytes written must reach the disk, beyond what each append does itself.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sync {
    /// Page cache only (the OS writes back later).
    None,
    /// `fdatasync` after every batch (the raw side of `append_fsync`; strom does it by its config).
    EachBatch,
    /// Everything written is on the disk before the timed chunk ends (and before a file is thrown away).
    EndOfChunk,
}

/// Appends `batch` to a log, recreating it every RESET_BYTES outside the timed region.
fn strom_append_op<'a>(mut log: Log, batch: &'a [u8], sync: Sync) -> Op<'a> {
    Box::new(move |iters| {
        let mut total = Duration::ZERO;
        let mut start = Instant::now();
        for _ in 0..iters {
            if log.written + batch.len() > RESET_BYTES {
                if sync == Sync::EndOfChunk {
                    log.log().flush().expect("flush");
                }
                total += start.elapsed();
                log.reset();
                start = Instant::now();
            }
            log.log().append(batch, 0, 1_700_000_000_000).expect("append");
            log.written += batch.len();
        }
        if sync == Sync::EndOfChunk {
            log.log().flush().expect("flush");
        }
        total + start.elapsed()
    })
}

/// Writes `batch` to a plain file (synced as `sync` says), recreating it every RESET_BYTES.
fn raw_write_op(mut raw: Raw, batch: &[u8], sync: Sync) -> Op<'_> {
    Box::new(move |iters| {
        let mut total = Duration::ZERO;
        let mut start = Instant::now();
        for _ in 0..iters {
            if raw.written + batch.len() > RESET_BYTES {
                if sync == Sync::EndOfChunk {
                    raw.file.sync_data().expect("fdatasync");
                }
                total += start.elapsed();
                raw.reset();
                start = Instant::now();
            }
            raw.file.write_all(batch).expect("write");
            if sync == Sync::EachBatch {
                raw.file.sync_data().expect("fdatasync");
            }
            raw.written += batch.len();
        }
        if sync == Sync::EndOfChunk {
            raw.file.sync_data().expect("fdatasync");
        }
        total + start.elapsed()
    })
}

fn bench_append(c: &mut Criterion, paired: &mut Paired) {
    let root = bench_root();
    let mut g = c.benchmark_group("append");
    for (size, name) in SIZES {
        let batch = make_batch(size, 1);
        g.throughput(Throughput::Bytes(size as u64));
        let mut strom =
            strom_append_op(Log::new(root.join("append-strom"), LogConfig::default()), &batch, Sync::None);
        let mut raw = raw_write_op(Raw::new(root.join("append-raw.bin")), &batch, Sync::None);
        g.bench_function(BenchmarkId::new("strom", name), |b| b.iter_custom(&mut strom));
        g.bench_function(BenchmarkId::new("raw", name), |b| b.iter_custom(&mut raw));
        paired.measure("append", name, &mut strom, &mut raw, (64 * MIB / size) as u64);
    }
    g.finish();
    let _ = std::fs::remove_dir_all(root.join("append-strom"));
    let _ = std::fs::remove_file(root.join("append-raw.bin"));
}

/// Appends until the data is on the disk: the disk's sequential write bandwidth is the limit for both.
fn bench_append_to_disk(c: &mut Criterion, paired: &mut Paired) {
    let root = bench_root();
    let mut g = c.benchmark_group("append_to_disk");
    g.sample_size(10);
    for (size, name) in SIZES {
        let batch = make_batch(size, 4);
        g.throughput(Throughput::Bytes(size as u64));
        let log = Log::new(root.join("disk-strom"), LogConfig::default());
        let mut strom = strom_append_op(log, &batch, Sync::EndOfChunk);
        let mut raw = raw_write_op(Raw::new(root.join("disk-raw.bin")), &batch, Sync::EndOfChunk);
        g.bench_function(BenchmarkId::new("strom", name), |b| b.iter_custom(&mut strom));
        g.bench_function(BenchmarkId::new("raw", name), |b| b.iter_custom(&mut raw));
        paired.measure("append_to_disk", name, &mut strom, &mut raw, (128 * MIB / size) as u64);
    }
    g.finish();
    let _ = std::fs::remove_dir_all(root.join("disk-strom"));
    let _ = std::fs::remove_file(root.join("disk-raw.bin"));
}

fn bench_read(c: &mut Criterion, paired: &mut Paired) {
    let root = bench_root();
    let mut g = c.benchmark_group("read");
    for (size, name) in SIZES {
        let batch = make_batch(size, 2);
        let n = read_data() / size;
        // The same bytes in both: the plain-file side reads the log's own segment file. (A copy of it
        // made by fs::copy sits differently in the page cache, in larger folios, and reads ~12% faster
        // than any file written batch by batch, which would measure the copy, not the log.)
        let log = Log::new(root.join("read-strom"), LogConfig::default());
        let mut offsets = Vec::with_capacity(n);
        for _ in 0..n {
            let info = log.log().append(&batch, 0, 1_700_000_000_000).expect("append");
            offsets.push(info.base_offset);
        }
        log.log().flush().expect("flush");
        let seg = std::fs::read_dir(&log.dir)
            .expect("read dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|x| x == "log"))
            .expect("segment file");
        let raw = File::open(&seg).expect("open segment as a plain file");
        // Warm the page cache.
        let _ = std::fs::read(&seg).expect("warm");
        let offsets = &offsets;
        let plog = log.log();
        let raw = &raw;

        g.throughput(Throughput::Bytes(size as u64));
        let mut i = 0usize;
        // Both sides read and then deliver the bytes once to a reused buffer, the copy that sending
        // them to a socket makes. (strom's reads of 64 KiB or more are page-cache mappings that copy
        // nothing themselves; a plain-file read copies into its buffer first.)
        let mut sink = vec![0u8; size];
        let mut strom: Op = Box::new(move |iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let r = plog.read(offsets[i], size, true).expect("read");
                sink[..r.records.len()].copy_from_slice(&r.records);
                let h = BatchHeader::parse(&sink).expect("header");
                assert_eq!(h.base_offset, offsets[i]);
                i = (i + 1) % n;
                black_box(&sink);
            }
            start.elapsed()
        });
        let mut buf = vec![0u8; size];
        let mut raw_sink = vec![0u8; size];
        let mut j = 0usize;
        let mut raw_op: Op = Box::new(move |iters| {
            let start = Instant::now();
            for _ in 0..iters {
                raw.read_exact_at(&mut buf, (j * size) as u64).expect("read_at");
                raw_sink.copy_from_slice(&buf);
                let h = BatchHeader::parse(&raw_sink).expect("header");
                assert_eq!(h.base_offset, offsets[j]);
                j = (j + 1) % n;
                black_box(&raw_sink);
            }
            start.elapsed()
        });
        let mut fresh_sink = vec![0u8; size];
        let mut k = 0usize;
        let mut fresh: Op = Box::new(move |iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let mut buf = vec![0u8; size];
                raw.read_exact_at(&mut buf, (k * size) as u64).expect("read_at");
                fresh_sink.copy_from_slice(&buf);
                let h = BatchHeader::parse(&fresh_sink).expect("header");
                assert_eq!(h.base_offset, offsets[k]);
                k = (k + 1) % n;
                black_box(&fresh_sink);
            }
            start.elapsed()
        });
        g.bench_function(BenchmarkId::new("strom", name), |b| b.iter_custom(&mut strom));
        g.bench_function(BenchmarkId::new("raw", name), |b| b.iter_custom(&mut raw_op));
        g.bench_function(BenchmarkId::new("raw_fresh_buffer", name), |b| b.iter_custom(&mut fresh));
        let chunk = (64 * MIB / size) as u64;
        paired.measure("read", name, &mut strom, &mut raw_op, chunk);
        paired.measure("read_vs_fresh_buffer", name, &mut strom, &mut fresh, chunk);
        drop((strom, raw_op, fresh));
        drop(log);
        let _ = std::fs::remove_dir_all(root.join("read-strom"));
    }
    g.finish();
}

fn bench_append_fsync(c: &mut Criterion, paired: &mut Paired) {
    let root = bench_root();
    let mut g = c.benchmark_group("append_fsync");
    g.sample_size(10);
    for (size, name) in SIZES {
        let batch = make_batch(size, 3);
        g.throughput(Throughput::Bytes(size as u64));
        let config = LogConfig { flush_messages: 1, ..LogConfig::default() };
        let mut strom = strom_append_op(Log::new(root.join("fsync-strom"), config), &batch, Sync::None);
        let mut raw = raw_write_op(Raw::new(root.join("fsync-raw.bin")), &batch, Sync::EachBatch);
        g.bench_function(BenchmarkId::new("strom", name), |b| b.iter_custom(&mut strom));
        g.bench_function(BenchmarkId::new("raw", name), |b| b.iter_custom(&mut raw));
        paired.measure("append_fsync", name, &mut strom, &mut raw, if size >= MIB { 8 } else { 40 });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(root.join("fsync-strom"));
    let _ = std::fs::remove_file(root.join("fsync-raw.bin"));
}

/// Criterion's output directory (CRITERION_HOME, else `<target>/criterion`).
fn criterion_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(h);
    }
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(&tmp).join("criterion")
}

/// Mean time per iteration (ns) of one benchmark, from criterion's estimates.json.
fn mean_ns(group: &str, func: &str, param: &str) -> Option<f64> {
    let p = criterion_dir().join(group).join(func).join(param).join("new").join("estimates.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
    v.get("mean")?.get("point_estimate")?.as_f64()
}

fn report(paired: &Paired) {
    let mut rows = Vec::new();
    println!();
    println!(
        "strom vs raw file, same run (throughput ratio = raw time / strom time; goal >= 0.80 where given)"
    );
    println!(
        "{:<14} {:<8} {:>14} {:>14} {:>8} {:>6}",
        "group", "batch", "strom MiB/s", "raw MiB/s", "ratio", "goal"
    );
    for (group, goal) in
        [("append", Some(0.8)), ("append_to_disk", Some(0.8)), ("read", Some(0.8)), ("append_fsync", None)]
    {
        for (size, name) in SIZES {
            let (Some(s), Some(r)) = (mean_ns(group, "strom", name), mean_ns(group, "raw", name)) else {
                continue;
            };
            let mibs = |ns: f64| size as f64 / (ns / 1e9) / MIB as f64;
            let ratio = r / s;
            let fresh = (group == "read").then(|| mean_ns(group, "raw_fresh_buffer", name)).flatten();
            let med = |v: &Vec<f64>| v[v.len() / 2];
            let p = paired.get(group, name);
            let pf = paired.get("read_vs_fresh_buffer", name).filter(|_| group == "read");
            println!(
                "{:<14} {:<8} {:>12.1} {:>12.1} {:>10.3} {:>8} {:>15} {:>6}{}",
                group,
                name,
                mibs(s),
                mibs(r),
                ratio,
                p.map_or("-".into(), |v| format!("{:.3}", med(v))),
                p.map_or("-".into(), |v| format!("{:.2}-{:.2}", v[0], v[v.len() - 1])),
                goal.map_or("-".to_string(), |g| format!("{g:.2}")),
                fresh.map_or(String::new(), |f| format!(
                    "   (vs read_at into a fresh zeroed buffer: {:.1} MiB/s, criterion ratio {:.3}, paired {})",
                    mibs(f),
                    f / s,
                    pf.map_or("-".into(), |v| format!("{:.3}", med(v)))
                )),
            );
            rows.push(serde_json::json!({
                "group": group, "batch": name, "batch_bytes": size,
                "strom_ns": s, "raw_ns": r,
                "strom_mib_s": mibs(s), "raw_mib_s": mibs(r),
                "ratio": ratio, "goal": goal,
                "paired_ratios": p, "paired_ratio": p.map(med),
                "raw_fresh_buffer_mib_s": fresh.map(mibs),
                "paired_ratio_vs_fresh_buffer": pf.map(med),
            }));
        }
    }
    let out = criterion_dir().join("strom-log-ratios.json");
    let doc = serde_json::json!({ "quick": quick(), "rows": rows });
    if let Ok(text) = serde_json::to_string_pretty(&doc) {
        if std::fs::create_dir_all(criterion_dir()).is_ok() && std::fs::write(&out, text).is_ok() {
            println!("ratios written to {}", out.display());
        }
    }
}

fn main() {
    let (warm, measure) = if quick() { (0.3, 1.0) } else { (1.0, 3.0) };
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs_f64(warm))
        .measurement_time(Duration::from_secs_f64(measure))
        .sample_size(if quick() { 10 } else { 30 })
        .configure_from_args();
    let mut paired = Paired::default();
    bench_append(&mut c, &mut paired);
    bench_append_to_disk(&mut c, &mut paired);
    bench_read(&mut c, &mut paired);
    bench_append_fsync(&mut c, &mut paired);
    c.final_summary();
    if bench_mode() {
        report(&paired);
    }
}
