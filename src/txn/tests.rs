//! The transaction coordinator's state machine, over an in-memory log and a recording marker writer.

use std::collections::BTreeSet;
use std::sync::Arc;

use parking_lot::Mutex;

use super::coordinator::{MarkerWriter, TransactionCoordinator, TxnConfig, TxnError, EXHAUSTED_EPOCH};
use super::model::{TxnPartition, TxnRecord, TxnState};
use super::ProducerIdManager;
use crate::coordinator_log::{MemoryRecordLog, RecordLog};

/// One marker write: partitions, producer id, epoch, commit.
type Written = (Vec<TxnPartition>, i64, i16, bool);

/// Records every marker write; fails while `fail` is set.
#[derive(Default)]
struct Markers {
    written: Mutex<Vec<Written>>,
    fail: Mutex<bool>,
}

impl MarkerWriter for Markers {
    fn write_markers(
        &self,
        partitions: &BTreeSet<TxnPartition>,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), String> {
        if *self.fail.lock() {
            return Err("disk full".into());
        }
        self.written.lock().push((partitions.iter().cloned().collect(), producer_id, producer_epoch, commit));
        Ok(())
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    log: Arc<MemoryRecordLog<TxnRecord>>,
    ids: Arc<ProducerIdManager>,
    markers: Arc<Markers>,
    c: TransactionCoordinator,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let log = Arc::new(MemoryRecordLog::default());
    let ids = Arc::new(ProducerIdManager::open(dir.path()).unwrap());
    let markers = Arc::new(Markers::default());
    let c = TransactionCoordinator::open(log.clone(), ids.clone(), markers.clone(), TxnConfig::default())
        .unwrap();
    Fixture { _dir: dir, log, ids, markers, c }
}

impl Fixture {
    /// A coordinator replayed from the same log (a restart).
    fn reopen(&self) -> TransactionCoordinator {
        let log: Arc<dyn RecordLog<TxnRecord>> = self.log.clone();
        TransactionCoordinator::open(log, self.ids.clone(), self.markers.clone(), TxnConfig::default())
            .unwrap()
    }
}

fn tp(t: &str, p: i32) -> TxnPartition {
    (t.to_string(), p)
}

#[test]
fn init_bumps_the_epoch_and_fences_the_old_producer() {
    let f = fixture();
    let (pid, e0) = f.c.init_producer_id("t", 60_000, None, 0).unwrap();
    assert_eq!(e0, 0);
    let (pid2, e1) = f.c.init_producer_id("t", 60_000, None, 1).unwrap();
    assert_eq!((pid2, e1), (pid, 1));
    // The old epoch is fenced everywhere.
    assert_eq!(f.c.add_partitions("t", pid, 0, &[tp("a", 0)], 2), Err(TxnError::ProducerFenced));
    assert_eq!(f.c.end_txn("t", pid, 0, true, 2), Err(TxnError::ProducerFenced));
    assert_eq!(
        f.c.add_partitions("t", pid + 1, 1, &[tp("a", 0)], 2),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        f.c.add_partitions("unknown", pid, 1, &[tp("a", 0)], 2),
        Err(TxnError::InvalidProducerIdMapping)
    );
}

#[test]
fn commit_writes_markers_to_every_partition_then_completes() {
    let f = fixture();
    let (pid, e) = f.c.init_producer_id("t", 60_000, None, 0).unwrap();
    f.c.add_partitions("t", pid, e, &[tp("a", 0), tp("b", 1)], 10).unwrap();
    f.c.add_partitions("t", pid, e, &[tp("a", 0)], 11).unwrap();
    let m = f.c.describe("t").unwrap();
    assert_eq!((m.state, m.txn_start_ms, m.partitions.len()), (TxnState::Ongoing, 10, 2));
    assert_eq!(f.c.end_txn("t", pid, e, true, 20), Ok((pid, e)));
    assert_eq!(*f.markers.written.lock(), vec![(vec![tp("a", 0), tp("b", 1)], pid, e, true)]);
    let m = f.c.describe("t").unwrap();
    assert_eq!((m.state, m.partitions.len()), (TxnState::CompleteCommit, 0));
    // A retried commit succeeds; an abort of the committed transaction does not.
    assert_eq!(f.c.end_txn("t", pid, e, true, 21), Ok((pid, e)));
    assert_eq!(f.c.end_txn("t", pid, e, false, 21), Err(TxnError::InvalidTxnState));
    // Ending with nothing ongoing is an invalid state.
    f.c.init_producer_id("u", 60_000, None, 0).unwrap();
    let (upid, ue) = (f.c.describe("u").unwrap().producer_id, 0);
    assert_eq!(f.c.end_txn("u", upid, ue, true, 1), Err(TxnError::InvalidTxnState));
}

#[test]
fn init_during_a_transaction_aborts_it_with_a_bumped_epoch() {
    let f = fixture();
    let (pid, e) = f.c.init_producer_id("t", 60_000, None, 0).unwrap();
    f.c.add_partitions("t", pid, e, &[tp("a", 0)], 1).unwrap();
    assert_eq!(f.c.init_producer_id("t", 60_000, None, 2), Err(TxnError::ConcurrentTransactions));
    assert_eq!(*f.markers.written.lock(), vec![(vec![tp("a", 0)], pid, e + 1, false)]);
    assert_eq!(f.c.describe("t").unwrap().state, TxnState::CompleteAbort);
    // The retry gets the next epoch; the zombie is fenced.
    assert_eq!(f.c.init_producer_id("t", 60_000, None, 3), Ok((pid, e + 2)));
    assert_eq!(f.c.end_txn("t", pid, e, true, 4), Err(TxnError::ProducerFenced));
}

#[test]
fn a_fence_is_recorded_with_the_finalized_transaction_version() {
    let f = fixture();
    f.c.set_transaction_version(1);
    let (pid, e) = f.c.init_producer_id("t", 60_000, None, 0).unwrap();
    f.c.add_partitions("t", pid, e, &[tp("a", 0)], 1).unwrap();
    assert_eq!(f.c.init_producer_id("t", 60_000, None, 2), Err(TxnError::ConcurrentTransactions));
    let m = f.c.describe("t").unwrap();
    // Kafka 4.4 at transaction.version 1: the same epochs as at 2 (CompleteAbort at e + 1).
    assert_eq!((m.state, m.producer_epoch, m.client_txn_version), (TxnState::CompleteAbort, e + 1, 1));
    assert_eq!(f.c.init_producer_id("t", 60_000, None, 3), Ok((pid, e + 2)));
}

#[test]
fn timeouts_abort_and_fence_and_idle_ids_expire() {
    let f = fixture();
    let (pid, e) = f.c.init_producer_id("t", 1_000, None, 0).unwrap();
    f.c.add_partitions("t", pid, e, &[tp("a", 0)], 100).unwrap();
    f.c.tick(1_000);
    assert_eq!(f.c.describe("t").unwrap().state, TxnState::Ongoing);
    f.c.tick(1_101);
    let m = f.c.describe("t").unwrap();
    assert_eq!((m.state, m.producer_epoch), (TxnState::CompleteAbort, e + 1));
    assert_eq!(f.c.add_partitions("t", pid, e, &[tp("a", 0)], 1_200), Err(TxnError::ProducerFenced));
    let expiry = f.c.config.id_expiration_ms;
    f.c.tick(1_101 + expiry + 1);
    assert!(f.c.describe("t").is_none());
    assert!(f.reopen().describe("t").is_none(), "the removal is persisted");
}

#[test]
fn timeout_bounds_and_epoch_exhaustion() {
    let f = fixture();
    assert_eq!(f.c.init_producer_id("t", 900_001, None, 0), Err(TxnError::InvalidTransactionTimeout));
    assert_eq!(f.c.init_producer_id("t", 0, None, 0), Err(TxnError::InvalidTransactionTimeout));
    let (pid, _) = f.c.init_producer_id("t", 1000, None, 0).unwrap();
    let mut last = (pid, 0);
    for i in 0..(i16::MAX as i64) {
        last = f.c.init_producer_id("t", 1000, None, i).unwrap();
        if last.0 != pid {
            break;
        }
    }
    assert_ne!(last.0, pid, "a new producer id once the epoch is exhausted");
    assert_eq!(last.1, 0);
}

#[test]
fn kip360_retry_and_recovery() {
    let f = fixture();
    let (pid, e) = f.c.init_producer_id("t", 1000, None, 0).unwrap();
    // The producer recovers with its current id and epoch: bumped.
    let bumped = f.c.init_producer_id("t", 1000, Some((pid, e)), 1).unwrap();
    assert_eq!(bumped, (pid, e + 1));
    // The same request retried (its answer was lost) gets the same answer.
    assert_eq!(f.c.init_producer_id("t", 1000, Some((pid, e)), 2), Ok(bumped));
    // An older epoch is a zombie.
    assert_eq!(f.c.init_producer_id("t", 1000, Some((pid, e + 7)), 3), Err(TxnError::ProducerFenced));
}

#[test]
fn a_crash_between_prepare_and_complete_is_finished_after_restart() {
    let f = fixture();
    let (pid, e) = f.c.init_producer_id("t", 60_000, None, 0).unwrap();
    f.c.add_partitions("t", pid, e, &[tp("a", 0)], 1).unwrap();
    *f.markers.fail.lock() = true;
    // The prepare is durable, so the commit is answered; the markers are pending.
    assert_eq!(f.c.end_txn("t", pid, e, true, 2), Ok((pid, e)));
    assert_eq!(f.c.describe("t").unwrap().state, TxnState::PrepareCommit);
    assert_eq!(f.c.add_partitions("t", pid, e, &[tp("a", 0)], 3), Err(TxnError::ConcurrentTransactions));
    assert_eq!(f.c.end_txn("t", pid, e, true, 3), Err(TxnError::ConcurrentTransactions));
    // "kill -9" here: the restarted coordinator finds PrepareCommit and completes it.
    *f.markers.fail.lock() = false;
    let c2 = f.reopen();
    assert_eq!(c2.describe("t").unwrap().state, TxnState::PrepareCommit);
    c2.tick(4);
    assert_eq!(c2.describe("t").unwrap().state, TxnState::CompleteCommit);
    assert_eq!(*f.markers.written.lock(), vec![(vec![tp("a", 0)], pid, e, true)]);
}

#[test]
fn verify_partition_follows_the_ongoing_transaction() {
    let f = fixture();
    let (pid, e) = f.c.init_producer_id("t", 60_000, None, 0).unwrap();
    assert_eq!(f.c.verify_partition("t", pid, e, &tp("a", 0)), Err(TxnError::TransactionAbortable));
    f.c.add_partitions("t", pid, e, &[tp("a", 0)], 1).unwrap();
    assert_eq!(f.c.verify_partition("t", pid, e, &tp("a", 0)), Ok(()));
    assert_eq!(f.c.verify_partition("t", pid, e, &tp("a", 1)), Err(TxnError::TransactionAbortable));
    assert_eq!(f.c.verify_partition("t", pid, e + 1, &tp("a", 0)), Err(TxnError::ProducerFenced));
}

#[test]
fn offsets_partition_is_kafkas() {
    let f = fixture();
    // "my-group".hashCode() is -1906497762: Utils.abs gives 1906497762, % 50 = 12.
    assert_eq!(f.c.offsets_partition("my-group"), 12);
    // "polygenelubricants".hashCode() is Integer.MIN_VALUE, which Kafka's Utils.abs maps to 0.
    assert_eq!(f.c.offsets_partition("polygenelubricants"), 0);
}

// Transactions v2 (EndTxn v5+, KIP-890 part 2).

#[test]
fn v2_commit_and_abort_bump_the_epoch_and_markers_carry_it() {
    let f = fixture();
    let (pid, e) = f.c.init_producer_id("t", 60_000, None, 0).unwrap();
    f.c.add_partitions("t", pid, e, &[tp("a", 0)], 1).unwrap();
    assert_eq!(f.c.end_txn_v2("t", pid, e, true, 2), Ok((pid, e + 1)));
    assert_eq!(*f.markers.written.lock(), vec![(vec![tp("a", 0)], pid, e + 1, true)]);
    let m = f.c.describe("t").unwrap();
    assert_eq!((m.state, m.producer_epoch, m.last_producer_epoch), (TxnState::CompleteCommit, e + 1, e));
    assert_eq!(m.client_txn_version, 2);
    // The old epoch is fenced from the next transaction; its EndTxn retry is answered as done.
    assert_eq!(f.c.add_partitions("t", pid, e, &[tp("a", 0)], 3), Err(TxnError::ProducerFenced));
    assert_eq!(f.c.end_txn_v2("t", pid, e, true, 3), Ok((pid, e + 1)));
    assert_eq!(f.markers.written.lock().len(), 1, "a retry writes nothing");
    // The next transaction runs at the bumped epoch; its abort bumps again.
    f.c.add_partitions("t", pid, e + 1, &[tp("b", 2)], 4).unwrap();
    assert_eq!(f.c.end_txn_v2("t", pid, e + 1, false, 5), Ok((pid, e + 2)));
    assert_eq!(f.markers.written.lock()[1], (vec![tp("b", 2)], pid, e + 2, false));
    assert_eq!(f.c.describe("t").unwrap().state, TxnState::CompleteAbort);
    // Errors: another producer id, an epoch neither current nor a retry.
    assert_eq!(f.c.end_txn_v2("t", pid + 1, e + 2, true, 6), Err(TxnError::InvalidProducerIdMapping));
    assert_eq!(f.c.end_txn_v2("t", pid, e, false, 6), Err(TxnError::ProducerFenced));
    assert_eq!(f.c.end_txn_v2("t", pid, e + 3, false, 6), Err(TxnError::ProducerFenced));
    assert_eq!(f.c.end_txn_v2("nope", pid, e, false, 6), Err(TxnError::InvalidProducerIdMapping));
}

#[test]
fn v2_table_for_empty_and_completed_transactions() {
    let f = fixture();
    f.c.init_producer_id("t", 60_000, None, 0).unwrap();
    let (pid, e) = f.c.init_producer_id("t", 60_000, None, 1).unwrap();
    assert_eq!(e, 1);
    let end = |epoch: i16, commit: bool| f.c.end_txn_v2("t", pid, epoch, commit, 10);
    // Empty: a retry is fenced, a commit is an invalid state, an abort bumps (no partitions).
    assert_eq!(end(e - 1, false), Err(TxnError::ProducerFenced));
    assert_eq!(end(e - 1, true), Err(TxnError::ProducerFenced));
    assert_eq!(end(e, true), Err(TxnError::InvalidTxnState));
    assert_eq!(end(e, false), Ok((pid, e + 1)));
    assert_eq!(*f.markers.written.lock(), vec![(vec![], pid, e + 1, false)]);
    let m = f.c.describe("t").unwrap();
    assert_eq!((m.state, m.producer_epoch, m.txn_start_ms), (TxnState::CompleteAbort, e + 1, -1));
    // CompleteAbort at e+1: abort retry NONE (no bump), commits invalid, abort current bumps.
    let e = e + 1;
    assert_eq!(end(e - 1, false), Ok((pid, e)));
    assert_eq!(end(e - 1, true), Err(TxnError::InvalidTxnState));
    assert_eq!(end(e, true), Err(TxnError::InvalidTxnState));
    assert_eq!(end(e, false), Ok((pid, e + 1)));
    // CompleteCommit at e+1 (after a committed transaction).
    let e = e + 1;
    f.c.add_partitions("t", pid, e, &[tp("a", 0)], 11).unwrap();
    assert_eq!(end(e, true), Ok((pid, e + 1)));
    let e = e + 1;
    assert_eq!(end(e - 1, true), Ok((pid, e)));
    assert_eq!(end(e - 1, false), Err(TxnError::InvalidTxnState));
    assert_eq!(end(e, true), Err(TxnError::InvalidTxnState));
    assert_eq!(end(e, false), Ok((pid, e + 1)));
    assert_eq!(f.c.describe("t").unwrap().state, TxnState::CompleteAbort);
}

#[test]
fn v2_while_markers_are_pending() {
    let f = fixture();
    let (pid, e) = f.c.init_producer_id("t", 60_000, None, 0).unwrap();
    f.c.add_partitions("t", pid, e, &[tp("a", 0)], 1).unwrap();
    *f.markers.fail.lock() = true;
    // PrepareCommit is durable at the bumped epoch: answered with it.
    assert_eq!(f.c.end_txn_v2("t", pid, e, true, 2), Ok((pid, e + 1)));
    assert_eq!(f.c.describe("t").unwrap().state, TxnState::PrepareCommit);
    // A retry waits; the other outcome is invalid; the bumped epoch itself is no retry: fenced.
    assert_eq!(f.c.end_txn_v2("t", pid, e, true, 3), Err(TxnError::ConcurrentTransactions));
    assert_eq!(f.c.end_txn_v2("t", pid, e, false, 3), Err(TxnError::InvalidTxnState));
    assert_eq!(f.c.end_txn_v2("t", pid, e + 1, true, 3), Err(TxnError::ProducerFenced));
    assert_eq!(f.c.add_partitions("t", pid, e + 1, &[tp("a", 0)], 3), Err(TxnError::ConcurrentTransactions));
    *f.markers.fail.lock() = false;
    f.c.tick(4);
    let m = f.c.describe("t").unwrap();
    assert_eq!((m.state, m.producer_epoch), (TxnState::CompleteCommit, e + 1));
    assert_eq!(*f.markers.written.lock(), vec![(vec![tp("a", 0)], pid, e + 1, true)]);
}

#[test]
fn v2_epoch_exhaustion_moves_to_a_new_producer_id() {
    let f = fixture();
    let (pid, _) = f.c.init_producer_id("t", 60_000, None, 0).unwrap();
    // The id as it would be after 32766 transactions, with one ongoing.
    let mut m = f.c.describe("t").unwrap();
    m.producer_epoch = EXHAUSTED_EPOCH;
    m.state = TxnState::Ongoing;
    m.partitions.insert(tp("a", 0));
    m.txn_start_ms = 5;
    f.log.append(&[TxnRecord::Set(m)]).unwrap();
    let c = f.reopen();
    let (new_pid, epoch) = c.end_txn_v2("t", pid, EXHAUSTED_EPOCH, true, 10).unwrap();
    assert_ne!(new_pid, pid);
    assert_eq!(epoch, 0);
    // The markers close the old producer id's transaction at the epoch kept for the coordinator.
    assert_eq!(*f.markers.written.lock(), vec![(vec![tp("a", 0)], pid, i16::MAX, true)]);
    let m = c.describe("t").unwrap();
    assert_eq!((m.state, m.producer_id, m.producer_epoch), (TxnState::CompleteCommit, new_pid, 0));
    assert_eq!((m.last_producer_id, m.last_producer_epoch, m.next_producer_id), (pid, EXHAUSTED_EPOCH, -1));
    // A retry with the old id and epoch gets the new ones; the other outcome is invalid.
    assert_eq!(c.end_txn_v2("t", pid, EXHAUSTED_EPOCH, true, 11), Ok((new_pid, 0)));
    assert_eq!(c.end_txn_v2("t", pid, EXHAUSTED_EPOCH, false, 11), Err(TxnError::InvalidTxnState));
    assert_eq!(c.end_txn_v2("t", pid, 0, false, 11), Err(TxnError::InvalidProducerIdMapping));
    c.add_partitions("t", new_pid, 0, &[tp("a", 0)], 12).unwrap();
    assert_eq!(c.end_txn_v2("t", new_pid, 0, false, 13), Ok((new_pid, 1)));
    assert_eq!(f.reopen().describe("t").unwrap().producer_id, new_pid, "the rotation is persisted");
}

#[test]
fn fences_keep_the_fenced_epoch_as_the_last_one() {
    // Kafka 4.x aborts a fenced transaction with its own transaction.version (2): PrepareAbort at
    // the next epoch with the fenced epoch as the last one, so the fenced producer's KIP-360 retry
    // is answered with the current epoch.
    let f = fixture();
    let (pid, e) = f.c.init_producer_id("t", 60_000, None, 0).unwrap();
    f.c.add_partitions("t", pid, e, &[tp("a", 0)], 1).unwrap();
    assert_eq!(f.c.init_producer_id("t", 60_000, Some((pid, e)), 2), Err(TxnError::ConcurrentTransactions));
    let m = f.c.describe("t").unwrap();
    assert_eq!((m.state, m.producer_epoch, m.last_producer_epoch), (TxnState::CompleteAbort, e + 1, e));
    assert_eq!(f.c.init_producer_id("t", 60_000, Some((pid, e)), 3), Ok((pid, e + 1)));
    // A timeout fences the same way.
    f.c.add_partitions("t", pid, e + 1, &[tp("a", 0)], 4).unwrap();
    f.c.tick(4 + 60_001);
    let m = f.c.describe("t").unwrap();
    assert_eq!((m.state, m.producer_epoch, m.last_producer_epoch), (TxnState::CompleteAbort, e + 2, e + 1));
    assert_eq!(f.c.end_txn("t", pid, e + 1, false, 70_000), Err(TxnError::ProducerFenced));
}
