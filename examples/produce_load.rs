//! A produce load generator that costs its client next to nothing, used by `scripts/bench` to measure what
//! a broker takes in when compressed batches arrive faster than one client core can compress them.
//!
//! ```text
//! produce_load --bootstrap 127.0.0.1:PORT --topic T [--partitions 16] [--codec none|gzip|snappy|lz4|zstd]
//!              [--bytes 1000000000] [--acks 1] [--connections 4] [--in-flight 5] [--batch-records 128]
//!              [--record-size 1024] [--keys 0]
//! ```
//!
//! The batches are built and compressed once, before the clock starts: `--batch-records` keyless records
//! per batch, each value `--record-size` bytes of JSON-like text drawn from a small vocabulary (it
//! compresses about as application data does), compressed by kafka-protocol's own codecs (gzip at its
//! default level). Then each of `--connections` connections owns the partitions `p` with
//! `p % connections == c` and sends Produce v9 requests holding one batch per partition it owns, keeping
//! up to `--in-flight` requests outstanding, until `--bytes` of uncompressed record bytes are sent. The
//! batches carry no producer id, so the same bytes are valid in every request; the broker assigns the
//! offsets, decompresses and validates every record as it would for any producer.
//!
//! With `--keys N` (N > 0) every record has a key, `key-00000000` .. `key-N-1` in turn, and enough batches
//! are built that each key is in one of them; cycling through them overwrites every key again and again (the
//! load of a compacted topic, as `scripts/bench`'s compaction row uses it).
//!
//! Every partition answer must have error code 0 (exit status 1 otherwise). The last line printed is
//! `produced N records (U bytes uncompressed, W bytes on the wire) in T ms: R records/s, M MB/s`, where MB/s is
//! 10^6 bytes of uncompressed record values per second, as rdkafka_performance counts them.

mod load;

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc::sync_channel;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use strom::log::batch::testing::{compressed_batch, record};

const PRODUCE_VERSION: i16 = 9;
/// Distinct batches built per partition; requests cycle through them.
const VARIANTS: usize = 4;

struct Args {
    bootstrap: String,
    topic: String,
    partitions: i32,
    codec: i16,
    bytes: u64,
    acks: i16,
    connections: i32,
    in_flight: usize,
    batch_records: i32,
    record_size: usize,
    keys: u64,
}

fn usage(why: &str) -> ! {
    load::usage(
        &format!("produce_load: {why}"),
        "produce_load --bootstrap HOST:PORT --topic T [--partitions N] [--codec none|gzip|snappy|lz4|zstd] \
         [--bytes N] [--acks 0|1|-1] [--connections N] [--in-flight N] [--batch-records N] [--record-size N] [--keys N]",
    )
}

fn parse_args() -> Args {
    let mut a = Args {
        bootstrap: String::new(),
        topic: String::new(),
        partitions: 16,
        codec: 0,
        bytes: 1_000_000_000,
        acks: 1,
        connections: 4,
        in_flight: 5,
        batch_records: 128,
        record_size: 1024,
        keys: 0,
    };
    for (flag, value) in load::flag_pairs(usage) {
        let num = |v: &str| load::number(&flag, v, usage);
        match flag.as_str() {
            "--bootstrap" => a.bootstrap = value,
            "--topic" => a.topic = value,
            "--partitions" => a.partitions = num(&value).clamp(1, 10_000) as i32,
            "--codec" => {
                a.codec = match value.as_str() {
                    "none" => 0,
                    "gzip" => 1,
                    "snappy" => 2,
                    "lz4" => 3,
                    "zstd" => 4,
                    _ => usage(&format!("unknown codec {value}")),
                }
            }
            "--bytes" => a.bytes = num(&value),
            "--acks" => a.acks = value.parse().unwrap_or_else(|_| usage("--acks: 0, 1 or -1")),
            "--connections" => a.connections = num(&value).clamp(1, 256) as i32,
            "--in-flight" => a.in_flight = num(&value).clamp(1, 1000) as usize,
            "--batch-records" => a.batch_records = num(&value).clamp(1, 100_000) as i32,
            "--record-size" => a.record_size = num(&value).clamp(1, 1 << 20) as usize,
            "--keys" => a.keys = num(&value).min(10_000_000),
            _ => usage(&format!("unknown option {flag}")),
        }
    }
    if a.bootstrap.is_empty() || a.topic.is_empty() {
        usage("--bootstrap and --topic are required");
    }
    if a.acks == 0 {
        usage("--acks 0 has no answers to time; use 1 or -1");
    }
    a
}

/// A JSON-like value of `len` bytes: words from a small vocabulary picked by a xorshift generator.
fn value(len: usize, seed: &mut u32) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "{\"user\":",
        "\"alice\",",
        "\"bob\",",
        "\"action\":",
        "\"click\",",
        "\"view\",",
        "\"page\":",
        "\"/index.html\",",
        "\"/cart\",",
        "\"ts\":",
        "1700000000123,",
        "\"session\":",
        "\"a1b2c3\",",
        "42,",
        "\"ok\"}",
        " ",
    ];
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 17;
        *seed ^= *seed << 5;
        out.extend_from_slice(WORDS[(*seed % WORDS.len() as u32) as usize].as_bytes());
    }
    out.truncate(len);
    out
}

/// `VARIANTS` batches (with `--keys`, as many as hold every key once) of `a.batch_records` records
/// each, compressed with `a.codec`, timestamped now.
fn batches(a: &Args) -> Vec<Bytes> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    let mut seed = 0x9e37_79b9u32;
    let per_batch = a.batch_records as u64;
    let variants = VARIANTS.max(a.keys.div_ceil(per_batch) as usize);
    (0..variants)
        .map(|v| {
            let records: Vec<u8> = (0..a.batch_records)
                .flat_map(|i| {
                    let key = (a.keys > 0)
                        .then(|| format!("key-{:08}", (v as u64 * per_batch + i as u64) % a.keys));
                    let value = value(a.record_size, &mut seed);
                    record(i, 0, key.as_deref().map(str::as_bytes), Some(&value), &[])
                })
                .collect();
            Bytes::from(compressed_batch(a.batch_records, &records, a.codec, now))
        })
        .collect()
}

/// The body (header excluded) of Produce request `n` of a connection owning `partitions`.
fn request_body(a: &Args, partitions: &[i32], n: usize, batches: &[Bytes]) -> Bytes {
    let data = partitions
        .iter()
        .map(|&p| {
            let b = batches[(n + p as usize) % batches.len()].clone();
            PartitionProduceData::default().with_index(p).with_records(Some(b))
        })
        .collect();
    let req = ProduceRequest::default().with_acks(a.acks).with_timeout_ms(30_000).with_topic_data(vec![
        TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(a.topic.clone())))
            .with_partition_data(data),
    ]);
    load::encode_body(&req, PRODUCE_VERSION).unwrap_or_else(|e| usage(&e))
}

fn produce_frame(correlation_id: i32, body: &[u8]) -> Vec<u8> {
    load::frame(ApiKey::Produce, PRODUCE_VERSION, correlation_id, body).unwrap_or_else(|e| usage(&e))
}

/// Reads one response and returns the first partition error, if any: (partition, error code, message).
fn read_response(sock: &mut TcpStream) -> Result<Option<(i32, i16, String)>, String> {
    let resp: ProduceResponse = load::read_response(sock, ApiKey::Produce, PRODUCE_VERSION)?;
    for t in &resp.responses {
        for p in &t.partition_responses {
            if p.error_code != 0 {
                let message = p.error_message.as_ref().map(|m| m.to_string()).unwrap_or_default();
                return Ok(Some((p.index, p.error_code, message)));
            }
        }
    }
    Ok(None)
}

/// Reads one response; any partition error is an `Err`.
fn expect_success(sock: &mut TcpStream) -> Result<(), String> {
    match read_response(sock)? {
        None => Ok(()),
        Some((p, code, msg)) => Err(format!("partition {p} answered error code {code} {msg}")),
    }
}

/// Sends untimed requests until one succeeds, for up to 30 s while partitions answer
/// NOT_LEADER_OR_FOLLOWER or UNKNOWN_TOPIC_OR_PARTITION (a topic just created may not have its leaders yet).
fn preflight(sock: &mut TcpStream, body: &[u8]) -> Result<(), String> {
    for _ in 0..300 {
        sock.write_all(&produce_frame(-1, body)).map_err(|e| format!("sending: {e}"))?;
        match read_response(sock)? {
            None => return Ok(()),
            Some((_, 3 | 6, _)) => std::thread::sleep(std::time::Duration::from_millis(100)),
            Some((p, code, msg)) => return Err(format!("partition {p} answered error code {code} {msg}")),
        }
    }
    Err("partitions still without a leader after 30 s".into())
}

/// A connection with its request bodies, its untimed first request answered.
fn connect(a: &Args, partitions: &[i32], batches: &[Bytes]) -> Result<(TcpStream, Vec<Bytes>), String> {
    let mut sock =
        TcpStream::connect(&a.bootstrap).map_err(|e| format!("connecting to {}: {e}", a.bootstrap))?;
    sock.set_nodelay(true).map_err(|e| e.to_string())?;
    let bodies: Vec<Bytes> = (0..batches.len()).map(|n| request_body(a, partitions, n, batches)).collect();
    preflight(&mut sock, &bodies[0])?;
    Ok((sock, bodies))
}

/// One connection's timed run: `requests` Produce requests, at most `a.in_flight` outstanding. Returns the
/// wire bytes sent.
fn run_connection(a: &Args, mut sock: TcpStream, requests: usize, bodies: &[Bytes]) -> Result<u64, String> {
    let mut reader = sock.try_clone().map_err(|e| e.to_string())?;
    // A slot per outstanding request: the writer takes one before sending, the reader frees it.
    let (slot_tx, slot_rx) = sync_channel::<()>(a.in_flight);
    std::thread::scope(|s| {
        let answers = s.spawn(move || -> Result<(), String> {
            for _ in 0..requests {
                expect_success(&mut reader)?;
                let _ = slot_rx.recv();
            }
            Ok(())
        });
        let mut wire = 0u64;
        for n in 0..requests {
            if slot_tx.send(()).is_err() {
                break; // the reader stopped: its error is reported below
            }
            let f = produce_frame(n as i32, &bodies[n % bodies.len()]);
            if let Err(e) = sock.write_all(&f) {
                let _ = sock.shutdown(std::net::Shutdown::Both);
                return answers
                    .join()
                    .map_err(|_| "reader panicked".to_string())?
                    .and(Err(format!("sending: {e}")));
            }
            wire += f.len() as u64;
        }
        answers.join().map_err(|_| "reader panicked".to_string())??;
        Ok(wire)
    })
}

fn main() {
    let a = parse_args();
    let batches = batches(&a);
    let per_batch_bytes = a.batch_records as u64 * a.record_size as u64;
    let conns = a.connections.min(a.partitions);
    let owned: Vec<Vec<i32>> =
        (0..conns).map(|c| (c..a.partitions).step_by(conns as usize).collect()).collect();
    let total_batches = a.bytes.div_ceil(per_batch_bytes).max(1);
    let mut ready = Vec::new();
    for parts in &owned {
        match connect(&a, parts, &batches) {
            Ok(c) => ready.push((parts.len(), c)),
            Err(e) => {
                eprintln!("produce_load: {e}");
                std::process::exit(1);
            }
        }
    }
    let start = Instant::now();
    let results: Vec<Result<(u64, u64), String>> = std::thread::scope(|s| {
        let handles: Vec<_> = ready
            .into_iter()
            .map(|(owned, (sock, bodies))| {
                let a = &a;
                let requests = (total_batches / conns as u64).div_ceil(owned as u64).max(1) as usize;
                s.spawn(move || {
                    let records = requests as u64 * owned as u64 * a.batch_records as u64;
                    run_connection(a, sock, requests, &bodies).map(|wire| (records, wire))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("connection thread panicked".into())))
            .collect()
    });
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let (mut records, mut wire) = (0u64, 0u64);
    for r in results {
        match r {
            Ok((n, w)) => {
                records += n;
                wire += w;
            }
            Err(e) => {
                eprintln!("produce_load: {e}");
                std::process::exit(1);
            }
        }
    }
    let bytes = records * a.record_size as u64;
    println!(
        "produced {records} records ({bytes} bytes uncompressed, {wire} bytes on the wire) in {:.0} ms: {:.0} records/s, {:.2} MB/s",
        ms,
        records as f64 / (ms / 1000.0),
        bytes as f64 / 1e6 / (ms / 1000.0)
    );
}
