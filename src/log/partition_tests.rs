use super::*;
use crate::log::batch::testing::batch;
use crate::log::index;
use proptest::prelude::*;

fn small_config() -> LogConfig {
    LogConfig { segment_bytes: 600, index_interval_bytes: 100, ..LogConfig::default() }
}

fn open(dir: &Path, clean: bool) -> PartitionLog {
    PartitionLog::open(dir, small_config(), Arc::new(FileCache::new(64)), clean, 0).unwrap()
}

/// Reads the whole log from `from` and returns (base offset, record count, payload bytes) per batch.
fn read_all(log: &PartitionLog, from: i64) -> Vec<(i64, i32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let r = log.read(offset, 300, true).unwrap();
        if r.records.is_empty() {
            break;
        }
        for range in batch::split_batches(&r.records).unwrap() {
            let b = &r.records[range];
            let h = batch::validate(b).unwrap();
            out.push((h.base_offset, h.record_count, b[batch::HEADER_LEN..].to_vec()));
            offset = h.last_offset() + 1;
        }
    }
    out
}

#[test]
fn append_assigns_consecutive_offsets_and_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false);
    let a = log.append(&batch(3, 10, 100), 0, 1).unwrap();
    let b = log.append(&batch(2, 10, 200), 0, 1).unwrap();
    assert_eq!((a.base_offset, a.last_offset, b.base_offset, b.last_offset), (0, 2, 3, 4));
    let got = read_all(&log, 0);
    assert_eq!(got.iter().map(|g| (g.0, g.1)).collect::<Vec<_>>(), vec![(0, 3), (3, 2)]);
    // A read from the middle of a batch returns the whole batch.
    let mid = log.read(1, 1, true).unwrap();
    assert_eq!(batch::validate(&mid.records).unwrap().base_offset, 0);
    assert!(matches!(log.read(6, 100, true), Err(LogError::OffsetOutOfRange { .. })));
    assert!(log.read(5, 100, true).unwrap().records.is_empty());
}

#[test]
fn invalid_batch_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false);
    let mut two = batch(1, 5, 1);
    let mut bad = batch(1, 5, 1);
    bad[30] ^= 0xff;
    two.extend_from_slice(&bad);
    assert!(matches!(log.append(&two, 0, 1), Err(LogError::Batch(BatchError::Corrupt(_)))));
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(log.size_bytes(), 0);
}

#[test]
fn torn_tail_is_truncated_after_unclean_stop() {
    let dir = tempfile::tempdir().unwrap();
    let seg_path;
    {
        let log = open(dir.path(), false);
        for _ in 0..3 {
            log.append(&batch(2, 20, 5), 0, 1).unwrap();
        }
        seg_path = dir.path().join(format!("{}.log", segment::file_stem(0)));
    }
    // Simulate a crash in the middle of a fourth batch.
    let partial = &batch(2, 20, 5)[..40];
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg_path).unwrap();
    std::io::Write::write_all(&mut f, partial).unwrap();
    let log = open(dir.path(), false);
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(read_all(&log, 0).len(), 3);
    assert_eq!(log.append(&batch(1, 1, 5), 0, 1).unwrap().base_offset, 6);
}

#[test]
fn corrupt_byte_cuts_the_log_there() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), false);
        for _ in 0..4 {
            log.append(&batch(1, 50, 5), 0, 1).unwrap();
        }
    }
    let seg_path = dir.path().join(format!("{}.log", segment::file_stem(0)));
    let mut bytes = std::fs::read(&seg_path).unwrap();
    let one = bytes.len() / 4;
    bytes[one * 2 + 70] ^= 0x55; // inside the third batch
    std::fs::write(&seg_path, &bytes).unwrap();
    let log = open(dir.path(), false);
    assert_eq!(log.log_end_offset(), 2, "nothing from the corrupt batch on is served");
}

#[test]
fn missing_index_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = open(dir.path(), false);
        for i in 0..30 {
            log.append(&batch(1, 30, i), 0, 1).unwrap();
        }
        log.close().unwrap();
    }
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "index") {
            std::fs::write(&p, b"garbage").unwrap();
        }
    }
    let log = open(dir.path(), true);
    assert_eq!(read_all(&log, 0).len(), 30);
    assert_eq!(log.read(17, 1, true).unwrap().records.len(), batch(1, 30, 0).len());
}

#[test]
fn retention_and_delete_records_move_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false);
    for i in 0..20 {
        log.append(&batch(1, 100, i * 1000), 0, i * 1000).unwrap();
    }
    assert!(log.segment_count() > 3);
    log.set_config(LogConfig { retention_ms: 5_000, ..small_config() });
    let deleted = log.enforce_retention(20_000).unwrap();
    assert!(deleted > 0);
    let start = log.log_start_offset();
    assert!(start > 0 && read_all(&log, start).first().unwrap().0 <= start);
    assert!(matches!(log.read(0, 10, true), Err(LogError::OffsetOutOfRange { .. })));
    assert_eq!(log.delete_records(18, 20_000).unwrap(), 18);
    assert_eq!(log.log_start_offset(), 18);
    assert!(matches!(log.delete_records(99, 20_000), Err(LogError::OffsetOutOfRange { .. })));
    drop(log);
    assert_eq!(open(dir.path(), false).log_start_offset(), 18);
}

#[test]
fn timestamps_find_the_first_batch_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false);
    for i in 0..20 {
        log.append(&batch(1, 100, 1000 + i * 10), 0, 1).unwrap();
    }
    let found = log.batch_for_timestamp(1055).unwrap().unwrap();
    assert_eq!(batch::validate(&found).unwrap().max_timestamp, 1060);
    assert!(log.batch_for_timestamp(5000).unwrap().is_none());
    assert_eq!(log.max_timestamp(), Some((1190, 19)));
}

#[test]
fn log_append_time_stamps_batches() {
    let dir = tempfile::tempdir().unwrap();
    let log = PartitionLog::open(
        dir.path(),
        LogConfig { log_append_time: true, ..small_config() },
        Arc::new(FileCache::new(8)),
        false,
        0,
    )
    .unwrap();
    let info = log.append(&batch(2, 5, 1), 0, 424242).unwrap();
    assert_eq!(info.log_append_time, Some(424242));
    let r = log.read(0, 100, true).unwrap();
    assert_eq!(batch::validate(&r.records).unwrap().max_timestamp, 424242);
}

#[derive(Debug, Clone)]
enum Op {
    Append { batches: Vec<(i32, usize)> },
    Reopen { clean: bool },
    Retain { bytes: i64 },
    DeleteRecords { fraction: u8 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => proptest::collection::vec((1i32..5, 0usize..60), 1..4).prop_map(|batches| Op::Append { batches }),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
        1 => (200i64..2000).prop_map(|bytes| Op::Retain { bytes }),
        1 => (0u8..=100).prop_map(|fraction| Op::DeleteRecords { fraction }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn model_based_appends_rolls_retention_and_reopen(
        ops in proptest::collection::vec(op(), 1..40),
        probes in proptest::collection::vec((any::<u16>(), 0usize..700, any::<bool>()), 8),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), false);
        // The model: every batch ever appended, as (base offset, record count, payload).
        let mut model: Vec<(i64, i32, Vec<u8>)> = Vec::new();
        let mut next = 0i64;
        for op in ops {
            match op {
                Op::Append { batches } => {
                    let mut data = Vec::new();
                    let mut expected = Vec::new();
                    let mut at = next;
                    for (count, len) in batches {
                        let b = batch(count, len, at);
                        expected.push((at, count, b[batch::HEADER_LEN..].to_vec()));
                        at += i64::from(count);
                        data.extend_from_slice(&b);
                    }
                    let info = log.append(&data, 0, 1).unwrap();
                    prop_assert_eq!(info.base_offset, next);
                    prop_assert_eq!(info.last_offset, at - 1);
                    next = at;
                    model.extend(expected);
                }
                Op::Reopen { clean } => {
                    if clean { log.close().unwrap(); }
                    drop(log);
                    log = open(dir.path(), clean);
                }
                Op::Retain { bytes } => {
                    log.set_config(LogConfig { retention_bytes: bytes, ..small_config() });
                    log.enforce_retention(1).unwrap();
                    log.set_config(small_config());
                }
                Op::DeleteRecords { fraction } => {
                    let start = log.log_start_offset();
                    let target = start + (next - start) * i64::from(fraction) / 100;
                    prop_assert_eq!(log.delete_records(target, 1).unwrap(), target.max(start));
                }
            }
            prop_assert_eq!(log.log_end_offset(), next);
            let start = log.log_start_offset();
            let expected: Vec<_> = model.iter().filter(|(b, c, _)| b + i64::from(*c) > start).cloned().collect();
            prop_assert_eq!(read_all(&log, start), expected.clone());
            check_reads_at(&log, &expected, &probes)?;
        }
    }
}

/// Reads at arbitrary offsets and byte budgets: the answer starts with the batch holding the offset
/// and holds only whole batches, consecutive in the model, within the budget unless the first alone
/// exceeds it (KIP-74 with `min_one`; nothing without it).
fn check_reads_at(
    log: &PartitionLog,
    model: &[(i64, i32, Vec<u8>)],
    probes: &[(u16, usize, bool)],
) -> Result<(), TestCaseError> {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    if start == end {
        return Ok(());
    }
    for &(pick, max_bytes, min_one) in probes {
        let offset = start + i64::from(pick) % (end - start);
        let records = log.read(offset, max_bytes, min_one).unwrap().records;
        let first = model.iter().position(|(b, c, _)| b + i64::from(*c) > offset).unwrap();
        let ranges = batch::split_batches(&records).unwrap();
        let first_len = batch::HEADER_LEN + model[first].2.len();
        if !min_one && first_len > max_bytes {
            prop_assert!(records.is_empty());
            continue;
        }
        prop_assert!(!ranges.is_empty(), "offset {} max {} gave nothing", offset, max_bytes);
        prop_assert!(records.len() <= max_bytes.max(first_len));
        for (i, range) in ranges.into_iter().enumerate() {
            let h = batch::validate(&records[range.clone()]).unwrap();
            let (base, count, payload) = &model[first + i];
            prop_assert_eq!((h.base_offset, h.record_count), (*base, *count));
            prop_assert_eq!(&records[range][batch::HEADER_LEN..], &payload[..]);
        }
    }
    Ok(())
}

#[test]
fn damaged_index_entries_fall_back_to_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Vec::new();
    {
        let log = open(dir.path(), false);
        for i in 0..60 {
            let info = log.append(&batch(2, 30, i), 0, 1).unwrap();
            model.push((info.base_offset, 2, batch(2, 30, i)[batch::HEADER_LEN..].to_vec()));
        }
        log.close().unwrap();
        assert!(log.segment_count() > 3);
    }
    // Scramble every entry but the last of each offset index: lengths and last entries still pass
    // the start-up check, so only the lookups can notice.
    for e in std::fs::read_dir(dir.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "index") {
            let mut bytes = std::fs::read(&p).unwrap();
            let keep = bytes.len().saturating_sub(index::OFFSET_ENTRY);
            for (i, b) in bytes[..keep].iter_mut().enumerate() {
                if i % index::OFFSET_ENTRY >= 4 {
                    *b = b.wrapping_add(3); // shift positions off the batch boundaries
                }
            }
            std::fs::write(&p, bytes).unwrap();
        }
    }
    let log = open(dir.path(), true);
    assert_eq!(read_all(&log, 0), model);
    let probes: Vec<(u16, usize, bool)> = (0..120).map(|o| (o, 1, true)).collect();
    check_reads_at(&log, &model, &probes).unwrap();
}

fn idempotent_batch(pid: i64, epoch: i16, seq: i32, count: i32) -> Vec<u8> {
    let mut b = batch(count, 8, 1);
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

#[test]
fn duplicates_are_answered_with_original_offsets_across_restarts() {
    for clean in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = open(dir.path(), false);
            log.append(&batch(2, 5, 1), 0, 1).unwrap();
            let first = log.append(&idempotent_batch(42, 0, 0, 3), 0, 1).unwrap();
            assert_eq!((first.base_offset, first.duplicate), (2, false));
            // Enough data to roll a few segments, so a snapshot and a replay are both involved.
            for seq in 0..10 {
                log.append(&idempotent_batch(43, 0, seq * 4, 4), 0, 1).unwrap();
                log.append(&batch(1, 200, 1), 0, 1).unwrap();
            }
            if clean {
                log.close().unwrap();
            }
        }
        let log = open(dir.path(), clean);
        let end = log.log_end_offset();
        let again = log.append(&idempotent_batch(43, 0, 36, 4), 0, 1).unwrap();
        assert!(again.duplicate, "clean={clean}");
        assert_eq!(log.log_end_offset(), end, "a duplicate is not appended twice");
        assert!(matches!(
            log.append(&idempotent_batch(43, 0, 44, 1), 0, 1),
            Err(LogError::OutOfOrderSequence(_))
        ));
        assert_eq!(log.append(&idempotent_batch(43, 0, 40, 1), 0, 1).unwrap().base_offset, end);
        assert!(log.append(&idempotent_batch(43, 0, 41, 1), 0, 1).is_ok());
        assert_eq!(log.producer_epoch(43), Some(0));
    }
}

#[test]
fn fenced_epoch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), false);
    log.append(&idempotent_batch(9, 3, 0, 1), 0, 1).unwrap();
    assert!(matches!(
        log.append(&idempotent_batch(9, 2, 1, 1), 0, 1),
        Err(LogError::InvalidProducerEpoch(_))
    ));
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn running_out_of_descriptors_mid_roll_fails_only_that_append() {
    let dir = tempfile::tempdir().unwrap();
    let files = Arc::new(FileCache::new(64));
    let log = PartitionLog::open(dir.path(), small_config(), files.clone(), false, 0).unwrap();
    let b = batch(2, 20, 5);
    while log.size_bytes() + (b.len() as u64) <= small_config().segment_bytes {
        log.append(&b, 0, 1).unwrap();
    }
    let mut end = log.log_end_offset();
    let sealed_index = dir.path().join(format!("{}.index", segment::file_stem(0)));
    let files_in_dir = || std::fs::read_dir(dir.path()).unwrap().count();
    let before = files_in_dir();
    // The new segment's .log, .index or .timeindex cannot be opened; or sealing the old one cannot
    // open its index to write the pending entries.
    for (pass, forget) in [(0, None), (1, None), (2, None), (3, Some(&sealed_index))] {
        if let Some(p) = forget {
            files.forget(p);
        }
        *files.fault.lock() = (pass, 1);
        match log.append(&b, 0, 1) {
            Err(LogError::Storage(m)) => assert!(m.contains("Too many open files"), "{m}"),
            other => panic!("pass {pass}: {other:?}"),
        }
        assert!(!log.is_offline() && log.needs_recovery(), "pass {pass}");
        assert_eq!((log.segment_count(), log.log_end_offset()), (1, end), "pass {pass}: nothing changed");
        assert_eq!(files_in_dir(), before, "pass {pass}: no half-made segment left behind");
    }
    // Descriptors are back: the roll and the append go through.
    assert_eq!(log.append(&b, 0, 1).unwrap().base_offset, end);
    end += 2;
    assert_eq!((log.segment_count(), log.log_end_offset()), (2, end));
    let all = read_all(&log, 0);
    assert_eq!(all.len() as i64, end / 2);
    log.close().unwrap();
    drop(log);
    assert_eq!(read_all(&open(dir.path(), false), 0), all);
}

/// Kafka's `LogSegment.shouldRoll`: `segment.ms` is measured from the active segment's first batch
/// timestamp to the new batches' largest one, not by the wall clock, when batches carry timestamps;
/// after a restart the first batch's timestamp is read back from the file.
#[test]
fn segment_ms_is_measured_on_batch_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig { segment_ms: 1000, ..LogConfig::default() };
    let open = || PartitionLog::open(dir.path(), cfg.clone(), Arc::new(FileCache::new(8)), false, 0).unwrap();
    let log = open();
    log.append(&batch(1, 10, 50_000), 0, 1).unwrap();
    log.append(&batch(1, 10, 51_000), 0, 999_999).unwrap();
    assert_eq!(log.segment_count(), 1, "exactly segment.ms later by timestamp, whatever the wall clock");
    log.append(&batch(1, 10, 51_001), 0, 2).unwrap();
    assert_eq!(log.segment_count(), 2, "more than segment.ms past the first batch's timestamp");
    drop(log);
    let log = open();
    log.append(&batch(1, 10, 52_001), 0, 3).unwrap();
    assert_eq!(log.segment_count(), 2);
    log.append(&batch(1, 10, 52_002), 0, 3).unwrap();
    assert_eq!(log.segment_count(), 3);
}
