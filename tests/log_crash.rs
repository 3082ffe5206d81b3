//! Crash test for the partition log: a child process (examples/log_appender) appends continuously and
//! is killed with SIGKILL at random points, many times over the same directory. After each kill the log
//! is reopened (unclean: recovery runs) and must hold every batch whose append returned, intact and in
//! order, serve nothing after a torn point, and continue at the right offset.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strom::log::batch::{self, HEADER_LEN};
use strom::log::{FileCache, LogConfig, PartitionLog};

/// The appender binary.
fn appender() -> PathBuf {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(|| common::example::example_binary("log_appender")).clone()
}

fn reopen(dir: &std::path::Path) -> PartitionLog {
    let config = LogConfig { segment_bytes: 64 * 1024, index_interval_bytes: 512, ..LogConfig::default() };
    PartitionLog::open(dir, config, Arc::new(FileCache::new(64)), false, 0).expect("reopen after crash")
}

/// Every batch in the log from offset 0: (base offset, last offset, record bytes).
fn read_all(log: &PartitionLog) -> Vec<(i64, i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    loop {
        let r = log.read(offset, 1 << 20, true).expect("read");
        if r.records.is_empty() {
            return out;
        }
        for range in batch::split_batches(&r.records).expect("whole batches") {
            let b = &r.records[range];
            let h = batch::validate(b).expect("every served batch is valid");
            out.push((h.base_offset, h.last_offset(), b[HEADER_LEN..].to_vec()));
            offset = h.last_offset() + 1;
        }
    }
}

#[test]
fn acknowledged_batches_survive_sigkill() {
    let exe = appender();
    assert!(exe.exists(), "{} not built (cargo test builds examples)", exe.display());
    let dir = tempfile::tempdir().expect("tempdir");
    let mut acked: Vec<(i64, i64, usize)> = Vec::new();
    let started = Instant::now();
    let mut iterations = 0;
    while iterations < 25 && started.elapsed() < Duration::from_secs(40) {
        iterations += 1;
        let mut child = Command::new(&exe)
            .arg(dir.path())
            .arg(iterations.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn appender");
        let stdout = child.stdout.take().expect("stdout");
        let kill_after = Duration::from_millis(20 + (iterations as u64 * 37) % 180);
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                match line {
                    Ok(l) => lines.push(l),
                    Err(_) => break,
                }
            }
            lines
        });
        std::thread::sleep(kill_after);
        child.kill().expect("SIGKILL");
        let _ = child.wait();
        for line in reader.join().expect("reader") {
            let parts: Vec<&str> = line.split_whitespace().collect();
            if let ["ACK", base, last, len] = parts.as_slice() {
                acked.push((base.parse().unwrap(), last.parse().unwrap(), len.parse().unwrap()));
            }
        }
        let log = reopen(dir.path());
        let present = read_all(&log);
        // Offsets are dense and in order.
        for w in present.windows(2) {
            assert_eq!(w[1].0, w[0].1 + 1, "gap or reorder in recovered log");
        }
        // Every acknowledged batch is there, with its bytes.
        for (base, last, len) in &acked {
            let found =
                present.iter().find(|p| p.0 == *base).unwrap_or_else(|| panic!("acked batch at {base} lost"));
            assert_eq!(found.1, *last);
            let tag = (*base % 251) as u8;
            let expected: Vec<u8> = (0..*len).map(|i| tag.wrapping_add(i as u8)).collect();
            assert_eq!(found.2, expected, "acked batch at {base} damaged");
        }
        let end = present.last().map_or(0, |p| p.1 + 1);
        assert_eq!(log.log_end_offset(), end);
    }
    assert!(acked.len() > 100, "the appender made progress ({} acks)", acked.len());
}

#[test]
fn bytes_corrupted_by_the_test_are_never_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Produce data with the appender until it has acknowledged 30 batches (however slow the machine),
    // then flip bytes in the middle of the active segment.
    let mut child =
        Command::new(appender()).arg(dir.path()).arg("7").stdout(Stdio::piped()).spawn().expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let acks = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.starts_with("ACK "))
        .take(30)
        .count();
    assert_eq!(acks, 30, "the appender stopped early");
    child.kill().expect("kill");
    let _ = child.wait();
    let before = read_all(&reopen(dir.path()));
    assert!(before.len() > 10);
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 1000))
        .collect();
    segs.sort();
    let last = segs.last().expect("a non-empty segment");
    let mut bytes = std::fs::read(last).expect("read segment");
    let at = bytes.len() / 2;
    bytes[at] ^= 0xA5;
    std::fs::write(last, &bytes).expect("write");
    // Truncated index files too.
    for p in std::fs::read_dir(dir.path()).expect("dir").filter_map(|e| e.ok().map(|e| e.path())) {
        if p.extension().is_some_and(|x| x == "index") {
            let len = std::fs::metadata(&p).expect("meta").len();
            std::fs::OpenOptions::new()
                .write(true)
                .open(&p)
                .expect("open")
                .set_len(len / 2 + 3)
                .expect("truncate");
        }
    }
    let log = reopen(dir.path());
    let after = read_all(&log);
    assert!(after.len() < before.len(), "the corrupt batch and everything after it are gone");
    assert_eq!(after[..], before[..after.len()], "what remains is the untouched prefix");
    let next = log.log_end_offset();
    let b = log.read(log.log_start_offset(), 1 << 20, true).expect("read").records;
    assert!(!b.is_empty());
    // Appending continues at the right offset.
    let template = &b[batch::split_batches(&b).expect("split")[0].clone()];
    assert_eq!(log.append(template, 0, 1).expect("append").base_offset, next);
}
