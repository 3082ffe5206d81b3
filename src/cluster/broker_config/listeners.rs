//! This broker's `listeners` and `listener.security.protocol.map` as dynamic configs (Kafka 4.4's
//! `DynamicListenerConfig`; per-broker only). A change is validated as Kafka validates the new
//! `KafkaConfig` and the reconfiguration, with Kafka's messages; once stored, the listener task
//! (`server::listener`) opens the listeners whose names are new and closes those whose names are
//! gone, with their connections. A listener whose name stays keeps its address (Kafka ignores a new
//! host or port for an existing listener). A listener opened at run time is not in the broker's
//! registration (its advertised endpoints, fixed at start as in KRaft), so clients that connect
//! through it learn of no broker (see [`crate::config::Config::registered`]).

use std::collections::BTreeMap;

use super::BrokerSettings;
use crate::config::listeners::{self, parse_list, Endpoint, ProtocolMapError};
use crate::error::TopicError;

/// The keys this module validates and the listener task follows.
pub const KEYS: [&str; 2] = ["listeners", "listener.security.protocol.map"];

fn invalid(message: String) -> TopicError {
    TopicError::InvalidRequest(message)
}

/// Kafka's `listener.security.protocol.map` parsing (`KafkaConfig.effectiveListenerSecurityProtocolMap`)
/// with the messages its AlterConfigs answers carry: listener name → protocol, both upper case.
fn protocol_map(value: &str) -> Result<BTreeMap<String, String>, String> {
    listeners::protocol_map(value).map_err(|e| match e {
        // Kafka splits with `substring(0, indexOf(':'))` and reports Java's exception.
        ProtocolMapError::NoSeparator(entry) => format!(
            "Error parsing configuration property 'listener.security.protocol.map': begin 0, end -1, length {}",
            entry.chars().count()
        ),
        ProtocolMapError::UnknownProtocol(protocol) => {
            format!("Invalid security protocol `{protocol}` defined in listener.security.protocol.map")
        }
    })
}

/// The listeners of `value` with their protocols, as Kafka's `SocketServerConfigs.listenerListToEndPoints`
/// reads them: each entry `NAME://HOST:PORT` with a protocol in `map`, no name twice, no port twice.
fn endpoints(value: &str, map: &BTreeMap<String, String>) -> Result<Vec<(Endpoint, String)>, String> {
    let entries: Vec<&str> = value.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
    let shown = format!("[{}]", entries.join(", "));
    let fail = |why: String| format!("Error creating broker listeners from '{shown}': {why}");
    let mut out: Vec<(Endpoint, String)> = Vec::new();
    for entry in &entries {
        let parsed = entry.contains("://").then(|| parse_list(entry).ok()).flatten();
        let Some(e) = parsed.and_then(|mut l| l.pop()) else {
            return Err(fail(format!("Unable to parse {entry} to a broker endpoint")));
        };
        let Some(protocol) = map.get(&e.name) else {
            return Err(fail(format!("No security protocol defined for listener {}", e.name)));
        };
        out.push((e, protocol.clone()));
    }
    for (i, (e, _)) in out.iter().enumerate() {
        if out[..i].iter().any(|(o, _)| o.name == e.name) {
            return Err(fail(format!("Each listener must have a different name, listeners: {shown}")));
        }
    }
    for (i, (e, _)) in out.iter().enumerate() {
        if e.port != 0 && out[..i].iter().any(|(o, _)| o.port == e.port) {
            return Err(fail(format!(
                "If you have two listeners on the same port then one needs to be IPv4 and the other IPv6, \
                 listeners: {shown}, port: {}",
                e.port
            )));
        }
    }
    Ok(out)
}

/// Every listener of `settings` with its protocol (controller listeners included).
fn all_listeners(settings: &BrokerSettings) -> Result<Vec<(Endpoint, String)>, String> {
    let value = settings.value("listeners").map(|(v, _)| v).unwrap_or_default();
    if value.trim().is_empty() {
        return Err(
            "Configuration 'listeners' must not be empty. Valid values include: any non-empty value".into()
        );
    }
    let map = settings.value("listener.security.protocol.map").map(|(v, _)| v).unwrap_or_default();
    endpoints(&value, &protocol_map(&map)?)
}

/// Whether listener `name` is a KRaft controller's (`controller.listener.names`): strom opens none.
fn is_controller(settings: &BrokerSettings, name: &str) -> bool {
    let names = settings.config.value("controller.listener.names").map(|(v, _)| v).unwrap_or("");
    names.split(',').any(|c| c.trim().eq_ignore_ascii_case(name))
}

/// The client listeners to serve under `settings`: every listener but the controller's.
pub fn served(settings: &BrokerSettings) -> Result<Vec<Endpoint>, String> {
    Ok(all_listeners(settings)?
        .into_iter()
        .map(|(e, _)| e)
        .filter(|e| !is_controller(settings, &e.name))
        .collect())
}

/// Checks the listener configs of `next` against the running ones (`current`), when either key
/// changes: Kafka's `KafkaConfig` validation of the new values, then `DynamicListenerConfig.
/// validateReconfiguration`; then strom's own limits (PLAINTEXT only, a client listener left).
pub fn validate(current: &BrokerSettings, next: &BrokerSettings) -> Result<(), TopicError> {
    if KEYS.iter().all(|k| current.value(k) == next.value(k)) {
        return Ok(());
    }
    let listeners = all_listeners(next).map_err(invalid)?;
    let advertised: Vec<Endpoint> = match next.config.value("advertised.listeners") {
        Some((v, _)) => parse_list(v).map_err(invalid)?,
        None => Vec::new(),
    };
    let broker_advertised: Vec<&str> =
        advertised.iter().map(|a| a.name.as_str()).filter(|n| !is_controller(next, n)).collect();
    if broker_advertised.iter().any(|a| !listeners.iter().any(|(l, _)| l.name == *a)) {
        let names: Vec<&str> = listeners.iter().map(|(l, _)| l.name.as_str()).collect();
        return Err(invalid(format!(
            "requirement failed: advertised.listeners listener names must be equal to or a subset of the ones \
             defined in listeners. Found {}. The valid options based on the current configuration are {}",
            broker_advertised.join(","),
            names.join(",")
        )));
    }
    let running = all_listeners(current).unwrap_or_default();
    for (l, protocol) in &listeners {
        if running.iter().any(|(r, p)| r.name == l.name && p != protocol) {
            return Err(invalid(format!(
                "Invalid value org.apache.kafka.common.config.ConfigException: Security protocol cannot be updated \
                 for existing listener ListenerName({}) for configuration Invalid dynamic configuration",
                l.name
            )));
        }
    }
    let served: Vec<&(Endpoint, String)> =
        listeners.iter().filter(|(l, _)| !is_controller(next, &l.name)).collect();
    if let Some((l, p)) = served.iter().find(|(_, p)| p != "PLAINTEXT") {
        return Err(invalid(format!(
            "listener {} uses security protocol {p}, which strom does not serve yet (only PLAINTEXT)",
            l.name
        )));
    }
    if served.is_empty() {
        return Err(invalid("no listener left for clients (all are controller listeners)".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::broker_config::DynamicConfigs;
    use crate::config::{CliOverrides, Config};
    use std::sync::Arc;

    fn settings(file: &[(&str, &str)], per_broker: &[(&str, &str)]) -> BrokerSettings {
        let file = file.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let config = Config::build(&file, &[], &CliOverrides::default(), "test").unwrap();
        let d = DynamicConfigs {
            broker: per_broker.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..DynamicConfigs::default()
        };
        BrokerSettings { config: Arc::new(config), dynamic: Arc::new(d) }
    }

    /// Kafka 4.4's answers to IncrementalAlterConfigs on broker 1 (listeners
    /// PLAINTEXT://127.0.0.1:39391,CONTROLLER://127.0.0.1:50243, advertised.listeners the same,
    /// map CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT).
    #[test]
    fn refusals_are_kafkas() {
        let file = [
            ("listeners", "PLAINTEXT://127.0.0.1:39391,CONTROLLER://127.0.0.1:50243"),
            ("advertised.listeners", "PLAINTEXT://127.0.0.1:39391"),
            ("controller.listener.names", "CONTROLLER"),
            ("listener.security.protocol.map", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"),
        ];
        let current = settings(&file, &[]);
        let base = "PLAINTEXT://127.0.0.1:39391,CONTROLLER://127.0.0.1:50243";
        let check = |props: &[(&str, &str)]| match validate(&current, &settings(&file, props)) {
            Ok(()) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        let map3 = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,EXTRA:PLAINTEXT";
        assert_eq!(
            check(&[("listeners", &format!("{base},EXTRA://127.0.0.1:39396"))]),
            "Error creating broker listeners from '[PLAINTEXT://127.0.0.1:39391, CONTROLLER://127.0.0.1:50243, \
             EXTRA://127.0.0.1:39396]': No security protocol defined for listener EXTRA"
        );
        assert_eq!(
            check(&[("listeners", "CONTROLLER://127.0.0.1:50243")]),
            "requirement failed: advertised.listeners listener names must be equal to or a subset of the ones \
             defined in listeners. Found PLAINTEXT. The valid options based on the current configuration are CONTROLLER"
        );
        assert_eq!(
            check(&[("listener.security.protocol.map", "CONTROLLER:PLAINTEXT,PLAINTEXT:SSL")]),
            "Invalid value org.apache.kafka.common.config.ConfigException: Security protocol cannot be updated for \
             existing listener ListenerName(PLAINTEXT) for configuration Invalid dynamic configuration"
        );
        assert_eq!(
            check(&[("listeners", "garbage")]),
            "Error creating broker listeners from '[garbage]': Unable to parse garbage to a broker endpoint"
        );
        assert_eq!(
            check(&[("listeners", &format!("{base},EXTRA://127.0.0.1:39391")), ("listener.security.protocol.map", map3)]),
            "Error creating broker listeners from '[PLAINTEXT://127.0.0.1:39391, CONTROLLER://127.0.0.1:50243, \
             EXTRA://127.0.0.1:39391]': If you have two listeners on the same port then one needs to be IPv4 and \
             the other IPv6, listeners: [PLAINTEXT://127.0.0.1:39391, CONTROLLER://127.0.0.1:50243, \
             EXTRA://127.0.0.1:39391], port: 39391"
        );
        assert_eq!(
            check(&[("listeners", &format!("{base},PLAINTEXT://127.0.0.1:39396"))]),
            "Error creating broker listeners from '[PLAINTEXT://127.0.0.1:39391, CONTROLLER://127.0.0.1:50243, \
             PLAINTEXT://127.0.0.1:39396]': Each listener must have a different name, listeners: \
             [PLAINTEXT://127.0.0.1:39391, CONTROLLER://127.0.0.1:50243, PLAINTEXT://127.0.0.1:39396]"
        );
        assert_eq!(
            check(&[(
                "listener.security.protocol.map",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,EXTRA:FOO"
            )]),
            "Invalid security protocol `FOO` defined in listener.security.protocol.map"
        );
        assert_eq!(
            check(&[("listener.security.protocol.map", "garbage")]),
            "Error parsing configuration property 'listener.security.protocol.map': begin 0, end -1, length 7"
        );
        assert_eq!(
            check(&[("listeners", "")]),
            "Configuration 'listeners' must not be empty. Valid values include: any non-empty value"
        );
        // Accepted by Kafka: lower-case names and protocols, spaces, port 0.
        let lower = "plaintext://127.0.0.1:39391,CONTROLLER://127.0.0.1:50243, extra://127.0.0.1:39396 ";
        assert_eq!(
            check(&[
                ("listeners", lower),
                (
                    "listener.security.protocol.map",
                    "CONTROLLER:PLAINTEXT, PLAINTEXT:PLAINTEXT , extra:plaintext"
                )
            ]),
            "ok"
        );
        assert_eq!(
            check(&[
                ("listeners", &format!("{base},EXTRA://127.0.0.1:0")),
                ("listener.security.protocol.map", map3)
            ]),
            "ok"
        );
        // strom's own limit: PLAINTEXT only.
        assert_eq!(
            check(&[
                ("listeners", &format!("{base},EXTRA://127.0.0.1:0")),
                ("listener.security.protocol.map", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,EXTRA:SSL")
            ]),
            "listener EXTRA uses security protocol SSL, which strom does not serve yet (only PLAINTEXT)"
        );
        let served: Vec<String> =
            served(&settings(&file, &[("listeners", lower), ("listener.security.protocol.map", map3)]))
                .unwrap()
                .iter()
                .map(Endpoint::to_string)
                .collect();
        assert_eq!(served, vec!["PLAINTEXT://127.0.0.1:39391", "EXTRA://127.0.0.1:39396"]);
    }
}
