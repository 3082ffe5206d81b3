//! Topic-level configuration: Kafka's topic config keys, how each is validated, and how its effective
//! value is resolved (topic override → broker setting → Kafka default), as DescribeConfigs reports it.

use std::collections::BTreeMap;

use super::broker_config::BrokerSettings;
use crate::config::Kind;

/// One topic config key.
pub struct TopicKey {
    pub name: &'static str,
    pub kind: Kind,
    /// Broker keys that supply the default, most specific first (Kafka's synonyms).
    pub broker_synonyms: &'static [&'static str],
    /// Kafka's default when no broker key supplies one; `None` when it is derived from a synonym.
    pub default: Option<&'static str>,
}

const LMAX: i64 = i64::MAX;
const IMAX: i64 = i32::MAX as i64;
const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}
const fn long(min: i64, max: i64) -> Kind {
    Kind::Long { min, max }
}

/// Every topic config key of Kafka 4.4, in the order DescribeConfigs lists them (alphabetical).
#[rustfmt::skip]
pub const TOPIC_KEYS: &[TopicKey] = &[
    TopicKey { name: "cleanup.policy", kind: Kind::EnumList(&["compact", "delete"]), broker_synonyms: &["log.cleanup.policy"], default: None },
    TopicKey { name: "compression.gzip.level", kind: int(-1, 9), broker_synonyms: &["compression.gzip.level"], default: None },
    TopicKey { name: "compression.lz4.level", kind: int(1, 17), broker_synonyms: &["compression.lz4.level"], default: None },
    TopicKey { name: "compression.type", kind: Kind::Enum(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]), broker_synonyms: &["compression.type"], default: None },
    TopicKey { name: "compression.zstd.level", kind: int(-131072, 22), broker_synonyms: &["compression.zstd.level"], default: None },
    TopicKey { name: "delete.retention.ms", kind: long(0, LMAX), broker_synonyms: &["log.cleaner.delete.retention.ms"], default: None },
    TopicKey { name: "errors.deadletterqueue.group.enable", kind: Kind::Bool, broker_synonyms: &[], default: Some("false") },
    TopicKey { name: "file.delete.delay.ms", kind: long(0, LMAX), broker_synonyms: &["log.segment.delete.delay.ms"], default: None },
    TopicKey { name: "flush.messages", kind: long(1, LMAX), broker_synonyms: &["log.flush.interval.messages"], default: None },
    TopicKey { name: "flush.ms", kind: long(0, LMAX), broker_synonyms: &["log.flush.interval.ms"], default: Some("9223372036854775807") },
    TopicKey { name: "follower.replication.throttled.replicas", kind: Kind::ThrottledReplicas, broker_synonyms: &[], default: Some("") },
    TopicKey { name: "index.interval.bytes", kind: int(0, IMAX), broker_synonyms: &["log.index.interval.bytes"], default: None },
    TopicKey { name: "leader.replication.throttled.replicas", kind: Kind::ThrottledReplicas, broker_synonyms: &[], default: Some("") },
    TopicKey { name: "local.retention.bytes", kind: long(-2, LMAX), broker_synonyms: &["log.local.retention.bytes"], default: None },
    TopicKey { name: "local.retention.ms", kind: long(-2, LMAX), broker_synonyms: &["log.local.retention.ms"], default: None },
    TopicKey { name: "max.compaction.lag.ms", kind: long(1, LMAX), broker_synonyms: &["log.cleaner.max.compaction.lag.ms"], default: None },
    TopicKey { name: "max.decompressed.message.bytes", kind: int(0, IMAX), broker_synonyms: &["max.decompressed.message.bytes"], default: None },
    TopicKey { name: "max.message.bytes", kind: int(0, IMAX), broker_synonyms: &["message.max.bytes"], default: None },
    TopicKey { name: "message.timestamp.after.max.ms", kind: long(0, LMAX), broker_synonyms: &["log.message.timestamp.after.max.ms"], default: None },
    TopicKey { name: "message.timestamp.before.max.ms", kind: long(0, LMAX), broker_synonyms: &["log.message.timestamp.before.max.ms"], default: None },
    TopicKey { name: "message.timestamp.type", kind: Kind::Enum(&["CreateTime", "LogAppendTime"]), broker_synonyms: &["log.message.timestamp.type"], default: None },
    TopicKey { name: "min.cleanable.dirty.ratio", kind: Kind::Double { min: 0.0, max: 1.0 }, broker_synonyms: &["log.cleaner.min.cleanable.ratio"], default: None },
    TopicKey { name: "min.compaction.lag.ms", kind: long(0, LMAX), broker_synonyms: &["log.cleaner.min.compaction.lag.ms"], default: None },
    TopicKey { name: "min.insync.replicas", kind: int(1, IMAX), broker_synonyms: &["min.insync.replicas"], default: None },
    TopicKey { name: "preallocate", kind: Kind::Bool, broker_synonyms: &["log.preallocate"], default: None },
    TopicKey { name: "remote.copy.lag.bytes", kind: long(-1, LMAX), broker_synonyms: &["log.remote.copy.lag.bytes"], default: None },
    TopicKey { name: "remote.copy.lag.ms", kind: long(0, LMAX), broker_synonyms: &["log.remote.copy.lag.ms"], default: None },
    TopicKey { name: "remote.log.copy.disable", kind: Kind::Bool, broker_synonyms: &[], default: Some("false") },
    TopicKey { name: "remote.log.delete.on.disable", kind: Kind::Bool, broker_synonyms: &[], default: Some("false") },
    TopicKey { name: "remote.storage.enable", kind: Kind::Bool, broker_synonyms: &[], default: Some("false") },
    TopicKey { name: "retention.bytes", kind: long(i64::MIN, LMAX), broker_synonyms: &["log.retention.bytes"], default: None },
    TopicKey { name: "retention.ms", kind: long(-1, LMAX), broker_synonyms: &["log.retention.ms", "log.retention.minutes", "log.retention.hours"], default: None },
    TopicKey { name: "segment.bytes", kind: int(1048576, IMAX), broker_synonyms: &["log.segment.bytes"], default: None },
    TopicKey { name: "segment.index.bytes", kind: int(4, IMAX), broker_synonyms: &["log.index.size.max.bytes"], default: None },
    TopicKey { name: "segment.jitter.ms", kind: long(0, LMAX), broker_synonyms: &["log.roll.jitter.ms", "log.roll.jitter.hours"], default: None },
    TopicKey { name: "segment.ms", kind: long(1, LMAX), broker_synonyms: &["log.roll.ms", "log.roll.hours"], default: None },
    TopicKey { name: "unclean.leader.election.enable", kind: Kind::Bool, broker_synonyms: &["unclean.leader.election.enable"], default: None },
];

/// Kafka's ConfigSource codes (DescribeConfigs v1+).
pub mod source {
    pub const TOPIC_CONFIG: i8 = 1;
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
    pub const GROUP_CONFIG: i8 = 8;
}

/// Looks up a topic config key.
pub fn topic_key(name: &str) -> Option<&'static TopicKey> {
    TOPIC_KEYS.iter().find(|k| k.name == name)
}

/// Why a topic config was refused (INVALID_CONFIG).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidConfig(pub String);

/// Validates a set of topic config overrides and returns them in canonical form.
pub fn validate_overrides<'a>(
    pairs: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<BTreeMap<String, String>, InvalidConfig> {
    let mut out = BTreeMap::new();
    for (name, value) in pairs {
        let key =
            topic_key(name).ok_or_else(|| InvalidConfig(format!("Unknown topic config name: {name}")))?;
        // A null value in CreateTopics means "use the default".
        let Some(raw) = value else { continue };
        let v = key.kind.check_named(name, raw).map_err(InvalidConfig)?;
        out.insert(name.to_string(), v);
    }
    Ok(out)
}

/// One synonym of a config entry, as DescribeConfigs reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synonym {
    pub name: String,
    pub value: Option<String>,
    pub source: i8,
}

/// The effective value of one topic config and how it was arrived at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effective {
    pub name: &'static str,
    pub value: Option<String>,
    pub source: i8,
    pub type_code: i8,
    /// Most specific first: the topic override, then broker settings, then Kafka's default.
    pub synonyms: Vec<Synonym>,
}

/// Broker value of a synonym converted to the topic key's unit (hours/minutes → ms).
fn broker_value_in_topic_units(key: &str, value: &str) -> Option<String> {
    let n: i64 = match value.parse() {
        Ok(n) => n,
        Err(_) => return Some(value.to_string()),
    };
    let factor = if key.ends_with(".hours") {
        3_600_000
    } else if key.ends_with(".minutes") {
        60_000
    } else {
        return Some(value.to_string());
    };
    Some(if n < 0 { n.to_string() } else { n.saturating_mul(factor).to_string() })
}

/// Resolves every topic config for a topic with `overrides`, against the broker's configuration
/// (static and dynamic).
pub fn effective_configs(overrides: &BTreeMap<String, String>, broker: &BrokerSettings) -> Vec<Effective> {
    TOPIC_KEYS.iter().map(|k| effective_config(k, overrides, broker)).collect()
}

fn effective_config(
    key: &'static TopicKey,
    overrides: &BTreeMap<String, String>,
    broker: &BrokerSettings,
) -> Effective {
    let mut synonyms = Vec::new();
    if let Some(v) = overrides.get(key.name) {
        synonyms.push(Synonym {
            name: key.name.into(),
            value: Some(v.clone()),
            source: source::TOPIC_CONFIG,
        });
    }
    let names: Vec<String> = key.broker_synonyms.iter().map(|s| s.to_string()).collect();
    let broker_values = broker.synonyms(&names);
    // The first broker value, in Kafka's level order, supplies the default (in the topic key's unit).
    let inherited = broker_values.first().map(|s| {
        let v = s.value.as_deref().and_then(|v| broker_value_in_topic_units(&s.name, v));
        // KafkaConfig.logRetentionTimeMillis: any negative retention means -1 (unlimited).
        let v = match v {
            Some(n) if key.name == "retention.ms" && n.starts_with('-') => Some("-1".to_string()),
            v => v,
        };
        (v, s.source)
    });
    // Kafka's ConfigHelper.configSynonyms drops the values before the first one of the family's own
    // key: retention.ms lists nothing while only log.retention.hours has a value.
    synonyms.extend(broker_values.into_iter().skip_while(|s| Some(&s.name) != names.first()));
    let (value, source) = match (overrides.get(key.name), inherited) {
        (Some(v), _) => (Some(v.clone()), source::TOPIC_CONFIG),
        (None, Some((v, src))) => (v, src),
        (None, None) => (key.default.map(str::to_string), source::DEFAULT_CONFIG),
    };
    Effective { name: key.name, value, source, type_code: key.kind.type_code(), synonyms }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::broker_config::DynamicConfigs;
    use crate::config::{CliOverrides, Config};
    use std::sync::Arc;

    fn broker(pairs: &[(&str, &str)]) -> BrokerSettings {
        let file = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let config = Config::build(&file, &[], &CliOverrides::default(), "test").unwrap();
        BrokerSettings { config: Arc::new(config), dynamic: Arc::new(DynamicConfigs::default()) }
    }

    fn find<'a>(all: &'a [Effective], name: &str) -> &'a Effective {
        all.iter().find(|e| e.name == name).unwrap()
    }

    #[test]
    fn kafka_defaults_are_reported_as_default_config() {
        let all = effective_configs(&BTreeMap::new(), &broker(&[]));
        let seg = find(&all, "segment.bytes");
        assert_eq!(seg.value.as_deref(), Some("1073741824"));
        assert_eq!(seg.source, source::DEFAULT_CONFIG);
        assert_eq!(find(&all, "retention.ms").value.as_deref(), Some("604800000"));
        assert_eq!(find(&all, "max.message.bytes").value.as_deref(), Some("1048588"));
        assert_eq!(find(&all, "cleanup.policy").value.as_deref(), Some("delete"));
        assert_eq!(all.len(), TOPIC_KEYS.len());
        // Kafka 4.1: single-key families list their broker default, unit families list nothing.
        assert_eq!(
            seg.synonyms,
            vec![Synonym { name: "log.segment.bytes".into(), value: Some("1073741824".into()), source: 5 }]
        );
        assert!(find(&all, "retention.ms").synonyms.is_empty());
        assert_eq!(find(&all, "compression.lz4.level").value.as_deref(), Some("9"));
    }

    #[test]
    fn override_wins_and_lists_broker_synonyms_after_it() {
        let o = validate_overrides([("retention.ms", Some("12345"))]).unwrap();
        let all = effective_configs(&o, &broker(&[("log.retention.hours", "24")]));
        let r = find(&all, "retention.ms");
        assert_eq!(r.value.as_deref(), Some("12345"));
        assert_eq!(r.source, source::TOPIC_CONFIG);
        // Kafka drops the family's values before log.retention.ms's own (ConfigHelper.configSynonyms).
        assert_eq!(r.synonyms.len(), 1);
    }

    #[test]
    fn broker_hours_become_topic_milliseconds() {
        let all = effective_configs(&BTreeMap::new(), &broker(&[("log.retention.hours", "1")]));
        let r = find(&all, "retention.ms");
        assert_eq!(r.value.as_deref(), Some("3600000"));
        assert_eq!(r.source, source::STATIC_BROKER_CONFIG);
    }

    #[test]
    fn unknown_key_and_bad_value_are_invalid_config() {
        assert!(validate_overrides([("no.such.key", Some("1"))]).is_err());
        assert!(validate_overrides([("retention.ms", Some("soon"))]).is_err());
        assert!(validate_overrides([("cleanup.policy", Some("compact,delete"))]).is_ok());
        assert!(validate_overrides([("cleanup.policy", Some("shred"))]).is_err());
    }
}
