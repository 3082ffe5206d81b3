//! Kafka's listener syntax: `listeners`, `advertised.listeners` and `listener.security.protocol.map`,
//! read and validated as Kafka 4.4 reads them (`SocketServerConfigs.listenerListToEndPoints`,
//! `KafkaConfig.validateValues`, `ListenerInfo.withWildcardHostnamesResolved`).
//!
//! - An entry is `NAME://HOST:PORT` (Kafka's `EndPoint`: `^(.*)://\[?([0-9a-zA-Z\-%._:]*)\]?:(-?[0-9]+)$`),
//!   the name upper-cased (`ListenerName.normalised`); entries are separated by commas. An empty host
//!   listens on every interface. strom also takes its short form `HOST:PORT`, meaning
//!   `PLAINTEXT://HOST:PORT` (the `--listen`/`--advertised` flags and older configurations).
//! - A listener's security protocol comes from `listener.security.protocol.map` (Kafka's default maps
//!   each protocol's own name to itself). strom serves PLAINTEXT; a listener of another protocol is
//!   refused at start. Listeners named in `controller.listener.names` are a KRaft controller's: strom
//!   has no controller and does not open them.
//! - A client is given the advertised address of the listener it connected to: the
//!   `advertised.listeners` entry of the same name, else the listener's own address. As in Kafka, an
//!   advertised 0.0.0.0 is refused ("advertised.listeners cannot use the nonroutable meta-address
//!   0.0.0.0. Use a routable IP address."), and an empty host is advertised as this machine's canonical
//!   host name (Java's `InetAddress.getLocalHost().getCanonicalHostName()`). strom refuses any other
//!   unspecified address (`::`) the same way, where Kafka would advertise it.

use std::collections::BTreeMap;
use std::net::IpAddr;

/// One parsed listener entry (Kafka's `Endpoint` before its security protocol is looked up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Listener name, upper case (`PLAINTEXT`, `INTERNAL`, …).
    pub name: String,
    /// Host or IP address; empty means every interface.
    pub host: String,
    /// TCP port; 0 asks the system for a free one.
    pub port: u16,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.name, self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.name, self.host, self.port)
        }
    }
}

/// A listener strom serves, with the address given to clients that connect through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Listener name, upper case.
    pub name: String,
    /// Host to bind; empty binds every interface (IPv6 and IPv4 where the system allows, else IPv4).
    pub host: String,
    /// Port to bind; 0 for any free port.
    pub port: u16,
    /// Host given to clients in Metadata, DescribeCluster and FindCoordinator; never a wildcard.
    pub advertised_host: String,
    /// Port given to clients; 0 until the listener is bound when it is 0 in the configuration.
    pub advertised_port: u16,
}

/// Kafka's `listener.security.protocol.map` default (`SocketServerConfigs`).
pub const DEFAULT_PROTOCOL_MAP: &str =
    "SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT";
const PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// Parses one entry; `None` when it does not match Kafka's endpoint syntax.
fn parse_entry(entry: &str) -> Option<Endpoint> {
    let (name, rest) = match entry.rsplit_once("://") {
        Some((name, rest)) => (name.to_ascii_uppercase(), rest),
        None => ("PLAINTEXT".to_string(), entry),
    };
    let (host, port) = rest.rsplit_once(':')?;
    let host = host.strip_prefix('[').unwrap_or(host);
    let host = host.strip_suffix(']').unwrap_or(host);
    let host_ok = host.chars().all(|c| c.is_ascii_alphanumeric() || "-%._:".contains(c));
    let port: u16 = port.parse().ok().filter(|_| port.bytes().all(|b| b.is_ascii_digit()))?;
    (host_ok && !name.is_empty()).then(|| Endpoint { name, host: host.to_string(), port })
}

/// Parses a comma-separated listener list (Kafka splits on `\s*,\s*`).
pub fn parse_list(value: &str) -> Result<Vec<Endpoint>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Err("at least one listener, NAME://HOST:PORT".into());
    }
    value
        .split(',')
        .map(str::trim)
        .map(|e| {
            parse_entry(e).ok_or_else(|| {
                format!("NAME://HOST:PORT entries separated by commas (Kafka: unable to parse {e} to a broker endpoint)")
            })
        })
        .collect()
}

/// The canonical text of a listener list (`NAME://HOST:PORT,…`), or what is allowed.
pub fn canonical_list(value: &str) -> Result<String, String> {
    Ok(parse_list(value)?.iter().map(Endpoint::to_string).collect::<Vec<_>>().join(","))
}

/// A `listener.security.protocol.map` entry that is not `NAME:PROTOCOL` with a known protocol.
#[derive(Debug, PartialEq)]
pub enum ProtocolMapError {
    /// The entry (trimmed) has no `:`.
    NoSeparator(String),
    /// The protocol (trimmed, as written) is not one Kafka knows.
    UnknownProtocol(String),
}

/// The name → protocol pairs of `listener.security.protocol.map` (`NAME:PROTOCOL,…`), both upper
/// case, each entry split at its first `:` as Kafka's `KafkaConfig` does. Empty names are kept (the
/// caller decides); the first bad entry is the error.
pub fn protocol_map(value: &str) -> Result<BTreeMap<String, String>, ProtocolMapError> {
    let mut map = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, protocol)) = entry.split_once(':') else {
            return Err(ProtocolMapError::NoSeparator(entry.to_string()));
        };
        let protocol = protocol.trim();
        if !PROTOCOLS.contains(&protocol.to_ascii_uppercase().as_str()) {
            return Err(ProtocolMapError::UnknownProtocol(protocol.to_string()));
        }
        map.insert(name.trim().to_ascii_uppercase(), protocol.to_ascii_uppercase());
    }
    Ok(map)
}

/// [`protocol_map`] for a configuration file: a bad entry or an empty name gives what is allowed.
pub fn parse_protocol_map(value: &str) -> Result<BTreeMap<String, String>, String> {
    let allowed = || format!("NAME:PROTOCOL entries, each protocol one of {}", PROTOCOLS.join(", "));
    let map = protocol_map(value).map_err(|_| allowed())?;
    if map.contains_key("") {
        return Err(allowed());
    }
    Ok(map)
}

/// The canonical text of a protocol map (entries in their order, upper case), or what is allowed.
pub fn canonical_protocol_map(value: &str) -> Result<String, String> {
    parse_protocol_map(value)?;
    let entries: Vec<String> = value
        .split(',')
        .map(|e| e.trim().to_ascii_uppercase().replace(' ', ""))
        .filter(|e| !e.is_empty())
        .collect();
    Ok(entries.join(","))
}

/// The configured listener values and where each came from (for messages).
pub struct ListenerSettings<'a> {
    pub listeners: &'a str,
    pub listeners_source: &'a str,
    pub advertised: Option<(&'a str, &'a str)>,
    pub protocol_map: &'a str,
    pub controller_names: &'a [String],
}

/// The listeners strom serves and lines to log at start, or a one-line refusal.
pub struct Resolved {
    pub listeners: Vec<Listener>,
    pub infos: Vec<String>,
}

/// Validates the listener settings as Kafka's `KafkaConfig.validateValues` does and picks each served
/// listener's advertised address. `canonical_host` gives this machine's canonical host name (Java's
/// `InetAddress.getLocalHost().getCanonicalHostName()`), called only for an empty host.
pub fn resolve(
    s: &ListenerSettings,
    canonical_host: impl Fn() -> Option<String>,
) -> Result<Resolved, String> {
    let bad = |key: &str, value: &str, source: &str, why: String| {
        format!("bad value `{value}` for `{key}` in {source}: {why}")
    };
    let (raw, src) = (s.listeners, s.listeners_source);
    let listeners = parse_list(raw).map_err(|e| bad("listeners", raw, src, format!("expected {e}")))?;
    let map = parse_protocol_map(s.protocol_map).map_err(|e| {
        bad("listener.security.protocol.map", s.protocol_map, "the configuration", format!("expected {e}"))
    })?;
    for (i, l) in listeners.iter().enumerate() {
        if listeners[..i].iter().any(|o| o.name == l.name) {
            return Err(bad(
                "listeners",
                raw,
                src,
                format!("each listener must have a different name ({} twice)", l.name),
            ));
        }
        if l.port != 0 && listeners[..i].iter().any(|o| o.port == l.port) {
            return Err(bad(
                "listeners",
                raw,
                src,
                format!("each listener must have a different port ({} twice)", l.port),
            ));
        }
    }
    let mut infos = Vec::new();
    let mut served = Vec::new();
    for l in &listeners {
        let Some(protocol) = map.get(&l.name) else {
            return Err(bad("listeners", raw, src, format!(
                "no security protocol defined for listener {} (add {}:PLAINTEXT to listener.security.protocol.map)",
                l.name, l.name
            )));
        };
        if s.controller_names.iter().any(|c| c.eq_ignore_ascii_case(&l.name)) {
            infos.push(format!("listener {l} is a KRaft controller listener (controller.listener.names); strom has no controller and does not open it"));
            continue;
        }
        if protocol != "PLAINTEXT" {
            return Err(bad("listeners", raw, src, format!(
                "listener {} uses security protocol {protocol}, which strom does not serve yet (only PLAINTEXT)",
                l.name
            )));
        }
        served.push(l.clone());
    }
    if served.is_empty() {
        return Err(bad(
            "listeners",
            raw,
            src,
            "no listener left for clients (all are controller listeners)".into(),
        ));
    }
    let advertised = match s.advertised {
        Some((value, source)) => {
            let list = parse_list(value)
                .map_err(|e| bad("advertised.listeners", value, source, format!("expected {e}")))?;
            if let Some(stray) = list.iter().find(|a| !listeners.iter().any(|l| l.name == a.name)) {
                let names: Vec<&str> = listeners.iter().map(|l| l.name.as_str()).collect();
                return Err(bad("advertised.listeners", value, source, format!(
                    "advertised.listeners listener names must be equal to or a subset of the ones defined in listeners; found {}, the valid options are {}",
                    stray.name, names.join(",")
                )));
            }
            if let Some(zero) = list.iter().find(|a| a.port == 0) {
                return Err(bad(
                    "advertised.listeners",
                    value,
                    source,
                    format!("port 0 cannot be advertised ({zero})"),
                ));
            }
            list.into_iter().map(|a| (a, "advertised.listeners", value, source)).collect()
        }
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for l in served {
        let (ad, key, value, source) = advertised
            .iter()
            .find(|(a, ..)| a.name == l.name)
            .cloned()
            .unwrap_or_else(|| (l.clone(), "listeners", raw, src));
        if let Ok(ip) = ad.host.parse::<IpAddr>() {
            if ip.is_unspecified() {
                return Err(bad(key, value, source, format!(
                    "advertised.listeners cannot use the nonroutable meta-address {ip}. Use a routable IP address \
                     (set advertised.listeners, e.g. {}://HOSTNAME:{})",
                    l.name, l.port
                )));
            }
        }
        let host = if ad.host.trim().is_empty() {
            let h = canonical_host().ok_or_else(|| bad(key, value, source, format!(
                "listener {} has no host and this machine's host name does not resolve; set advertised.listeners",
                l.name
            )))?;
            infos.push(format!("{}: resolved wildcard host to {h}", l.name));
            h
        } else {
            ad.host.clone()
        };
        out.push(Listener { advertised_host: host, advertised_port: ad.port, ..Listener::from(l) });
    }
    Ok(Resolved { listeners: out, infos })
}

impl From<Endpoint> for Listener {
    fn from(e: Endpoint) -> Listener {
        Listener {
            advertised_host: e.host.clone(),
            advertised_port: e.port,
            name: e.name,
            host: e.host,
            port: e.port,
        }
    }
}

/// This machine's canonical host name as Java's `InetAddress.getLocalHost().getCanonicalHostName()`
/// finds it: the host name resolved to an address (IPv4 first), that address resolved back to a name
/// which must resolve to it again; the address itself when the reverse lookup fails. `None` when the
/// host name does not resolve (Java's `getLocalHost` throws then).
pub fn canonical_host_name() -> Option<String> {
    let name = dns_lookup::get_hostname().ok()?;
    let addrs: Vec<IpAddr> = dns_lookup::lookup_host(&name).ok()?.collect();
    let ip = addrs.iter().find(|a| a.is_ipv4()).or(addrs.first())?;
    let confirmed = dns_lookup::lookup_addr(ip)
        .ok()
        .filter(|rev| dns_lookup::lookup_host(rev).is_ok_and(|mut back| back.any(|b| b == *ip)));
    Some(confirmed.unwrap_or_else(|| ip.to_string()))
}

#[cfg(test)]
#[path = "listeners_tests.rs"]
mod tests;
