use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;

use super::*;
use crate::log::batch::testing::batch;
use crate::log::batch::ATTR_TRANSACTIONAL;
use crate::log::{FileCache, LogConfig, LogError, PartitionLog};

fn config() -> LogConfig {
    LogConfig { segment_bytes: 700, index_interval_bytes: 100, ..LogConfig::default() }
}

fn open(dir: &Path, clean: bool) -> PartitionLog {
    PartitionLog::open(dir, config(), Arc::new(FileCache::new(64)), clean, 0).unwrap()
}

/// A batch of `count` records from producer `pid` (epoch, first sequence), transactional or not.
fn producer_batch(pid: i64, epoch: i16, seq: i32, count: i32, transactional: bool) -> Vec<u8> {
    let mut b = batch(count, 20, 1);
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    if transactional {
        let attrs = i16::from_be_bytes([b[21], b[22]]) | ATTR_TRANSACTIONAL;
        b[21..23].copy_from_slice(&attrs.to_be_bytes());
    }
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn txn(pid: i64, seq: i32, count: i32) -> Vec<u8> {
    producer_batch(pid, 0, seq, count, true)
}

/// (base offset, last offset, is control) of every batch in `records`.
fn shape(records: &[u8]) -> Vec<(i64, i64, bool)> {
    crate::log::batch::split_batches(records)
        .unwrap()
        .into_iter()
        .map(|r| crate::log::batch::validate(&records[r]).unwrap())
        .map(|h| (h.base_offset, h.last_offset(), h.is_control()))
        .collect()
}

/// Every aborted transaction a read_committed consumer meets reading from the log start to the LSO.
fn aborts_seen(log: &PartitionLog) -> Vec<AbortedTxn> {
    let mut seen: Vec<AbortedTxn> = Vec::new();
    let mut offset = log.log_start_offset();
    loop {
        let (r, aborted) = log.read_committed(offset, 1 << 20, true).unwrap();
        let Some(end) = end_offset(&r.records) else { return seen };
        seen.extend(aborted.into_iter().filter(|t| !seen.contains(t)).collect::<Vec<_>>());
        offset = end;
    }
}

#[test]
fn the_marker_has_kafkas_bytes_and_parses_back() {
    let b = marker_batch(77, 3, TxnMarker { commit: true, coordinator_epoch: 0x0102_0304 }, 1234).unwrap();
    let h = crate::log::batch::validate(&b).unwrap();
    assert_eq!(h.attributes, crate::log::batch::ATTR_CONTROL | ATTR_TRANSACTIONAL);
    assert_eq!((h.producer_id, h.producer_epoch, h.base_sequence), (77, 3, -1));
    assert_eq!((h.record_count, h.last_offset_delta, h.max_timestamp, h.base_timestamp), (1, 0, 1234, 1234));
    // One record: length 16, attributes 0, timestamp and offset deltas 0, key (4 bytes: version 0,
    // type 1 = COMMIT), value (6 bytes: version 0, coordinator epoch), no headers (varints zigzag).
    let record = [32, 0, 0, 0, 8, 0, 0, 0, 1, 12, 0, 0, 1, 2, 3, 4, 0];
    assert_eq!(&b[crate::log::batch::HEADER_LEN..], &record[..]);
    assert_eq!(parse_marker(&b), Ok(Some(TxnMarker { commit: true, coordinator_epoch: 0x0102_0304 })));
    let abort = marker_batch(1, 0, TxnMarker { commit: false, coordinator_epoch: -1 }, 5).unwrap();
    assert_eq!(parse_marker(&abort), Ok(Some(TxnMarker { commit: false, coordinator_epoch: -1 })));
    assert!(parse_marker(&batch(1, 3, 1)).is_err(), "a data batch is no marker");
}

#[test]
fn commit_and_abort_move_the_last_stable_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false);
    log.append(&batch(2, 5, 1), 0, 1).unwrap(); // 0-1
    assert_eq!(log.last_stable_offset(), 2);
    log.append(&txn(10, 0, 3), 0, 1).unwrap(); // 2-4: producer 10's transaction starts at 2
    log.append(&txn(11, 0, 1), 0, 1).unwrap(); // 5: producer 11's at 5
    log.append(&txn(10, 3, 2), 0, 1).unwrap(); // 6-7: still producer 10's first transaction
    assert_eq!(log.last_stable_offset(), 2);
    assert_eq!(log.ongoing_transactions(), vec![(2, 10), (5, 11)]);
    assert_eq!(log.read(0, 10_000, true).unwrap().last_stable_offset, 2);
    // Producer 10 aborts at 8: the LSO moves to producer 11's first offset.
    assert_eq!(log.append_txn_marker(10, 0, 4, false, 0, 9).unwrap(), 8);
    assert_eq!(log.last_stable_offset(), 5);
    // Producer 11 commits at 9: nothing ongoing, the LSO is the log end.
    assert_eq!(log.append_txn_marker(11, 0, 4, true, 0, 9).unwrap(), 9);
    assert_eq!(log.last_stable_offset(), 10);
    assert!(log.ongoing_transactions().is_empty());
    let (r, aborted) = log.read_committed(0, 10_000, true).unwrap();
    assert_eq!(r.records.len(), log.read(0, 10_000, true).unwrap().records.len());
    let expected = AbortedTxn { producer_id: 10, first_offset: 2, last_offset: 8, last_stable_offset: 5 };
    assert_eq!(aborted, vec![expected]);
    // From past the marker there is nothing to report.
    assert!(log.read_committed(9, 10_000, true).unwrap().1.is_empty());
    let summary = log.producers();
    assert_eq!(summary.len(), 2);
    assert_eq!((summary[0].producer_id, summary[0].coordinator_epoch, summary[0].last_sequence), (10, 4, 4));
    assert_eq!(summary[0].current_txn_start_offset, -1);
}

#[test]
fn read_committed_stops_at_the_last_stable_offset() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false);
    log.append(&batch(2, 5, 1), 0, 1).unwrap(); // 0-1
    log.append(&txn(7, 0, 2), 0, 1).unwrap(); // 2-3 ongoing
    log.append(&batch(1, 5, 1), 0, 1).unwrap(); // 4
    let (r, aborted) = log.read_committed(0, 10_000, true).unwrap();
    assert_eq!(shape(&r.records), vec![(0, 1, false)]);
    assert!(aborted.is_empty());
    assert_eq!((r.last_stable_offset, r.log_end_offset), (2, 5));
    // At or past the LSO (but inside the log): empty, not an error. Past the log end: an error.
    for offset in [2, 3, 4, 5] {
        assert!(log.read_committed(offset, 10_000, true).unwrap().0.records.is_empty(), "{offset}");
    }
    assert!(matches!(log.read_committed(6, 100, true), Err(LogError::OffsetOutOfRange { .. })));
    // Uncommitted reads see everything and report the same LSO.
    let all = log.read(0, 10_000, true).unwrap();
    assert_eq!(shape(&all.records).len(), 3);
    assert_eq!(all.last_stable_offset, 2);
    log.append_txn_marker(7, 0, 0, true, 0, 2).unwrap();
    let (r, _) = log.read_committed(0, 10_000, true).unwrap();
    assert_eq!(shape(&r.records), vec![(0, 1, false), (2, 3, false), (4, 4, false), (5, 5, true)]);
}

#[test]
fn kafkas_refusals_inside_a_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false);
    log.append(&producer_batch(5, 2, 0, 1, true), 0, 1).unwrap();
    // A non-transactional batch while the transaction is ongoing: INVALID_TXN_STATE.
    let plain = producer_batch(5, 2, 1, 1, false);
    assert!(matches!(log.append(&plain, 0, 1), Err(LogError::InvalidTxnState(_))));
    // An older epoch: INVALID_PRODUCER_EPOCH, for data and for markers.
    assert!(matches!(
        log.append(&producer_batch(5, 1, 1, 1, true), 0, 1),
        Err(LogError::InvalidProducerEpoch(_))
    ));
    assert!(matches!(log.append_txn_marker(5, 1, 0, true, 0, 1), Err(LogError::InvalidProducerEpoch(_))));
    assert_eq!(log.log_end_offset(), 1, "nothing refused was written");
    // A marker from coordinator epoch 3, then one from epoch 2: TRANSACTION_COORDINATOR_FENCED.
    log.append_txn_marker(5, 2, 3, true, 0, 1).unwrap();
    assert!(matches!(
        log.append_txn_marker(5, 2, 2, false, 0, 1),
        Err(LogError::TransactionCoordinatorFenced(_))
    ));
    // A marker with no transaction ongoing is written and only updates the state (a bumped epoch,
    // as transaction version 2 writes them).
    assert_eq!(log.append_txn_marker(5, 3, 3, false, 0, 1).unwrap(), 2);
    assert_eq!(log.producer_epoch(5), Some(3));
    assert!(log.read_committed(0, 10_000, true).unwrap().1.is_empty(), "no aborted data");
    // After the transaction, the producer may write idempotently again (new epoch starts at 0).
    log.append(&producer_batch(5, 3, 0, 1, false), 0, 1).unwrap();
    assert!(matches!(log.append_txn_marker(-1, 0, 0, true, 0, 1), Err(LogError::Batch(_))));
}

#[test]
fn a_marker_appended_as_a_plain_batch_counts_too() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false);
    log.append(&txn(3, 0, 2), 0, 1).unwrap();
    let marker = marker_batch(3, 0, TxnMarker { commit: false, coordinator_epoch: 1 }, 1).unwrap();
    assert_eq!(log.append(&marker, 0, 1).unwrap().base_offset, 2);
    assert_eq!(log.last_stable_offset(), 3);
    assert_eq!(log.read_committed(0, 1000, true).unwrap().1.len(), 1);
}

/// Six transactions of producer 1 (2 records, a plain batch in between, then the marker), the
/// rounds where `commit` says so committed, the others aborted. Rolls several segments.
fn six_transactions(log: &PartitionLog, commit: impl Fn(i32) -> bool) {
    for round in 0..6 {
        log.append(&txn(1, round * 2, 2), 0, 1).unwrap();
        log.append(&batch(1, 150, 1), 0, 1).unwrap();
        log.append_txn_marker(1, 0, 0, commit(round), 0, 1).unwrap();
    }
}

#[test]
fn transactions_survive_restarts_clean_and_unclean() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let (aborted, lso);
        {
            let log = open(dir.path(), false);
            // Enough batches to roll several segments: snapshots and replay are both involved.
            six_transactions(&log, |round| round % 2 == 0);
            log.append(&txn(2, 0, 1), 0, 1).unwrap(); // left ongoing
            log.append(&batch(1, 150, 1), 0, 1).unwrap();
            assert!(log.segment_count() > 2);
            lso = log.last_stable_offset();
            aborted = aborts_seen(&log);
            assert_eq!(aborted.len(), 3);
            if clean {
                log.close().unwrap();
            }
        }
        let log = open(dir.path(), clean);
        assert_eq!(log.last_stable_offset(), lso, "clean={clean}");
        assert_eq!(aborts_seen(&log), aborted, "clean={clean}");
        assert_eq!(log.ongoing_transactions(), vec![(lso, 2)]);
        // The ongoing transaction still refuses plain batches, and its abort is known afterwards.
        assert!(matches!(
            log.append(&producer_batch(2, 0, 1, 1, false), 0, 1),
            Err(LogError::InvalidTxnState(_))
        ));
        let end = log.append_txn_marker(2, 0, 0, false, 0, 1).unwrap();
        assert_eq!(log.last_stable_offset(), end + 1);
        assert_eq!(aborts_seen(&log).len(), 4);
    }
}

#[test]
fn retention_and_delete_records_drop_old_aborts_and_keep_the_lso_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false);
    log.append(&txn(1, 0, 1), 0, 1).unwrap(); // 0
    log.append_txn_marker(1, 0, 0, false, 0, 1).unwrap(); // 1
    log.append(&txn(2, 0, 1), 0, 1).unwrap(); // 2: ongoing
    for _ in 0..8 {
        log.append(&batch(1, 150, 1), 0, 1).unwrap();
    }
    let (r, aborted) = log.read_committed(0, 1 << 20, true).unwrap();
    assert_eq!(shape(&r.records), vec![(0, 0, false), (1, 1, true)], "only what is below the LSO");
    assert_eq!(aborted.len(), 1);
    assert_eq!(log.last_stable_offset(), 2);
    log.append_txn_marker(2, 0, 0, false, 0, 1).unwrap();
    assert_eq!(log.read_committed(0, 1 << 20, true).unwrap().1.len(), 2);
    log.append(&txn(3, 0, 1), 0, 1).unwrap(); // ongoing, at 12
    log.delete_records(2, 1).unwrap();
    let (_, aborted) = log.read_committed(2, 1 << 20, true).unwrap();
    assert_eq!(aborted.iter().map(|t| t.producer_id).collect::<Vec<_>>(), vec![2]);
    // Delete past the ongoing transaction's start: the LSO stays inside the log.
    log.delete_records(13, 1).unwrap();
    assert_eq!(log.last_stable_offset(), 13);
    log.set_config(LogConfig { retention_bytes: 0, ..config() });
    log.enforce_retention(1).unwrap();
    assert!(log.last_stable_offset() >= log.log_start_offset());
    log.close().unwrap();
    drop(log);
    let log = open(dir.path(), true);
    assert_eq!(log.last_stable_offset(), log.log_start_offset().max(13));
    assert_eq!(log.ongoing_transactions(), vec![(12, 3)]);
}

#[test]
fn producers_with_an_ongoing_transaction_never_expire() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false);
    log.append(&txn(1, 0, 1), 0, 0).unwrap();
    log.append(&producer_batch(2, 0, 0, 1, false), 0, 0).unwrap();
    assert_eq!(log.expire_producers(1_000_000, 10), 1);
    assert_eq!(log.producers().iter().map(|p| p.producer_id).collect::<Vec<_>>(), vec![1]);
    assert_eq!(log.producers()[0].current_txn_start_offset, 0);
}

/// Every `.txnindex` entry of the log's directory, file by file in base-offset order.
fn txn_index_files(dir: &Path) -> Vec<(String, Vec<AbortedTxn>)> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".txnindex"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            assert_eq!(bytes.len() % crate::log::txn_index::ENTRY, 0, "{n}: whole entries");
            let entries =
                bytes.chunks(crate::log::txn_index::ENTRY).map(|c| crate::log::txn_index::decode(c).unwrap());
            (n, entries.collect())
        })
        .collect()
}

#[test]
fn aborts_are_kept_in_each_segments_txnindex_and_go_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false);
    six_transactions(&log, |round| round % 3 == 0);
    log.flush().unwrap();
    let files = txn_index_files(dir.path());
    let on_disk: Vec<AbortedTxn> = files.iter().flat_map(|(_, e)| e.clone()).collect();
    assert_eq!(on_disk, aborts_seen(&log), "the files hold every abort, in marker order");
    assert_eq!(on_disk.len(), 4);
    assert!(files.len() > 1, "spread over the segments holding the markers: {files:?}");
    for (name, entries) in &files {
        let base: i64 = name[..20].parse().unwrap();
        assert!(entries.iter().all(|t| t.last_offset >= base), "{name}: markers in this segment");
    }
    // Retention of the first segments takes their index files with them.
    let first_file = files[0].0.clone();
    let past = files[0].1.last().unwrap().last_offset + 1;
    log.delete_records(past, 1).unwrap();
    log.set_config(LogConfig { retention_bytes: 1, ..config() });
    log.enforce_retention(1).unwrap();
    assert!(!dir.path().join(&first_file).exists(), "{first_file} deleted with its segment");
    assert!(aborts_seen(&log).iter().all(|t| t.last_offset >= log.log_start_offset()));
}

#[test]
fn a_crash_drops_index_entries_the_log_does_not_back() {
    let dir = tempfile::tempdir().unwrap();
    let (before, lso);
    {
        let log = open(dir.path(), false);
        log.append(&txn(1, 0, 1), 0, 1).unwrap(); // 0
        log.append_txn_marker(1, 0, 0, false, 0, 1).unwrap(); // 1
        log.close().unwrap(); // snapshot at 2: the abort at 1 is trusted from the file
        let log = open(dir.path(), true);
        log.append(&txn(1, 1, 1), 0, 1).unwrap(); // 2
        log.append_txn_marker(1, 0, 0, false, 0, 1).unwrap(); // 3
        log.flush().unwrap();
        before = aborts_seen(&log);
        lso = log.last_stable_offset();
        assert_eq!(before.len(), 2);
    }
    // An index entry past the log end (a torn write of the log after its index reached the disk).
    let name = txn_index_files(dir.path())[0].0.clone();
    let stale = AbortedTxn { producer_id: 9, first_offset: 4, last_offset: 50, last_stable_offset: 51 };
    let mut bytes = std::fs::read(dir.path().join(&name)).unwrap();
    bytes.extend_from_slice(&crate::log::txn_index::encode(&stale));
    bytes.extend_from_slice(&[0, 0, 1]); // and a torn entry
    std::fs::write(dir.path().join(&name), bytes).unwrap();
    let log = open(dir.path(), false);
    assert_eq!(aborts_seen(&log), before);
    assert_eq!(log.last_stable_offset(), lso);
    assert_eq!(
        txn_index_files(dir.path())[0].1,
        before[..1],
        "truncated to the snapshot; the replay is in memory"
    );
    log.flush().unwrap();
    assert_eq!(txn_index_files(dir.path())[0].1, before, "and written at the next flush");
    // A snapshot whose index file is gone (older strom kept the list in the snapshot): migrated.
    drop(log);
    std::fs::remove_file(dir.path().join(&name)).unwrap();
    let snap_path = dir.path().join("producer-state");
    let mut snap: serde_json::Value = crate::durable_file::read_checked(&snap_path).unwrap().unwrap();
    snap["aborted"] = serde_json::json!({ "entries": [before[0]] });
    crate::durable_file::write_atomic(&snap_path, &snap).unwrap();
    let offset = snap["offset"].as_i64().unwrap();
    let log = open(dir.path(), false);
    let expected: Vec<AbortedTxn> = before.iter().filter(|t| t.last_offset < offset).copied().collect();
    assert_eq!(
        aborts_seen(&log),
        [expected, before.iter().filter(|t| t.last_offset >= offset).copied().collect()].concat()
    );
}

#[derive(Debug, Clone)]
enum Op {
    Txn { producer: usize, count: i32 },
    Plain { count: i32 },
    End { producer: usize, commit: bool },
    Reopen { clean: bool },
    DeleteRecords { fraction: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..3, 1i32..4).prop_map(|(producer, count)| Op::Txn { producer, count }),
        2 => (1i32..3).prop_map(|count| Op::Plain { count }),
        3 => (0usize..3, any::<bool>()).prop_map(|(producer, commit)| Op::End { producer, commit }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => (0u8..=100).prop_map(|fraction| Op::DeleteRecords { fraction }),
    ]
}

/// What the log must hold: ongoing transactions (producer → first offset), every abort, and the
/// batches as (base, last, producer index or none, control).
#[derive(Default)]
struct Model {
    ongoing: [Option<i64>; 3],
    aborted: Vec<AbortedTxn>,
    batches: Vec<(i64, i64)>,
    seq: [i32; 3],
    start: i64,
    end: i64,
}

impl Model {
    fn lso(&self) -> i64 {
        self.ongoing.iter().flatten().copied().min().map_or(self.end, |f| f.max(self.start))
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn random_transactions_keep_lso_reads_and_aborts_right(
        ops in proptest::collection::vec(op(), 1..50),
        probes in proptest::collection::vec((any::<u16>(), 50usize..600), 6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), false);
        let mut m = Model::default();
        let pid = |p: usize| 100 + p as i64;
        for op in ops {
            match op {
                Op::Txn { producer, count } => {
                    let info = log.append(&txn(pid(producer), m.seq[producer], count), 0, 1).unwrap();
                    m.seq[producer] += count;
                    m.ongoing[producer].get_or_insert(info.base_offset);
                    m.batches.push((info.base_offset, info.last_offset));
                }
                Op::Plain { count } => {
                    let info = log.append(&batch(count, 30, 1), 0, 1).unwrap();
                    m.batches.push((info.base_offset, info.last_offset));
                }
                Op::End { producer, commit } => {
                    let at = log.append_txn_marker(pid(producer), 0, 0, commit, 0, 1).unwrap();
                    m.batches.push((at, at));
                    if let Some(first) = m.ongoing[producer].take() {
                        if !commit {
                            let lso = m.ongoing.iter().flatten().copied().min().unwrap_or(at + 1);
                            m.aborted.push(AbortedTxn { producer_id: pid(producer), first_offset: first, last_offset: at, last_stable_offset: lso });
                        }
                    }
                }
                Op::Reopen { clean } => {
                    let before = (log.last_stable_offset(), log.ongoing_transactions(), log.producers());
                    let all = aborts_seen(&log);
                    if clean { log.close().unwrap(); }
                    drop(log);
                    log = open(dir.path(), clean);
                    prop_assert_eq!((log.last_stable_offset(), log.ongoing_transactions(), log.producers()), before);
                    prop_assert_eq!(aborts_seen(&log), all);
                }
                Op::DeleteRecords { fraction } => {
                    let target = m.start + (m.end - m.start) * i64::from(fraction) / 100;
                    m.start = log.delete_records(target, 1).unwrap();
                }
            }
            m.end = log.log_end_offset();
            let lso = m.lso();
            prop_assert_eq!(log.last_stable_offset(), lso);
            for &(pick, max_bytes) in &probes {
                let offset = m.start + i64::from(pick) % (m.end - m.start + 1);
                let (r, aborted) = log.read_committed(offset, max_bytes, true).unwrap();
                prop_assert_eq!(r.last_stable_offset, lso);
                let got = shape(&r.records);
                for (_, last, _) in &got {
                    prop_assert!(*last < lso, "batch ending at {} returned with LSO {}", last, lso);
                }
                // Whole batches from the one holding the offset, in order, none skipped.
                let first = m.batches.iter().position(|(_, last)| *last >= offset);
                if let (Some(i), Some(g)) = (first, got.first()) {
                    prop_assert_eq!(g.0, m.batches[i].0);
                    for (k, g) in got.iter().enumerate() {
                        prop_assert_eq!((g.0, g.1), m.batches[i + k]);
                    }
                } else if offset < lso {
                    prop_assert!(false, "nothing returned at {} below the LSO {}", offset, lso);
                }
                let mut expected: Vec<AbortedTxn> = match got.last() {
                    Some((_, last, _)) => m.aborted.iter().filter(|t| t.last_offset >= offset && t.first_offset <= *last).copied().collect(),
                    None => Vec::new(),
                };
                expected.sort_by_key(|t| t.first_offset);
                prop_assert_eq!(aborted, expected);
            }
        }
    }
}
