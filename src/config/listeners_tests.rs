//! Listener syntax and validation. Kafka 4.4.0's own answers are quoted where Kafka has one: each case
//! was given to `kafka.server.KafkaConfig.fromProps` (Kafka's start-up validation) from the 4.4.0 jars,
//! with process.roles=broker,controller and a CONTROLLER listener as a Kafka broker has them.

use super::*;

fn settings<'a>(listeners: &'a str, advertised: Option<&'a str>) -> ListenerSettings<'a> {
    ListenerSettings {
        listeners,
        listeners_source: "f.properties",
        advertised: advertised.map(|a| (a, "f.properties")),
        protocol_map: DEFAULT_PROTOCOL_MAP,
        controller_names: &[],
    }
}

fn host() -> Option<String> {
    Some("broker.example".into())
}

#[test]
fn entries_parse_as_kafka_endpoints_with_strom_short_form() {
    let e = parse_list("PLAINTEXT://:9092, internal://127.0.0.1:9093,SSL://[::1]:9094,host:1").unwrap();
    let got: Vec<String> = e.iter().map(Endpoint::to_string).collect();
    assert_eq!(
        got,
        ["PLAINTEXT://:9092", "INTERNAL://127.0.0.1:9093", "SSL://[::1]:9094", "PLAINTEXT://host:1"]
    );
    assert_eq!(e[0].host, "");
    for bad in [
        "",
        "PLAINTEXT://",
        "PLAINTEXT://host",
        "PLAINTEXT://host:-1",
        "PLAINTEXT://host:65536",
        "://h:1",
        "PLAINTEXT://h/x:1",
    ] {
        assert!(parse_list(bad).is_err(), "{bad}");
    }
}

#[test]
fn protocol_map_is_kafkas_syntax() {
    let m = parse_protocol_map("internal:plaintext, EXTERNAL:SSL").unwrap();
    assert_eq!(m.get("INTERNAL").map(String::as_str), Some("PLAINTEXT"));
    assert_eq!(
        canonical_protocol_map("internal:plaintext, EXTERNAL:SSL").unwrap(),
        "INTERNAL:PLAINTEXT,EXTERNAL:SSL"
    );
    assert!(parse_protocol_map("INTERNAL:TLS").is_err());
    assert!(parse_protocol_map("INTERNAL").is_err());
}

#[test]
fn empty_host_listens_everywhere_and_advertises_the_canonical_host_name() {
    // Kafka 4.4.0 accepts listeners=PLAINTEXT://:P (advertised host null) and advertises
    // InetAddress.getLocalHost().getCanonicalHostName() (ListenerInfo.withWildcardHostnamesResolved,
    // logging "PLAINTEXT: resolved wildcard host to …"); Java gives `localhost` on this machine.
    let r = resolve(&settings("PLAINTEXT://:9092", None), host).unwrap();
    assert_eq!(r.listeners[0].host, "");
    assert_eq!(
        (r.listeners[0].advertised_host.as_str(), r.listeners[0].advertised_port),
        ("broker.example", 9092)
    );
    assert!(r.infos[0].contains("resolved wildcard host to broker.example"), "{:?}", r.infos);
    let e = resolve(&settings("PLAINTEXT://:9092", None), || None).err().unwrap();
    assert!(e.contains("advertised.listeners"), "{e}");
}

#[test]
fn a_wildcard_address_is_never_advertised() {
    // Kafka 4.4.0, listeners=PLAINTEXT://0.0.0.0:P and no advertised.listeners, or advertised
    // PLAINTEXT://0.0.0.0:P: "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. Use a
    // routable IP address.". Kafka accepts [::] and advertises `::`; strom refuses it the same way.
    for (l, a, key) in [
        ("PLAINTEXT://0.0.0.0:9092", None, "`listeners`"),
        ("PLAINTEXT://[::]:9092", None, "`listeners`"),
        ("PLAINTEXT://:9092", Some("PLAINTEXT://0.0.0.0:9092"), "`advertised.listeners`"),
    ] {
        let e = resolve(&settings(l, a), host).err().unwrap();
        assert!(e.contains("cannot use the nonroutable meta-address") && e.contains(key), "{e}");
        assert!(!e.contains('\n'));
    }
    let r =
        resolve(&settings("PLAINTEXT://0.0.0.0:9092", Some("PLAINTEXT://kafka.local:19092")), host).unwrap();
    assert_eq!(r.listeners[0].host, "0.0.0.0");
    assert_eq!(
        (r.listeners[0].advertised_host.as_str(), r.listeners[0].advertised_port),
        ("kafka.local", 19092)
    );
}

#[test]
fn several_named_listeners_each_advertise_their_own_address() {
    let map = "INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT";
    let controllers = vec!["CONTROLLER".to_string()];
    let s = ListenerSettings {
        protocol_map: map,
        controller_names: &controllers,
        ..settings(
            "INTERNAL://127.0.0.1:9093,EXTERNAL://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095",
            Some("EXTERNAL://ext.example:443"),
        )
    };
    let r = resolve(&s, host).unwrap();
    let got: Vec<(&str, &str, u16)> = r
        .listeners
        .iter()
        .map(|l| (l.name.as_str(), l.advertised_host.as_str(), l.advertised_port))
        .collect();
    assert_eq!(got, [("INTERNAL", "127.0.0.1", 9093), ("EXTERNAL", "ext.example", 443)]);
    assert!(r.infos.iter().any(|i| i.contains("CONTROLLER") && i.contains("does not open")), "{:?}", r.infos);
}

#[test]
fn protocols_strom_does_not_serve_are_refused_naming_key_and_value() {
    // Kafka 4.4.0 serves these; strom refuses them at start rather than failing at bind.
    for (l, proto) in [
        ("SSL://127.0.0.1:9093", "SSL"),
        ("PLAINTEXT://127.0.0.1:9092,SASL_PLAINTEXT://127.0.0.1:9093", "SASL_PLAINTEXT"),
        ("SASL_SSL://127.0.0.1:9093", "SASL_SSL"),
    ] {
        let e = resolve(&settings(l, None), host).err().unwrap();
        assert!(
            e.contains("`listeners`") && e.contains(l) && e.contains(proto) && e.contains("f.properties"),
            "{e}"
        );
    }
}

#[test]
fn kafkas_listener_rules() {
    // Kafka 4.4.0: "No security protocol defined for listener INTERNAL".
    let e = resolve(&settings("INTERNAL://127.0.0.1:9093", None), host).err().unwrap();
    assert!(e.contains("no security protocol defined for listener INTERNAL"), "{e}");
    // Kafka 4.4.0: "Each listener must have a different name, listeners: …".
    let e = resolve(&settings("PLAINTEXT://127.0.0.1:1,plaintext://127.0.0.1:2", None), host).err().unwrap();
    assert!(e.contains("different name"), "{e}");
    // Kafka 4.4.0: "If you have two listeners on the same port then one needs to be IPv4 and the other
    // IPv6"; strom refuses any two listeners on one port.
    let s = ListenerSettings {
        protocol_map: "A:PLAINTEXT,B:PLAINTEXT",
        ..settings("A://127.0.0.1:1,B://127.0.0.1:1", None)
    };
    assert!(resolve(&s, host).err().unwrap().contains("different port"));
    // Kafka 4.4.0 refuses this one with "No security protocol defined for listener OTHER" (it looks up
    // the protocol first); with OTHER in the map, with Kafka's "advertised.listeners listener names must
    // be equal to or a subset of the ones defined in listeners".
    let s = ListenerSettings {
        protocol_map: "OTHER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        ..settings("PLAINTEXT://127.0.0.1:1", Some("OTHER://h:2"))
    };
    let e = resolve(&s, host).err().unwrap();
    assert!(e.contains("subset") && e.contains("OTHER"), "{e}");
    let e = resolve(&settings("PLAINTEXT://127.0.0.1:0", Some("h:0")), host).err().unwrap();
    assert!(e.contains("port 0"), "{e}");
}

#[test]
fn the_canonical_host_name_is_never_a_wildcard() {
    if let Some(h) = canonical_host_name() {
        assert!(!h.is_empty() && h.parse::<IpAddr>().map_or(true, |ip| !ip.is_unspecified()), "{h}");
    }
}
