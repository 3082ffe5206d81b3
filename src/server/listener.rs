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

/// Accepts connections until `shutdown` fires, then waits (bounded) for open connections to finish.
pub async fn run(
    listener: TcpListener,
    ctx: Arc<ApiContext>,
    limits: ConnLimits,
    max_connections: usize,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    // One budget for all connections (queued.max.request.bytes), from the broker's configuration.
    let budget = Arc::new(RequestBudget::new(ctx.cluster.config.queued_max_request_bytes));
    let tracker = TaskTracker::new();
    let mut backoff = Duration::from_millis(5);
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                let _ = stream.set_nodelay(true);
                let (ctx, budget, token) = (ctx.clone(), budget.clone(), shutdown.clone());
                tracker.spawn(async move {
                    serve(stream, peer, ctx, limits, budget, token).await;
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
    drop(listener);
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait()).await.is_err() {
        tracing::warn!("connections still open after the shutdown grace period; closing them");
    }
}
