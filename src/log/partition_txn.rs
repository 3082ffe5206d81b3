//! The producer-state and transaction side of [`PartitionLog`] (Kafka's `UnifiedLog` methods over
//! its `ProducerStateManager`): restoring and snapshotting producer state, transaction markers, the
//! last stable offset, `read_committed` reads and DescribeProducers. The rules themselves are in
//! [`super::transactions`] and [`super::producer_state`].

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use super::batch::{self, BatchError, BatchHeader};
use super::producer_state::{self, ProducerStates, ProducerSummary};
use super::segment::Segment;
use super::transactions::{self, AbortedTxn, TxnMarker};
use super::{storage, LogError, PartitionLog, ReadResult, State, PRODUCER_STATE};
use crate::durable_file;

impl PartitionLog {
    /// Loads the producer-state snapshot and replays the batch headers (and transaction markers)
    /// after it. The `.txnindex` entries at or after the snapshot's offset are dropped first and
    /// re-made by the replay, so after a crash they are exactly what the surviving markers say.
    pub(super) fn restore_producer_state(&self, now_ms: i64) -> io::Result<()> {
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        let snapshot = durable_file::read_checked::<producer_state::Snapshot>(&self.dir.join(PRODUCER_STATE))
            .ok()
            .flatten();
        let (mut states, legacy, from) = match snapshot {
            Some(s) if s.offset <= end => (s.states, s.aborted.entries, s.offset.max(start)),
            _ => (ProducerStates::default(), Vec::new(), start),
        };
        let mut st = self.state.write();
        let st = &mut *st;
        let first_key = st.segments.range(..=from).next_back().map_or(from, |(k, _)| *k);
        for seg in st.segments.range_mut(first_key..).map(|(_, s)| s) {
            seg.txn_index_mut().truncate_from(&self.files, from)?;
        }
        if !legacy.is_empty()
            && st.segments.values().all(|s| s.txn_index().last_marker(&self.files).ok().flatten().is_none())
        {
            // A snapshot of a version that kept the aborted list itself: its entries move to the files.
            for t in legacy.into_iter().filter(|t| t.last_offset >= start && t.last_offset < from) {
                Self::index_abort(&mut st.segments, t);
            }
        }
        // Unreadable batches here mean the segments are not what the open assumed: reported as
        // corrupt data, so a log opened as clean is recovered instead.
        let corrupt = |e: String| {
            let msg = format!("{}: replaying producer state from offset {from}: {e}", self.dir.display());
            io::Error::new(io::ErrorKind::InvalidData, msg)
        };
        let mut offset = from;
        while offset < end {
            let r = self.read_locked(st, offset, 1 << 20, true, false).map_err(|e| corrupt(e.to_string()))?;
            if r.records.is_empty() {
                break;
            }
            let ranges = batch::split_batches(&r.records).map_err(|e| corrupt(e.to_string()))?;
            for range in ranges {
                let Some(bytes) = r.records.get(range) else { break };
                let Some(h) = BatchHeader::parse(bytes) else { break };
                if h.last_offset() >= offset {
                    let marker = Self::replayed_marker(&self.dir, &h, bytes);
                    if let Some(t) = transactions::apply(&mut states, &h, marker, now_ms) {
                        Self::index_abort(&mut st.segments, t);
                    }
                }
                offset = offset.max(h.last_offset() + 1);
            }
        }
        st.producers = states;
        st.last_abort_marker = -1;
        let last = st.segments.len().saturating_sub(1);
        for (i, seg) in st.segments.values_mut().enumerate().rev() {
            // Sealed segments take no more entries: theirs go to the file now.
            if i < last {
                seg.txn_index_mut().sync(&self.files)?;
            }
            if st.last_abort_marker < 0 {
                st.last_abort_marker = seg.txn_index().last_marker(&self.files)?.unwrap_or(-1);
            }
        }
        Ok(())
    }

    /// Adds `t` to the index of the segment holding its marker (the last one starting at or before it).
    fn index_abort(segments: &mut BTreeMap<i64, Segment>, t: AbortedTxn) {
        if let Some((_, seg)) = segments.range_mut(..=t.last_offset).next_back() {
            seg.txn_index_mut().append(t);
        }
    }

    /// The marker of a control batch met during replay; one that cannot be read is skipped (it was
    /// valid when appended, so this is damage recovery did not see) with a warning.
    fn replayed_marker(dir: &Path, h: &BatchHeader, bytes: &[u8]) -> Option<TxnMarker> {
        if !h.is_control() {
            return None;
        }
        transactions::parse_marker(bytes).unwrap_or_else(|e| {
            tracing::warn!(dir = %dir.display(), offset = h.base_offset, error = %e, "skipping unreadable transaction marker");
            None
        })
    }

    /// Saves producer state as of the log end. Every `.txnindex` entry below it is written and
    /// fsynced first: the next start trusts the files below the snapshot's offset.
    pub(super) fn write_producer_snapshot(&self, st: &mut State) -> io::Result<()> {
        for seg in st.segments.values_mut() {
            seg.txn_index_mut().sync(&self.files)?;
        }
        let snap = producer_state::SnapshotRef { offset: st.next_offset, states: &st.producers };
        durable_file::write_atomic(&self.dir.join(PRODUCER_STATE), &snap)
    }

    /// The state of one producer in this partition (for tests and DescribeProducers).
    pub fn producer_epoch(&self, producer_id: i64) -> Option<i16> {
        self.state.read().producers.get(producer_id).map(|e| e.epoch)
    }

    /// Forgets producers whose last batch is `expiration_ms` old, except those with a transaction
    /// ongoing here (Kafka's `ProducerStateManager.removeExpiredProducers`); returns how many.
    pub fn expire_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        self.state.write().producers.expire(now_ms, expiration_ms)
    }

    /// Every producer known to this partition, for DescribeProducers (Kafka's
    /// `UnifiedLog.activeProducers`), ordered by producer id.
    pub fn producers(&self) -> Vec<ProducerSummary> {
        let mut all = self.state.read().producers.summaries();
        all.sort_by_key(|p| p.producer_id);
        all
    }

    /// The last stable offset: the first offset of the oldest ongoing transaction, or the high
    /// watermark (on one node, the log end offset) when none is ongoing; never below the log start.
    pub fn last_stable_offset(&self) -> i64 {
        let st = self.state.read();
        transactions::last_stable_offset(
            st.producers.first_unstable_offset(),
            st.log_start_offset,
            st.next_offset,
        )
    }

    /// Ongoing transactions here as (first offset, producer id), oldest first.
    pub fn ongoing_transactions(&self) -> Vec<(i64, i64)> {
        self.state.read().producers.ongoing().collect()
    }

    /// Reads for a `read_committed` consumer (Kafka's `FetchIsolation.TXN_COMMITTED`): as
    /// [`Self::read`], but only whole batches below the last stable offset (nothing when `offset` is
    /// at or past it), with the aborted transactions overlapping what is returned, ordered by first
    /// offset: every aborted transaction whose marker is at or after `offset` and whose first offset
    /// is below the offset after the last batch returned (Kafka's `collectAbortedTransactions`,
    /// whose upper bound is that offset rounded up to an index entry; this one is exact).
    pub fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<(ReadResult, Vec<AbortedTxn>), LogError> {
        let st = self.state.read();
        let r = self.read_locked(&st, offset, max_bytes, min_one, true)?;
        // The bound needs a walk over the returned batch headers: only when an abort can be in range.
        let mut aborted = Vec::new();
        if let Some(upper) =
            (st.last_abort_marker >= offset).then(|| transactions::end_offset(&r.records)).flatten()
        {
            aborted = self.collect_aborted(&st, offset, upper)?;
            aborted.sort_by_key(|t| t.first_offset);
        }
        Ok((r, aborted))
    }

    /// The aborted transactions whose marker is at or after `start` and whose first offset is below
    /// `upper`, in marker order (Kafka's `LocalLog.collectAbortedTransactions`): markers at or after
    /// `start` are in its segment or later ones.
    fn collect_aborted(&self, st: &State, start: i64, upper: i64) -> Result<Vec<AbortedTxn>, LogError> {
        let mut aborted = Vec::new();
        let first_key = st.segments.range(..=start).next_back().map_or(start, |(k, _)| *k);
        for seg in st.segments.range(first_key..).map(|(_, s)| s) {
            if seg.txn_index().collect(&self.files, start, upper, &mut aborted).map_err(storage)? {
                break;
            }
        }
        Ok(aborted)
    }

    /// [`Self::collect_aborted`] under the log's read lock, for the cleaner.
    pub(super) fn aborted_between(&self, start: i64, upper: i64) -> Result<Vec<AbortedTxn>, LogError> {
        let st = self.state.read();
        self.collect_aborted(&st, start, upper)
    }

    /// Writes a transaction marker for `producer_id` (Kafka's `UnifiedLog.appendAsLeader` of
    /// `MemoryRecords.withEndTransactionMarker`, checked as `ProducerAppendInfo.appendEndTxnMarker`):
    /// COMMIT (`commit`) or ABORT, stamped `now_ms` (ms), in leader epoch `leader_epoch`. Returns the
    /// marker's offset.
    ///
    /// Refused with [`LogError::InvalidProducerEpoch`] when `producer_epoch` is older than the
    /// producer's, and [`LogError::TransactionCoordinatorFenced`] when `coordinator_epoch` is older
    /// than the last marker's. A marker for a producer with no transaction ongoing is written all the
    /// same and only updates its state. Completing a transaction moves the last stable offset; waiting
    /// fetches are woken through the log manager (see [`Self::notify_markers_to`]).
    pub fn append_txn_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<i64, LogError> {
        if producer_id < 0 {
            return Err(LogError::Batch(BatchError::Invalid("transaction marker without a producer id")));
        }
        let marker = TxnMarker { commit, coordinator_epoch };
        let bytes = transactions::marker_batch(producer_id, producer_epoch, marker, now_ms)?;
        let header = batch::validate(&bytes)?;
        let info = self.append_validated(&bytes, header, leader_epoch, now_ms)?;
        if let Some(appends) = self.marker_listener.get() {
            appends.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(info.base_offset)
    }

    /// Has every later transaction marker bump `appends` (the log manager's append counter that
    /// long-polling fetches watch). Set once; later calls are ignored.
    pub fn notify_markers_to(&self, appends: tokio::sync::watch::Sender<u64>) {
        let _ = self.marker_listener.set(appends);
    }
}
