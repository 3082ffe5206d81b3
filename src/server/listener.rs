//! The accept loops: a bounded number of connections (`max.connections`, by default the open-file
//! limit minus the log's reserve, see [`crate::descriptors`]; a dynamic value applies at once, see
//! [`ConnectionSlots`]) sharing one request budget (`queued.max.request.bytes`), back-off when
//! accepting fails (e.g. out of file descriptors), listeners opened and closed as the dynamic
//! `listeners` config changes, and a graceful stop that lets in-flight requests finish.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::budget::RequestBudget;
use super::connection::{serve, ConnLimits};
use super::slots::{ConnectionSlots, Slot};
use crate::api::ApiContext;
use crate::cluster::Cluster;
use crate::config::listeners::Listener;
use crate::config::Config;

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
/// (`max.connections`, broker-wide as in Kafka) and one request budget. Each change of the dynamic
/// broker configs is applied here: the bound, and the listeners opened or closed by name (Kafka's
/// `DynamicListenerConfig.reconfigure`, see [`crate::cluster::broker_config::listeners`]).
pub async fn run(
    listeners: Vec<TcpListener>,
    ctx: Arc<ApiContext>,
    limits: ConnLimits,
    shutdown: CancellationToken,
) {
    let cluster = ctx.cluster.clone();
    let slots = ConnectionSlots::new(max_connections(&cluster));
    // One budget for all connections (queued.max.request.bytes), from the broker's configuration.
    let budget = Arc::new(RequestBudget::new(cluster.config.queued_max_request_bytes));
    let tracker = TaskTracker::new();
    let shared = Shared { ctx, limits, slots, budget, tracker: tracker.clone() };
    let mut open = Acceptors { by_name: BTreeMap::new(), loops: JoinSet::new() };
    for (index, listener) in listeners.into_iter().enumerate() {
        let name = cluster.config.listeners.get(index).map_or_else(String::new, |l| l.name.clone());
        open.spawn(name, listener, index, &shutdown, &shared);
    }
    let mut changes = cluster.watch_broker_configs();
    // Dynamic configs stored before this start apply now.
    reconfigure(&cluster, &shared, &mut open, &shutdown).await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = changes.changed() => if r.is_err() { break },
        }
        reconfigure(&cluster, &shared, &mut open, &shutdown).await;
    }
    while open.loops.join_next().await.is_some() {}
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
}

/// The open listeners.
struct Acceptors {
    /// Each open listener's name and the token that closes it and its connections.
    by_name: BTreeMap<String, CancellationToken>,
    /// The accept loops.
    loops: JoinSet<()>,
}

impl Acceptors {
    /// Starts accepting on `listener` (listener index `index`, see [`crate::config::Config::registered`]).
    fn spawn(
        &mut self,
        name: String,
        listener: TcpListener,
        index: usize,
        shutdown: &CancellationToken,
        s: &Shared,
    ) {
        let token = shutdown.child_token();
        self.loops.spawn(accept_loop(listener, index, token.clone(), s.clone()));
        self.by_name.insert(name, token);
    }
}

/// Applies the dynamic broker configs to the listener: `max.connections`, then the listeners to
/// serve (new names opened, removed names closed with their connections).
async fn reconfigure(cluster: &Cluster, s: &Shared, open: &mut Acceptors, shutdown: &CancellationToken) {
    let max = max_connections(cluster);
    if max != s.slots.max() {
        tracing::info!(max_connections = max, open = s.slots.open(), "max.connections changed");
        s.slots.set_max(max);
    }
    let wanted = match crate::cluster::broker_config::listeners::served(&cluster.settings()) {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "the listeners configured cannot be served; keeping the open ones");
            return;
        }
    };
    let gone: Vec<String> =
        open.by_name.keys().filter(|n| !wanted.iter().any(|w| w.name == **n)).cloned().collect();
    for name in gone {
        if let Some(token) = open.by_name.remove(&name) {
            token.cancel();
            tracing::info!(listener = %name, "listener removed: closed with its connections");
        }
    }
    let added: Vec<_> = wanted.into_iter().filter(|w| !open.by_name.contains_key(&w.name)).collect();
    for w in added {
        let index =
            cluster.config.listeners.iter().position(|l| l.name == w.name).unwrap_or(Config::UNREGISTERED);
        match bind(&Listener::from(w.clone())).await {
            Ok(listener) => {
                let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
                tracing::info!(listener = %w, %addr, "listener added");
                open.spawn(w.name.clone(), listener, index, shutdown, s);
            }
            Err(e) => tracing::error!(listener = %w, error = %e, "cannot open the listener added"),
        }
    }
}

/// Binds one listener; an empty host binds every interface: IPv6 and IPv4 (`[::]`, dual-stack where the
/// system allows, as Java's wildcard socket), else IPv4 only (`0.0.0.0`) on a system without IPv6.
pub async fn bind(l: &Listener) -> anyhow::Result<TcpListener> {
    let failed =
        |e: std::io::Error| anyhow::anyhow!("cannot listen on {}://{}:{}: {e}", l.name, l.host, l.port);
    if l.host.is_empty() {
        return match TcpListener::bind(("::", l.port)).await {
            Ok(listener) => Ok(listener),
            Err(_) => TcpListener::bind(("0.0.0.0", l.port)).await.map_err(failed),
        };
    }
    TcpListener::bind((l.host.as_str(), l.port)).await.map_err(failed)
}

/// Accepts connections on one listener until `closed` fires (shutdown, or the listener removed);
/// its connections close with it.
async fn accept_loop(listener: TcpListener, index: usize, closed: CancellationToken, s: Shared) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = closed.cancelled() => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                // As Kafka's acceptor: the accepted connection waits for a slot, and the connections
                // behind it wait in the kernel's backlog.
                let slot: Slot = tokio::select! {
                    _ = closed.cancelled() => break,
                    slot = s.slots.acquire(&closed) => slot,
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
                tokio::select! {
                    _ = closed.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}
