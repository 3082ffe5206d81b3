//! The broker-wide bound on the bytes of requests being read and handled (Kafka's
//! `queued.max.request.bytes`; unbounded in Kafka by default, 256 MiB in strom).
//!
//! A connection asks for its request's size once the 4-byte size and the header are read, before the
//! body is buffered, and gives it back when the request has been handled and its buffer dropped. While
//! the budget is spent, connections wait instead of allocating (Kafka mutes their sockets instead).
//!
//! Fairness. The bound is split into two lanes, each a tokio semaphore: waiters are served in arrival
//! order, and released bytes go to the first waiter until it is satisfied, so nobody behind it can
//! take them first.
//! - The main lane (7/8 of the bound) serves every request. A request larger than the lane is clamped
//!   to it: it waits for the whole lane instead of waiting forever.
//! - The reserve lane (the other 1/8) serves only small requests (at most [`SMALL_REQUEST`] bytes:
//!   Metadata, ApiVersions, heartbeats, commits, Fetch requests). A small request takes bytes from the
//!   main lane when the lane can grant them at once, and otherwise waits on both lanes.
//!
//! So a small request never waits behind large ones (up to the reserve), and cannot starve a large one
//! either: while a large request is queued on the main lane, released bytes go to it first. Large
//! requests among themselves are served in arrival order. Memory held by requests stays at most the
//! bound, except for a single request larger than the main lane, which is served while the rest of the
//! main lane is empty.
//!
//! Limits, as in Kafka: bytes are reserved once the size is known, so a peer that announces a large
//! request and sends it slowly holds them until it finishes or `connections.max.idle.ms` closes it; and
//! a handler that waits (a long-polling Fetch, a JoinGroup) keeps its request's small share meanwhile.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Largest request in bytes that may use the reserve lane.
pub const SMALL_REQUEST: usize = 64 * 1024;

/// The broker's request budget; one per listener, shared by its connections.
#[derive(Debug)]
pub struct RequestBudget {
    /// `None` when unbounded.
    lanes: Option<Lanes>,
}

#[derive(Debug)]
struct Lanes {
    /// Bytes every request may use.
    main: Arc<Semaphore>,
    /// Size of the main lane in bytes (the most one request can hold).
    main_bytes: usize,
    /// Bytes only small requests may use.
    reserve: Arc<Semaphore>,
    /// Largest request in bytes that may use the reserve lane (0 when there is none).
    small: usize,
}

/// Budget bytes held by one request; given back when dropped.
#[derive(Debug)]
#[must_use = "the bytes are given back as soon as the permit is dropped"]
pub struct BudgetPermit {
    _held: Option<OwnedSemaphorePermit>,
}

impl RequestBudget {
    /// A budget of `bytes` for all requests together; `None` or `Some(0)` is unbounded.
    pub fn new(bytes: Option<usize>) -> RequestBudget {
        let Some(total) = bytes.filter(|b| *b > 0) else {
            return RequestBudget { lanes: None };
        };
        let total = total.min(Semaphore::MAX_PERMITS);
        let reserve = total / 8;
        let main_bytes = total - reserve;
        RequestBudget {
            lanes: Some(Lanes {
                main: Arc::new(Semaphore::new(main_bytes)),
                main_bytes,
                reserve: Arc::new(Semaphore::new(reserve)),
                small: SMALL_REQUEST.min(reserve),
            }),
        }
    }

    /// Waits until a request of `bytes` may be buffered and returns its share of the budget.
    pub async fn acquire(&self, bytes: usize) -> BudgetPermit {
        let Some(lanes) = &self.lanes else {
            return BudgetPermit { _held: None };
        };
        let want = u32::try_from(bytes.min(lanes.main_bytes)).unwrap_or(u32::MAX);
        let held = if bytes <= lanes.small {
            match lanes.main.clone().try_acquire_many_owned(want) {
                Ok(p) => Ok(p),
                // Waiting on both: whichever lane grants first; the other wait is withdrawn and gives
                // back anything it was assigned.
                Err(_) => tokio::select! {
                    p = lanes.reserve.clone().acquire_many_owned(want) => p,
                    p = lanes.main.clone().acquire_many_owned(want) => p,
                },
            }
        } else {
            lanes.main.clone().acquire_many_owned(want).await
        };
        // The semaphores are never closed, so acquiring cannot fail.
        BudgetPermit { _held: held.ok() }
    }

    /// Bytes not held by any request (`usize::MAX` when unbounded).
    pub fn available(&self) -> usize {
        match &self.lanes {
            Some(l) => l.main.available_permits() + l.reserve.available_permits(),
            None => usize::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::Poll;

    /// Polls `f` once: `Some(output)` if it finished, `None` if it is waiting.
    async fn poll_once<F: Future>(f: &mut Pin<Box<F>>) -> Option<F::Output> {
        std::future::poll_fn(|cx| {
            Poll::Ready(match f.as_mut().poll(cx) {
                Poll::Ready(v) => Some(v),
                Poll::Pending => None,
            })
        })
        .await
    }

    /// 800 bytes: a main lane of 700 and a reserve of 100 (requests of up to 100 bytes are small).
    fn budget() -> RequestBudget {
        RequestBudget::new(Some(800))
    }

    #[tokio::test]
    async fn a_request_waits_for_budget_and_proceeds_once_it_is_released() {
        let b = budget();
        let first = b.acquire(600).await;
        assert_eq!(b.available(), 200);
        let mut second = Box::pin(b.acquire(600));
        assert!(poll_once(&mut second).await.is_none(), "600 + 600 exceeds the main lane");
        drop(first);
        let second = poll_once(&mut second).await.expect("granted once the first is released");
        assert_eq!(b.available(), 200);
        drop(second);
        assert_eq!(b.available(), 800, "everything is given back");
    }

    #[tokio::test]
    async fn a_request_larger_than_the_budget_proceeds_alone() {
        let b = budget();
        let huge = b.acquire(10_000).await;
        assert_eq!(b.available(), 100, "clamped to the main lane");
        let mut next = Box::pin(b.acquire(300));
        assert!(poll_once(&mut next).await.is_none(), "nothing else large meanwhile");
        let small = b.acquire(50).await;
        drop(huge);
        assert!(poll_once(&mut next).await.is_some());
        drop(small);
    }

    #[tokio::test]
    async fn a_huge_request_waits_for_the_whole_lane_and_is_not_starved() {
        let b = budget();
        let held = b.acquire(400).await;
        let mut huge = Box::pin(b.acquire(10_000));
        assert!(poll_once(&mut huge).await.is_none());
        // Small requests keep coming: they are served from the reserve, not from the bytes the huge
        // request is waiting for.
        let granted = [b.acquire(50).await, b.acquire(50).await];
        // With the reserve spent, the next small one queues; the bytes freed go to the huge one first.
        let mut third = Box::pin(b.acquire(50));
        assert!(poll_once(&mut third).await.is_none());
        drop(held);
        let huge = poll_once(&mut huge).await.expect("the huge request got the whole lane");
        assert!(poll_once(&mut third).await.is_none());
        drop(granted);
        assert!(poll_once(&mut third).await.is_some());
        drop(huge);
    }

    #[tokio::test]
    async fn small_requests_do_not_wait_behind_a_queued_large_one() {
        let b = budget();
        let held = b.acquire(600).await;
        let mut large = Box::pin(b.acquire(600));
        assert!(poll_once(&mut large).await.is_none());
        let mut small = Box::pin(b.acquire(80));
        let small = poll_once(&mut small).await.expect("served from the reserve at once");
        // A second small request finds the reserve spent and waits, on both lanes.
        let mut another = Box::pin(b.acquire(80));
        assert!(poll_once(&mut another).await.is_none());
        drop(small);
        assert!(poll_once(&mut another).await.is_some());
        drop(held);
        assert!(poll_once(&mut large).await.is_some());
    }

    #[tokio::test]
    async fn small_requests_use_the_main_lane_when_it_is_free() {
        let b = budget();
        let mut held = Vec::new();
        for _ in 0..8 {
            held.push(b.acquire(100).await);
        }
        assert_eq!(b.available(), 0, "seven from the main lane, one from the reserve");
        let mut ninth = Box::pin(b.acquire(100));
        assert!(poll_once(&mut ninth).await.is_none());
        drop(held.remove(0));
        assert!(poll_once(&mut ninth).await.is_some(), "granted by whichever lane frees first");
    }

    #[tokio::test]
    async fn unbounded_never_waits() {
        for b in [RequestBudget::new(None), RequestBudget::new(Some(0))] {
            let _a = b.acquire(usize::MAX).await;
            let _b = b.acquire(1 << 40).await;
            assert_eq!(b.available(), usize::MAX);
        }
    }
}
