//! Fetch sessions (KIP-227). A consumer of many partitions opens a session (session id 0, epoch 0);
//! the broker remembers the partitions and their fetch offsets, and later fetches (same id, next
//! epoch) name only partitions whose parameters changed, plus the ones to forget. Responses of such
//! incremental fetches carry only partitions with news: records, an error, or a changed high
//! watermark, last stable offset or log start offset.
//!
//! Epoch -1 (with id 0) is a full fetch without a session; epoch -1 with an id closes that session.
//! An unknown id is FETCH_SESSION_ID_NOT_FOUND, a wrong epoch INVALID_FETCH_SESSION_EPOCH: the client
//! then starts over with a full fetch. At most [`MAX_SESSIONS`] are kept; the least recently used is
//! evicted first.

use std::collections::HashMap;

use indexmap::IndexMap;
use kafka_protocol::ResponseError;
use parking_lot::Mutex;
use tokio::time::Instant;
use uuid::Uuid;

/// Sessions kept at once (Kafka's `max.incremental.fetch.session.cache.slots` default).
pub const MAX_SESSIONS: usize = 1000;

/// A partition as a fetch names it: by topic name (v4–v12) or topic id (v13+).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
}

/// What the client asks of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchParams {
    pub fetch_offset: i64,
    pub max_bytes: i32,
    pub current_leader_epoch: i32,
}

/// What the broker last told the client about a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sent {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
}

#[derive(Debug)]
struct Cached {
    params: FetchParams,
    sent: Option<Sent>,
}

#[derive(Debug)]
struct Session {
    next_epoch: i32,
    partitions: IndexMap<PartitionKey, Cached>,
    last_used: Instant,
}

/// How to serve one Fetch request.
#[derive(Debug)]
pub enum Plan {
    /// Read these partitions and answer all of them, with this session id (0: no session).
    Full { session_id: i32, partitions: Vec<(PartitionKey, FetchParams)> },
    /// Read every partition of the session; answer only those with news.
    Incremental { session_id: i32, partitions: Vec<(PartitionKey, FetchParams, Option<Sent>)> },
    /// Answer with this top-level error.
    Error(ResponseError),
}

/// Kafka's session epochs.
const INITIAL_EPOCH: i32 = 0;
const FINAL_EPOCH: i32 = -1;

/// Every fetch session of the broker.
#[derive(Default)]
pub struct FetchSessions {
    inner: Mutex<(HashMap<i32, Session>, i32)>,
}

impl FetchSessions {
    /// Decides how to serve a fetch and updates the session with the request's partitions.
    pub fn plan(
        &self,
        session_id: i32,
        epoch: i32,
        requested: Vec<(PartitionKey, FetchParams)>,
        forgotten: Vec<PartitionKey>,
    ) -> Plan {
        let mut guard = self.inner.lock();
        let (sessions, next_id) = &mut *guard;
        let now = Instant::now();
        match (session_id, epoch) {
            (0, FINAL_EPOCH) => Plan::Full { session_id: 0, partitions: requested },
            // Epoch 0 starts a new session; with an id, the old one is closed first (KIP-227).
            (old, INITIAL_EPOCH) => {
                sessions.remove(&old);
                if sessions.len() >= MAX_SESSIONS {
                    if let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.last_used).map(|(id, _)| *id)
                    {
                        sessions.remove(&oldest);
                    }
                }
                let id = loop {
                    *next_id = next_id.wrapping_add(1).max(1);
                    if !sessions.contains_key(next_id) {
                        break *next_id;
                    }
                };
                let partitions = requested
                    .iter()
                    .map(|(k, p)| (k.clone(), Cached { params: p.clone(), sent: None }))
                    .collect();
                sessions.insert(id, Session { next_epoch: 1, partitions, last_used: now });
                Plan::Full { session_id: id, partitions: requested }
            }
            (id, FINAL_EPOCH) => {
                sessions.remove(&id);
                Plan::Full { session_id: 0, partitions: requested }
            }
            (id, e) => {
                let Some(session) = sessions.get_mut(&id) else {
                    return Plan::Error(ResponseError::FetchSessionIdNotFound);
                };
                if e != session.next_epoch {
                    return Plan::Error(ResponseError::InvalidFetchSessionEpoch);
                }
                session.next_epoch = if session.next_epoch == i32::MAX { 1 } else { session.next_epoch + 1 };
                session.last_used = now;
                for k in &forgotten {
                    session.partitions.shift_remove(k);
                }
                for (k, p) in requested {
                    match session.partitions.get_mut(&k) {
                        Some(c) => c.params = p,
                        None => {
                            session.partitions.insert(k, Cached { params: p, sent: None });
                        }
                    }
                }
                let partitions =
                    session.partitions.iter().map(|(k, c)| (k.clone(), c.params.clone(), c.sent)).collect();
                Plan::Incremental { session_id: id, partitions }
            }
        }
    }

    /// Records what was sent for partitions of a session (so the next incremental fetch can omit
    /// partitions without news).
    pub fn record_sent(&self, session_id: i32, sent: &[(PartitionKey, Sent)]) {
        if session_id == 0 {
            return;
        }
        let mut guard = self.inner.lock();
        if let Some(session) = guard.0.get_mut(&session_id) {
            for (k, s) in sent {
                if let Some(c) = session.partitions.get_mut(k) {
                    c.sent = Some(*s);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner.lock().0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: i32) -> PartitionKey {
        PartitionKey { topic: "t".into(), topic_id: Uuid::nil(), partition: p }
    }
    fn params(offset: i64) -> FetchParams {
        FetchParams { fetch_offset: offset, max_bytes: 100, current_leader_epoch: -1 }
    }

    #[tokio::test]
    async fn session_lifecycle_follows_kip_227() {
        let s = FetchSessions::default();
        let Plan::Full { session_id, partitions } =
            s.plan(0, 0, vec![(key(0), params(0)), (key(1), params(0))], vec![])
        else {
            panic!("a new session starts with a full fetch")
        };
        assert!(session_id > 0 && partitions.len() == 2);
        s.record_sent(session_id, &[(key(0), Sent { high_watermark: 5, ..Sent::default() })]);
        // Incremental: only partition 1 changed its offset; partition 0 is still in the session.
        let Plan::Incremental { partitions, .. } = s.plan(session_id, 1, vec![(key(1), params(7))], vec![])
        else {
            panic!("incremental")
        };
        assert_eq!(partitions.len(), 2);
        assert_eq!(partitions[0].2.map(|x| x.high_watermark), Some(5));
        assert_eq!(partitions[1].1.fetch_offset, 7);
        // Forgetting a partition removes it.
        let Plan::Incremental { partitions, .. } = s.plan(session_id, 2, vec![], vec![key(0)]) else {
            panic!()
        };
        assert_eq!(partitions.len(), 1);
        // Wrong epoch, unknown id.
        assert!(matches!(
            s.plan(session_id, 9, vec![], vec![]),
            Plan::Error(ResponseError::InvalidFetchSessionEpoch)
        ));
        assert!(matches!(
            s.plan(12345, 1, vec![], vec![]),
            Plan::Error(ResponseError::FetchSessionIdNotFound)
        ));
        // Epoch 0 with an existing id replaces that session (a client resetting after a lost response).
        let Plan::Full { session_id: renewed, .. } = s.plan(session_id, 0, vec![(key(3), params(0))], vec![])
        else {
            panic!("a reset starts a new session")
        };
        assert!(renewed != 0 && renewed != session_id && s.len() == 1);
        assert!(matches!(
            s.plan(session_id, 1, vec![], vec![]),
            Plan::Error(ResponseError::FetchSessionIdNotFound)
        ));
        // Closing.
        assert!(matches!(s.plan(renewed, -1, vec![], vec![]), Plan::Full { session_id: 0, .. }));
        assert!(s.is_empty());
    }
}
