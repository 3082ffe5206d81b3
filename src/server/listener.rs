//! The accept loop: a bounded number of connections (`max.connections`, by default the open-file limit
//! minus the log's reserve, see [`crate::descriptors`]) sharing one request budget
//! (`queued.max.request.bytes`), back-off when accepting fails (e.g. out of file descriptors), and a
//! graceful stop that lets in-flight requests finish.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::budget::RequestBudget;
use super::connection::{serve, ConnLimits};
use crate::api::ApiContext;

/// How long shutdown waits for connections to finish their current request.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Accepts connections on every listener until `shutdown` fires, then waits (bounded) for open
/// connections to finish. `listeners[i]` is `Config::listeners[i]`; all share one connection bound
/// (`max.connections`, broker-wide as in Kafka) and one request budget.
pub async fn run(
    listeners: Vec<TcpListener>,
    ctx: Arc<ApiContext>,
    limits: ConnLimits,
    max_connections: usize,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    // One budget for all connections (queued.max.request.bytes), from the broker's configuration.
    let budget = Arc::new(RequestBudget::new(ctx.cluster.config.queued_max_request_bytes));
    let tracker = TaskTracker::new();
    let shared = Shared { ctx, limits, slots, budget, tracker: tracker.clone(), shutdown };
    let mut loops = tokio::task::JoinSet::new();
    for (index, listener) in listeners.into_iter().enumerate() {
        loops.spawn(accept_loop(listener, index, shared.clone()));
    }
    while loops.join_next().await.is_some() {}
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await.is_err() {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
}

/// What every listener's accept loop shares.
#[derive(Clone)]
struct Shared {
    ctx: Arc<ApiContext>,
    limits: ConnLimits,
    slots: Arc<Semaphore>,
    budget: Arc<RequestBudget>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

/// Accepts connections on one listener until `shutdown` fires.
async fn accept_loop(listener: TcpListener, index: usize, s: Shared) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            _ = s.shutdown.cancelled() => break,
            p = s.slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let accepted = tokio::select! {
            _ = s.shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                let _ = stream.set_nodelay(true);
                let (ctx, budget, token, limits) =
                    (s.ctx.clone(), s.budget.clone(), s.shutdown.clone(), s.limits);
                s.tracker.spawn(async move {
                    serve(stream, peer, ctx, limits, budget, token, index).await;
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}
