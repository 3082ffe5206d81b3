//! The topic registry: topic names, ids, partition counts and config overrides, and the cluster id.
//!
//! Readers take a cheap snapshot (`Arc`) and never wait for a writer. Writers are serialised by one
//! async mutex; each change is persisted (crash-safely, see [`store`]) *before* it becomes visible, so
//! a client that saw a topic created will find it after a restart or a `kill -9`.
//!
//! Partition directories (`<data>/<topic>-<partition>/`) are created with the topic. Deleting a topic
//! first renames each directory to `<topic>-<partition>.<topic id>-delete` (one atomic rename, so a
//! recreated topic of the same name never sees old data) and removes it afterwards; leftovers of a
//! crash are removed at the next start.

pub mod broker_config;
mod dynamic;
pub mod features;
pub mod group_config;
pub mod names;
pub mod topic_config;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Config;
use crate::durable_file as store;
use crate::error::TopicError;
use crate::log::{LogConfig, LogManager, TopicPartition};

/// Kafka refuses to create more partitions than this in one request (KRaft's per-operation bound).
pub const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

/// One topic as the registry knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic {
    pub name: String,
    /// Persistent topic id (never zero).
    pub id: Uuid,
    /// Number of partitions, numbered `0..partitions`.
    pub partitions: i32,
    /// Leader epoch of every partition; 0 on a single node that never changed leaders.
    pub leader_epoch: i32,
    /// Config overrides set on this topic (canonical values).
    pub configs: BTreeMap<String, String>,
}

/// What the metadata file holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Persisted {
    cluster_id: String,
    topics: Vec<Topic>,
    /// Metadata changes committed so far (see [`Cluster::metadata_offset`]); absent in files written
    /// before it was counted, which then count their creation and one change per topic.
    #[serde(default)]
    metadata_changes: i64,
    /// Dynamic broker and group configs; absent in files written before they could be set.
    #[serde(default)]
    configs: Option<broker_config::DynamicConfigs>,
    /// Finalized feature levels; absent in files written before UpdateFeatures, which then have the
    /// levels a new cluster starts with.
    #[serde(default = "features::initial_levels")]
    finalized_features: features::FinalizedLevels,
}

/// An immutable view of all topics.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub topics: BTreeMap<String, Arc<Topic>>,
    by_id: HashMap<Uuid, String>,
}

impl Snapshot {
    fn from_topics(topics: impl IntoIterator<Item = Topic>) -> Snapshot {
        let mut s = Snapshot::default();
        for t in topics {
            s.by_id.insert(t.id, t.name.clone());
            s.topics.insert(t.name.clone(), Arc::new(t));
        }
        s
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Topic>> {
        self.topics.get(name)
    }

    /// Whether `topic` exists with a partition numbered `partition`.
    pub fn has_partition(&self, topic: &str, partition: i32) -> bool {
        self.get(topic).is_some_and(|t| (0..t.partitions).contains(&partition))
    }

    pub fn get_by_id(&self, id: Uuid) -> Option<&Arc<Topic>> {
        self.by_id.get(&id).and_then(|n| self.topics.get(n))
    }

    fn collides(&self, name: &str) -> Option<&str> {
        let key = names::collision_key(name);
        self.topics.keys().find(|t| t.as_str() != name && names::collision_key(t) == key).map(|s| s.as_str())
    }
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    /// -1 means the broker's `num.partitions`.
    pub num_partitions: i32,
    /// -1 means the broker's default (1).
    pub replication_factor: i16,
    /// Manual assignment: partition index → replica broker ids. Empty for automatic.
    pub assignments: Vec<(i32, Vec<i32>)>,
    /// Config overrides as given (validated here).
    pub configs: Vec<(String, Option<String>)>,
}

/// A request to raise a topic's partition count (CreatePartitions).
#[derive(Debug, Clone)]
pub struct PartitionIncrease {
    pub topic: String,
    /// The new total number of partitions.
    pub count: i32,
    /// Replica broker ids for each new partition, when the client assigns them.
    pub assignments: Option<Vec<Vec<i32>>>,
}

/// IncrementalAlterConfigs operations (Kafka's codes 0–3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigOp {
    Set,
    Delete,
    Append,
    Subtract,
}

impl ConfigOp {
    /// APPEND or SUBTRACT of the comma-separated `value` on the list `old` (Kafka's
    /// `prepareIncrementalConfigs`): appended items not already there, subtracted items removed.
    pub fn apply_to_list(self, old: &str, value: Option<&str>) -> String {
        let items = |v: &str| -> Vec<String> {
            v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect()
        };
        let mut list = items(old);
        let given = items(value.unwrap_or(""));
        match self {
            ConfigOp::Append => {
                for add in given {
                    if !list.contains(&add) {
                        list.push(add);
                    }
                }
            }
            ConfigOp::Subtract => list.retain(|v| !given.contains(v)),
            ConfigOp::Set | ConfigOp::Delete => {}
        }
        list.join(",")
    }
}

/// A change of a topic's config overrides.
#[derive(Debug, Clone)]
pub enum ConfigChange {
    /// AlterConfigs: the given overrides replace all existing ones.
    Replace(Vec<(String, Option<String>)>),
    /// IncrementalAlterConfigs: (key, operation, value).
    Incremental(Vec<(String, ConfigOp, Option<String>)>),
}

/// Why UpdateFeatures changed nothing.
#[derive(Debug, Clone)]
pub enum FeatureUpdateError {
    /// An update Kafka refuses (INVALID_UPDATE_VERSION), with Kafka's reason.
    Invalid(String),
    /// The metadata file could not be written.
    Storage(String),
}

/// A topic addressed by name or by id (DeleteTopics v6).
#[derive(Debug, Clone)]
pub enum TopicRef {
    Name(String),
    Id(Uuid),
}

/// The cluster: identity, broker configuration and the topic registry.
pub struct Cluster {
    pub config: Arc<Config>,
    /// The partition logs of every topic.
    pub logs: Arc<LogManager>,
    cluster_id: String,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Metadata changes committed so far: the cluster's creation is the first, then each topic
    /// change (create, delete, partitions, configs). Written only under `writer`.
    metadata_changes: std::sync::atomic::AtomicI64,
    /// The finalized feature levels (UpdateFeatures); written only under `writer`.
    finalized_features: RwLock<Arc<features::FinalizedLevels>>,
    writer: tokio::sync::Mutex<()>,
    data_dir: PathBuf,
    /// Dynamic broker and group configs; replaced (persisted first) only under `writer`.
    dynamic: RwLock<Arc<broker_config::DynamicConfigs>>,
    /// Bumped after each change of the dynamic broker configs, for the parts of the broker that
    /// apply them live (see [`Cluster::watch_broker_configs`]).
    broker_configs_changed: tokio::sync::watch::Sender<u64>,
}

/// A Kafka-style cluster id: a random UUID in URL-safe base64 without padding (22 characters).
fn new_cluster_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Uuid::new_v4().as_bytes())
}

/// A random topic id that is neither zero nor Kafka's reserved metadata topic id (1).
fn new_topic_id() -> Uuid {
    loop {
        let id = Uuid::new_v4();
        if id.as_u128() > 1 {
            return id;
        }
    }
}

/// Path of the metadata file inside `data_dir`.
pub fn metadata_path(data_dir: &Path) -> PathBuf {
    data_dir.join("strom-metadata.json")
}

fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

impl Cluster {
    /// Opens (or initialises) the metadata under `config.data_dir` and every topic's partition logs.
    pub fn open(config: Arc<Config>, logs: Arc<LogManager>) -> std::io::Result<Cluster> {
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir)?;
        let path = metadata_path(&data_dir);
        let persisted = match store::read_checked::<Persisted>(&path)? {
            Some(p) => p,
            None => {
                let p = Persisted {
                    cluster_id: new_cluster_id(),
                    topics: Vec::new(),
                    metadata_changes: 1,
                    configs: Some(broker_config::DynamicConfigs::formatted(&config)),
                    finalized_features: features::initial_levels(),
                };
                store::write_atomic(&path, &p)?;
                p
            }
        };
        remove_deleted_dirs(&data_dir);
        // A file from before changes were counted: at least its creation and each topic's.
        let metadata_changes =
            persisted.metadata_changes.max(1 + i64::try_from(persisted.topics.len()).unwrap_or(i64::MAX - 1));
        let dynamic = persisted.configs.unwrap_or_else(|| broker_config::DynamicConfigs::formatted(&config));
        let cluster = Cluster {
            dynamic: RwLock::new(Arc::new(dynamic)),
            broker_configs_changed: tokio::sync::watch::channel(0).0,
            config,
            logs,
            cluster_id: persisted.cluster_id,
            snapshot: RwLock::new(Arc::new(Snapshot::from_topics(persisted.topics))),
            metadata_changes: std::sync::atomic::AtomicI64::new(metadata_changes),
            finalized_features: RwLock::new(Arc::new(persisted.finalized_features)),
            writer: tokio::sync::Mutex::new(()),
            data_dir,
        };
        for t in cluster.snapshot().topics.values() {
            cluster.open_logs(t, 0)?;
        }
        Ok(cluster)
    }

    /// The broker's configuration with its dynamic configs: where dynamic broker keys are read.
    pub fn settings(&self) -> broker_config::BrokerSettings {
        broker_config::BrokerSettings { config: self.config.clone(), dynamic: self.dynamic.read().clone() }
    }

    /// Sees each change of the dynamic broker configs (the value is a change count); read the new
    /// values with [`Cluster::settings`].
    pub fn watch_broker_configs(&self) -> tokio::sync::watch::Receiver<u64> {
        self.broker_configs_changed.subscribe()
    }

    /// The log settings of `topic`: its overrides over the broker's (dynamic, then static) defaults.
    pub fn log_config(&self, topic: &Topic) -> LogConfig {
        let effective = topic_config::effective_configs(&topic.configs, &self.settings());
        LogConfig::from_lookup(|k| effective.iter().find(|e| e.name == k).and_then(|e| e.value.clone()))
    }

    /// Opens the logs of partitions `from..topic.partitions`.
    fn open_logs(&self, topic: &Topic, from: i32) -> std::io::Result<()> {
        let config = self.log_config(topic);
        let owner = topic.id.to_string();
        for p in from..topic.partitions {
            self.logs.open_log(&TopicPartition::new(topic.name.clone(), p), &owner, config.clone())?;
        }
        Ok(())
    }

    /// Opens partition logs on the blocking pool.
    async fn open_logs_async(&self, topics: Vec<(Arc<Topic>, i32)>) -> Result<(), TopicError> {
        let logs = self.logs.clone();
        let work: Vec<(TopicPartition, String, LogConfig)> = topics
            .iter()
            .flat_map(|(t, from)| {
                let config = self.log_config(t);
                (*from..t.partitions)
                    .map(move |p| (TopicPartition::new(t.name.clone(), p), t.id.to_string(), config.clone()))
            })
            .collect();
        tokio::task::spawn_blocking(move || {
            work.iter().try_for_each(|(tp, owner, cfg)| logs.open_log(tp, owner, cfg.clone()).map(|_| ()))
        })
        .await
        .map_err(|e| TopicError::Storage(e.to_string()))?
        .map_err(|e| TopicError::Storage(e.to_string()))
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn node_id(&self) -> i32 {
        self.config.node_id
    }

    /// The offset a metadata log would have reached: the number of metadata changes committed (the
    /// cluster's creation counts as one). strom keeps no KRaft metadata log; this stands in for its end
    /// offset and high watermark where Kafka reports them (DescribeQuorum), never decreasing and
    /// persisted with the topics.
    pub fn metadata_offset(&self) -> i64 {
        self.metadata_changes.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The current topics; cheap, never blocks on writers.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.read().clone()
    }

    /// The finalized feature levels (KIP-584); cheap, never blocks on writers.
    pub fn finalized_features(&self) -> Arc<features::FinalizedLevels> {
        self.finalized_features.read().clone()
    }

    /// The finalized level of `feature`; 0 when it is not finalized.
    pub fn finalized_level(&self, feature: &str) -> i16 {
        self.finalized_features().get(feature).copied().unwrap_or(0)
    }

    /// Applies feature level changes (UpdateFeatures) after checking them all; with `validate_only`
    /// or on a refusal nothing changes. A non-empty change counts as a metadata change even when the
    /// levels stay the same, as Kafka appends a record for it. Errors: Kafka's reason for the first
    /// refused update (INVALID_UPDATE_VERSION), or a storage failure.
    pub async fn update_features(
        &self,
        updates: &[features::FeatureUpdate],
        validate_only: bool,
    ) -> Result<(), FeatureUpdateError> {
        let _w = self.writer.lock().await;
        let next = features::apply(&self.finalized_features(), updates, self.node_id())
            .map_err(FeatureUpdateError::Invalid)?;
        if validate_only || updates.is_empty() {
            return Ok(());
        }
        let topics = Snapshot::from_topics(self.snapshot().topics.values().map(|t| (**t).clone()));
        let dynamic = self.dynamic.read().clone();
        self.commit_with(topics, dynamic, next.clone())
            .await
            .map_err(|e| FeatureUpdateError::Storage(e.to_string()))?;
        tracing::info!(features = ?next, "finalized features updated");
        *self.finalized_features.write() = Arc::new(next);
        Ok(())
    }

    /// Persists `next` and then publishes it, counting one more metadata change. Called with
    /// `writer` held.
    async fn commit(&self, next: Snapshot) -> Result<(), TopicError> {
        let dynamic = self.dynamic.read().clone();
        let features = (*self.finalized_features()).clone();
        self.commit_with(next, dynamic, features).await
    }

    /// Persists the topics `next`, the dynamic configs `dynamic` and the feature levels `features`
    /// (what the metadata file holds), then publishes the topics and configs (the caller publishes
    /// the features). Called with `writer` held.
    async fn commit_with(
        &self,
        next: Snapshot,
        dynamic: Arc<broker_config::DynamicConfigs>,
        features: features::FinalizedLevels,
    ) -> Result<(), TopicError> {
        let changes = self.metadata_offset().saturating_add(1);
        let persisted = Persisted {
            cluster_id: self.cluster_id.clone(),
            topics: next.topics.values().map(|t| (**t).clone()).collect(),
            metadata_changes: changes,
            configs: Some((*dynamic).clone()),
            finalized_features: features,
        };
        let path = metadata_path(&self.data_dir);
        tokio::task::spawn_blocking(move || store::write_atomic(&path, &persisted))
            .await
            .map_err(|e| TopicError::Storage(e.to_string()))?
            .map_err(|e| {
                tracing::error!(error = %e, "writing cluster metadata failed");
                TopicError::Storage(e.to_string())
            })?;
        self.metadata_changes.store(changes, std::sync::atomic::Ordering::SeqCst);
        *self.snapshot.write() = Arc::new(next);
        *self.dynamic.write() = dynamic;
        Ok(())
    }

    /// Checks one topic creation against the current topics; returns the topic it would create.
    fn plan_topic(&self, snap: &Snapshot, spec: &NewTopic) -> Result<Topic, TopicError> {
        names::validate_topic_name(&spec.name).map_err(TopicError::InvalidName)?;
        if snap.get(&spec.name).is_some() {
            return Err(TopicError::AlreadyExists(spec.name.clone()));
        }
        if let Some(other) = snap.collides(&spec.name) {
            return Err(TopicError::InvalidName(format!(
                "Topic '{}' collides with existing topic: {other}",
                spec.name
            )));
        }
        let node = self.node_id();
        let partitions = if spec.assignments.is_empty() {
            let n = match spec.num_partitions {
                -1 => self.config.num_partitions,
                n if n <= 0 => {
                    return Err(TopicError::InvalidPartitions(
                        "Number of partitions was set to an invalid non-positive value.".into(),
                    ))
                }
                n => n,
            };
            match spec.replication_factor {
                -1 | 1 => {}
                rf if rf <= 0 => {
                    return Err(TopicError::InvalidReplicationFactor(
                        "Replication factor must be larger than 0, or -1 to use the default value.".into(),
                    ))
                }
                rf => {
                    return Err(TopicError::InvalidReplicationFactor(format!(
                        "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only 1 broker(s) are registered or some brokers have all their log directories cordoned."
                    )))
                }
            }
            n
        } else {
            if spec.num_partitions != -1 || spec.replication_factor != -1 {
                return Err(TopicError::InvalidRequest(
                    "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
                ));
            }
            let mut indexes: Vec<i32> = spec.assignments.iter().map(|(p, _)| *p).collect();
            indexes.sort_unstable();
            if indexes.iter().enumerate().any(|(i, p)| i64::from(*p) != i as i64) {
                return Err(TopicError::InvalidReplicaAssignment(
                    "Partitions must be numbered consecutively from 0.".into(),
                ));
            }
            for (_, replicas) in &spec.assignments {
                check_replicas(replicas, node)?;
            }
            spec.assignments.len() as i32
        };
        if i64::from(partitions) > MAX_PARTITIONS_PER_REQUEST {
            return Err(TopicError::PolicyViolation(
                "Excessively large number of partitions per request.".into(),
            ));
        }
        let configs =
            topic_config::validate_overrides(spec.configs.iter().map(|(k, v)| (k.as_str(), v.as_deref())))
                .map_err(|e| TopicError::InvalidConfig(e.0))?;
        Ok(Topic { name: spec.name.clone(), id: new_topic_id(), partitions, leader_epoch: 0, configs })
    }

    /// Creates topics; one result per spec, in order. With `validate_only` nothing changes.
    pub async fn create_topics(
        &self,
        specs: &[NewTopic],
        validate_only: bool,
    ) -> Vec<Result<Arc<Topic>, TopicError>> {
        let _w = self.writer.lock().await;
        let current = self.snapshot();
        let mut next = Snapshot::from_topics(current.topics.values().map(|t| (**t).clone()));
        let mut total_partitions: i64 = 0;
        let mut results: Vec<Result<Arc<Topic>, TopicError>> = Vec::with_capacity(specs.len());
        for spec in specs {
            let planned = self.plan_topic(&next, spec).and_then(|t| {
                total_partitions += i64::from(t.partitions);
                if total_partitions > MAX_PARTITIONS_PER_REQUEST {
                    Err(TopicError::PolicyViolation(
                        "Excessively large number of partitions per request.".into(),
                    ))
                } else {
                    Ok(t)
                }
            });
            match planned {
                Ok(t) => {
                    let t = Arc::new(t);
                    if !validate_only {
                        next.by_id.insert(t.id, t.name.clone());
                        next.topics.insert(t.name.clone(), t.clone());
                    }
                    results.push(Ok(t));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        let created: Vec<Arc<Topic>> = results.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
        if validate_only || created.is_empty() {
            return results;
        }
        let logs_opened = self.open_logs_async(created.iter().map(|t| (t.clone(), 0)).collect()).await;
        let outcome = match logs_opened {
            Ok(()) => self.commit(next).await,
            Err(e) => Err(e),
        };
        if let Err(e) = outcome {
            return results.into_iter().map(|r| r.and(Err(e.clone()))).collect();
        }
        for t in &created {
            tracing::info!(topic = %t.name, partitions = t.partitions, id = %t.id, "topic created");
        }
        results
    }

    /// Deletes topics (and their data); one result per reference, in order.
    pub async fn delete_topics(&self, refs: &[TopicRef]) -> Vec<Result<Arc<Topic>, TopicError>> {
        if self.config.value("delete.topic.enable").map(|(v, _)| v) == Some("false") {
            return refs.iter().map(|_| Err(TopicError::DeletionDisabled)).collect();
        }
        let _w = self.writer.lock().await;
        let current = self.snapshot();
        let mut next = Snapshot::from_topics(current.topics.values().map(|t| (**t).clone()));
        let mut results = Vec::with_capacity(refs.len());
        for r in refs {
            let found = match r {
                TopicRef::Name(n) => next.get(n).cloned().ok_or(TopicError::UnknownTopic),
                TopicRef::Id(id) => next.get_by_id(*id).cloned().ok_or(TopicError::UnknownTopicId),
            };
            if let Ok(t) = &found {
                next.topics.remove(&t.name);
                next.by_id.remove(&t.id);
            }
            results.push(found);
        }
        let deleted: Vec<Arc<Topic>> = results.iter().filter_map(|r| r.as_ref().ok().cloned()).collect();
        if deleted.is_empty() {
            return results;
        }
        if let Err(e) = self.commit(next).await {
            return results.into_iter().map(|r| r.and(Err(e.clone()))).collect();
        }
        for t in &deleted {
            self.logs.remove_topic(&t.name);
        }
        // Rename under the writer lock, before answering: a topic recreated right away under the same
        // name must find its directories free. Removing the renamed data can happen afterwards.
        let data_dir = self.data_dir.clone();
        let doomed = deleted.clone();
        let renamed = tokio::task::spawn_blocking(move || {
            let mut tombs = Vec::new();
            for t in &doomed {
                for p in 0..t.partitions {
                    let dir = partition_dir(&data_dir, &t.name, p);
                    let tomb = data_dir.join(tombstone_name(&t.name, p, t.id));
                    match std::fs::rename(&dir, &tomb) {
                        Ok(()) => tombs.push(tomb),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => tracing::warn!(error = %e, dir = %dir.display(), "renaming deleted partition failed"),
                    }
                }
                tracing::info!(topic = %t.name, id = %t.id, "topic deleted");
            }
            tombs
        })
        .await
        .unwrap_or_default();
        tokio::task::spawn_blocking(move || {
            for tomb in renamed {
                if let Err(e) = std::fs::remove_dir_all(&tomb) {
                    tracing::warn!(error = %e, dir = %tomb.display(), "removing deleted partition data failed");
                }
            }
        });
        results
    }

    /// Raises partition counts; one result per (topic, new total count), in order.
    pub async fn create_partitions(
        &self,
        requests: &[PartitionIncrease],
        validate_only: bool,
    ) -> Vec<Result<Arc<Topic>, TopicError>> {
        let _w = self.writer.lock().await;
        let current = self.snapshot();
        let mut next = Snapshot::from_topics(current.topics.values().map(|t| (**t).clone()));
        let mut results = Vec::with_capacity(requests.len());
        let mut grown: Vec<(Arc<Topic>, i32)> = Vec::new();
        for PartitionIncrease { topic: name, count, assignments } in requests {
            let r = (|| {
                let t = next.get(name).ok_or(TopicError::UnknownTopic)?;
                if *count < t.partitions {
                    return Err(TopicError::InvalidPartitions(format!(
                        "The topic {name} currently has {} partition(s); {count} would not be an increase.",
                        t.partitions
                    )));
                }
                if *count == t.partitions {
                    return Err(TopicError::InvalidPartitions(format!(
                        "Topic already has {count} partition(s)."
                    )));
                }
                if i64::from(*count - t.partitions) > MAX_PARTITIONS_PER_REQUEST {
                    return Err(TopicError::PolicyViolation(
                        "Excessively large number of partitions per request.".into(),
                    ));
                }
                if let Some(a) = assignments {
                    if a.len() as i64 != i64::from(*count - t.partitions) {
                        return Err(TopicError::InvalidReplicaAssignment(format!(
                            "Attempted to add {} additional partition(s), but only {} assignment(s) were specified.",
                            count - t.partitions,
                            a.len()
                        )));
                    }
                    for replicas in a {
                        check_replicas(replicas, self.node_id())?;
                    }
                }
                let mut grown_topic = (**t).clone();
                let old = grown_topic.partitions;
                grown_topic.partitions = *count;
                Ok((Arc::new(grown_topic), old))
            })();
            match r {
                Ok((t, old)) => {
                    if !validate_only {
                        next.topics.insert(t.name.clone(), t.clone());
                        grown.push((t.clone(), old));
                    }
                    results.push(Ok(t));
                }
                Err(e) => results.push(Err(e)),
            }
        }
        if grown.is_empty() {
            return results;
        }
        let mut outcome = self.open_logs_async(grown.clone()).await;
        if outcome.is_ok() {
            outcome = self.commit(next).await;
        }
        if let Err(e) = outcome {
            return results.into_iter().map(|r| r.and(Err(e.clone()))).collect();
        }
        results
    }

    /// Changes a topic's config overrides (AlterConfigs / IncrementalAlterConfigs) and applies them to
    /// its logs. Nothing changes with `validate_only` or when any operation is invalid.
    pub async fn alter_topic_configs(
        &self,
        name: &str,
        change: &ConfigChange,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        names::validate_topic_name(name).map_err(TopicError::InvalidName)?;
        let _w = self.writer.lock().await;
        let current = self.snapshot();
        let topic = current.get(name).ok_or(TopicError::UnknownTopic)?;
        let mut overrides: BTreeMap<String, Option<String>> = match change {
            ConfigChange::Replace(_) => BTreeMap::new(),
            ConfigChange::Incremental(_) => {
                topic.configs.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect()
            }
        };
        match change {
            ConfigChange::Replace(pairs) => {
                for (k, v) in pairs {
                    overrides.insert(k.clone(), v.clone());
                }
            }
            ConfigChange::Incremental(ops) => {
                for (key, op, value) in ops {
                    let def = topic_config::topic_key(key).ok_or_else(|| {
                        TopicError::InvalidConfig(format!("Unknown topic config name: {key}"))
                    })?;
                    let is_list = matches!(
                        def.kind,
                        crate::config::Kind::EnumList(_)
                            | crate::config::Kind::TextList
                            | crate::config::Kind::ThrottledReplicas
                    );
                    let effective = || {
                        overrides.get(key).cloned().flatten().or_else(|| {
                            topic_config::effective_configs(&topic.configs, &self.settings())
                                .into_iter()
                                .find(|e| e.name == key)
                                .and_then(|e| e.value)
                        })
                    };
                    let new_value = match (op, is_list) {
                        (ConfigOp::Set, _) => value.clone(),
                        (ConfigOp::Delete, _) => None,
                        (ConfigOp::Append | ConfigOp::Subtract, false) => {
                            return Err(TopicError::InvalidConfig(format!(
                                "Config value append/subtract is not allowed for config key: {key}"
                            )))
                        }
                        (ConfigOp::Append | ConfigOp::Subtract, true) => {
                            Some(op.apply_to_list(effective().as_deref().unwrap_or(""), value.as_deref()))
                        }
                    };
                    overrides.insert(key.clone(), new_value);
                }
            }
        }
        let configs =
            topic_config::validate_overrides(overrides.iter().map(|(k, v)| (k.as_str(), v.as_deref())))
                .map_err(|e| TopicError::InvalidConfig(e.0))?;
        if validate_only {
            return Ok(());
        }
        let updated = Topic { configs, ..(**topic).clone() };
        let mut next = Snapshot::from_topics(current.topics.values().map(|t| (**t).clone()));
        next.topics.insert(updated.name.clone(), Arc::new(updated.clone()));
        self.commit(next).await?;
        self.logs.reconfigure_topic(name, &self.log_config(&updated));
        tracing::info!(topic = name, "topic configs altered");
        Ok(())
    }

    /// Creates a topic named in a Metadata request (auto-create), with the broker's defaults.
    /// Another request may have created it first; that is not an error.
    pub async fn auto_create(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        let spec = NewTopic {
            name: name.to_string(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: Vec::new(),
            configs: Vec::new(),
        };
        let r = self.create_topics(std::slice::from_ref(&spec), false).await.pop();
        match r {
            Some(Err(TopicError::AlreadyExists(_))) => {
                self.snapshot().get(name).cloned().ok_or(TopicError::UnknownTopic)
            }
            Some(r) => r,
            None => Err(TopicError::UnknownTopic),
        }
    }
}

/// On one node, a partition's replica list can only be `[this node]`.
fn check_replicas(replicas: &[i32], node: i32) -> Result<(), TopicError> {
    match replicas {
        [] => Err(TopicError::InvalidReplicaAssignment("The replica assignment is empty.".into())),
        [r] if *r == node => Ok(()),
        [r] => Err(TopicError::InvalidReplicaAssignment(format!(
            "The proposed assignment contains non-live brokers: {r}"
        ))),
        _ => Err(TopicError::InvalidReplicationFactor(format!(
            "Unable to replicate the partition {} time(s): The target replication factor of {} cannot be reached because only 1 broker(s) are registered or some brokers have all their log directories cordoned.",
            replicas.len(),
            replicas.len()
        ))),
    }
}

/// The name a deleted partition's directory is renamed to: `<topic>-<p>.<id>-delete`, with the topic
/// part shortened so the whole stays within a 255-byte file name (as Kafka does).
fn tombstone_name(topic: &str, partition: i32, id: Uuid) -> String {
    let suffix = format!("-{partition}.{}-delete", id.simple());
    let keep = topic.len().min(255 - suffix.len());
    // Topic names are ASCII, so any byte index is a character boundary.
    format!("{}{suffix}", topic.get(..keep).unwrap_or(topic))
}

/// Removes partition directories left behind by a deletion that a crash interrupted.
fn remove_deleted_dirs(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        if name.to_string_lossy().ends_with("-delete") && e.path().is_dir() {
            if let Err(err) = std::fs::remove_dir_all(e.path()) {
                tracing::warn!(error = %err, dir = %e.path().display(), "removing deleted partition data failed");
            }
        }
    }
}

#[cfg(test)]
mod tests;
