//! EndTxn in the transaction coordinator (Kafka's `TransactionCoordinator.endTransaction`), in its
//! two forms:
//!
//! - transactions v1 (EndTxn v0–v4, `endTransactionWithTV1`): the producer keeps its epoch; a
//!   retried commit or abort of a completed transaction is answered NONE.
//! - transactions v2 (EndTxn v5+, KIP-890 part 2): every commit or abort bumps the epoch; the
//!   markers carry the bumped epoch and the answer the producer id and epoch to continue with. An
//!   abort with nothing ongoing still bumps (PrepareAbort with no partitions). When the epoch is
//!   exhausted, a new producer id is allocated up front and taken, at epoch 0, on completion.
//!
//! Kafka's table for v2 requests in the Empty and Complete states, "retry" being a request at the
//! stored epoch - 1 (or the last epoch of the previous producer id after a rotation) and "current" one
//! at the stored epoch (PF: PRODUCER_FENCED, ITS: INVALID_TXN_STATE, EB: bump the epoch):
//!
//! | state          | abort retry | abort current | commit retry | commit current |
//! |----------------|-------------|---------------|--------------|----------------|
//! | Empty          | PF          | EB            | PF           | ITS            |
//! | CompleteAbort  | NONE        | EB            | ITS          | ITS            |
//! | CompleteCommit | ITS         | EB            | NONE         | ITS            |

use std::collections::HashMap;

use super::coordinator::{Next, ProducerIdAndEpoch, TransactionCoordinator, TxnError, EXHAUSTED_EPOCH};
use super::model::{TxnMetadata, TxnState, TV_2};

impl TransactionCoordinator {
    /// EndTxn v0–v4 (transactions v1): commits or aborts the ongoing transaction (blocking: writes
    /// the markers). The producer keeps its id and epoch, which are returned.
    pub fn end_txn(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<ProducerIdAndEpoch, TxnError> {
        let next = {
            let mut ids = self.ids.lock();
            let m = ids.get(transactional_id).cloned().ok_or(TxnError::InvalidProducerIdMapping)?;
            Self::check_producer(&m, producer_id, epoch)?;
            let done = Ok((m.producer_id, m.producer_epoch));
            match (m.state, commit) {
                (TxnState::Ongoing, _) => {
                    self.update(&mut ids, &m, |n| {
                        n.state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
                        n.client_txn_version = 0;
                        n.last_update_ms = now_ms;
                    })?;
                    Next::WriteMarkers { id: m.transactional_id, result: done }
                }
                // A retry of an EndTxn that completed.
                (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => Next::Done(done),
                (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                    Next::Done(Err(TxnError::ConcurrentTransactions))
                }
                (TxnState::PrepareEpochFence, _) => Next::Done(Err(TxnError::ConcurrentTransactions)),
                _ => Next::Done(Err(TxnError::InvalidTxnState)),
            }
        };
        self.finish(next, now_ms)
    }

    /// EndTxn v5+ (transactions v2): commits or aborts with an epoch bump (blocking: may allocate a
    /// producer id and writes the markers). Returns the producer id and epoch the producer goes on
    /// with: the bumped epoch, the new producer id at epoch 0 when the old one is exhausted, or the
    /// current ones for a retry of a completed EndTxn.
    pub fn end_txn_v2(
        &self,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<ProducerIdAndEpoch, TxnError> {
        let next = {
            let mut ids = self.ids.lock();
            let m = ids.get(transactional_id).cloned().ok_or(TxnError::InvalidProducerIdMapping)?;
            self.end_v2(&mut ids, m, producer_id, epoch, commit, now_ms)?
        };
        self.finish(next, now_ms)
    }

    /// The checks and state table of Kafka's `endTransaction` for a client at TV_2, in its order:
    /// producer id, epoch (per state), then the state.
    fn end_v2(
        &self,
        ids: &mut HashMap<String, TxnMetadata>,
        m: TxnMetadata,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<Next, TxnError> {
        use TxnState::*;
        // A retry of the EndTxn that exhausted the epoch of the previous producer id.
        let retry_on_overflow =
            m.last_producer_id == producer_id && epoch == EXHAUSTED_EPOCH && m.producer_epoch == 0;
        // A retry of an EndTxn whose bump is stored.
        let retry_on_bump = i32::from(m.producer_epoch) == i32::from(epoch) + 1;
        let valid_epoch = match m.state {
            PrepareCommit | PrepareAbort => retry_on_bump,
            CompleteCommit | CompleteAbort => retry_on_bump || retry_on_overflow || epoch == m.producer_epoch,
            Ongoing | Empty | Dead | PrepareEpochFence => epoch == m.producer_epoch,
        };
        if m.producer_id != producer_id && !retry_on_overflow {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if !valid_epoch {
            return Err(TxnError::ProducerFenced);
        }
        let retry = retry_on_bump || retry_on_overflow;
        Ok(match (m.state, commit) {
            (Ongoing, _) => self.prepare_v2(ids, &m, commit, false, now_ms)?,
            (CompleteCommit, true) | (CompleteAbort, false) if retry => {
                Next::Done(Ok((m.producer_id, m.producer_epoch)))
            }
            (Empty | CompleteCommit | CompleteAbort, false) if !retry => {
                self.prepare_v2(ids, &m, false, true, now_ms)?
            }
            (PrepareCommit, true) | (PrepareAbort, false) | (PrepareEpochFence, _) => {
                Next::Done(Err(TxnError::ConcurrentTransactions))
            }
            _ => Next::Done(Err(TxnError::InvalidTxnState)),
        })
    }

    /// PrepareCommit/PrepareAbort at the next epoch (Kafka's `prepareAbortOrCommit` at TV_2), with a
    /// new producer id reserved when the epoch is exhausted; `empty`: an abort with nothing
    /// ongoing, whose transaction starts now.
    fn prepare_v2(
        &self,
        ids: &mut HashMap<String, TxnMetadata>,
        m: &TxnMetadata,
        commit: bool,
        empty: bool,
        now_ms: i64,
    ) -> Result<Next, TxnError> {
        let next_producer_id = if m.producer_epoch >= EXHAUSTED_EPOCH {
            self.producer_ids.next_id().map_err(|e| TxnError::Storage(e.to_string()))?
        } else {
            -1
        };
        let n = self.update(ids, m, |n| {
            n.state = if commit { TxnState::PrepareCommit } else { TxnState::PrepareAbort };
            n.last_producer_epoch = m.producer_epoch;
            n.producer_epoch = m.producer_epoch.saturating_add(1);
            if empty {
                n.partitions.clear();
                n.txn_start_ms = now_ms;
            }
            n.next_producer_id = next_producer_id;
            n.client_txn_version = TV_2;
            n.last_update_ms = now_ms;
        })?;
        let continue_with =
            if next_producer_id >= 0 { (next_producer_id, 0) } else { (n.producer_id, n.producer_epoch) };
        Ok(Next::WriteMarkers { id: n.transactional_id, result: Ok(continue_with) })
    }
}
