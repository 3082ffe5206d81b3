//! Wires the components together, starts the listener and owns shutdown (one cancellation token).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::ApiContext;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::server::{connection::ConnLimits, listener};

/// A running broker.
pub struct Broker {
    /// The address the listener is bound to (useful when the configured port was 0).
    pub local_addr: SocketAddr,
    pub cluster: Arc<Cluster>,
    shutdown: CancellationToken,
    listener_task: JoinHandle<()>,
}

impl Broker {
    /// Opens the data directory, binds the listener and starts serving.
    pub async fn start(mut config: Config) -> anyhow::Result<Broker> {
        let listener = TcpListener::bind(&config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let local_addr = listener.local_addr()?;
        config.set_bound_port(local_addr.port());
        let config = Arc::new(config);
        let cluster = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || Cluster::open(config))
                .await?
                .map_err(|e| {
                    anyhow::anyhow!("cannot open data directory {}: {e}", config_dir_hint(&e))
                })?
        };
        let cluster = Arc::new(cluster);
        let ctx = Arc::new(ApiContext {
            cluster: cluster.clone(),
        });
        let limits = ConnLimits {
            max_request_bytes: config.socket_request_max_bytes,
            idle: Duration::from_millis(config.connections_max_idle_ms),
        };
        let shutdown = CancellationToken::new();
        let listener_task = tokio::spawn(listener::run(
            listener,
            ctx,
            limits,
            config.max_connections,
            shutdown.clone(),
        ));
        tracing::info!(listen = %local_addr, advertised = %format!("{}:{}", config.advertised_host, config.advertised_port),
            data_dir = %config.data_dir.display(), node_id = config.node_id, cluster_id = cluster.cluster_id(), "strom started");
        Ok(Broker {
            local_addr,
            cluster,
            shutdown,
            listener_task,
        })
    }

    /// Stops accepting, lets in-flight requests finish, and returns when everything is closed.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        if let Err(e) = self.listener_task.await {
            tracing::error!(error = %e, "listener task failed");
        }
        tracing::info!("strom stopped");
    }
}

fn config_dir_hint(e: &std::io::Error) -> String {
    e.to_string()
}

/// Runs until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let broker = Broker::start(config).await?;
    wait_for_signal().await;
    tracing::info!("shutdown requested");
    broker.shutdown().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
