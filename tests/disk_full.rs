//! A full disk: the data directory sits on a small tmpfs that a filler file fills up. Producing runs
//! until the broker answers KAFKA_STORAGE_ERROR; once the filler is deleted, producing resumes without a
//! restart; after a clean stop the broker starts again at the first attempt and serves every
//! acknowledged record, in order.
//!
//! Mounting needs root (or CAP_SYS_ADMIN); where it is not allowed the test says why and passes.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::FetchRequest;

/// KAFKA_STORAGE_ERROR.
const STORAGE_ERROR: i16 = 56;
const TOPIC: &str = "full";

/// A tmpfs mounted on a fresh directory; unmounted (lazily, so even with files open) when dropped.
struct Tmpfs {
    mount_point: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let parent = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mount_point = parent.path().join("fs");
        std::fs::create_dir(&mount_point).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount_point)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs { mount_point, _parent: parent })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.mount_point).status();
    }
}

/// Writes a file until the filesystem is full, then gives back `leave` bytes. Returns its size.
fn fill(path: &Path, leave: u64) -> u64 {
    let mut f = std::fs::File::create(path).expect("create filler");
    let chunk = vec![0x5Au8; 64 * 1024];
    loop {
        if let Err(e) = f.write_all(&chunk) {
            assert_eq!(e.raw_os_error(), Some(28), "the filler stops at ENOSPC: {e}");
            break;
        }
    }
    let len = f.metadata().expect("filler size").len();
    f.set_len(len.saturating_sub(leave)).expect("shrink filler");
    len.saturating_sub(leave)
}

/// One batch of 8 records of about 1 KB each; values name their sequence number.
fn values_for(first: usize) -> Vec<String> {
    (first..first + 8).map(|n| format!("record-{n:06}-{}", "x".repeat(1000))).collect()
}

/// Every record of the partition from offset 0, as (offset, value).
async fn read_all(c: &mut Client) -> Vec<(i64, String)> {
    let mut out: Vec<(i64, String)> = Vec::new();
    loop {
        let from = out.last().map_or(0, |r| r.0 + 1);
        let req = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(8 << 20)
            .with_topics(vec![FetchTopic::default().with_topic(tn(TOPIC)).with_partitions(vec![
                FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(from)
                    .with_partition_max_bytes(1 << 20),
            ])]);
        let resp = c.call(&req, 12).await;
        let p = &resp.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "fetch from {from}");
        let records = p.records.clone().unwrap_or_default();
        if records.is_empty() {
            assert_eq!(from, p.high_watermark, "nothing more to read only at the end of the log");
            return out;
        }
        out.extend(record_values(&records).into_iter().filter(|(o, _)| *o >= from));
    }
}

#[tokio::test]
async fn producing_resumes_after_the_disk_fills_up_and_nothing_acknowledged_is_lost() {
    let fs = match Tmpfs::mount("8m") {
        Ok(fs) => fs,
        Err(why) => {
            eprintln!("skipped: cannot mount a tmpfs ({why})");
            return;
        }
    };
    let data = fs.mount_point.join("data");
    // Small segments, so segments roll while the disk fills up.
    let mut broker = TestBroker::start_in(&data, &[("log.segment.bytes", "65536")]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, TOPIC, 1).await;

    let filler = fs.mount_point.join("filler");
    let filler_bytes = fill(&filler, 256 * 1024);
    let mut acked: Vec<String> = Vec::new();
    let mut refused = 0;
    for _ in 0..10_000 {
        let values = values_for(acked.len());
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let p = produce(&mut c, TOPIC, 0, record_batch(&refs), 9).await;
        match p.error_code {
            0 => {
                assert_eq!(p.base_offset, acked.len() as i64, "offsets are dense");
                acked.extend(values);
            }
            STORAGE_ERROR => {
                refused += 1;
                if refused == 5 {
                    break;
                }
            }
            other => panic!("produce while the disk fills: error {other} ({:?})", p.error_message),
        }
    }
    assert_eq!(refused, 5, "the disk filled up (after {} records)", acked.len());
    assert!(!acked.is_empty(), "some records fit before the disk was full");
    let before_full = acked.len();

    // Space comes back: the same broker takes writes again, at the next offset.
    std::fs::remove_file(&filler).expect("remove filler");
    for _ in 0..20 {
        let values = values_for(acked.len());
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let p = produce(&mut c, TOPIC, 0, record_batch(&refs), 9).await;
        assert_eq!(p.error_code, 0, "produce after space was freed: {:?}", p.error_message);
        assert_eq!(p.base_offset, acked.len() as i64);
        acked.extend(values);
    }
    println!(
        "filler {filler_bytes} bytes; {before_full} records acknowledged before the disk was full, {} in all",
        acked.len()
    );

    // A clean stop, then one start: it must succeed and serve every acknowledged record in order.
    drop(c);
    broker.restart().await;
    let mut c = broker.client().await;
    let got = read_all(&mut c).await;
    let offsets: Vec<i64> = got.iter().map(|r| r.0).collect();
    assert_eq!(offsets, (0..acked.len() as i64).collect::<Vec<_>>(), "offsets 0.. without gaps");
    let values: Vec<String> = got.into_iter().map(|r| r.1).collect();
    assert!(values == acked, "every acknowledged record, in order");
    // And it still takes writes.
    let p = produce(&mut c, TOPIC, 0, record_batch(&["after restart"]), 9).await;
    assert_eq!((p.error_code, p.base_offset), (0, acked.len() as i64));
    drop(c);
    broker.stop().await;
}
