//! Broker-level configuration as Kafka 4.4 describes and alters it (DescribeConfigs / AlterConfigs /
//! IncrementalAlterConfigs of BROKER resources): every key Kafka's broker lists
//! (`config/kafka-broker-configs.tsv`, generated from Kafka's own `KafkaConfig.configDef()` by
//! `scripts/kafka-broker-keys`), the dynamic values set on this broker (`name` = node id) and as the
//! cluster-wide default (`name` = ""), and how a value resolves through Kafka's levels: dynamic
//! per-broker → dynamic cluster default → static (config file/env/CLI) → default.
//!
//! Keys strom implements take strom's value; the other Kafka keys show Kafka's default or the value
//! given in the config file (strom keeps them, see [`Config::kafka_value`]). Every key strom implements
//! that Kafka applies live is applied live, read through [`BrokerSettings`]:
//! - the topic defaults (`log.*`, `message.max.bytes`, `max.decompressed.message.bytes`, …) reach every
//!   partition log at once (`Cluster::alter_broker_configs`);
//! - `log.cleaner.*` at the cleaner's next pass (it is woken);
//! - `max.connections` and `listeners` / `listener.security.protocol.map` in the listener task
//!   (`server::listener`, told by [`crate::cluster::Cluster::watch_broker_configs`]; see
//!   [`listeners`] for what a listener change does);
//! - `producer.id.expiration.ms` at the next producer expiry check.
//!
//! Keys Kafka marks dynamic whose behaviour strom does not have at all (broker-side recompression by
//! `compression.type`, `min.insync.replicas`, `unclean.leader.election.enable`, `log.preallocate`,
//! `log.segment.delete.delay.ms`, tiered storage, security, threads, quotas, …) are stored and
//! reported only.
//!
//! Intended differences from Kafka (compared with a live 4.4 broker's answer): entries are listed in
//! name order (Kafka's follows a hash map's); `process.roles` and `broker.id` report strom's fixed role
//! and node id as defaults; keys strom implements show strom's own defaults where they differ
//! (`max.connections` derived from the open-file limit, `queued.max.request.bytes` bounded, `log.dir`
//! null, `listeners` on 127.0.0.1).

pub mod listeners;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Serialize};

use super::topic_config::{source, Synonym};
use crate::config::{Config, Kind, Origin};
use crate::error::TopicError;

/// How a broker config may be changed at run time (Kafka's `DynamicBrokerConfig` update modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ReadOnly,
    /// Only on one broker (`name` = node id), never as the cluster default.
    PerBroker,
    /// Only under a listener prefix (`listener.name.<l>.<key>`): Kafka's dynamic security configs.
    PerListener,
    ClusterWide,
}

/// One broker config of Kafka 4.4, as its DescribeConfigs lists it.
#[derive(Debug)]
pub struct KafkaKey {
    pub name: &'static str,
    /// Kafka's `ConfigDef.Type` name (INT, LONG, LIST, PASSWORD, …).
    pub type_name: &'static str,
    /// The default as DescribeConfigs prints it; `None` where Kafka's default is null.
    pub default: Option<&'static str>,
    pub mode: Mode,
    /// Bounds of Kafka's `Range` validator, when it has one.
    pub min: Option<i64>,
    pub max: Option<i64>,
}

const TABLE: &str = include_str!("../../../config/kafka-broker-configs.tsv");

static KEYS: LazyLock<Vec<KafkaKey>> = LazyLock::new(|| {
    let bound = |s: &str| s.trim().parse::<i64>().ok();
    TABLE
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut f = l.split('\t');
            let (name, type_name, default, mode) = (f.next()?, f.next()?, f.next()?, f.next()?);
            let (min, max) = f.next().unwrap_or("").split_once(',').unwrap_or(("", ""));
            let mode = match mode {
                "per-broker" => Mode::PerBroker,
                "per-listener" => Mode::PerListener,
                "cluster-wide" => Mode::ClusterWide,
                _ => Mode::ReadOnly,
            };
            let default = (default != "\\N").then_some(default);
            Some(KafkaKey { name, type_name, default, mode, min: bound(min), max: bound(max) })
        })
        .collect()
});

/// Every broker config Kafka 4.4 describes, by name.
pub fn kafka_keys() -> &'static [KafkaKey] {
    &KEYS
}

/// Looks up a Kafka broker config (the table is sorted by name).
pub fn kafka_key(name: &str) -> Option<&'static KafkaKey> {
    KEYS.binary_search_by(|k| k.name.cmp(name)).ok().and_then(|i| KEYS.get(i))
}

/// Kafka's DescribeConfigs type code (`ConfigEntry.ConfigType`) of a `ConfigDef.Type` name.
pub fn type_code(type_name: &str) -> i8 {
    match type_name {
        "BOOLEAN" => 1,
        "STRING" => 2,
        "INT" => 3,
        "SHORT" => 4,
        "LONG" => 5,
        "DOUBLE" => 6,
        "LIST" => 7,
        "CLASS" => 8,
        "PASSWORD" => 9,
        _ => 0,
    }
}

/// Dynamic configs, persisted with the cluster metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicConfigs {
    /// Set on this broker (resource name = node id): Kafka's DYNAMIC_BROKER_CONFIG.
    #[serde(default)]
    pub broker: BTreeMap<String, String>,
    /// Set as the cluster-wide default (resource name ""): DYNAMIC_DEFAULT_BROKER_CONFIG.
    #[serde(default)]
    pub cluster_default: BTreeMap<String, String>,
    /// GROUP resources' configs by group id (see [`super::group_config`]).
    #[serde(default)]
    pub groups: BTreeMap<String, BTreeMap<String, String>>,
}

impl DynamicConfigs {
    /// What a newly formatted Kafka 4.x cluster holds: a cluster-wide `min.insync.replicas` (written by
    /// the storage tool for eligible leader replicas), unless the broker's file sets it.
    pub fn formatted(config: &Config) -> DynamicConfigs {
        let mut d = DynamicConfigs::default();
        if !matches!(config.value("min.insync.replicas"), Some((_, o)) if o != Origin::Default) {
            d.cluster_default.insert("min.insync.replicas".into(), "1".into());
        }
        d
    }
}

/// Kafka's `DynamicBrokerConfig.brokerConfigSynonyms(name, matchListenerOverride = true)`: the keys
/// that set the same thing, most specific first.
pub fn synonym_names(name: &str) -> Vec<String> {
    const FAMILIES: &[&[&str]] = &[
        &["log.roll.ms", "log.roll.hours"],
        &["log.roll.jitter.ms", "log.roll.jitter.hours"],
        &["log.retention.ms", "log.retention.minutes", "log.retention.hours"],
    ];
    if let Some(f) = FAMILIES.iter().find(|f| f.contains(&name)) {
        return f.iter().map(|s| s.to_string()).collect();
    }
    if name == "log.flush.interval.ms" {
        return vec![name.into(), "log.flush.scheduler.interval.ms".into()];
    }
    if let Some(rest) = name.strip_prefix("listener.name.") {
        if let Some((_, base)) = rest.split_once('.') {
            const MECHANISM: &[&str] = &[
                "sasl.jaas.config",
                "sasl.login.callback.handler.class",
                "sasl.login.class",
                "sasl.server.callback.handler.class",
                "connections.max.reauth.ms",
            ];
            let base = MECHANISM.iter().find(|m| base.ends_with(**m)).copied().unwrap_or(base);
            return vec![name.into(), base.into()];
        }
    }
    vec![name.into()]
}

/// One config entry of a DescribeConfigs answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
    pub type_code: i8,
    pub read_only: bool,
    pub sensitive: bool,
    pub synonyms: Vec<Synonym>,
}

/// The broker's static configuration seen through its dynamic configs: the one place a dynamic
/// broker key's value is read.
#[derive(Clone)]
pub struct BrokerSettings {
    pub config: Arc<Config>,
    pub dynamic: Arc<DynamicConfigs>,
}

/// One level of Kafka's config resolution: its source code and how to read a key at that level.
type Level<'a> = (i8, &'a dyn Fn(&str) -> Option<String>);

impl BrokerSettings {
    /// A static value: one set in the config file, environment or CLI.
    fn static_value(&self, name: &str) -> Option<String> {
        match self.config.value(name) {
            Some((v, o)) if o != Origin::Default => Some(v.to_string()),
            Some(_) => None,
            None => self.config.kafka_value(name).map(str::to_string),
        }
    }

    /// The default: strom's own for a key it implements, else Kafka's.
    fn default_value(&self, name: &str) -> Option<String> {
        match name {
            // strom is always one combined broker and controller.
            "process.roles" => return Some("broker,controller".into()),
            "broker.id" => return Some(self.config.node_id.to_string()),
            _ => {}
        }
        if crate::config::is_strom_key(name) {
            // A value given statically hides the default: that is the key's built-in one.
            return match self.config.value(name) {
                Some((v, Origin::Default)) => Some(v.to_string()),
                _ => crate::config::strom_key_default(name).map(str::to_string),
            };
        }
        kafka_key(name).and_then(|k| k.default).map(str::to_string)
    }

    /// Every value of `names` at every level, in Kafka's order (`ConfigHelper.configSynonyms`): dynamic
    /// per-broker, dynamic default, static, default; within a level in the order of `names`.
    pub fn synonyms(&self, names: &[String]) -> Vec<Synonym> {
        let d = &self.dynamic;
        let levels: [Level<'_>; 4] = [
            (source::DYNAMIC_BROKER_CONFIG, &|n| d.broker.get(n).cloned()),
            (source::DYNAMIC_DEFAULT_BROKER_CONFIG, &|n| d.cluster_default.get(n).cloned()),
            (source::STATIC_BROKER_CONFIG, &|n| self.static_value(n)),
            (source::DEFAULT_CONFIG, &|n| self.default_value(n)),
        ];
        let mut out = Vec::new();
        for (src, get) in levels {
            for n in names {
                if let Some(v) = get(n) {
                    out.push(Synonym { name: n.clone(), value: Some(v), source: src });
                }
            }
        }
        out
    }

    /// The value of one broker key in effect, and its source.
    pub fn value(&self, name: &str) -> Option<(String, i8)> {
        self.synonyms(&[name.to_string()]).into_iter().next().and_then(|s| Some((s.value?, s.source)))
    }

    fn entry(&self, name: &str, per_broker: bool) -> ConfigEntry {
        let key = kafka_key(name);
        // Kafka's internal keys (not in the table) that strom implements have a known type.
        let strom_kind = crate::config::strom_key_kind(name).filter(|_| key.is_none());
        let type_name = key.map(|k| k.type_name).unwrap_or("UNKNOWN");
        // KafkaConfig.maybeSensitive: passwords and keys of unknown type.
        let sensitive = strom_kind.is_none() && matches!(type_name, "PASSWORD" | "UNKNOWN");
        let mut synonyms: Vec<Synonym> = self
            .synonyms(&synonym_names(name))
            .into_iter()
            .filter(|s| per_broker || s.source == source::DYNAMIC_DEFAULT_BROKER_CONFIG)
            .skip_while(|s| s.name != name)
            .collect();
        let value = if per_broker {
            self.value(name).map(|(v, _)| v)
        } else {
            self.dynamic.cluster_default.get(name).cloned()
        };
        if sensitive {
            synonyms.iter_mut().for_each(|s| s.value = None);
        }
        ConfigEntry {
            name: name.to_string(),
            value: if sensitive { None } else { value },
            source: synonyms.first().map_or(source::DEFAULT_CONFIG, |s| s.source),
            type_code: strom_kind.map_or_else(|| type_code(type_name), |k| k.type_code()),
            read_only: key.is_none_or(|k| k.mode == Mode::ReadOnly),
            sensitive,
            synonyms,
        }
    }

    /// DescribeConfigs of this broker: every Kafka key, plus every other key given statically or
    /// dynamically (Kafka's `allConfigs`: the originals and the defined values).
    pub fn describe_broker(&self) -> Vec<ConfigEntry> {
        let mut names: BTreeSet<&str> = KEYS.iter().map(|k| k.name).collect();
        names.extend(self.config.kafka_values().map(|(k, _)| k));
        // Kafka's internal keys strom implements, when given (`producer.id.expiration.check.interval.ms`).
        names.extend(
            self.config
                .entries()
                .filter(|(k, v)| {
                    matches!(v, Some((_, o)) if *o != Origin::Default) && crate::config::is_kafka_key(k.name)
                })
                .map(|(k, _)| k.name),
        );
        names.extend(self.dynamic.broker.keys().map(String::as_str));
        names.extend(self.dynamic.cluster_default.keys().map(String::as_str));
        names.into_iter().map(|n| self.entry(n, true)).collect()
    }

    /// DescribeConfigs of the cluster default (name ""): the dynamic defaults only.
    pub fn describe_cluster_default(&self) -> Vec<ConfigEntry> {
        self.dynamic.cluster_default.keys().map(|n| self.entry(n, false)).collect()
    }
}

fn invalid_request(message: String) -> TopicError {
    TopicError::InvalidRequest(message)
}

/// Kafka's `ConfigDef.parseType` and `Range` check of one value; the ConfigException text.
fn check_value(key: &KafkaKey, raw: &str) -> Result<(), String> {
    let v = raw.trim();
    let fail = |why: String| Err(format!("Invalid value {raw} for configuration {}: {why}", key.name));
    // strom's own kinds know Kafka's ValidString/ValidList words.
    if let Some(def) = crate::config::strom_key_kind(key.name) {
        if matches!(def, Kind::Enum(_) | Kind::EnumList(_)) {
            return def.check_named(key.name, raw).map(|_| ());
        }
    }
    let n = match key.type_name {
        "BOOLEAN" if v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false") => return Ok(()),
        "BOOLEAN" => return fail("Expected value to be either true or false".into()),
        "INT" => v.parse::<i32>().map(i64::from).map_err(|_| "INT"),
        "SHORT" => v.parse::<i16>().map(i64::from).map_err(|_| "SHORT"),
        "LONG" => v.parse::<i64>().map_err(|_| "LONG"),
        "DOUBLE" => {
            return v.parse::<f64>().map(|_| ()).or_else(|_| fail("Not a number of type DOUBLE".into()))
        }
        _ => return Ok(()),
    };
    match n {
        Err(t) => fail(format!("Not a number of type {t}")),
        Ok(n) if key.min.is_some_and(|m| n < m) => {
            fail(format!("Value must be at least {}", key.min.unwrap_or(0)))
        }
        Ok(n) if key.max.is_some_and(|m| n > m) => {
            fail(format!("Value must be no more than {}", key.max.unwrap_or(0)))
        }
        Ok(_) => Ok(()),
    }
}

/// Kafka's `DynamicBrokerConfig.validateConfigs` of the dynamic configs a resource would hold:
/// INVALID_REQUEST naming the keys that are read-only, security keys without a listener prefix,
/// values of the wrong type or range, and per-broker keys at the cluster default. Unknown keys are
/// accepted (Kafka stores them).
pub fn validate_dynamic(props: &BTreeMap<String, String>, per_broker: bool) -> Result<(), TopicError> {
    let set = |names: Vec<&String>| {
        format!("[{}]", names.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
    };
    // Kafka's internal keys (strom implements one) are never dynamic either.
    let internal =
        |k: &str| kafka_key(k).is_none() && crate::config::is_strom_key(k) && crate::config::is_kafka_key(k);
    let read_only: Vec<&String> = props
        .keys()
        .filter(|k| kafka_key(k).is_some_and(|d| d.mode == Mode::ReadOnly) || internal(k))
        .collect();
    if !read_only.is_empty() {
        return Err(invalid_request(format!("Cannot update these configs dynamically: {}", set(read_only))));
    }
    let security: Vec<&String> =
        props.keys().filter(|k| kafka_key(k).is_some_and(|d| d.mode == Mode::PerListener)).collect();
    if !security.is_empty() {
        return Err(invalid_request(format!(
            "These security configs can be dynamically updated only per-listener using the listener prefix: {}",
            set(security)
        )));
    }
    for (k, v) in props {
        let base =
            k.strip_prefix("listener.name.").and_then(|r| r.split_once('.')).map_or(k.as_str(), |(_, b)| b);
        if let Some(key) = kafka_key(base) {
            check_value(key, v).map_err(invalid_request)?;
        }
    }
    if !per_broker {
        let per_broker_keys: Vec<&String> = props
            .keys()
            .filter(|k| {
                kafka_key(k).is_some_and(|d| d.mode == Mode::PerBroker)
                    || k.strip_prefix("listener.name.").and_then(|r| r.split_once('.')).is_some_and(
                        |(_, b)| {
                            !matches!(
                                b,
                                "max.connections" | "max.connection.creation.rate" | "num.network.threads"
                            )
                        },
                    )
            })
            .collect();
        if !per_broker_keys.is_empty() {
            return Err(invalid_request(format!(
                "Cannot update these configs at default cluster level, broker id must be specified: {}",
                set(per_broker_keys)
            )));
        }
    }
    Ok(())
}

/// The dynamic configs a BROKER resource holds after `change` (Kafka's
/// `ConfigAdminManager.prepareIncrementalConfigs`): APPEND and SUBTRACT only on LIST keys, starting
/// from the resource's value or Kafka's default.
pub fn apply_change(
    current: &BTreeMap<String, String>,
    change: &super::ConfigChange,
) -> Result<BTreeMap<String, String>, TopicError> {
    use super::{ConfigChange, ConfigOp};
    let ops = match change {
        ConfigChange::Replace(pairs) => {
            return Ok(pairs.iter().filter_map(|(k, v)| Some((k.clone(), v.clone()?))).collect())
        }
        ConfigChange::Incremental(ops) => ops,
    };
    let mut next = current.clone();
    for (name, op, value) in ops {
        let value = value.clone().unwrap_or_default();
        match op {
            ConfigOp::Set => {
                next.insert(name.clone(), value);
            }
            ConfigOp::Delete => {
                next.remove(name);
            }
            ConfigOp::Append | ConfigOp::Subtract => {
                let verb = if *op == ConfigOp::Append { "append" } else { "subtract" };
                let key = kafka_key(name)
                    .ok_or_else(|| TopicError::InvalidConfig(format!("Unknown config name: {name}")))?;
                if key.type_name != "LIST" {
                    return Err(TopicError::InvalidConfig(format!(
                        "Config value {verb} is not allowed for config key: {name}"
                    )));
                }
                let old = next.get(name).map(String::as_str).or(key.default).unwrap_or("");
                let list = op.apply_to_list(old, Some(&value));
                next.insert(name.clone(), list);
            }
        }
    }
    Ok(next)
}

/// Kafka's `ConfigAdminManager.validateResourceNameIsCurrentNodeId`.
pub fn check_node_name(name: &str, node_id: i32) -> Result<(), TopicError> {
    let id: i32 = name
        .parse()
        .map_err(|_| invalid_request(format!("Node id must be an integer, but it is: {name}")))?;
    if id != node_id {
        return Err(invalid_request(format!(
            "Unexpected broker id, expected {node_id}, but received {name}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
