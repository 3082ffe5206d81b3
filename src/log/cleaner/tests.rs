//! The cleaner over real partition logs in temporary directories.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use proptest::prelude::*;

use super::offset_map::OffsetMap;
use super::{swap, Throttler};
use crate::log::batch;
use crate::log::{FileCache, LogConfig, PartitionLog};

const HOUR: i64 = 3_600_000;

fn config(segment_bytes: u64) -> LogConfig {
    LogConfig {
        segment_bytes,
        compacted: true,
        cleanup_delete: false,
        delete_retention_ms: HOUR,
        min_cleanable_dirty_ratio: 0.0,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, cfg: LogConfig, clean: bool) -> PartitionLog {
    PartitionLog::open(dir, cfg, Arc::new(FileCache::new(64)), clean, 0).unwrap()
}

/// One write: key, value (`None`: tombstone).
type Write = (u8, Option<u8>);

/// Produces `writes` as one batch (with `pid`, an idempotent producer).
fn produce(log: &PartitionLog, writes: &[Write], pid: Option<(i64, &mut i32)>, compression: Compression) {
    produce_batch(log, writes, pid, false, compression, 1000);
}

/// Produces `writes` as one batch without a producer id, every record with `timestamp`.
fn produce_at(log: &PartitionLog, writes: &[Write], timestamp: i64) {
    produce_batch(log, writes, None, false, Compression::None, timestamp);
}

/// Produces `writes` as one batch of producer `pid`'s open transaction.
fn produce_txn(log: &PartitionLog, writes: &[Write], pid: i64, seq: &mut i32) {
    produce_batch(log, writes, Some((pid, seq)), true, Compression::None, 1000);
}

fn produce_batch(
    log: &PartitionLog,
    writes: &[Write],
    pid: Option<(i64, &mut i32)>,
    transactional: bool,
    compression: Compression,
    timestamp: i64,
) {
    let (producer_id, seq) = match pid {
        Some((p, s)) => {
            let seq = *s;
            *s += writes.len() as i32;
            (p, seq)
        }
        None => (-1, -1),
    };
    let records: Vec<Record> = writes
        .iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch: if producer_id >= 0 { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: if producer_id >= 0 { seq + i as i32 } else { -1 },
            timestamp,
            key: Some(Bytes::from(vec![b'k', *k])),
            value: v.map(|v| Bytes::from(vec![b'v', v])),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).unwrap();
    log.append(&buf, 0, 1000).unwrap();
}

/// Every record a consumer reading from the log start sees: (offset, key byte, value byte); a
/// transaction marker shows as (offset, 0, b'C' or b'A').
fn visible(log: &PartitionLog) -> Vec<(i64, u8, Option<u8>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    loop {
        let r = log.read(offset, 1 << 20, true).unwrap();
        if r.records.is_empty() {
            break;
        }
        for range in batch::split_batches(&r.records).unwrap() {
            let b = &r.records[range];
            let h = batch::validate_stored(b).unwrap();
            offset = h.last_offset() + 1;
            let mut bytes = Bytes::copy_from_slice(b);
            let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
            for rec in set.records {
                let key = rec.key.as_ref().map_or(0, |k| k[1]);
                out.push(match h.is_control() {
                    // ControlRecordType key: version i16, type i16 (1 = COMMIT).
                    true => (
                        rec.offset,
                        0,
                        Some(if rec.key.as_ref().map(|k| k[3]) == Some(1) { b'C' } else { b'A' }),
                    ),
                    false => (rec.offset, key, rec.value.as_ref().map(|v| v[1])),
                });
            }
        }
    }
    out
}

/// Cleans until nothing is cleanable, with a map of `map_bytes`; returns the checkpoint.
fn clean_fully(log: &PartitionLog, mut checkpoint: Option<i64>, map_bytes: usize, now: i64) -> Option<i64> {
    for _ in 0..1000 {
        let c = log.cleanable(checkpoint, now);
        if c.cleanable_bytes == 0 {
            break;
        }
        let mut map = OffsetMap::new(map_bytes, 0.9);
        let stats = log.clean(&c, &mut map, &mut Throttler::new(f64::MAX), now).unwrap();
        if stats.end_offset <= c.first_dirty {
            break;
        }
        checkpoint = Some(stats.end_offset);
    }
    checkpoint
}

/// The newest write per key with its offset (offsets as the log assigned them: one per write).
fn newest(writes: &[Write]) -> BTreeMap<u8, (i64, Option<u8>)> {
    writes.iter().enumerate().map(|(i, (k, v))| (*k, (i as i64, *v))).collect()
}

fn last_seen(seen: &[(i64, u8, Option<u8>)]) -> BTreeMap<u8, (i64, Option<u8>)> {
    seen.iter().map(|(o, k, v)| (*k, (*o, *v))).collect()
}

/// Seals the active segment (each call a later clock, so the new active segment is old next time)
/// and flushes, as the broker's flush duty does next.
fn roll(log: &PartitionLog) {
    static CLOCK: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1 << 50);
    log.roll_if_old(CLOCK.fetch_add(1 << 40, std::sync::atomic::Ordering::SeqCst)).unwrap();
    log.flush().unwrap();
}

#[test]
fn cleaning_keeps_the_newest_record_per_key_with_offset_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config(1 << 20), false);
    let writes: Vec<Write> =
        vec![(1, Some(1)), (2, Some(1)), (1, Some(2)), (3, Some(1)), (2, None), (1, Some(3))];
    for w in &writes {
        produce(&log, std::slice::from_ref(w), None, Compression::None);
    }
    roll(&log);
    let cp = clean_fully(&log, None, 1 << 16, 2000);
    assert_eq!(cp, Some(6));
    // k2's tombstone stays inside delete.retention.ms; older values are gone, offsets keep gaps.
    assert_eq!(visible(&log), vec![(3, 3, Some(1)), (4, 2, None), (5, 1, Some(3))]);
    // New writes make the log dirty again; past the delete horizon the tombstone goes too.
    produce(&log, &[(3, Some(2))], None, Compression::None);
    roll(&log);
    clean_fully(&log, cp, 1 << 16, 2000 + HOUR + 1);
    assert_eq!(visible(&log), vec![(5, 1, Some(3)), (6, 3, Some(2))]);
    // The cleaned log reads the same after a restart, clean or not.
    drop(log);
    for clean in [true, false] {
        let log = open(dir.path(), config(1 << 20), clean);
        assert_eq!(visible(&log), vec![(5, 1, Some(3)), (6, 3, Some(2))]);
        assert_eq!(log.log_end_offset(), 7);
    }
}

#[test]
fn the_active_segment_and_min_compaction_lag_are_not_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config(1 << 20), false);
    produce(&log, &[(1, Some(1)), (1, Some(2))], None, Compression::None);
    assert_eq!(clean_fully(&log, None, 1 << 16, 2000), None, "only the active segment: nothing to clean");
    roll(&log);
    let lagged = LogConfig { min_compaction_lag_ms: 10_000, ..config(1 << 20) };
    log.set_config(lagged);
    assert_eq!(clean_fully(&log, None, 1 << 16, 2000), None, "younger than min.compaction.lag.ms");
    clean_fully(&log, None, 1 << 16, 20_000);
    assert_eq!(visible(&log), vec![(1, 1, Some(2))]);
}

#[test]
fn a_segment_straddling_the_recovery_point_is_not_dirty_below_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config(1 << 20), false);
    produce(&log, &[(1, Some(1)), (1, Some(2))], None, Compression::None);
    log.flush().unwrap();
    // Sealed but not fsynced past offset 2: the cleanable range ends at the recovery point.
    produce(&log, &[(1, Some(3)), (2, Some(1))], None, Compression::None);
    log.roll_if_old(1 << 50).unwrap();
    let c = log.cleanable(Some(2), 2000);
    assert!(c.first_uncleanable <= c.first_dirty, "the segment holding the bound is not cleaned");
    assert_eq!(c.cleanable_bytes, 0, "an empty range has no dirty bytes");
    assert!(!c.due(), "nothing to clean until the recovery point moves");
    log.flush().unwrap();
    assert!(log.cleanable(Some(2), 2000).due());
}

#[test]
fn a_producers_last_batch_survives_empty_with_its_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config(1 << 20), false);
    let mut seq = 0;
    produce(&log, &[(1, Some(1)), (2, Some(1))], Some((9, &mut seq)), Compression::Gzip);
    produce(&log, &[(1, Some(2)), (2, Some(2))], None, Compression::None);
    roll(&log);
    clean_fully(&log, None, 1 << 16, 2000);
    let first = first_batch(&log, 0);
    assert_eq!((first.base_offset, first.last_offset(), first.record_count), (0, 1, 0));
    assert_eq!((first.producer_id, first.base_sequence), (9, 0));
    assert_eq!(visible(&log), vec![(2, 1, Some(2)), (3, 2, Some(2))]);
    // The producer's next batch is still in sequence after a restart.
    drop(log);
    let log = open(dir.path(), config(1 << 20), false);
    produce(&log, &[(3, Some(1))], Some((9, &mut seq)), Compression::None);
}

#[test]
fn a_small_offset_map_cleans_in_several_passes_to_the_same_result() {
    let writes: Vec<Write> = (0..60u8).map(|i| (i % 13, Some(i))).collect();
    let mut results = Vec::new();
    for map_bytes in [24 * 4, 1 << 16] {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config(300), false);
        for w in &writes {
            produce(&log, std::slice::from_ref(w), None, Compression::Lz4);
        }
        roll(&log);
        clean_fully(&log, None, map_bytes, 2000);
        results.push(visible(&log));
    }
    assert_eq!(results[0], results[1]);
    let want: Vec<(i64, u8, Option<u8>)> = {
        let mut v: Vec<_> = newest(&writes).into_iter().map(|(k, (o, v))| (o, k, v)).collect();
        v.sort();
        v
    };
    assert_eq!(results[0], want);
}

/// Copies every file of `from` into `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[test]
fn a_crash_before_the_commit_point_keeps_the_old_segments_and_after_it_the_new() {
    let base = tempfile::tempdir().unwrap();
    let live = base.path().join("live");
    let log = open(&live, config(200), false);
    let writes: Vec<Write> = (0..20u8).map(|i| (i % 3, Some(i))).collect();
    for w in &writes {
        produce(&log, std::slice::from_ref(w), None, Compression::None);
    }
    roll(&log);
    log.flush().unwrap();
    let before = visible(&log);
    let old_bases: Vec<i64> = log.cleanable(None, 2000).segment_bases();
    let before_dir = base.path().join("before");
    copy_dir(&live, &before_dir);
    log.set_config(config(1 << 20)); // one group: one swap replaces every sealed segment
    clean_fully(&log, None, 1 << 16, 2000);
    let after = visible(&log);
    assert_ne!(before, after);
    drop(log);
    let first = old_bases[0];
    let stem = crate::log::segment::file_stem(first);

    // Crash while writing the cleaned file: it is discarded, the old segments stay.
    let dir = base.path().join("torn-cleaned");
    copy_dir(&before_dir, &dir);
    let (cleaned, _) = swap::cleaned_paths(&dir, first);
    std::fs::write(&cleaned, b"partial garbage").unwrap();
    assert_eq!(visible(&open(&dir, config(200), false)), before);
    assert!(!cleaned.exists());

    // Crash after the commit point (the `.swap` exists) but before any old segment went: the swap
    // is completed at open, from the list of replaced segments.
    let dir = base.path().join("committed");
    copy_dir(&before_dir, &dir);
    std::fs::copy(live.join(format!("{stem}.log")), dir.join(format!("{stem}.log.swap"))).unwrap();
    crate::durable_file::write_atomic(&dir.join(format!("{stem}.swap-bases")), &old_bases).unwrap();
    for clean in [false, true] {
        let dir2 = base.path().join(format!("committed-{clean}"));
        copy_dir(&dir, &dir2);
        let log = open(&dir2, config(200), clean);
        assert_eq!(visible(&log), after, "clean start: {clean}");
        let left: Vec<String> = std::fs::read_dir(&dir2)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("swap") || n.contains("cleaned"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// For any writes and tombstones (some from an idempotent producer, any codec), cleaning in any
    /// number of passes never changes the newest record per key a consumer reads from the start,
    /// keeps offsets increasing, and keeps every tombstone inside delete.retention.ms.
    #[test]
    fn cleaning_never_changes_the_newest_record_per_key(
        writes in proptest::collection::vec((0u8..6, proptest::option::weighted(0.8, any::<u8>())), 1..80),
        idempotent in proptest::collection::vec(any::<bool>(), 80),
        map_entries in 1usize..40,
        segment_bytes in 150u64..1500,
        codec in 0usize..3,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config(segment_bytes), false);
        let compression = [Compression::None, Compression::Gzip, Compression::Zstd][codec];
        let mut seq = 0;
        for (i, w) in writes.iter().enumerate() {
            let pid = idempotent[i].then_some((4, &mut seq));
            produce(&log, std::slice::from_ref(w), pid, compression);
        }
        if writes.len() % 2 == 0 {
            roll(&log);
        }
        let cp = clean_fully(&log, None, map_entries * 24, 2000);
        let seen = visible(&log);
        prop_assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "offsets increase: {seen:?}");
        prop_assert_eq!(last_seen(&seen), newest(&writes));
        for (o, k, v) in &seen {
            prop_assert_eq!(writes[*o as usize], (*k, *v), "a kept record is the one written at its offset");
        }
        // Cleaning again (and after a restart) changes nothing a consumer sees.
        clean_fully(&log, cp, map_entries * 24, 2000);
        prop_assert_eq!(&visible(&log), &seen);
        drop(log);
        let log = open(dir.path(), config(segment_bytes), false);
        prop_assert_eq!(&visible(&log), &seen);
    }
}

/// One step of a transactional history: plain writes, or one transaction of producer 7 (its writes,
/// then commit or abort).
#[derive(Debug, Clone)]
enum Step {
    Plain(Write),
    Txn(Vec<Write>, bool),
}

fn step() -> impl Strategy<Value = Step> {
    let write = (0u8..6, proptest::option::weighted(0.8, any::<u8>()));
    prop_oneof![
        write.clone().prop_map(Step::Plain),
        (proptest::collection::vec(write, 1..4), any::<bool>()).prop_map(|(w, c)| Step::Txn(w, c)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// For any history of plain writes and committed or aborted transactions, cleaning in any number
    /// of passes keeps the newest committed record per key, removes aborted records from every
    /// cleaned segment, and leaves each aborted record still there covered by an aborted entry.
    #[test]
    fn cleaning_keeps_the_newest_committed_record_per_key(
        steps in proptest::collection::vec(step(), 1..40),
        map_entries in 1usize..40,
        segment_bytes in 150u64..1500,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let log = open(dir.path(), config(segment_bytes), false);
        // (offset, write, aborted) of every data record, as the log assigned offsets.
        let mut written: Vec<(i64, Write, bool)> = Vec::new();
        let mut seq = 0;
        for s in &steps {
            match s {
                Step::Plain(w) => {
                    written.push((log.log_end_offset(), *w, false));
                    produce(&log, std::slice::from_ref(w), None, Compression::None);
                }
                Step::Txn(ws, commit) => {
                    for w in ws {
                        written.push((log.log_end_offset(), *w, !commit));
                        produce_txn(&log, std::slice::from_ref(w), 7, &mut seq);
                    }
                    log.append_txn_marker(7, 0, 0, *commit, 0, 1000).unwrap();
                }
            }
        }
        if steps.len() % 2 == 0 {
            roll(&log);
        }
        let cp = clean_fully(&log, None, map_entries * 24, 2000);
        let first_uncleanable = log.cleanable(cp, 2000).first_uncleanable;
        let by_offset: BTreeMap<i64, (Write, bool)> = written.iter().map(|(o, w, a)| (*o, (*w, *a))).collect();
        let seen: Vec<_> = visible(&log).into_iter().filter(|r| by_offset.contains_key(&r.0)).collect();
        prop_assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "offsets increase: {seen:?}");
        let aborted = aborted_seen(&log);
        for (o, k, v) in &seen {
            let (w, was_aborted) = by_offset[o];
            prop_assert_eq!(w, (*k, *v), "a kept record is the one written at its offset");
            if was_aborted {
                prop_assert!(*o >= first_uncleanable, "aborted record at {} kept by a clean", o);
                prop_assert!(aborted.iter().any(|(p, f, l)| *p == 7 && f <= o && o < l), "{o} not covered");
            }
        }
        let committed: Vec<_> = seen.iter().copied().filter(|r| !by_offset[&r.0].1).collect();
        let want: BTreeMap<u8, (i64, Option<u8>)> =
            written.iter().filter(|(_, _, a)| !a).map(|(o, (k, v), _)| (*k, (*o, *v))).collect();
        prop_assert_eq!(last_seen(&committed), want);
        // Cleaning again (and after a restart) changes nothing a consumer sees.
        clean_fully(&log, cp, map_entries * 24, 2000);
        let again: Vec<_> = visible(&log).into_iter().filter(|r| by_offset.contains_key(&r.0)).collect();
        prop_assert_eq!(&again, &seen);
        drop(log);
        let log = open(dir.path(), config(segment_bytes), false);
        let reopened: Vec<_> = visible(&log).into_iter().filter(|r| by_offset.contains_key(&r.0)).collect();
        prop_assert_eq!(&reopened, &seen);
    }
}

#[test]
fn the_throttle_holds_io_to_its_rate() {
    let mut t = Throttler::new(1_000_000.0);
    let started = std::time::Instant::now();
    for _ in 0..20 {
        t.maybe_throttle(10_000);
    }
    assert!(started.elapsed() >= std::time::Duration::from_millis(190), "200 kB at 1 MB/s take 0.2 s");
    let mut unlimited = Throttler::new(f64::MAX);
    let started = std::time::Instant::now();
    unlimited.maybe_throttle(1 << 40);
    assert!(started.elapsed() < std::time::Duration::from_millis(50));
}

/// The header of the first batch a read from `offset` returns.
fn first_batch(log: &PartitionLog, offset: i64) -> batch::BatchHeader {
    let r = log.read(offset, 1 << 20, true).unwrap();
    let ranges = batch::split_batches(&r.records).unwrap();
    batch::validate_stored(&r.records[ranges[0].clone()]).unwrap()
}

/// The aborted transactions a read_committed consumer from offset 0 is told about: (producer id,
/// first offset, marker offset).
fn aborted_seen(log: &PartitionLog) -> Vec<(i64, i64, i64)> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let (r, aborted) = log.read_committed(offset, 1 << 20, true).unwrap();
        let Some(end) = crate::log::transactions::end_offset(&r.records) else { break };
        for t in aborted {
            let t = (t.producer_id, t.first_offset, t.last_offset);
            if !out.contains(&t) {
                out.push(t);
            }
        }
        offset = end;
    }
    out
}

/// Kafka's `CleanedTransactionMetadata` rules end to end: aborted records go and never shadow an
/// older value; an ABORT marker stays (with its index entry) in the pass that removed its batches,
/// is stamped with a delete horizon in the next, and goes after it; a COMMIT marker stays while a
/// batch of its transaction (even emptied, as a live producer's last) is there.
#[test]
fn aborted_transactions_are_removed_and_markers_go_after_the_delete_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config(1 << 20), false);
    let (mut seq5, mut seq6) = (0, 0);
    produce(&log, &[(1, Some(1))], None, Compression::None); // 0
    produce(&log, &[(2, Some(1))], None, Compression::None); // 1
    produce_txn(&log, &[(1, Some(2)), (3, Some(1))], 5, &mut seq5); // 2-3
    assert_eq!(log.append_txn_marker(5, 0, 0, false, 0, 1000).unwrap(), 4);
    produce_txn(&log, &[(2, Some(2))], 6, &mut seq6); // 5
    assert_eq!(log.append_txn_marker(6, 0, 0, true, 0, 1000).unwrap(), 6);
    produce_txn(&log, &[(5, Some(1))], 5, &mut seq5); // 7
    assert_eq!(log.append_txn_marker(5, 0, 0, true, 0, 1000).unwrap(), 8);
    produce(&log, &[(4, Some(1))], None, Compression::None); // 9
    roll(&log);
    let cp = clean_fully(&log, None, 1 << 16, 2000);
    let first = vec![(0, 1, Some(1)), (4, 0, Some(b'A')), (5, 2, Some(2)), (6, 0, Some(b'C'))];
    let rest = vec![(7, 5, Some(1)), (8, 0, Some(b'C')), (9, 4, Some(1))];
    assert_eq!(visible(&log), [first.clone(), rest.clone()].concat());
    assert_eq!(aborted_seen(&log), vec![(5, 2, 4)], "the abort keeps its index entry this pass");
    drop(log);
    let log = open(dir.path(), config(1 << 20), false);
    assert_eq!(aborted_seen(&log), vec![(5, 2, 4)], "and after a restart");

    // Next pass: no batch of the aborted transaction is left; its marker gets a horizon, no entry.
    produce(&log, &[(1, Some(3))], None, Compression::None); // 10
    roll(&log);
    let cp = clean_fully(&log, cp, 1 << 16, 3000);
    let h = first_batch(&log, 4);
    assert_eq!((h.base_offset, super::records::delete_horizon(&h)), (4, Some(3000 + HOUR)));
    assert_eq!(visible(&log), [first[1..].to_vec(), rest.clone(), vec![(10, 1, Some(3))]].concat());
    assert!(aborted_seen(&log).is_empty());

    // Past the horizon the marker goes. Producer 6's last batch stays, emptied, so its COMMIT too.
    produce(&log, &[(2, Some(3))], None, Compression::None); // 11
    roll(&log);
    clean_fully(&log, cp, 1 << 16, 3000 + HOUR);
    let want = [vec![(6, 0, Some(b'C'))], rest, vec![(10, 1, Some(3)), (11, 2, Some(3))]].concat();
    assert_eq!(visible(&log), want);
    let h = first_batch(&log, 0);
    assert_eq!((h.base_offset, h.record_count, h.producer_id), (5, 0, 6), "producer 6's last batch, empty");
}

/// Kafka cleans whole segments only: its first uncleanable offset is the base of the segment
/// holding the last stable offset (`LogCleanerManager.calculateCleanableBytes`). Checked on Apache
/// Kafka 4.4.0 (segment.ms=100, min.cleanable.dirty.ratio=0.01, log.cleaner.backoff.ms=100, a
/// second between the timestamps of the segments): k=a1 | k=a2, k=a3, an open transaction's x=1 |
/// z=zz left all five records while the transaction was open, and k=a3, z=zz once it was aborted.
#[test]
fn the_segment_holding_the_last_stable_offset_is_not_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config(1 << 20), false);
    let mut seq = 0;
    produce(&log, &[(b'k', Some(1))], None, Compression::None); // 0
    roll(&log);
    produce(&log, &[(b'k', Some(2))], None, Compression::None); // 1
    produce(&log, &[(b'k', Some(3))], None, Compression::None); // 2
    produce_txn(&log, &[(b'x', Some(1))], 5, &mut seq); // 3, open
    roll(&log);
    produce(&log, &[(b'z', Some(1))], None, Compression::None); // 4
    let c = log.cleanable(None, 2000);
    assert_eq!((c.first_dirty, c.first_uncleanable), (0, 1));
    let cp = clean_fully(&log, None, 1 << 16, 2000);
    let data = |log: &PartitionLog| visible(log).into_iter().filter(|(_, k, _)| *k != 0).collect::<Vec<_>>();
    let all = vec![
        (0, b'k', Some(1)),
        (1, b'k', Some(2)),
        (2, b'k', Some(3)),
        (3, b'x', Some(1)),
        (4, b'z', Some(1)),
    ];
    assert_eq!(data(&log), all, "nothing cleaned while the transaction is open");
    assert_eq!(log.append_txn_marker(5, 0, 0, false, 0, 1000).unwrap(), 5);
    clean_fully(&log, cp, 1 << 16, 2000);
    assert_eq!(data(&log), vec![(2, b'k', Some(3)), (4, b'z', Some(1))]);
}

/// `max.compaction.lag.ms` is measured from each dirty segment's first batch (Kafka's
/// `LogCleanerManager.maxCompactionDelay` over `getFirstBatchTimestampForSegments`), not its newest.
/// Checked on Apache Kafka 4.4.0 with min.cleanable.dirty.ratio=1 (so only the lag can make a log
/// due) and max.compaction.lag.ms=1800000: k=a1 stamped 40 minutes ago, k=a2 15 minutes ago, then
/// two 600 kB records rolling the segment (segment.bytes=1048576): k=a1 was cleaned away.
#[test]
fn max_compaction_lag_counts_from_a_segments_first_batch() {
    const MINUTE: i64 = 60_000;
    let now = 10 * HOUR;
    let dir = tempfile::tempdir().unwrap();
    let cfg =
        LogConfig { min_cleanable_dirty_ratio: 1.0, max_compaction_lag_ms: 30 * MINUTE, ..config(1 << 20) };
    let log = open(dir.path(), cfg, false);
    produce_at(&log, &[(b'k', Some(1))], now - 20 * MINUTE);
    produce_at(&log, &[(b'k', Some(2))], now - 15 * MINUTE);
    roll(&log);
    let c = log.cleanable(None, now);
    assert!(!c.needs_compaction_now && !c.due(), "the first batch is inside the lag");
    produce_at(&log, &[(b'k', Some(3))], now - 40 * MINUTE);
    produce_at(&log, &[(b'k', Some(4))], now - 15 * MINUTE);
    roll(&log);
    let c = log.cleanable(None, now);
    assert!(c.needs_compaction_now && c.due(), "the second segment's first batch is past the lag");
    clean_fully(&log, None, 1 << 16, now);
    assert_eq!(visible(&log), vec![(3, b'k', Some(4))]);
}

/// The `.log` files of `dir` as (base offset, size).
fn segment_files(dir: &Path) -> Vec<(i64, u64)> {
    let mut out: Vec<(i64, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let base = name.strip_suffix(".log")?.parse().ok()?;
            Some((base, e.metadata().ok()?.len()))
        })
        .collect();
    out.sort();
    out
}

/// A group of segments a clean leaves without a batch stays as an empty segment at the group's base
/// offset (Kafka's `cleanSegments` swaps in its cleaned segment whatever its size), the log start
/// offset does not move, and the next clean groups the empty segment with the following one.
/// Checked on Apache Kafka 4.4.0: segment.bytes=1048576, k written four times with 600 kB values
/// two seconds apart (each write rolls the segment before it, the cleaner runs between), then z:
/// left an empty 0.log, 3.log (k) and the active 4.log (z), log start offset 0, also after a restart.
#[test]
fn a_segment_emptied_by_a_clean_stays_empty_and_merges_into_the_next_group() {
    let dir = tempfile::tempdir().unwrap();
    let log = open(dir.path(), config(100), false);
    let mut cp = None;
    for v in 1..=4 {
        produce(&log, &[(b'k', Some(v))], None, Compression::None);
        roll(&log);
        cp = clean_fully(&log, cp, 1 << 16, 2000);
    }
    produce(&log, &[(b'z', Some(1))], None, Compression::None);
    let files = segment_files(dir.path());
    let shape: Vec<(i64, bool)> = files.iter().map(|(base, size)| (*base, *size == 0)).collect();
    assert_eq!(shape, vec![(0, true), (3, false), (4, false)], "{files:?}");
    assert_eq!(log.log_start_offset(), 0);
    assert_eq!(visible(&log), vec![(3, b'k', Some(4)), (4, b'z', Some(1))]);
    drop(log);
    let log = open(dir.path(), config(100), false);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 5));
    assert_eq!(visible(&log), vec![(3, b'k', Some(4)), (4, b'z', Some(1))]);
}
