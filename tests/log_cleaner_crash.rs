//! Crash test for the log cleaner: a child process (examples/log_cleaner_churn) overwrites keys of a
//! compacted log and cleans it every few writes, and is killed with SIGKILL at random points (inside
//! cleans and swaps), many times over the same directory. After each kill the log is reopened
//! (unclean: interrupted swaps are finished or rolled back, segments recovered) and every key's newest
//! acknowledged record must still be the newest a reader sees, every served batch intact.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use strom::log::batch;
use strom::log::{FileCache, LogConfig, PartitionLog};

/// Every record from the log start: offset → (key, value).
fn read_all(log: &PartitionLog) -> BTreeMap<i64, (String, Option<String>)> {
    let mut out = BTreeMap::new();
    let mut offset = log.log_start_offset();
    loop {
        let r = log.read(offset, 1 << 20, true).expect("read");
        if r.records.is_empty() {
            return out;
        }
        for range in batch::split_batches(&r.records).expect("whole batches") {
            let b = &r.records[range];
            let h = batch::validate_stored(b).expect("every served batch is intact");
            offset = h.last_offset() + 1;
            let set = RecordBatchDecoder::decode(&mut Bytes::copy_from_slice(b)).expect("decodes");
            for rec in set.records {
                let text = |v: &Option<Bytes>| v.as_ref().map(|v| String::from_utf8_lossy(v).into_owned());
                out.insert(rec.offset, (text(&rec.key).unwrap_or_default(), text(&rec.value)));
            }
        }
    }
}

#[test]
fn every_keys_newest_acknowledged_record_survives_sigkill_during_cleaning() {
    let exe = common::example::example_binary("log_cleaner_churn");
    let dir = tempfile::tempdir().expect("tempdir");
    // Newest acknowledged offset per key, over all runs.
    let mut acked: BTreeMap<String, i64> = BTreeMap::new();
    let (mut acks, mut swaps_seen) = (0usize, 0usize);
    let started = Instant::now();
    let mut iteration = 0u64;
    while iteration < 30 && started.elapsed() < Duration::from_secs(60) {
        iteration += 1;
        let mut child = Command::new(&exe)
            .arg(dir.path())
            .arg(iteration.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn churn");
        let stdout = child.stdout.take().expect("stdout");
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(30 + (iteration * 53) % 250));
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        for line in reader.join().expect("reader") {
            if let ["ACK", key, offset] = line.split_whitespace().collect::<Vec<_>>().as_slice() {
                acked.insert(format!("k{key}"), offset.parse().expect("offset"));
                acks += 1;
            }
        }
        swaps_seen += std::fs::read_dir(dir.path())
            .expect("dir")
            .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().contains("swap")))
            .count();
        let config = LogConfig {
            segment_bytes: 2048,
            compacted: true,
            cleanup_delete: false,
            min_cleanable_dirty_ratio: 0.0,
            delete_retention_ms: i64::MAX / 4,
            ..LogConfig::default()
        };
        let log =
            PartitionLog::open(dir.path(), config, Arc::new(FileCache::new(64)), false, 0).expect("reopen");
        let present = read_all(&log);
        let mut newest: BTreeMap<&str, i64> = BTreeMap::new();
        for (offset, (key, value)) in &present {
            newest.insert(key.as_str(), *offset);
            if let Some(v) = value {
                assert_eq!(v, &offset.to_string(), "the record at {offset} holds its own offset");
            }
        }
        for (key, offset) in &acked {
            let found = newest.get(key.as_str()).copied();
            // A newer write may have landed without its ACK being printed; never an older one.
            assert!(found.is_some_and(|f| f >= *offset), "{key}: newest acked {offset}, log has {found:?}");
        }
        assert!(present.keys().last().is_none_or(|last| *last < log.log_end_offset()));
    }
    assert!(acks > 500, "the churn made progress ({acks} acks)");
    eprintln!("{iteration} kills, {acks} acks, interrupted swaps seen at reopen: {swaps_seen}");
}
