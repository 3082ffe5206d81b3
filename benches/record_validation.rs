//! The cost of validating produced records (`strom::log::validator`, Kafka's LogValidator), per codec.
//!
//! One 1 MiB (uncompressed) batch of 1 KiB records with 8-byte keys and one header, whose values are
//! half random bytes, half repeated text (so every codec has something to compress), compressed with
//! each codec as kafka-protocol's encoder writes it. Each benchmark walks every record of the batch
//! (and decompresses it, for a compressed batch) exactly as a Produce request's batch is walked.
//! Throughput is counted in uncompressed record bytes, so 1 / throughput is the CPU time that
//! validation adds per GB produced. A second group decompresses the same batches without walking the
//! records (the part of the cost that Kafka's broker pays too, as it decompresses every batch to
//! validate it).
//!
//! At the end, seconds of CPU per GB are printed and written to
//! `target/criterion/strom-validation-cost.json` (read by `scripts/bench` for docs/benchmarks.md).
//!
//! `cargo bench --bench record_validation` (under a minute); under `cargo test --all-targets` every
//! benchmark runs once, as a smoke test.

use std::hint::black_box;
use std::io::Read;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use strom::log::batch::{self, testing::compressed_batch, testing::record};
use strom::log::decompress;
use strom::log::validator::{validate_records, RecordRules, TimestampRule};

const CODECS: [(i16, &str); 5] = [(0, "none"), (1, "gzip"), (2, "snappy"), (3, "lz4"), (4, "zstd")];
const RECORD_VALUE: usize = 1000;
const BATCH_RECORDS: i32 = 1024;

/// The uncompressed records of one batch (~1 MiB) and its byte count.
fn records() -> Vec<u8> {
    let mut x = 0x2545_f491u32;
    let text = b"{\"user\":\"someone\",\"action\":\"click\",\"page\":\"/index.html\"}";
    (0..BATCH_RECORDS)
        .flat_map(|i| {
            let value: Vec<u8> = (0..RECORD_VALUE)
                .map(|j| {
                    if j < RECORD_VALUE / 2 {
                        x ^= x << 13;
                        x ^= x >> 17;
                        x ^= x << 5;
                        x as u8
                    } else {
                        text[j % text.len()]
                    }
                })
                .collect();
            record(
                i,
                i64::from(i),
                Some(format!("key{:05}", i).as_bytes()),
                Some(&value),
                &[(b"trace", Some(b"abc"))],
            )
        })
        .collect()
}

fn rules() -> RecordRules {
    RecordRules {
        max_decompressed_bytes: 64 << 20,
        max_record_bytes: 2_147_483_639,
        compacted: false,
        timestamps: TimestampRule::CreateTime {
            now_ms: 1_700_000_000_000,
            before_ms: i64::MAX,
            after_ms: 3_600_000,
        },
    }
}

fn validate(b: &[u8]) {
    let h = batch::BatchHeader::parse(b).expect("header");
    validate_records(b, &h, &rules(), "bench", 0).expect("a valid batch");
}

fn decompress_only(b: &[u8], codec: i16) {
    let mut r = decompress::reader(codec, &b[batch::HEADER_LEN..], 64 << 20).expect("codec").expect("stream");
    let mut buf = [0u8; 16 * 1024];
    while r.read(&mut buf).expect("decompress") > 0 {}
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(if smoke { 1 } else { 500 }))
        .measurement_time(Duration::from_secs(if smoke { 1 } else { 3 }));
    let plain = records();
    let batches: Vec<(i16, &str, Vec<u8>)> = CODECS
        .iter()
        .map(|(codec, name)| {
            (*codec, *name, compressed_batch(BATCH_RECORDS, &plain, *codec, 1_700_000_000_000))
        })
        .collect();
    {
        let mut g = c.benchmark_group("validate");
        g.throughput(Throughput::Bytes(plain.len() as u64));
        for (_, name, b) in &batches {
            g.bench_with_input(BenchmarkId::from_parameter(name), b, |bench, b| {
                bench.iter(|| validate(black_box(b)))
            });
        }
        g.finish();
        let mut g = c.benchmark_group("decompress_only");
        g.throughput(Throughput::Bytes(plain.len() as u64));
        for (codec, name, b) in batches.iter().filter(|(codec, ..)| *codec != 0) {
            g.bench_with_input(BenchmarkId::from_parameter(name), b, |bench, b| {
                bench.iter(|| decompress_only(black_box(b), *codec))
            });
        }
        g.finish();
    }
    // CPU seconds per GB of uncompressed records, measured directly (criterion's estimates live in its
    // own files): each batch validated for about a second (or once, under `cargo test`).
    let mut rows = Vec::new();
    for (codec, name, b) in &batches {
        let time = |f: &dyn Fn()| {
            let start = Instant::now();
            let mut n = 0u64;
            while n == 0 || (!smoke && start.elapsed() < Duration::from_secs(1)) {
                f();
                n += 1;
            }
            start.elapsed().as_secs_f64() / (n as f64 * plain.len() as f64 / 1e9)
        };
        let validate_s = time(&|| validate(b));
        let decompress_s = if *codec == 0 { 0.0 } else { time(&|| decompress_only(b, *codec)) };
        println!(
            "validation {name:>6}: {validate_s:.3} s/GB of records ({:.2} GB/s); decompression alone {decompress_s:.3} s/GB; batch {} bytes on the wire",
            1.0 / validate_s,
            b.len()
        );
        rows.push(format!(
            "{{\"codec\":\"{name}\",\"validate_s_per_gb\":{validate_s:.4},\"decompress_s_per_gb\":{decompress_s:.4},\"wire_bytes\":{},\"record_bytes\":{}}}",
            b.len(),
            plain.len()
        ));
    }
    if !smoke {
        // The target directory's criterion/ (CARGO_TARGET_TMPDIR is <target>/tmp), where scripts/bench reads it.
        let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let dir = tmp.parent().unwrap_or(tmp).join("criterion");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join("strom-validation-cost.json"), format!("[{}]\n", rows.join(",")));
    }
}
