//! Changing dynamic configs: BROKER resources (this broker and the cluster default) and GROUP
//! resources. Each change is validated as Kafka validates it, persisted with the topics (see
//! [`Cluster::commit_with`]) and then published; broker changes reach every partition log at once,
//! so a topic without its own override follows the new broker default.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::broker_config::{self, BrokerSettings};
use super::{group_config, Cluster, ConfigChange, ConfigOp, Snapshot};
use crate::error::TopicError;

impl Cluster {
    /// The current dynamic configs.
    pub fn dynamic_configs(&self) -> Arc<broker_config::DynamicConfigs> {
        self.dynamic.read().clone()
    }

    /// AlterConfigs / IncrementalAlterConfigs of a BROKER resource: `name` is this node's id (its own
    /// dynamic configs) or "" (the cluster-wide default). Errors as Kafka's `ConfigAdminManager`:
    /// INVALID_REQUEST for a wrong broker id or an invalid set of configs, INVALID_CONFIG for
    /// APPEND/SUBTRACT on a non-list key.
    pub async fn alter_broker_configs(
        &self,
        name: &str,
        change: &ConfigChange,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let per_broker = !name.is_empty();
        if per_broker {
            broker_config::check_node_name(name, self.node_id())?;
        }
        let _w = self.writer.lock().await;
        let current = self.dynamic_configs();
        let held = if per_broker { &current.broker } else { &current.cluster_default };
        let next_props = broker_config::apply_change(held, change)?;
        broker_config::validate_dynamic(&next_props, per_broker)?;
        let mut next = (*current).clone();
        *(if per_broker { &mut next.broker } else { &mut next.cluster_default }) = next_props;
        let next_settings = BrokerSettings { config: self.config.clone(), dynamic: Arc::new(next.clone()) };
        broker_config::listeners::validate(&self.settings(), &next_settings)?;
        if validate_only {
            return Ok(());
        }
        self.commit_dynamic(next).await?;
        self.reconfigure_all_logs();
        self.logs.wake_cleaner();
        self.broker_configs_changed.send_modify(|n| *n = n.wrapping_add(1));
        tracing::info!(resource = if per_broker { name } else { "<default>" }, "broker configs altered");
        Ok(())
    }

    /// AlterConfigs / IncrementalAlterConfigs of a GROUP resource (Kafka's `GroupConfig`): INVALID_REQUEST
    /// for the empty name, INVALID_CONFIG for unknown keys, bad values and values outside the broker's
    /// group bounds.
    pub async fn alter_group_configs(
        &self,
        group: &str,
        change: &ConfigChange,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        if group.is_empty() {
            return Err(TopicError::InvalidRequest("Default group resources are not allowed.".into()));
        }
        let _w = self.writer.lock().await;
        let current = self.dynamic_configs();
        let mut props = match change {
            ConfigChange::Replace(_) => BTreeMap::new(),
            ConfigChange::Incremental(_) => current.groups.get(group).cloned().unwrap_or_default(),
        };
        match change {
            ConfigChange::Replace(pairs) => {
                props.extend(pairs.iter().filter_map(|(k, v)| Some((k.clone(), v.clone()?))));
            }
            ConfigChange::Incremental(ops) => {
                for (key, op, value) in ops {
                    match op {
                        ConfigOp::Set => {
                            props.insert(key.clone(), value.clone().unwrap_or_default());
                        }
                        ConfigOp::Delete => {
                            props.remove(key);
                        }
                        ConfigOp::Append | ConfigOp::Subtract if !group_config::is_list_key(key) => {
                            let verb = if *op == ConfigOp::Append { "APPEND" } else { "SUBTRACT" };
                            return Err(TopicError::InvalidConfig(format!(
                                "Can't {verb} to key {key} because its type is not LIST."
                            )));
                        }
                        ConfigOp::Append | ConfigOp::Subtract => {
                            let old = props.get(key).map(String::as_str).unwrap_or("");
                            let list = op.apply_to_list(old, value.as_deref());
                            props.insert(key.clone(), list);
                        }
                    }
                }
            }
        }
        group_config::validate(&props, &self.settings())?;
        if validate_only {
            return Ok(());
        }
        let mut next = (*current).clone();
        if props.is_empty() {
            next.groups.remove(group);
        } else {
            next.groups.insert(group.to_string(), props);
        }
        self.commit_dynamic(next).await?;
        tracing::info!(group, "group configs altered");
        Ok(())
    }

    /// Persists `next` dynamic configs with the current topics. Called with `writer` held.
    async fn commit_dynamic(&self, next: broker_config::DynamicConfigs) -> Result<(), TopicError> {
        let current = self.snapshot();
        let topics = Snapshot::from_topics(current.topics.values().map(|t| (**t).clone()));
        let features = (*self.finalized_features()).clone();
        self.commit_with(topics, Arc::new(next), features).await
    }

    /// Gives every topic's logs their settings again, after a broker default changed.
    fn reconfigure_all_logs(&self) {
        let settings: BrokerSettings = self.settings();
        for t in self.snapshot().topics.values() {
            let effective = super::topic_config::effective_configs(&t.configs, &settings);
            let config = crate::log::LogConfig::from_lookup(|k| {
                effective.iter().find(|e| e.name == k).and_then(|e| e.value.clone())
            });
            self.logs.reconfigure_topic(&t.name, &config);
        }
    }
}
