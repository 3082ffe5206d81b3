//! The broker-wide connection bound, `max.connections`, changeable while connections are open
//! (Kafka's `ConnectionQuotas` with `DynamicConnectionQuota`).
//!
//! An accept loop takes a [`Slot`] before accepting: while `open >= max` it waits (the client's
//! connection stays in the kernel's backlog, as it does while Kafka's acceptor blocks in
//! `waitForConnectionSlot`). A new, larger bound wakes the waiting loops at once. A bound lowered
//! below the connections open closes the excess, least recently active first (Kafka's processors
//! close their `lowestPriorityChannel` while `totalCount > brokerMaxConnections`); a connection told
//! to close finishes the request it has read, then closes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The bound and the connections holding a slot.
pub struct ConnectionSlots {
    state: Mutex<State>,
    /// Signalled when a slot frees or the bound changes.
    changed: Notify,
    /// Source of activity stamps: a larger stamp is a more recent activity.
    clock: AtomicU64,
}

struct State {
    /// Most connections open at once.
    max: usize,
    /// Id of the next slot handed out.
    next_id: u64,
    /// The open connections by slot id.
    open: HashMap<u64, Arc<Tracked>>,
}

/// What the bound knows of one open connection.
struct Tracked {
    /// Stamp of the connection's last activity (from [`ConnectionSlots::clock`]).
    last_active: AtomicU64,
    /// Cancelled to close the connection (broker shutdown, or excess under a lowered bound).
    close: CancellationToken,
}

/// One open connection's slot; freed on drop.
pub struct Slot {
    slots: Arc<ConnectionSlots>,
    id: u64,
    tracked: Arc<Tracked>,
}

impl ConnectionSlots {
    /// A bound of `max` connections (at least one).
    pub fn new(max: usize) -> Arc<ConnectionSlots> {
        Arc::new(ConnectionSlots {
            state: Mutex::new(State { max: max.max(1), next_id: 0, open: HashMap::new() }),
            changed: Notify::new(),
            clock: AtomicU64::new(0),
        })
    }

    /// The bound in effect.
    pub fn max(&self) -> usize {
        self.state.lock().max
    }

    /// How many connections hold a slot.
    pub fn open(&self) -> usize {
        self.state.lock().open.len()
    }

    /// Waits for a free slot; the connection given it closes when `shutdown` fires or
    /// [`Slot::closed`] is cancelled.
    pub async fn acquire(self: &Arc<Self>, shutdown: &CancellationToken) -> Slot {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.state.lock();
                if st.open.len() < st.max {
                    let id = st.next_id;
                    st.next_id += 1;
                    let tracked = Arc::new(Tracked {
                        last_active: AtomicU64::new(self.clock.fetch_add(1, Ordering::Relaxed)),
                        close: shutdown.child_token(),
                    });
                    st.open.insert(id, tracked.clone());
                    return Slot { slots: self.clone(), id, tracked };
                }
            }
            notified.await;
        }
    }

    /// Sets the bound to `max` (at least one): waiting accept loops re-check at once, and when more
    /// connections are open than `max`, the least recently active of them are told to close.
    pub fn set_max(&self, max: usize) {
        let max = max.max(1);
        {
            let mut st = self.state.lock();
            st.max = max;
            let closing = st.open.values().filter(|t| t.close.is_cancelled()).count();
            let excess = st.open.len().saturating_sub(closing).saturating_sub(max);
            if excess > 0 {
                let mut live: Vec<&Arc<Tracked>> =
                    st.open.values().filter(|t| !t.close.is_cancelled()).collect();
                live.sort_by_key(|t| t.last_active.load(Ordering::Relaxed));
                for t in live.into_iter().take(excess) {
                    t.close.cancel();
                }
                tracing::info!(
                    max_connections = max,
                    closed = excess,
                    "max.connections lowered: closing the least recently active connections"
                );
            }
        }
        self.changed.notify_waiters();
    }
}

impl Slot {
    /// Cancelled when the connection is to close.
    pub fn closed(&self) -> &CancellationToken {
        &self.tracked.close
    }

    /// Records activity on the connection (it is then among the last to be closed as excess).
    pub fn touch(&self) {
        let stamp = self.slots.clock.fetch_add(1, Ordering::Relaxed);
        self.tracked.last_active.store(stamp, Ordering::Relaxed);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.state.lock().open.remove(&self.id);
        self.slots.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_full_bound_waits_until_a_slot_frees_or_the_bound_grows() {
        let slots = ConnectionSlots::new(1);
        let token = CancellationToken::new();
        let first = slots.acquire(&token).await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), slots.acquire(&token)).await;
        assert!(waiting.is_err(), "the second connection waits");
        let s = slots.clone();
        let t = token.clone();
        let second = tokio::spawn(async move { s.acquire(&t).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        slots.set_max(2);
        let second = tokio::time::timeout(Duration::from_secs(5), second).await.unwrap().unwrap();
        assert_eq!(slots.open(), 2);
        drop((first, second));
        assert_eq!(slots.open(), 0);
    }

    #[tokio::test]
    async fn a_lowered_bound_closes_the_least_recently_active() {
        let slots = ConnectionSlots::new(10);
        let token = CancellationToken::new();
        let mut conns = Vec::new();
        for _ in 0..5 {
            conns.push(slots.acquire(&token).await);
        }
        // 0 and 3 are the most recently active.
        conns[3].touch();
        conns[0].touch();
        slots.set_max(2);
        let closed: Vec<bool> = conns.iter().map(|c| c.closed().is_cancelled()).collect();
        assert_eq!(closed, vec![false, true, true, false, true]);
        // Already told to close: lowering again closes no one more until they are gone.
        slots.set_max(2);
        assert_eq!(conns.iter().filter(|c| c.closed().is_cancelled()).count(), 3);
        slots.set_max(1);
        assert!(conns[3].closed().is_cancelled() && !conns[0].closed().is_cancelled());
        token.cancel();
        assert!(conns[0].closed().is_cancelled(), "shutdown closes every connection");
    }
}
