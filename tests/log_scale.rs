//! Scale: 10,000 partitions on one broker's log manager. Every partition takes appends and serves
//! reads, before and after a clean and an unclean restart, while the number of open files stays
//! within the file cache's bound and memory grows by kilobytes per partition, not by a segment-sized
//! buffer each.
//!
//! Its own test binary, so the process's descriptor count and resident memory belong to this test.

use strom::log::batch::{self, testing::batch_with};
use strom::log::{LogConfig, LogManager, TopicPartition};

const PARTITIONS: i32 = 10_000;
const OPEN_FILES: usize = 256;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn tp(p: i32) -> TopicPartition {
    TopicPartition::new(format!("t{}", p % 100), p / 100)
}

/// The batch partition `p` gets in round `round`: its record bytes name both.
fn batch_for(p: i32, round: u8) -> Vec<u8> {
    let records: Vec<u8> = format!("partition {p} round {round}").into_bytes().repeat(4);
    batch_with(1, &records, 1_700_000_000_000)
}

/// Opens every partition, checks the batches of rounds `0..rounds` and appends round `rounds`.
fn check_and_append(logs: &LogManager, rounds: u8) {
    for p in 0..PARTITIONS {
        let log = logs.open_log(&tp(p), "owner", LogConfig::default()).unwrap();
        assert_eq!(log.log_end_offset(), i64::from(rounds), "partition {p}");
        let read = log.read(0, 1 << 20, true).unwrap();
        let got: Vec<Vec<u8>> = batch::split_batches(&read.records)
            .unwrap()
            .into_iter()
            .map(|r| read.records[r][batch::HEADER_LEN..].to_vec())
            .collect();
        let want: Vec<Vec<u8>> = (0..rounds).map(|r| batch_for(p, r)[batch::HEADER_LEN..].to_vec()).collect();
        assert_eq!(got, want, "partition {p}");
        let info = log.append(&batch_for(p, rounds), 0, strom::log::now_ms()).unwrap();
        assert_eq!(info.base_offset, i64::from(rounds));
        assert!(logs.open_file_count() <= OPEN_FILES);
    }
    assert_eq!(logs.log_count(), PARTITIONS as usize);
}

#[test]
fn ten_thousand_partitions_within_bounded_files_and_memory() {
    let dir = tempfile::tempdir().unwrap();
    let fds_before = open_fds();
    let rss_before = rss_kib();

    let logs = LogManager::open(dir.path(), OPEN_FILES).unwrap();
    check_and_append(&logs, 0);
    let rss_grown = rss_kib().saturating_sub(rss_before);
    let fds = open_fds();
    // 10,000 partitions × 3 segment files each would be 30,000 descriptors without the bound.
    assert!(fds <= fds_before + OPEN_FILES + 16, "{fds} descriptors open (before: {fds_before})");
    // A segment-sized (or even a 64 KiB) buffer per partition would be ≥ 640 MiB here.
    assert!(rss_grown < 256 * 1024, "resident memory grew by {rss_grown} KiB for {PARTITIONS} partitions");
    println!(
        "{PARTITIONS} partitions: {fds} descriptors open, resident memory +{} KiB ({:.1} KiB per partition)",
        rss_grown,
        rss_grown as f64 / f64::from(PARTITIONS)
    );

    // Clean restart: no scan; every partition still reads back and appends at the right offset.
    logs.close().unwrap();
    drop(logs);
    let logs = LogManager::open(dir.path(), OPEN_FILES).unwrap();
    assert!(logs.clean_start());
    check_and_append(&logs, 1);

    // Unclean restart (no close): every partition is recovered.
    drop(logs);
    let logs = LogManager::open(dir.path(), OPEN_FILES).unwrap();
    assert!(!logs.clean_start());
    check_and_append(&logs, 2);
    assert!(open_fds() <= fds_before + OPEN_FILES + 16);
}
