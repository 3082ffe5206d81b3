//! Wires the components together, starts the listener and owns shutdown (one cancellation token).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::txn_markers::BrokerMarkers;
use crate::api::ApiContext;
use crate::cluster::Cluster;
use crate::config::Config;
use crate::descriptors::Budget;
use crate::dir_lock::DirLock;
use crate::group::store::GROUP_LOG_DIR;
use crate::group::{CoordinatorConfig, GroupCoordinator};
use crate::log::LogManager;
use crate::txn::{ProducerIdManager, TransactionCoordinator, TxnConfig};

use crate::server::{connection::ConnLimits, listener};

/// A running broker.
pub struct Broker {
    /// The address the first listener is bound to (useful when the configured port was 0).
    pub local_addr: SocketAddr,
    /// The address each listener is bound to, in `Config::listeners` order.
    pub local_addrs: Vec<SocketAddr>,
    pub cluster: Arc<Cluster>,
    pub groups: Arc<GroupCoordinator>,
    pub txn: Arc<TransactionCoordinator>,
    shutdown: CancellationToken,
    listener_task: JoinHandle<()>,
    /// Log duties and group timers.
    background_tasks: Vec<JoinHandle<()>>,
    /// The data directory's lock, released when the broker has stopped.
    dir_lock: DirLock,
}

impl Broker {
    /// Opens the data directory, binds the listener and starts serving.
    pub async fn start(mut config: Config) -> anyhow::Result<Broker> {
        // First, so a second broker on the same directory touches nothing (not even the port).
        let mut dir_lock = crate::dir_lock::lock(&config.data_dir)?;
        let budget = Budget::for_limit(crate::descriptors::raise_limit());
        config.derive_max_connections(budget.max_connections);
        for line in &config.warnings {
            tracing::warn!("{line}");
        }
        for line in &config.infos {
            tracing::info!("{line}");
        }
        let mut tcp_listeners = Vec::new();
        let mut local_addrs = Vec::new();
        for (index, l) in config.listeners.clone().iter().enumerate() {
            let listener = listener::bind(l).await?;
            let addr = listener.local_addr()?;
            config.set_bound_port(index, addr.port());
            tcp_listeners.push(listener);
            local_addrs.push(addr);
        }
        let local_addr = *local_addrs.first().ok_or_else(|| anyhow::anyhow!("no listener configured"))?;
        let config = Arc::new(config);
        let data_dir = config.data_dir.clone();
        let cluster = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || {
                let logs = Arc::new(LogManager::open(&config.data_dir, budget.log_files)?);
                Cluster::open(config, logs)
            })
            .await?
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot open data directory {}: {e} (not started; what this names was left as it is)",
                    data_dir.display()
                )
            })?
        };
        let cluster = Arc::new(cluster);
        // The bound in effect, a dynamic value included (the listener follows its changes).
        let max_connections = listener::max_connections(&cluster);
        tracing::info!(
            limit = budget.limit,
            log_files = budget.log_files,
            reserve = budget.reserve,
            max_connections,
            "descriptor budget"
        );
        if max_connections > budget.max_connections {
            tracing::warn!(max_connections, limit = budget.limit, reserve = budget.reserve,
                "max.connections leaves the log fewer descriptors than its reserve; under load its writes may fail (retriably) for lack of descriptors");
        }
        let producer_ids = Arc::new(ProducerIdManager::open(&config.data_dir).map_err(|e| {
            anyhow::anyhow!("cannot open the producer id block in {}: {e}", config.data_dir.display())
        })?);
        let offsets_partitions = config.number("offsets.topic.num.partitions") as i32;
        let offsets_log = Arc::new(crate::group::store::open(
            cluster.clone(),
            offsets_partitions,
            tokio::runtime::Handle::current(),
        ));
        let groups = {
            let group_config = CoordinatorConfig {
                initial_rebalance_delay_ms: config.number("group.initial.rebalance.delay.ms"),
                min_session_timeout_ms: config.number("group.min.session.timeout.ms") as i32,
                max_session_timeout_ms: config.number("group.max.session.timeout.ms") as i32,
                offsets_retention_ms: config.number("offsets.retention.minutes").saturating_mul(60_000),
                max_metadata_bytes: config.number("offset.metadata.max.bytes") as usize,
                offsets_partitions,
                ..CoordinatorConfig::default()
            };
            let offsets_log = offsets_log.clone();
            let data_dir = config.data_dir.clone();
            if data_dir.join(GROUP_LOG_DIR).is_dir() {
                // A data directory of an older strom: its group log moves into the topic.
                offsets_log.ensure_topic().await.map_err(|e| {
                    anyhow::anyhow!(
                        "cannot create {} in {}: {e}",
                        crate::group::store::OFFSETS_TOPIC,
                        data_dir.display()
                    )
                })?;
            }
            tokio::task::spawn_blocking(move || -> std::io::Result<GroupCoordinator> {
                crate::group::store::migrate(&data_dir, &offsets_log, &group_config)?;
                GroupCoordinator::open(offsets_log, group_config, crate::log::now_ms())
            })
            .await?
            .map_err(|e| anyhow::anyhow!("cannot open the group log in {}: {e}", config.data_dir.display()))?
        };
        let groups = Arc::new(groups);
        let txn = {
            let txn_config = TxnConfig {
                max_timeout_ms: config.number("transaction.max.timeout.ms") as i32,
                id_expiration_ms: config.number("transactional.id.expiration.ms"),
                offsets_partitions: config.number("offsets.topic.num.partitions") as i32,
                ..TxnConfig::default()
            };
            let markers = Arc::new(BrokerMarkers { cluster: cluster.clone(), groups: groups.clone() });
            let log = Arc::new(crate::txn::topic_log::open(
                cluster.clone(),
                config.number("transaction.state.log.num.partitions") as i32,
                tokio::runtime::Handle::current(),
            ));
            let producer_ids = producer_ids.clone();
            tokio::task::spawn_blocking(move || -> std::io::Result<TransactionCoordinator> {
                TransactionCoordinator::open(log, producer_ids, markers, txn_config)
            })
            .await?
            .map_err(|e| {
                anyhow::anyhow!("cannot open the transaction log in {}: {e}", config.data_dir.display())
            })?
        };
        let txn = Arc::new(txn);
        txn.set_transaction_version(cluster.finalized_level(crate::cluster::features::TRANSACTION_VERSION));
        let ctx = Arc::new(ApiContext {
            cluster: cluster.clone(),
            groups: groups.clone(),
            fetch_sessions: Default::default(),
            producer_ids,
            txn: txn.clone(),
            offsets_log,
        });
        let limits = ConnLimits {
            max_request_bytes: config.socket_request_max_bytes,
            idle: Duration::from_millis(config.connections_max_idle_ms),
        };
        let shutdown = CancellationToken::new();
        let listener_task = tokio::spawn(listener::run(tcp_listeners, ctx, limits, shutdown.clone()));
        let retention_check = Duration::from_millis(
            config
                .value("log.retention.check.interval.ms")
                .and_then(|(v, _)| v.parse().ok())
                .unwrap_or(300_000),
        );
        let log_duties = tokio::spawn(cluster.logs.clone().run_background(retention_check, shutdown.clone()));
        // The static settings under the dynamic broker configs, as they are before each pass.
        let settings_of = cluster.clone();
        let cleaner_config = move || {
            let settings = settings_of.settings();
            crate::log::cleaner::CleanerConfig::from_lookup(|k| settings.value(k).map(|(v, _)| v))
        };
        let log_cleaner =
            tokio::spawn(cluster.logs.clone().run_cleaner_loop(cleaner_config, shutdown.clone()));
        // Dynamic over the static value (which holds Kafka's default when unset).
        let (settings_of, static_expiration) = (cluster.clone(), config.number("producer.id.expiration.ms"));
        let producer_expiration = move || {
            let dynamic = settings_of.settings().value("producer.id.expiration.ms");
            dynamic.and_then(|(v, _)| v.parse().ok()).unwrap_or(static_expiration)
        };
        let producer_expiry = tokio::spawn(cluster.logs.clone().run_producer_expiry(
            Duration::from_millis(config.number("producer.id.expiration.check.interval.ms") as u64),
            producer_expiration,
            shutdown.clone(),
        ));
        let group_timers = tokio::spawn(groups.clone().run_background(shutdown.clone()));
        let txn_interval = Duration::from_millis(
            config.number("transaction.abort.timed.out.transaction.cleanup.interval.ms") as u64,
        );
        let txn_timers = tokio::spawn(txn.clone().run_background(txn_interval, shutdown.clone()));
        let listen: Vec<String> = local_addrs.iter().map(SocketAddr::to_string).collect();
        let advertised: Vec<String> = config
            .listeners
            .iter()
            .map(|l| format!("{}://{}:{}", l.name, l.advertised_host, l.advertised_port))
            .collect();
        tracing::info!(listen = %listen.join(","), advertised = %advertised.join(","),
            data_dir = %config.data_dir.display(), node_id = config.node_id, cluster_id = cluster.cluster_id(), "strom started");
        dir_lock.keep();
        Ok(Broker {
            local_addr,
            local_addrs,
            cluster,
            groups,
            txn,
            shutdown,
            listener_task,
            background_tasks: vec![log_duties, log_cleaner, producer_expiry, group_timers, txn_timers],
            dir_lock,
        })
    }

    /// Stops accepting, lets in-flight requests finish, and returns when everything is closed.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        if let Err(e) = self.listener_task.await {
            tracing::error!(error = %e, "listener task failed");
        }
        for task in self.background_tasks {
            let _ = task.await;
        }
        let logs = self.cluster.logs.clone();
        let (groups, txn) = (self.groups.clone(), self.txn.clone());
        match tokio::task::spawn_blocking(move || {
            groups.flush().and_then(|()| txn.flush()).and_then(|()| logs.close())
        })
        .await
        {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "writing the clean-shutdown marker failed"),
            Err(e) => tracing::error!(error = %e, "log shutdown task failed"),
        }
        drop(self.dir_lock);
        tracing::info!("strom stopped");
    }
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
