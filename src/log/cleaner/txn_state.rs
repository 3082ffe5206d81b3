//! What the cleaner knows of transactions while it walks a log in offset order (Kafka's
//! `CleanedTransactionMetadata` in `LogCleaner`): which data batches belong to aborted transactions
//! (removed), which markers may go, and which aborted-transaction entries the cleaned segment's
//! `.txnindex` keeps.
//!
//! Kafka's rules, followed as they are:
//! - A transactional batch of a producer with an aborted transaction begun at or before it is
//!   discarded (and its keys never enter the offset map).
//! - An ABORT marker is kept (and its entry written to the cleaned index) while this pass still saw
//!   a batch of its transaction; otherwise it may go. A COMMIT marker may go when this pass saw no
//!   batch of its transaction. A marker that may go is first stamped with a delete horizon
//!   (`delete.retention.ms`, KIP-534) and removed by a clean after that horizon.
//! - A control batch already emptied by an earlier clean may go; one of another control type stays.

use std::collections::{HashMap, HashSet, VecDeque};

use crate::log::batch::BatchHeader;
use crate::log::transactions::{AbortedTxn, TxnMarker};

/// An aborted transaction being walked: its entry and the last offset of a batch of it seen.
#[derive(Debug)]
struct OngoingAbort {
    txn: AbortedTxn,
    observed: bool,
}

/// The state of one clean's walk over the log.
#[derive(Debug, Default)]
pub struct CleanedTxns {
    /// Aborted transactions not reached yet, by first offset.
    pending: VecDeque<AbortedTxn>,
    /// Aborted transactions reached and not yet closed by their marker, by producer id.
    aborted: HashMap<i64, OngoingAbort>,
    /// Producers with a batch of a (so far not aborted) transaction seen since their last marker.
    committed: HashSet<i64>,
    /// Entries for the cleaned segment's `.txnindex`, in marker order.
    kept_index: Vec<AbortedTxn>,
}

/// A control batch's record as the cleaner reads it (Kafka's `ControlRecordType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// A transaction marker.
    Marker(TxnMarker),
    /// No record left: a marker an earlier clean emptied.
    Empty,
    /// A control record that is not a transaction marker.
    Other,
}

impl CleanedTxns {
    /// Adds aborted transactions found for the next part of the log (any order; repeats of one
    /// already added are harmless, as in Kafka).
    pub fn add_aborted(&mut self, mut found: Vec<AbortedTxn>) {
        found.extend(self.pending.drain(..));
        found.sort_by_key(|t| t.first_offset);
        self.pending = found.into();
    }

    fn reach(&mut self, offset: i64) {
        while self.pending.front().is_some_and(|t| t.first_offset <= offset) {
            if let Some(t) = self.pending.pop_front() {
                self.aborted.entry(t.producer_id).or_insert(OngoingAbort { txn: t, observed: false });
            }
        }
    }

    /// A data batch is read; returns whether it belongs to an aborted transaction (Kafka's
    /// `onBatchRead`).
    pub fn on_batch(&mut self, h: &BatchHeader) -> bool {
        self.reach(h.last_offset());
        if !h.is_transactional() {
            return false;
        }
        match self.aborted.get_mut(&h.producer_id) {
            Some(a) => {
                a.observed = true;
                true
            }
            None => {
                self.committed.insert(h.producer_id);
                false
            }
        }
    }

    /// A control batch is read; returns whether it may be discarded (Kafka's `onControlBatchRead`).
    pub fn on_control(&mut self, h: &BatchHeader, control: Control) -> bool {
        self.reach(h.last_offset());
        match control {
            Control::Empty => true,
            Control::Other => false,
            Control::Marker(m) if m.commit => !self.committed.remove(&h.producer_id),
            Control::Marker(_) => match self.aborted.remove(&h.producer_id) {
                Some(a) if a.observed => {
                    self.kept_index.push(a.txn);
                    false
                }
                _ => true,
            },
        }
    }

    /// Takes the entries kept for the cleaned segment written so far.
    pub fn take_index(&mut self) -> Vec<AbortedTxn> {
        std::mem::take(&mut self.kept_index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(offset: i64, pid: i64, transactional: bool, control: bool) -> BatchHeader {
        let mut b = [0u8; crate::log::batch::HEADER_LEN];
        b[..8].copy_from_slice(&offset.to_be_bytes());
        let mut attributes = 0i16;
        if transactional {
            attributes |= crate::log::batch::ATTR_TRANSACTIONAL;
        }
        if control {
            attributes |= crate::log::batch::ATTR_CONTROL;
        }
        b[21..23].copy_from_slice(&attributes.to_be_bytes());
        b[43..51].copy_from_slice(&pid.to_be_bytes());
        BatchHeader::parse(&b).unwrap()
    }

    fn marker(commit: bool) -> Control {
        Control::Marker(TxnMarker { commit, coordinator_epoch: 0 })
    }

    #[test]
    fn aborted_batches_go_and_their_marker_stays_while_a_batch_was_seen() {
        let mut t = CleanedTxns::default();
        let abort = AbortedTxn { producer_id: 7, first_offset: 1, last_offset: 3, last_stable_offset: 4 };
        t.add_aborted(vec![abort]);
        assert!(!t.on_batch(&header(0, 7, false, false)), "not transactional");
        assert!(t.on_batch(&header(1, 7, true, false)));
        assert!(!t.on_batch(&header(2, 8, true, false)), "another producer's transaction");
        assert!(!t.on_control(&header(3, 7, true, true), marker(false)), "a batch of it was seen");
        assert_eq!(t.take_index(), vec![abort]);
        assert!(t.on_control(&header(4, 8, true, true), Control::Empty));
        assert!(!t.on_control(&header(5, 8, true, true), marker(true)), "its batch at 2 was seen");
        assert!(t.on_control(&header(6, 8, true, true), marker(true)), "no batch since");
    }

    #[test]
    fn an_abort_whose_batches_are_gone_may_go_and_leaves_no_index_entry() {
        let mut t = CleanedTxns::default();
        t.add_aborted(vec![AbortedTxn {
            producer_id: 7,
            first_offset: 1,
            last_offset: 3,
            last_stable_offset: 4,
        }]);
        assert!(t.on_control(&header(3, 7, true, true), marker(false)));
        assert!(t.take_index().is_empty());
        assert!(!t.on_control(&header(9, 7, true, true), Control::Other));
    }
}
