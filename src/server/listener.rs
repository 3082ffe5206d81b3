//! The accept loop: a bounded number of connections (`max.connections`, by default the open-file limit
//! minus the log's reserve, see [`crate::descriptors`]; a dynamic value applies at once, see
//! [`ConnectionSlots`]) sharing one request budget (`queued.max.request.bytes`), back-off when
//! accepting fails (e.g. out of file descriptors), and a graceful stop that lets in-flight requests
//! finish.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::budget::RequestBudget;
use super::connection::{serve, ConnLimits};
use super::slots::{ConnectionSlots, Slot};
use crate::api::ApiContext;
use crate::cluster::Cluster;

/// How long shutdown waits for connections to finish their current request.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The `max.connections` in effect: dynamic per-broker, dynamic cluster default, static, or the
/// default derived from the open-file limit at start.
pub fn max_connections(cluster: &Cluster) -> usize {
    let derived = cluster.config.max_connections.unwrap_or(usize::MAX);
    cluster.settings().value("max.connections").and_then(|(v, _)| v.parse::<usize>().ok()).unwrap_or(derived)
}

/// Accepts connections on every listener until `shutdown` fires, then waits (bounded) for open
/// connections to finish. `listeners[i]` is `Config::listeners[i]`; all share one connection bound
/// (`max.connections`, broker-wide as in Kafka, followed as it changes) and one request budget.
pub async fn run(
    listeners: Vec<TcpListener>,
    ctx: Arc<ApiContext>,
    limits: ConnLimits,
    shutdown: CancellationToken,
) {
    let slots = ConnectionSlots::new(max_connections(&ctx.cluster));
    let follow = tokio::spawn(follow_max_connections(ctx.cluster.clone(), slots.clone(), shutdown.clone()));
    // One budget for all connections (queued.max.request.bytes), from the broker's configuration.
    let budget = Arc::new(RequestBudget::new(ctx.cluster.config.queued_max_request_bytes));
    let tracker = TaskTracker::new();
    let shared = Shared { ctx, limits, slots, budget, tracker: tracker.clone(), shutdown };
    let mut loops = tokio::task::JoinSet::new();
    for (index, listener) in listeners.into_iter().enumerate() {
        loops.spawn(accept_loop(listener, index, shared.clone()));
    }
    while loops.join_next().await.is_some() {}
    follow.abort();
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
    slots: Arc<ConnectionSlots>,
    budget: Arc<RequestBudget>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
}

/// Accepts connections on one listener until `shutdown` fires.
async fn accept_loop(listener: TcpListener, index: usize, s: Shared) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = s.shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                // As Kafka's acceptor: the accepted connection waits for a slot, and the connections
                // behind it wait in the kernel's backlog.
                let slot: Slot = tokio::select! {
                    _ = s.shutdown.cancelled() => break,
                    slot = s.slots.acquire(&s.shutdown) => slot,
                };
                let _ = stream.set_nodelay(true);
                let (ctx, budget, limits) = (s.ctx.clone(), s.budget.clone(), s.limits);
                s.tracker.spawn(async move {
                    serve(stream, peer, ctx, limits, budget, &slot, index).await;
                    drop(slot);
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

/// Applies each change of the broker's configs to the connection bound (Kafka's
/// `DynamicConnectionQuota.reconfigure`), until `shutdown`.
async fn follow_max_connections(
    cluster: Arc<Cluster>,
    slots: Arc<ConnectionSlots>,
    shutdown: CancellationToken,
) {
    let mut changes = cluster.watch_broker_configs();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = changes.changed() => if r.is_err() { return },
        }
        let max = max_connections(&cluster);
        if max != slots.max() {
            tracing::info!(max_connections = max, open = slots.open(), "max.connections changed");
            slots.set_max(max);
        }
    }
}
