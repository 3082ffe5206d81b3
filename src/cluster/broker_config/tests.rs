use super::*;
use crate::config::CliOverrides;

fn settings(file: &[(&str, &str)], dynamic: DynamicConfigs) -> BrokerSettings {
    let file = file.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let config = Config::build(&file, &[], &CliOverrides::default(), "test").unwrap();
    BrokerSettings { config: Arc::new(config), dynamic: Arc::new(dynamic) }
}

fn find<'a>(all: &'a [ConfigEntry], name: &str) -> &'a ConfigEntry {
    all.iter().find(|e| e.name == name).unwrap()
}

#[test]
fn table_holds_every_described_kafka_key() {
    // Kafka 4.4 lists 350 broker configs (a live broker's DescribeConfigs, non-internal keys).
    assert_eq!(kafka_keys().len(), 350);
    let k = kafka_key("log.segment.bytes").unwrap();
    assert_eq!(
        (k.type_name, k.default, k.mode, k.min),
        ("INT", Some("1073741824"), Mode::ClusterWide, Some(1048576))
    );
    assert_eq!(kafka_key("listeners").unwrap().mode, Mode::PerBroker);
    assert_eq!(kafka_key("ssl.keystore.type").unwrap().mode, Mode::PerListener);
}

#[test]
fn dynamic_levels_come_first_in_kafka_order() {
    let mut d = DynamicConfigs::default();
    d.broker.insert("log.retention.ms".into(), "-5".into());
    let s = settings(&[], d);
    let all = s.describe_broker();
    let e = find(&all, "log.retention.ms");
    // Kafka 4.4: log.retention.ms=-5@DYNAMIC_BROKER_CONFIG;log.retention.hours=168@DEFAULT_CONFIG
    assert_eq!(e.value.as_deref(), Some("-5"));
    assert_eq!(e.source, source::DYNAMIC_BROKER_CONFIG);
    let syn: Vec<_> = e.synonyms.iter().map(|s| (s.name.as_str(), s.value.as_deref(), s.source)).collect();
    assert_eq!(syn, vec![("log.retention.ms", Some("-5"), 2), ("log.retention.hours", Some("168"), 5)]);
    // Without a value of its own, log.retention.minutes lists nothing (Kafka drops leading synonyms).
    assert!(find(&all, "log.retention.minutes").synonyms.is_empty());
    assert!(!e.read_only);
    assert!(find(&all, "num.partitions").read_only);
}

#[test]
fn validation_follows_kafka() {
    let p = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
    let msg = |r: Result<(), TopicError>| r.unwrap_err().to_string();
    assert_eq!(
        msg(validate_dynamic(&p("num.partitions", "3"), true)),
        "Cannot update these configs dynamically: [num.partitions]"
    );
    assert_eq!(
        msg(validate_dynamic(&p("log.retention.ms", "abc"), true)),
        "Invalid value abc for configuration log.retention.ms: Not a number of type LONG"
    );
    assert_eq!(
        msg(validate_dynamic(&p("listeners", "PLAINTEXT://127.0.0.1:9"), false)),
        "Cannot update these configs at default cluster level, broker id must be specified: [listeners]"
    );
    // Kafka 4.4: "Cannot update these configs dynamically: [producer.id.expiration.check.interval.ms]".
    assert_eq!(
        msg(validate_dynamic(&p("producer.id.expiration.check.interval.ms", "100"), false)),
        "Cannot update these configs dynamically: [producer.id.expiration.check.interval.ms]"
    );
    assert!(validate_dynamic(&p("no.such.key", "3"), true).is_ok());
    assert!(validate_dynamic(&p("log.retention.ms", "-5"), true).is_ok());
}

#[test]
fn a_static_value_keeps_the_default_beneath_it() {
    let s = settings(
        &[("log.segment.bytes", "2000000"), ("producer.id.expiration.check.interval.ms", "200")],
        DynamicConfigs::default(),
    );
    let all = s.describe_broker();
    let syn = |name: &str| -> Vec<(Option<String>, i8)> {
        find(&all, name).synonyms.iter().map(|s| (s.value.clone(), s.source)).collect()
    };
    // Kafka 4.4 with log.segment.bytes=2000000 in server.properties:
    // [log.segment.bytes=2000000@STATIC_BROKER_CONFIG, log.segment.bytes=1073741824@DEFAULT_CONFIG].
    assert_eq!(syn("log.segment.bytes"), vec![(Some("2000000".into()), 4), (Some("1073741824".into()), 5)]);
    // An internal key is described once given (Kafka 4.4 with producer.id.expiration.check.interval.ms=200:
    // value 200, STATIC_BROKER_CONFIG, read-only, INT, synonyms 200@4 and 600000@5).
    let e = find(&all, "producer.id.expiration.check.interval.ms");
    assert_eq!(
        (e.value.as_deref(), e.source, e.read_only, e.sensitive, e.type_code),
        (Some("200"), 4, true, false, 3)
    );
    assert_eq!(
        syn("producer.id.expiration.check.interval.ms"),
        vec![(Some("200".into()), 4), (Some("600000".into()), 5)]
    );
    assert_eq!(all.len(), 351);
    // Not given, it is not described (Kafka lists 350 keys).
    assert!(settings(&[], DynamicConfigs::default())
        .describe_broker()
        .iter()
        .all(|e| e.name != "producer.id.expiration.check.interval.ms"));
}
