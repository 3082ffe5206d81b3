//! The broker's one typed configuration.
//!
//! Sources, later ones winning: built-in defaults, the YAML file (`config/strom.yaml` when present, or
//! `--config FILE`), `STROM_<KEY>` environment variables (`auto.create.topics.enable` →
//! `STROM_AUTO_CREATE_TOPICS_ENABLE`), then CLI flags. Keys are Kafka's own names wherever Kafka has
//! one. Every value is validated once, here, at start-up: an unknown key or a bad value stops the broker
//! with one line naming the key, where it came from and what is allowed.

pub mod listeners;
pub mod properties;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The type and legal range of one configuration value.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Bool,
    /// A 32-bit integer within `[min, max]`.
    Int {
        min: i64,
        max: i64,
    },
    /// A 64-bit integer within `[min, max]`.
    Long {
        min: i64,
        max: i64,
    },
    /// A floating-point number within `[min, max]`.
    Double {
        min: f64,
        max: f64,
    },
    /// One of the listed words.
    Enum(&'static [&'static str]),
    /// A comma-separated list, each element one of the listed words.
    EnumList(&'static [&'static str]),
    /// Free text.
    Text,
    /// Free text holding a comma-separated list.
    TextList,
    /// Kafka's listener list, `NAME://HOST:PORT,…` (see [`listeners`]).
    Listeners,
    /// Kafka's `listener.security.protocol.map`, `NAME:PROTOCOL,…`.
    ProtocolMap,
    /// `leader/follower.replication.throttled.replicas`: `*` or `partition:broker,…` (Kafka's
    /// `ThrottledReplicaListValidator`).
    ThrottledReplicas,
}

/// Why a value is refused, as Kafka's `ConfigException` puts it.
enum Refusal {
    /// "Invalid value <raw> for configuration <name>: <reason>".
    Reason(String),
    /// A sentence of its own: `ValidList`'s "Configuration '<name>' values must not be …".
    Whole(String),
}

impl Kind {
    /// Checks `raw` and returns its canonical form, or a phrase saying what is allowed.
    /// The canonical form of `raw`, or why it is refused in the words of Kafka's `ConfigDef`
    /// (`parseType` and its `Range`/`ValidString`/`ValidList` validators), e.g. "Not a number of type
    /// LONG", "Value must be at least 0", "String must be one of: CreateTime, LogAppendTime".
    /// A list refusal that Kafka words as a sentence of its own (naming `name`) is returned whole.
    pub fn check(&self, name: &str, raw: &str) -> Result<String, String> {
        self.check_as(name, raw).map_err(|r| match r {
            Refusal::Reason(why) | Refusal::Whole(why) => why,
        })
    }

    /// The canonical form of `raw` for the config `name`, or Kafka's whole `ConfigException`
    /// message (what INVALID_CONFIG answers carry), e.g. "Invalid value foo for configuration
    /// cleanup.policy: String must be one of: compact, delete" or "Configuration 'cleanup.policy'
    /// values must not be duplicated.".
    pub fn check_named(&self, name: &str, raw: &str) -> Result<String, String> {
        self.check_as(name, raw).map_err(|r| match r {
            Refusal::Reason(why) => format!("Invalid value {raw} for configuration {name}: {why}"),
            Refusal::Whole(sentence) => sentence,
        })
    }

    fn check_as(&self, name: &str, raw: &str) -> Result<String, Refusal> {
        match *self {
            Kind::EnumList(words) => check_valid_list(name, raw, words),
            Kind::ThrottledReplicas => check_throttled_replicas(name, raw),
            _ => self.check_scalar(raw).map_err(Refusal::Reason),
        }
    }

    /// Every kind but the validated lists.
    fn check_scalar(&self, raw: &str) -> Result<String, String> {
        let v = raw.trim();
        let range = |n: i64, min: i64, max: i64| match n {
            n if n < min => Err(format!("Value must be at least {min}")),
            n if n > max => Err(format!("Value must be no more than {max}")),
            n => Ok(n.to_string()),
        };
        match *self {
            Kind::Bool => match v.to_ascii_lowercase().as_str() {
                "true" => Ok("true".into()),
                "false" => Ok("false".into()),
                _ => Err("Expected value to be either true or false".into()),
            },
            Kind::Int { min, max } => match v.parse::<i32>() {
                Ok(n) => range(i64::from(n), min, max),
                Err(_) => Err("Not a number of type INT".into()),
            },
            Kind::Long { min, max } => match v.parse::<i64>() {
                Ok(n) => range(n, min, max),
                Err(_) => Err("Not a number of type LONG".into()),
            },
            Kind::Double { min, max } => match v.parse::<f64>() {
                Ok(n) if n < min => Err(format!("Value must be at least {min:?}")),
                Ok(n) if n > max => Err(format!("Value must be no more than {max:?}")),
                Ok(_) => Ok(v.to_string()),
                Err(_) => Err("Not a number of type DOUBLE".into()),
            },
            // Kafka's ValidString is case-sensitive.
            Kind::Enum(words) => words
                .iter()
                .find(|w| **w == v)
                .map(|w| w.to_string())
                .ok_or_else(|| format!("String must be one of: {}", words.join(", "))),
            Kind::Text | Kind::TextList | Kind::EnumList(_) | Kind::ThrottledReplicas => Ok(v.to_string()),
            Kind::Listeners => listeners::canonical_list(v),
            Kind::ProtocolMap => listeners::canonical_protocol_map(v),
        }
    }

    /// Kafka's DescribeConfigs type code (ConfigEntry.ConfigType).
    pub fn type_code(&self) -> i8 {
        match self {
            Kind::Bool => 1,
            Kind::Text | Kind::Enum(_) | Kind::Listeners | Kind::ProtocolMap => 2,
            Kind::Int { .. } => 3,
            Kind::Long { .. } => 5,
            Kind::Double { .. } => 6,
            Kind::EnumList(_) | Kind::TextList | Kind::ThrottledReplicas => 7,
        }
    }
}

/// Kafka's LIST parsing: trimmed, split at commas with the whitespace around them; an empty (or
/// blank) value is the empty list, and empty elements are kept (`"a,"` is `[a, ""]`).
fn list_items(raw: &str) -> Vec<&str> {
    let v = raw.trim();
    if v.is_empty() {
        Vec::new()
    } else {
        v.split(',').map(str::trim).collect()
    }
}

/// Kafka's `ConfigDef.ValidList.in(allowEmpty = true, …)` (Kafka 4.1+, where an empty
/// `cleanup.policy` means infinite retention): duplicates first, then each element in order, an
/// empty one or one not listed refused. Values compare case-sensitively.
fn check_valid_list(name: &str, raw: &str, words: &[&str]) -> Result<String, Refusal> {
    let items = list_items(raw);
    let distinct: std::collections::HashSet<&str> = items.iter().copied().collect();
    if distinct.len() != items.len() {
        return Err(Refusal::Whole(format!("Configuration '{name}' values must not be duplicated.")));
    }
    for item in &items {
        if item.is_empty() {
            return Err(Refusal::Whole(format!("Configuration '{name}' values must not be empty.")));
        }
        if !words.contains(item) {
            // Kafka names the element, not the whole value.
            return Err(Refusal::Whole(format!(
                "Invalid value {item} for configuration {name}: String must be one of: {}",
                words.join(", ")
            )));
        }
    }
    Ok(items.join(","))
}

/// Kafka's `ThrottledReplicaListValidator`: the literal `*`, or `partition:broker` pairs (empty
/// elements allowed). Its refusal shows the value as Kafka prints a list, `[a, b]`.
fn check_throttled_replicas(name: &str, raw: &str) -> Result<String, Refusal> {
    let items = list_items(raw);
    let pair = |s: &str| {
        s.is_empty()
            || s.split_once(':').is_some_and(|(p, b)| {
                [p, b].iter().all(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
            })
    };
    if items.iter().all(|s| pair(s)) || items.concat() == "*" {
        return Ok(items.join(","));
    }
    Err(Refusal::Whole(format!(
        "Invalid value [{}] for configuration {name}: {name} must be the literal '*' or a list of replicas \
         in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...",
        items.join(", ")
    )))
}

/// One broker configuration key.
pub struct KeyDef {
    pub name: &'static str,
    pub kind: Kind,
    /// Built-in default; `None` where Kafka's default is null.
    pub default: Option<&'static str>,
}

const LONG: Kind = Kind::Long { min: i64::MIN, max: i64::MAX };
const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}
const fn long(min: i64, max: i64) -> Kind {
    Kind::Long { min, max }
}
const I32MAX: i64 = i32::MAX as i64;
const COMPRESSION: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Every broker key strom understands, with Kafka's defaults.
#[rustfmt::skip]
pub const BROKER_KEYS: &[KeyDef] = &[
    KeyDef { name: "listeners", kind: Kind::Listeners, default: Some("PLAINTEXT://127.0.0.1:9092") },
    KeyDef { name: "advertised.listeners", kind: Kind::Listeners, default: None },
    KeyDef { name: "listener.security.protocol.map", kind: Kind::ProtocolMap, default: Some(listeners::DEFAULT_PROTOCOL_MAP) },
    // Listeners of a KRaft controller: strom has none, and does not open them.
    KeyDef { name: "controller.listener.names", kind: Kind::TextList, default: None },
    KeyDef { name: "log.dirs", kind: Kind::Text, default: Some("./data") },
    // Kafka's single-directory key, used when log.dirs is not set.
    KeyDef { name: "log.dir", kind: Kind::Text, default: None },
    KeyDef { name: "node.id", kind: int(0, I32MAX), default: Some("1") },
    KeyDef { name: "log.level", kind: Kind::Text, default: Some("info") },
    KeyDef { name: "auto.create.topics.enable", kind: Kind::Bool, default: Some("true") },
    KeyDef { name: "num.partitions", kind: int(1, 10_000), default: Some("1") },
    KeyDef { name: "default.replication.factor", kind: int(1, 1), default: Some("1") },
    KeyDef { name: "delete.topic.enable", kind: Kind::Bool, default: Some("true") },
    KeyDef { name: "socket.request.max.bytes", kind: int(1024, I32MAX), default: Some("104857600") },
    KeyDef { name: "connections.max.idle.ms", kind: long(1, i64::MAX), default: Some("600000") },
    // Null here: derived at start from the open-file limit (see crate::descriptors).
    KeyDef { name: "max.connections", kind: int(1, I32MAX), default: None },
    // Kafka's default is -1 (unbounded); strom bounds request memory out of the box.
    KeyDef { name: "queued.max.request.bytes", kind: long(-1, i64::MAX), default: Some("268435456") },
    KeyDef { name: "message.max.bytes", kind: int(0, I32MAX), default: Some("1048588") },
    KeyDef { name: "fetch.max.bytes", kind: int(1024, I32MAX), default: Some("57671680") },
    KeyDef { name: "compression.type", kind: Kind::Enum(COMPRESSION), default: Some("producer") },
    KeyDef { name: "compression.gzip.level", kind: int(-1, 9), default: Some("-1") },
    KeyDef { name: "compression.lz4.level", kind: int(1, 17), default: Some("9") },
    KeyDef { name: "compression.zstd.level", kind: int(-131072, 22), default: Some("3") },
    // Kafka 4.4: bounds a produced batch's decompressed records (see LogConfig::record_rules).
    KeyDef { name: "max.decompressed.message.bytes", kind: int(0, I32MAX), default: Some("2147483639") },
    // Tiered storage (not served): reported so topics describe as Kafka's do.
    KeyDef { name: "log.remote.copy.lag.bytes", kind: long(-1, i64::MAX), default: Some("-1") },
    KeyDef { name: "log.remote.copy.lag.ms", kind: long(0, i64::MAX), default: Some("0") },
    KeyDef { name: "log.local.retention.bytes", kind: long(-2, i64::MAX), default: Some("-2") },
    KeyDef { name: "log.local.retention.ms", kind: long(-2, i64::MAX), default: Some("-2") },
    KeyDef { name: "log.cleanup.policy", kind: Kind::EnumList(&["compact", "delete"]), default: Some("delete") },
    KeyDef { name: "log.segment.bytes", kind: int(14, I32MAX), default: Some("1073741824") },
    KeyDef { name: "log.roll.ms", kind: long(1, i64::MAX), default: None },
    KeyDef { name: "log.roll.hours", kind: int(1, I32MAX), default: Some("168") },
    KeyDef { name: "log.retention.ms", kind: long(-1, i64::MAX), default: None },
    KeyDef { name: "log.retention.minutes", kind: int(-1, I32MAX), default: None },
    KeyDef { name: "log.retention.hours", kind: int(-1, I32MAX), default: Some("168") },
    KeyDef { name: "log.retention.bytes", kind: LONG, default: Some("-1") },
    KeyDef { name: "log.retention.check.interval.ms", kind: long(1, i64::MAX), default: Some("300000") },
    KeyDef { name: "log.index.interval.bytes", kind: int(0, I32MAX), default: Some("4096") },
    KeyDef { name: "log.index.size.max.bytes", kind: int(4, I32MAX), default: Some("10485760") },
    KeyDef { name: "log.flush.interval.messages", kind: long(1, i64::MAX), default: Some("9223372036854775807") },
    KeyDef { name: "log.flush.interval.ms", kind: long(0, i64::MAX), default: None },
    KeyDef { name: "log.message.timestamp.type", kind: Kind::Enum(&["CreateTime", "LogAppendTime"]), default: Some("CreateTime") },
    KeyDef { name: "log.message.timestamp.before.max.ms", kind: long(0, i64::MAX), default: Some("9223372036854775807") },
    KeyDef { name: "log.message.timestamp.after.max.ms", kind: long(0, i64::MAX), default: Some("3600000") },
    KeyDef { name: "log.cleaner.delete.retention.ms", kind: long(0, i64::MAX), default: Some("86400000") },
    KeyDef { name: "log.cleaner.min.compaction.lag.ms", kind: long(0, i64::MAX), default: Some("0") },
    KeyDef { name: "log.cleaner.max.compaction.lag.ms", kind: long(1, i64::MAX), default: Some("9223372036854775807") },
    KeyDef { name: "log.cleaner.min.cleanable.ratio", kind: Kind::Double { min: 0.0, max: 1.0 }, default: Some("0.5") },
    // The log cleaner itself (Kafka's CleanerConfig; read by log::cleaner::CleanerConfig).
    KeyDef { name: "log.cleaner.enable", kind: Kind::Bool, default: Some("true") },
    KeyDef { name: "log.cleaner.threads", kind: int(0, I32MAX), default: Some("1") },
    KeyDef { name: "log.cleaner.dedupe.buffer.size", kind: LONG, default: Some("134217728") },
    KeyDef { name: "log.cleaner.io.buffer.size", kind: int(0, I32MAX), default: Some("524288") },
    KeyDef { name: "log.cleaner.io.buffer.load.factor", kind: Kind::Double { min: f64::MIN, max: f64::MAX }, default: Some("0.9") },
    KeyDef { name: "log.cleaner.io.max.bytes.per.second", kind: Kind::Double { min: f64::MIN, max: f64::MAX }, default: Some("1.7976931348623157E308") },
    KeyDef { name: "log.cleaner.backoff.ms", kind: long(0, i64::MAX), default: Some("15000") },
    KeyDef { name: "log.segment.delete.delay.ms", kind: long(0, i64::MAX), default: Some("60000") },
    KeyDef { name: "log.roll.jitter.ms", kind: long(0, i64::MAX), default: None },
    KeyDef { name: "log.roll.jitter.hours", kind: int(0, I32MAX), default: Some("0") },
    KeyDef { name: "log.preallocate", kind: Kind::Bool, default: Some("false") },
    KeyDef { name: "min.insync.replicas", kind: int(1, I32MAX), default: Some("1") },
    KeyDef { name: "unclean.leader.election.enable", kind: Kind::Bool, default: Some("false") },
    KeyDef { name: "group.initial.rebalance.delay.ms", kind: int(0, I32MAX), default: Some("3000") },
    KeyDef { name: "offsets.retention.minutes", kind: int(1, I32MAX), default: Some("10080") },
    KeyDef { name: "group.min.session.timeout.ms", kind: int(0, I32MAX), default: Some("6000") },
    KeyDef { name: "group.max.session.timeout.ms", kind: int(0, I32MAX), default: Some("1800000") },
    KeyDef { name: "offset.metadata.max.bytes", kind: int(0, I32MAX), default: Some("4096") },
    KeyDef { name: "transactional.id.expiration.ms", kind: int(1, I32MAX), default: Some("604800000") },
    KeyDef { name: "producer.id.expiration.ms", kind: int(1, I32MAX), default: Some("86400000") },
    // An internal Kafka key (not described unless given), read-only.
    KeyDef { name: "producer.id.expiration.check.interval.ms", kind: int(1, I32MAX), default: Some("600000") },
    KeyDef { name: "transaction.max.timeout.ms", kind: int(1, I32MAX), default: Some("900000") },
    KeyDef { name: "transaction.abort.timed.out.transaction.cleanup.interval.ms", kind: int(1, I32MAX), default: Some("10000") },
    KeyDef { name: "offsets.topic.num.partitions", kind: int(1, I32MAX), default: Some("50") },
    KeyDef { name: "transaction.state.log.num.partitions", kind: int(1, I32MAX), default: Some("50") },
];

/// Where a configuration value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Default,
    File,
    Env,
    Cli,
}

/// A start-up configuration error: one line naming the key, the source and what is allowed.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ConfigError {}

/// Values given on the command line; `None` means "not given".
#[derive(Debug, Default, Clone)]
pub struct CliOverrides {
    pub config: Option<PathBuf>,
    pub listen: Option<String>,
    pub advertised: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub node_id: Option<i32>,
}

/// The validated configuration the broker runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Every known key's canonical value (absent where the default is null) and its origin.
    values: BTreeMap<&'static str, (String, Origin)>,
    /// The listeners served (Kafka's `listeners`, PLAINTEXT only), each with the address given to the
    /// clients that connect through it; never empty.
    pub listeners: Vec<listeners::Listener>,
    /// Lines to log at info level once logging is set up (e.g. a wildcard host resolved).
    pub infos: Vec<String>,
    /// Lines to log as warnings once logging is set up (e.g. Kafka keys that do not apply).
    pub warnings: Vec<String>,
    /// Directory holding the cluster metadata and one directory per partition.
    pub data_dir: PathBuf,
    /// This broker's id (also the controller id on a single node).
    pub node_id: i32,
    /// Create unknown topics named in a Metadata request.
    pub auto_create_topics: bool,
    /// Partition count of topics created without one.
    pub num_partitions: i32,
    /// Upper bound on one request frame in bytes; larger frames close the connection.
    pub socket_request_max_bytes: usize,
    /// Most record bytes one Fetch response carries (`fetch.max.bytes`).
    pub fetch_max_bytes: usize,
    /// Connections idle longer than this many milliseconds are closed.
    pub connections_max_idle_ms: u64,
    /// Upper bound on concurrently open client connections when configured; `None` until the broker
    /// derives it from the open-file limit ([`Config::derive_max_connections`]).
    pub max_connections: Option<usize>,
    /// Broker-wide bound in bytes on requests being read and handled (`queued.max.request.bytes`);
    /// `None` when unbounded (a value ≤ 0, as in Kafka).
    pub queued_max_request_bytes: Option<usize>,
    /// Default tracing filter when RUST_LOG is not set.
    pub log_level: String,
    /// Kafka broker keys strom has no use for, as given (kept so DescribeConfigs reports them).
    kafka_only: BTreeMap<String, String>,
}

impl Config {
    /// A numeric key's value (validated at start, so parsing cannot fail for known numeric keys).
    pub fn number(&self, key: &str) -> i64 {
        self.value(key).and_then(|(v, _)| v.parse().ok()).unwrap_or(0)
    }
}

fn env_name(key: &str) -> String {
    format!("STROM_{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Kafka 4.4's broker config names (`KafkaConfig.configDef().names()`), generated by
/// `scripts/kafka-broker-keys`.
const KAFKA_BROKER_KEYS: &str = include_str!("../../config/kafka-broker-keys.txt");

/// Every Kafka broker config name.
fn kafka_broker_keys() -> impl Iterator<Item = &'static str> {
    KAFKA_BROKER_KEYS.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// True for a Kafka broker key: one of Kafka's broker configs, or a per-listener override
/// (`listener.name.<name>.<config>`, which Kafka takes for any listener).
fn is_kafka_broker_key(name: &str) -> bool {
    name.starts_with("listener.name.") || kafka_broker_keys().any(|k| k == name)
}

fn key_def(name: &str) -> Option<&'static KeyDef> {
    BROKER_KEYS.iter().find(|k| k.name == name)
}

/// Whether strom implements broker key `name` (one of [`BROKER_KEYS`]).
pub fn is_strom_key(name: &str) -> bool {
    key_def(name).is_some()
}

/// Strom's built-in default of broker key `name`, when strom implements it and has one.
pub fn strom_key_default(name: &str) -> Option<&'static str> {
    key_def(name).and_then(|k| k.default)
}

/// Whether `name` is one of Kafka's broker configs (or a per-listener override of one).
pub fn is_kafka_key(name: &str) -> bool {
    is_kafka_broker_key(name)
}

/// The kind strom checks broker key `name` against, when strom implements it.
pub fn strom_key_kind(name: &str) -> Option<Kind> {
    key_def(name).map(|k| k.kind)
}

impl Config {
    /// Defaults only: what `strom` runs with when nothing is configured.
    pub fn defaults() -> Config {
        match Self::build(&BTreeMap::new(), &[], &CliOverrides::default(), "") {
            Ok(c) => c,
            // The built-in defaults are checked by a unit test; this arm is unreachable in practice.
            Err(e) => panic!("built-in defaults are invalid: {e}"),
        }
    }

    /// Loads the configuration from the file (explicit or `config/strom.yaml`), the environment and CLI.
    pub fn load(cli: &CliOverrides) -> Result<Config, ConfigError> {
        let (path, required) = match &cli.config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from("config/strom.yaml"), false),
        };
        let file_values = if path.exists() || required { read_file(&path)? } else { BTreeMap::new() };
        let env: Vec<(String, String)> = std::env::vars().filter(|(k, _)| k.starts_with("STROM_")).collect();
        Self::build(&file_values, &env, cli, &path.display().to_string())
    }

    /// Builds and validates from already-read sources. `file_name` is used in error messages.
    pub fn build(
        file: &BTreeMap<String, String>,
        env: &[(String, String)],
        cli: &CliOverrides,
        file_name: &str,
    ) -> Result<Config, ConfigError> {
        let mut values: BTreeMap<&'static str, (String, Origin)> = BTreeMap::new();
        for k in BROKER_KEYS {
            if let Some(d) = k.default {
                values.insert(k.name, (d.to_string(), Origin::Default));
            }
        }
        // Kafka broker keys that strom has no use for, in the order met (one warning line lists them).
        let mut ignored: Vec<String> = Vec::new();
        let mut kafka_only: BTreeMap<String, String> = BTreeMap::new();
        let mut set = |name: &str, raw: &str, origin: Origin, source: &str| -> Result<(), ConfigError> {
            let Some(def) = key_def(name) else {
                if is_kafka_broker_key(name) {
                    if !ignored.iter().any(|k| k == name) {
                        ignored.push(name.to_string());
                    }
                    kafka_only.insert(name.to_string(), raw.trim().to_string());
                    return Ok(());
                }
                return Err(ConfigError(format!(
                    "unknown configuration key `{name}` in {source}; known keys are listed in config/strom.yaml"
                )));
            };
            // Kafka's ConfigDef reasons are sentences; the listener kinds name what they expect.
            let v = def.kind.check(def.name, raw).map_err(|why| {
                let why = match def.kind {
                    Kind::Listeners | Kind::ProtocolMap => format!("expected {why}"),
                    _ => why,
                };
                ConfigError(format!("bad value `{raw}` for `{name}` in {source}: {why}"))
            })?;
            values.insert(def.name, (v, origin));
            Ok(())
        };
        for (k, v) in file {
            set(k, v, Origin::File, file_name)?;
        }
        for (var, v) in env {
            let kafka_key = || kafka_broker_keys().find(|k| env_name(k) == *var);
            match BROKER_KEYS.iter().find(|k| env_name(k.name) == *var) {
                Some(def) => set(def.name, v, Origin::Env, &format!("environment variable {var}"))?,
                None if var == "STROM_CONFIG" => {}
                None => match kafka_key() {
                    Some(k) => set(k, v, Origin::Env, &format!("environment variable {var}"))?,
                    None => {
                        return Err(ConfigError(format!(
                            "unknown configuration key in environment variable {var}: no key maps to it"
                        )))
                    }
                },
            }
        }
        if let Some(l) = &cli.listen {
            set("listeners", l, Origin::Cli, "--listen")?;
        }
        if let Some(a) = &cli.advertised {
            set("advertised.listeners", a, Origin::Cli, "--advertised")?;
        }
        if let Some(d) = &cli.data_dir {
            set("log.dirs", &d.display().to_string(), Origin::Cli, "--data-dir")?;
        }
        if let Some(n) = cli.node_id {
            set("node.id", &n.to_string(), Origin::Cli, "--node-id")?;
        }
        let mut config = Self::from_values(values, file_name)?;
        config.kafka_only = kafka_only;
        if !ignored.is_empty() {
            config.warnings.push(format!(
                "Kafka broker keys that do not apply to strom, ignored: {}",
                ignored.join(", ")
            ));
        }
        Ok(config)
    }

    fn from_values(
        values: BTreeMap<&'static str, (String, Origin)>,
        file_name: &str,
    ) -> Result<Config, ConfigError> {
        let get = |k: &str| values.get(k).map(|(v, _)| v.as_str());
        let num = |k: &str| -> i64 { get(k).and_then(|v| v.parse().ok()).unwrap_or(0) };
        let source = |k: &str| match values.get(k).map(|(_, o)| *o) {
            Some(Origin::File) => file_name.to_string(),
            Some(Origin::Env) => format!("environment variable {}", env_name(k)),
            Some(Origin::Cli) => "the command line".to_string(),
            Some(Origin::Default) | None => "the defaults".to_string(),
        };
        let (listeners_source, advertised_source) = (source("listeners"), source("advertised.listeners"));
        let controller_names: Vec<String> = get("controller.listener.names")
            .map(|v| v.split(',').map(|n| n.trim().to_string()).filter(|n| !n.is_empty()).collect())
            .unwrap_or_default();
        let settings = listeners::ListenerSettings {
            listeners: get("listeners").unwrap_or("PLAINTEXT://127.0.0.1:9092"),
            listeners_source: &listeners_source,
            advertised: get("advertised.listeners").map(|v| (v, advertised_source.as_str())),
            protocol_map: get("listener.security.protocol.map").unwrap_or(listeners::DEFAULT_PROTOCOL_MAP),
            controller_names: &controller_names,
        };
        let resolved = listeners::resolve(&settings, listeners::canonical_host_name).map_err(ConfigError)?;
        let data_dir = match (values.get("log.dirs"), get("log.dir")) {
            (Some((_, Origin::Default)) | None, Some(dir)) => dir,
            _ => get("log.dirs").unwrap_or("./data"),
        };
        if data_dir.contains(',') {
            return Err(ConfigError(format!(
                "bad value `{data_dir}` for `log.dirs` in {}: strom keeps its data in one directory",
                source("log.dirs")
            )));
        }
        let data_dir = PathBuf::from(data_dir.trim());
        let (queued, max_request) = (num("queued.max.request.bytes"), num("socket.request.max.bytes"));
        if queued > 0 && queued < max_request {
            // Kafka's own start-up check (KafkaConfig.validateValues): one largest request must fit.
            let whose = match values.get("queued.max.request.bytes").map(|(_, o)| *o) {
                Some(Origin::Default) | None => "its default",
                Some(_) => "the value given",
            };
            return Err(ConfigError(format!(
                "bad value `{queued}` ({whose}) for `queued.max.request.bytes`: expected -1 (unbounded) or \
                 at least socket.request.max.bytes ({max_request})"
            )));
        }
        Ok(Config {
            listeners: resolved.listeners,
            infos: resolved.infos,
            warnings: Vec::new(),
            data_dir,
            node_id: num("node.id") as i32,
            auto_create_topics: get("auto.create.topics.enable") == Some("true"),
            num_partitions: num("num.partitions") as i32,
            socket_request_max_bytes: num("socket.request.max.bytes") as usize,
            fetch_max_bytes: num("fetch.max.bytes") as usize,
            connections_max_idle_ms: num("connections.max.idle.ms") as u64,
            max_connections: get("max.connections").and_then(|v| v.parse().ok()),
            queued_max_request_bytes: (queued > 0).then(|| usize::try_from(queued).unwrap_or(usize::MAX)),
            log_level: get("log.level").unwrap_or("info").to_string(),
            values,
            kafka_only: BTreeMap::new(),
        })
    }

    /// The broker's value for `key` (canonical text) and where it came from; `None` when null.
    pub fn value(&self, key: &str) -> Option<(&str, Origin)> {
        self.values.get(key).map(|(v, o)| (v.as_str(), *o))
    }

    /// The value given for a Kafka broker key strom does not implement.
    pub fn kafka_value(&self, key: &str) -> Option<&str> {
        self.kafka_only.get(key).map(String::as_str)
    }

    /// Every Kafka broker key given that strom does not implement, with its value.
    pub fn kafka_values(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.kafka_only.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every known broker key with its current value (or null).
    pub fn entries(&self) -> impl Iterator<Item = (&'static KeyDef, Option<(&str, Origin)>)> + '_ {
        BROKER_KEYS.iter().map(move |k| (k, self.value(k.name)))
    }

    /// Sets `max.connections` to `derived` unless it was configured; returns the value in effect.
    /// DescribeConfigs then reports it as the default.
    pub fn derive_max_connections(&mut self, derived: usize) -> usize {
        match self.max_connections {
            Some(n) => n,
            None => {
                self.max_connections = Some(derived);
                self.values.insert("max.connections", (derived.to_string(), Origin::Default));
                derived
            }
        }
    }

    /// Replaces listener `index`'s advertised port after binding port 0 (Kafka's
    /// `ListenerInfo.withEphemeralPortsCorrected`), unless one was set explicitly.
    pub fn set_bound_port(&mut self, index: usize, port: u16) {
        if let Some(l) = self.listeners.get_mut(index) {
            if l.advertised_port == 0 {
                l.advertised_port = port;
            }
        }
    }

    /// The broker's registered endpoint for a client connected through listener `index` (an index of
    /// [`Config::listeners`]): the host and port advertised for it. `None` for a listener opened at
    /// run time ([`Config::UNREGISTERED`]): as in Kafka (KRaft), the broker's endpoints are registered
    /// at start, and a client of any other listener learns of no broker.
    pub fn registered(&self, index: usize) -> Option<(&str, u16)> {
        self.listeners.get(index).map(|l| (l.advertised_host.as_str(), l.advertised_port))
    }

    /// The listener index of a listener opened at run time (see [`Config::registered`]).
    pub const UNREGISTERED: usize = usize::MAX;
}

/// Reads a configuration file: Java properties (Kafka's `server.properties`) when its name ends in
/// `.properties`, YAML when it ends in `.yaml` or `.yml`; any other name is read as YAML when it parses
/// as a YAML mapping, else as properties.
fn read_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError(format!("cannot read configuration file {}: {e}", path.display())))?;
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("properties") => read_properties(path, &bytes),
        Some("yaml" | "yml") => read_yaml(path, &bytes),
        _ => read_yaml(path, &bytes).or_else(|yaml_error| {
            let looks_like_yaml = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|t| serde_yaml::from_str::<serde_yaml::Value>(t).ok())
                .is_some_and(|v| v.is_mapping());
            if looks_like_yaml {
                Err(yaml_error)
            } else {
                read_properties(path, &bytes)
            }
        }),
    }
}

/// Reads Java properties (`java.util.Properties.load`, as Kafka's `Utils.loadProps`).
fn read_properties(path: &Path, bytes: &[u8]) -> Result<BTreeMap<String, String>, ConfigError> {
    let pairs = properties::parse(&properties::decode(bytes)).map_err(|e| {
        ConfigError(format!("configuration file {} is not valid Java properties: {e}", path.display()))
    })?;
    Ok(pairs.into_iter().collect())
}

/// Reads a flat YAML mapping of Kafka keys to scalars.
fn read_yaml(path: &Path, bytes: &[u8]) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| ConfigError(format!("configuration file {} is not valid UTF-8: {e}", path.display())))?;
    let doc: serde_yaml::Value = serde_yaml::from_str(text)
        .map_err(|e| ConfigError(format!("configuration file {} is not valid YAML: {e}", path.display())))?;
    let mut out = BTreeMap::new();
    let map = match doc {
        serde_yaml::Value::Null => return Ok(out),
        serde_yaml::Value::Mapping(m) => m,
        _ => {
            return Err(ConfigError(format!(
                "configuration file {} must be a mapping of `key: value` lines",
                path.display()
            )))
        }
    };
    for (k, v) in map {
        let key = match k {
            serde_yaml::Value::String(s) => s,
            other => return Err(ConfigError(format!("non-text key {other:?} in {}", path.display()))),
        };
        let value = match v {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Bool(b) => b.to_string(),
            serde_yaml::Value::Number(n) => n.to_string(),
            _ => {
                return Err(ConfigError(format!(
                    "bad value for `{key}` in {}: expected a single value (text, number or boolean)",
                    path.display()
                )))
            }
        };
        out.insert(key, value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
