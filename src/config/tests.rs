//! Unit tests of the configuration: sources, precedence, validation.

use super::*;

fn file(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn defaults_listen_on_loopback_9092_with_data_dir() {
    let c = Config::defaults();
    assert_eq!((c.listeners[0].host.as_str(), c.listeners[0].port), ("127.0.0.1", 9092));
    assert_eq!(c.registered(0), Some(("127.0.0.1", 9092)));
    assert_eq!(c.value("listeners"), Some(("PLAINTEXT://127.0.0.1:9092", Origin::Default)));
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert!(c.auto_create_topics);
    assert_eq!(c.num_partitions, 1);
    assert_eq!(c.socket_request_max_bytes, 104_857_600);
    assert_eq!(c.connections_max_idle_ms, 600_000);
    assert_eq!(c.max_connections, None, "derived from the open-file limit at start");
    assert_eq!(c.queued_max_request_bytes, Some(256 * 1024 * 1024));
}

#[test]
fn a_configured_max_connections_wins_over_the_derived_one() {
    let mut c = Config::defaults();
    assert_eq!(c.derive_max_connections(128), 128);
    assert_eq!(c.value("max.connections"), Some(("128", Origin::Default)));
    let mut c =
        Config::build(&file(&[("max.connections", "1000")]), &[], &CliOverrides::default(), "f").unwrap();
    assert_eq!(c.derive_max_connections(128), 1000);
    assert_eq!(c.value("max.connections"), Some(("1000", Origin::File)));
}

#[test]
fn queued_max_request_bytes_is_unbounded_at_or_below_zero_and_holds_the_largest_request() {
    let build = |pairs: &[(&str, &str)]| Config::build(&file(pairs), &[], &CliOverrides::default(), "f");
    assert_eq!(build(&[("queued.max.request.bytes", "-1")]).unwrap().queued_max_request_bytes, None);
    assert_eq!(build(&[("queued.max.request.bytes", "0")]).unwrap().queued_max_request_bytes, None);
    let c = build(&[("queued.max.request.bytes", "104857600")]).unwrap();
    assert_eq!(c.queued_max_request_bytes, Some(104_857_600));
    let e = build(&[("queued.max.request.bytes", "104857599")]).unwrap_err().0;
    assert!(e.contains("queued.max.request.bytes") && e.contains("socket.request.max.bytes"), "{e}");
    // Raising socket.request.max.bytes above the default bound needs the bound raised too.
    assert!(build(&[("socket.request.max.bytes", "300000000")]).is_err());
    assert!(build(&[("queued.max.request.bytes", "-2")]).is_err());
}

#[test]
fn every_default_passes_its_own_check() {
    for k in BROKER_KEYS {
        if let Some(d) = k.default {
            assert!(k.kind.check(k.name, d).is_ok(), "{}", k.name);
        }
    }
}

#[test]
fn unknown_key_names_key_and_file() {
    let e = Config::build(&file(&[("num.partitons", "3")]), &[], &CliOverrides::default(), "x.yaml")
        .unwrap_err()
        .0;
    assert!(e.contains("num.partitons") && e.contains("x.yaml"), "{e}");
}

#[test]
fn bad_value_says_what_is_allowed() {
    let e = Config::build(&file(&[("num.partitions", "zero")]), &[], &CliOverrides::default(), "x.yaml")
        .unwrap_err()
        .0;
    assert!(e.contains("num.partitions") && e.contains("Not a number of type INT"), "{e}");
    let e = Config::build(&file(&[("auto.create.topics.enable", "yes")]), &[], &CliOverrides::default(), "f")
        .unwrap_err()
        .0;
    assert!(e.contains("true or false"), "{e}");
}

#[test]
fn env_overrides_file_and_cli_overrides_env() {
    let f = file(&[("num.partitions", "3"), ("listeners", "127.0.0.1:1000")]);
    let env = vec![
        ("STROM_NUM_PARTITIONS".to_string(), "5".to_string()),
        ("STROM_LISTENERS".to_string(), "127.0.0.1:2000".to_string()),
    ];
    let cli = CliOverrides { listen: Some("127.0.0.1:3000".into()), ..Default::default() };
    let c = Config::build(&f, &env, &cli, "f").unwrap();
    assert_eq!(c.num_partitions, 5);
    assert_eq!(c.listeners[0].port, 3000);
    assert_eq!(c.registered(0), Some(("127.0.0.1", 3000)));
    assert_eq!(c.value("num.partitions"), Some(("5", Origin::Env)));
}

#[test]
fn unknown_env_key_is_an_error() {
    let env = vec![("STROM_NUM_PARTITONS".to_string(), "5".to_string())];
    assert!(Config::build(&BTreeMap::new(), &env, &CliOverrides::default(), "f").is_err());
}

#[test]
fn kafka_style_listener_is_accepted() {
    let c = Config::build(
        &file(&[("listeners", "PLAINTEXT://127.0.0.1:19092")]),
        &[],
        &CliOverrides::default(),
        "f",
    )
    .unwrap();
    assert_eq!((c.listeners[0].host.as_str(), c.listeners[0].port), ("127.0.0.1", 19092));
}

#[test]
fn shipped_config_lists_every_key_and_loads() {
    let shipped = include_str!("../../config/strom.yaml");
    for k in BROKER_KEYS {
        let listed =
            shipped.contains(&format!("# {}:", k.name)) || shipped.contains(&format!("\n{}:", k.name));
        assert!(listed, "config/strom.yaml lacks {}", k.name);
    }
    let cli = CliOverrides {
        config: Some(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/config/strom.yaml"))),
        ..Default::default()
    };
    assert!(Config::load(&cli).is_ok());
}

#[test]
fn yaml_file_is_read_with_scalars() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.yaml");
    std::fs::write(&p, "# comment\nnum.partitions: 4\nauto.create.topics.enable: false\n").unwrap();
    let cli = CliOverrides { config: Some(p), ..Default::default() };
    let c = Config::load(&cli).unwrap();
    assert_eq!(c.num_partitions, 4);
    assert!(!c.auto_create_topics);
}

#[test]
fn properties_file_is_read_by_extension_or_content() {
    let dir = tempfile::tempdir().unwrap();
    let load = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        Config::load(&CliOverrides { config: Some(p), ..Default::default() })
    };
    let c =
        load("server.properties", "# Kafka\nnum.partitions=4\nauto.create.topics.enable : false\n").unwrap();
    assert_eq!((c.num_partitions, c.auto_create_topics), (4, false));
    assert_eq!(c.value("num.partitions"), Some(("4", Origin::File)));
    // No telling extension: a YAML mapping is YAML, anything else properties.
    assert_eq!(load("strom.conf", "num.partitions: 6\n").unwrap().num_partitions, 6);
    assert_eq!(load("strom.conf", "num.partitions=7\nlog.level=debug\n").unwrap().num_partitions, 7);
    let e = load("bad.properties", "num.partitions=\\u12\n").unwrap_err().0;
    assert!(e.contains("bad.properties") && e.contains("line 1") && e.contains("\\uxxxx"), "{e}");
    let e = load("bad.yaml", "num.partitions=7\n").unwrap_err().0;
    assert!(e.contains("bad.yaml"), "{e}");
}

#[test]
fn log_dir_is_the_data_dir_when_log_dirs_is_not_set_and_one_directory_only() {
    let build = |pairs: &[(&str, &str)]| Config::build(&file(pairs), &[], &CliOverrides::default(), "f");
    assert_eq!(build(&[("log.dir", "/tmp/k")]).unwrap().data_dir, PathBuf::from("/tmp/k"));
    assert_eq!(
        build(&[("log.dir", "/tmp/k"), ("log.dirs", "/tmp/d")]).unwrap().data_dir,
        PathBuf::from("/tmp/d")
    );
    let e = build(&[("log.dirs", "/tmp/a,/tmp/b")]).unwrap_err().0;
    assert!(e.contains("log.dirs") && e.contains("one directory"), "{e}");
}

#[test]
fn kafka_keys_that_do_not_apply_are_accepted_with_one_warning_listing_them() {
    let f = file(&[
        ("process.roles", "broker,controller"),
        ("controller.quorum.voters", "1@localhost:9093"),
        ("num.network.threads", "3"),
        ("listener.name.internal.ssl.keystore.location", "/x"),
        ("num.partitions", "2"),
    ]);
    let env = vec![("STROM_NUM_IO_THREADS".to_string(), "8".to_string())];
    let c = Config::build(&f, &env, &CliOverrides::default(), "server.properties").unwrap();
    assert_eq!(c.num_partitions, 2);
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    for k in [
        "process.roles",
        "controller.quorum.voters",
        "num.network.threads",
        "listener.name.internal",
        "num.io.threads",
    ] {
        assert!(c.warnings[0].contains(k), "{k}: {}", c.warnings[0]);
    }
    assert!(Config::defaults().warnings.is_empty());
    // Every key strom serves is a Kafka key too, except strom's own (log.level).
    for k in BROKER_KEYS.iter().filter(|k| k.name != "log.level") {
        assert!(is_kafka_broker_key(k.name), "{} is not in config/kafka-broker-keys.txt", k.name);
    }
}

#[test]
fn shipped_server_properties_loads_with_the_kafka_keys_warned_about() {
    let cli = CliOverrides {
        config: Some(PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/config/server.properties"))),
        ..Default::default()
    };
    let c = Config::load(&cli).unwrap();
    assert_eq!(c.listeners.len(), 1, "the CONTROLLER listener is not opened");
    assert_eq!(c.registered(0), Some(("127.0.0.1", 9092)));
    assert_eq!(c.data_dir, PathBuf::from("./data"));
    assert_eq!(c.warnings.len(), 1);
    assert!(c.warnings[0].contains("process.roles"), "{}", c.warnings[0]);
}
