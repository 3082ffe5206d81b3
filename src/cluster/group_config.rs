//! GROUP config resources (Kafka 4.0+, `org.apache.kafka.coordinator.group.GroupConfig`): per-group
//! overrides of the KIP-848 consumer, share and streams group settings, described, validated against
//! the broker's `group.*.min/max` bounds and stored with the cluster metadata.
//!
//! strom has no KIP-848 (consumer, share or streams) groups yet: the values are only stored, validated
//! and described here; the group coordinator will read them when those groups land (issue 17).
//! Keys, types, defaults and messages were taken from a Kafka 4.4 broker's answers.

use std::collections::BTreeMap;

use super::broker_config::{kafka_key, BrokerSettings, ConfigEntry};
use super::topic_config::{source, Synonym};
use crate::error::TopicError;

/// How a group config's value is checked beyond its type.
enum Bound {
    None,
    /// `[broker min key, broker max key]`: "<key> must be in the range A to B inclusive."
    Broker(&'static str, &'static str),
    /// At most the broker key's value: "<key> must be less than or equal to N".
    AtMost(&'static str),
    /// One of these words (ConfigDef ValidString).
    OneOf(&'static [&'static str]),
    /// share.auto.offset.reset's own validator.
    AutoOffsetReset,
    /// streams.assignor.name: one of the broker's group.streams.assignors.
    Assignor,
}

/// One GROUP config key of Kafka 4.4.
struct GroupKey {
    name: &'static str,
    type_name: &'static str,
    /// The broker key that supplies the default (Kafka's GroupConfig synonym), if any.
    broker: Option<&'static str>,
    /// The default when no broker key supplies it.
    default: &'static str,
    bound: Bound,
}

const fn key(
    name: &'static str,
    type_name: &'static str,
    broker: Option<&'static str>,
    default: &'static str,
    bound: Bound,
) -> GroupKey {
    GroupKey { name, type_name, broker, default, bound }
}

/// Every GROUP config Kafka 4.4 describes, in name order.
#[rustfmt::skip]
const GROUP_KEYS: &[GroupKey] = &[
    key("consumer.assignment.interval.ms", "INT", Some("group.consumer.assignment.interval.ms"), "", Bound::Broker("group.consumer.min.assignment.interval.ms", "group.consumer.max.assignment.interval.ms")),
    key("consumer.heartbeat.interval.ms", "INT", Some("group.consumer.heartbeat.interval.ms"), "", Bound::Broker("group.consumer.min.heartbeat.interval.ms", "group.consumer.max.heartbeat.interval.ms")),
    key("consumer.session.timeout.ms", "INT", Some("group.consumer.session.timeout.ms"), "", Bound::Broker("group.consumer.min.session.timeout.ms", "group.consumer.max.session.timeout.ms")),
    key("errors.deadletterqueue.copy.record.enable", "BOOLEAN", None, "false", Bound::None),
    key("errors.deadletterqueue.topic.name", "STRING", None, "", Bound::None),
    key("share.assignment.interval.ms", "INT", Some("group.share.assignment.interval.ms"), "", Bound::Broker("group.share.min.assignment.interval.ms", "group.share.max.assignment.interval.ms")),
    key("share.auto.offset.reset", "STRING", None, "latest", Bound::AutoOffsetReset),
    key("share.delivery.count.limit", "INT", Some("group.share.delivery.count.limit"), "", Bound::Broker("group.share.min.delivery.count.limit", "group.share.max.delivery.count.limit")),
    key("share.heartbeat.interval.ms", "INT", Some("group.share.heartbeat.interval.ms"), "", Bound::Broker("group.share.min.heartbeat.interval.ms", "group.share.max.heartbeat.interval.ms")),
    key("share.isolation.level", "STRING", None, "read_uncommitted", Bound::OneOf(&["read_committed", "read_uncommitted"])),
    key("share.partition.max.record.locks", "INT", Some("group.share.partition.max.record.locks"), "", Bound::Broker("group.share.min.partition.max.record.locks", "group.share.max.partition.max.record.locks")),
    key("share.record.lock.duration.ms", "INT", Some("group.share.record.lock.duration.ms"), "", Bound::Broker("group.share.min.record.lock.duration.ms", "group.share.max.record.lock.duration.ms")),
    key("share.renew.acknowledge.enable", "BOOLEAN", None, "true", Bound::None),
    key("share.session.timeout.ms", "INT", Some("group.share.session.timeout.ms"), "", Bound::Broker("group.share.min.session.timeout.ms", "group.share.max.session.timeout.ms")),
    key("streams.assignment.interval.ms", "INT", Some("group.streams.assignment.interval.ms"), "", Bound::Broker("group.streams.min.assignment.interval.ms", "group.streams.max.assignment.interval.ms")),
    key("streams.assignor.name", "STRING", Some("group.streams.assignors"), "", Bound::Assignor),
    key("streams.heartbeat.interval.ms", "INT", Some("group.streams.heartbeat.interval.ms"), "", Bound::Broker("group.streams.min.heartbeat.interval.ms", "group.streams.max.heartbeat.interval.ms")),
    key("streams.initial.rebalance.delay.ms", "INT", Some("group.streams.initial.rebalance.delay.ms"), "", Bound::None),
    key("streams.num.standby.replicas", "INT", Some("group.streams.num.standby.replicas"), "", Bound::AtMost("group.streams.max.standby.replicas")),
    key("streams.rack.aware.assignment.tags", "LIST", Some("group.streams.rack.aware.assignment.tags"), "", Bound::None),
    key("streams.session.timeout.ms", "INT", Some("group.streams.session.timeout.ms"), "", Bound::Broker("group.streams.min.session.timeout.ms", "group.streams.max.session.timeout.ms")),
];

fn group_key(name: &str) -> Option<&'static GroupKey> {
    GROUP_KEYS.iter().find(|k| k.name == name)
}

/// Whether `name` is a GROUP config key (Kafka's `GroupConfig.configNames()`).
pub fn is_group_key(name: &str) -> bool {
    group_key(name).is_some()
}

/// The type of a group config key, for list operations.
pub fn is_list_key(name: &str) -> bool {
    group_key(name).is_some_and(|k| k.type_name == "LIST")
}

fn invalid(message: String) -> TopicError {
    TopicError::InvalidConfig(message)
}

/// Kafka's `GroupConfig.validate` of one group's configs: unknown keys, ConfigDef types and minimums,
/// then the broker's bounds (INVALID_CONFIG).
pub fn validate(props: &BTreeMap<String, String>, broker: &BrokerSettings) -> Result<(), TopicError> {
    let num = |k: &str| broker.value(k).and_then(|(v, _)| v.parse::<i64>().ok()).unwrap_or(0);
    for (name, raw) in props {
        let key = group_key(name).ok_or_else(|| invalid(format!("Unknown group config name: {name}")))?;
        let v = raw.trim();
        let bad = |why: &str| invalid(format!("Invalid value {raw} for configuration {name}: {why}"));
        match key.type_name {
            "INT" => {
                let n = v.parse::<i32>().map_err(|_| bad("Not a number of type INT"))?;
                // GroupConfig's own ConfigDef minimum: the broker synonym's Range minimum.
                let min = key.broker.and_then(kafka_key).and_then(|k| k.min);
                if let Some(min) = min.filter(|m| i64::from(n) < *m) {
                    return Err(bad(&format!("Value must be at least {min}")));
                }
                match key.bound {
                    Bound::Broker(lo, hi) if !(num(lo)..=num(hi)).contains(&i64::from(n)) => {
                        return Err(invalid(format!(
                            "{name} must be in the range {} to {} inclusive.",
                            num(lo),
                            num(hi)
                        )))
                    }
                    Bound::AtMost(hi) if i64::from(n) > num(hi) => {
                        return Err(invalid(format!("{name} must be less than or equal to {}", num(hi))))
                    }
                    _ => {}
                }
            }
            "BOOLEAN" if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") => {
                return Err(bad("Expected value to be either true or false"))
            }
            _ => {}
        }
        match key.bound {
            Bound::OneOf(words) if !words.contains(&v) => {
                return Err(bad(&format!("String must be one of: {}", words.join(", "))))
            }
            Bound::AutoOffsetReset if !(v == "earliest" || v == "latest" || v.starts_with("by_duration:")) => {
                return Err(bad(&format!(
                    "Invalid value `{raw}` for configuration {name}. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'."
                )))
            }
            Bound::Assignor => {
                let assignors = broker.value("group.streams.assignors").map(|(v, _)| v).unwrap_or_default();
                let list: Vec<&str> = assignors.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
                if !list.contains(&v) {
                    return Err(invalid(format!(
                        "{name} '{raw}' is not a registered task assignor. Registered assignors are: [{}].",
                        list.join(", ")
                    )));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// DescribeConfigs of a group: every GROUP config, the group's own value first (source GROUP_CONFIG),
/// then the broker key that supplies the default.
pub fn describe(props: &BTreeMap<String, String>, broker: &BrokerSettings) -> Vec<ConfigEntry> {
    GROUP_KEYS
        .iter()
        .map(|k| {
            let mut synonyms = Vec::new();
            if let Some(v) = props.get(k.name) {
                synonyms.push(Synonym {
                    name: k.name.into(),
                    value: Some(v.clone()),
                    source: source::GROUP_CONFIG,
                });
            }
            match k.broker {
                Some(b) => synonyms.extend(broker.synonyms(&[b.to_string()]).into_iter().take(1)),
                None => synonyms.push(Synonym {
                    name: k.name.into(),
                    value: Some(k.default.into()),
                    source: source::DEFAULT_CONFIG,
                }),
            }
            let first = synonyms.first();
            ConfigEntry {
                name: k.name.into(),
                value: first.and_then(|s| s.value.clone()),
                source: first.map_or(source::DEFAULT_CONFIG, |s| s.source),
                type_code: super::broker_config::type_code(k.type_name),
                read_only: false,
                sensitive: false,
                synonyms,
            }
        })
        .collect()
}
