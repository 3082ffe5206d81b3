//! Kafka's configuration as a drop-in: the strom binary started with a `server.properties` in Kafka's
//! syntax, and refusing what it cannot serve with exit code 2 and one line on stderr.
//!
//! Compared with Kafka 4.4.0 (its `KafkaConfig.fromProps` from the 4.4.0 jars, the validation Kafka runs
//! at start): `listeners=PLAINTEXT://:P` is accepted and advertises the canonical host name;
//! `PLAINTEXT://0.0.0.0:P` without an advertised listener is refused with "advertised.listeners cannot
//! use the nonroutable meta-address 0.0.0.0. Use a routable IP address."; an SSL listener is served by
//! Kafka and refused by strom (not served yet) at validation instead of failing at bind.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use strom::config::listeners::canonical_host_name;

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local addr").port()
}

/// Starts strom with `--config FILE` in a directory of its own; stdout dropped, stderr piped.
fn spawn(config: &Path, cwd: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_strom"))
        .arg("--config")
        .arg(config)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strom")
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut s);
    }
    s
}

/// Runs strom on `properties` and expects it to refuse: exit code 2 and one line on stderr.
fn refused(properties: &str) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("server.properties");
    std::fs::write(&path, properties).expect("write config");
    let mut child = spawn(&path, dir.path());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("strom started with {properties:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = stderr_of(&mut child);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(!dir.path().join("data").exists(), "nothing created");
    stderr
}

/// A strom process serving until dropped (killed by its own pid).
struct Running {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Running {
    /// Stops strom (SIGKILL to its own pid) and returns what it wrote on stderr.
    fn stop_and_stderr(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        stderr_of(&mut self.child)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts strom on `properties` (`{data}` replaced by a fresh data directory) and waits until `port`
/// on 127.0.0.1 accepts connections.
async fn serving(properties: &str, port: u16) -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = properties.replace("{data}", &dir.path().join("data").display().to_string());
    let path = dir.path().join("server.properties");
    std::fs::write(&path, text).expect("write config");
    let mut child = spawn(&path, dir.path());
    let started = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            break;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("strom exited ({status}): {}", stderr_of(&mut child));
        }
        assert!(started.elapsed() < Duration::from_secs(30), "strom did not listen on {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Running { child, _dir: dir }
}

async fn advertised_broker(port: u16) -> (String, i32) {
    let mut c = Client::connect(SocketAddr::from(([127, 0, 0, 1], port))).await.expect("connect");
    let m = metadata_all(&mut c).await;
    assert_eq!(m.brokers.len(), 1);
    (m.brokers[0].host.to_string(), m.brokers[0].port)
}

#[tokio::test]
async fn a_kafka_server_properties_with_an_all_interfaces_listener_serves_a_routable_host() {
    let port = free_port();
    let props = format!(
        "# Kafka's quickstart server.properties, trimmed\n\
         process.roles=broker,controller\n\
         node.id=1\n\
         controller.quorum.bootstrap.servers=localhost:9093\n\
         listeners=PLAINTEXT://:{port},CONTROLLER://:{cport}\n\
         inter.broker.listener.name=PLAINTEXT\n\
         controller.listener.names=CONTROLLER\n\
         listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL\n\
         num.network.threads=3\n\
         num.io.threads=8\n\
         log.dirs={{data}}\n\
         num.partitions=3\n\
         offsets.topic.replication.factor=1\n",
        cport = free_port()
    );
    let mut strom = serving(&props, port).await;
    let (host, advertised_port) = advertised_broker(port).await;
    assert_eq!(advertised_port, i32::from(port));
    // Kafka advertises InetAddress.getLocalHost().getCanonicalHostName() here (`localhost` on this
    // machine, as Java 17 printed it).
    assert_eq!(Some(host.clone()), canonical_host_name());
    let wildcard = host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_unspecified());
    assert!(!host.is_empty() && !wildcard, "{host}");
    // num.partitions from the file applies.
    let mut c = Client::connect(SocketAddr::from(([127, 0, 0, 1], port))).await.expect("connect");
    create_topic(&mut c, "defaulted", -1).await;
    let m = metadata_for(&mut c, &["defaulted"]).await;
    assert_eq!(m.topics[0].partitions.len(), 3);
    // One warning line lists the Kafka keys strom has no use for.
    let stderr = strom.stop_and_stderr();
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    for k in [
        "process.roles",
        "controller.quorum.bootstrap.servers",
        "inter.broker.listener.name",
        "num.io.threads",
    ] {
        assert!(warnings[0].contains(k), "{k}: {}", warnings[0]);
    }
}

#[tokio::test]
async fn each_named_listener_is_served_and_advertises_its_own_address() {
    let (internal, external) = (free_port(), free_port());
    let props = format!(
        "listeners=INTERNAL://127.0.0.1:{internal},EXTERNAL://127.0.0.1:{external}\n\
         advertised.listeners=EXTERNAL://broker.example:19092\n\
         listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:PLAINTEXT\n\
         log.dirs={{data}}\n"
    );
    let _strom = serving(&props, internal).await;
    assert_eq!(advertised_broker(internal).await, ("127.0.0.1".to_string(), i32::from(internal)));
    assert_eq!(advertised_broker(external).await, ("broker.example".to_string(), 19092));
}

#[test]
fn listeners_strom_cannot_serve_are_refused_with_exit_code_2_and_one_line() {
    // Kafka 4.4.0 serves SSL and SASL listeners; strom does not yet and says so before binding anything.
    for (value, protocol) in [
        ("SSL://127.0.0.1:19093", "SSL"),
        ("PLAINTEXT://127.0.0.1:19092,SASL_PLAINTEXT://127.0.0.1:19094", "SASL_PLAINTEXT"),
        ("SASL_SSL://127.0.0.1:19095", "SASL_SSL"),
    ] {
        let line = refused(&format!("listeners={value}\nlog.dirs=data\n"));
        assert!(line.contains("`listeners`") && line.contains(value) && line.contains(protocol), "{line}");
    }
    // Kafka 4.4.0: "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. Use a routable IP
    // address." (IllegalArgumentException from KafkaConfig, exit 1).
    let line = refused("listeners=PLAINTEXT://0.0.0.0:19092\nlog.dirs=data\n");
    assert!(line.contains("`listeners`") && line.contains("nonroutable meta-address 0.0.0.0"), "{line}");
    let line = refused(
        "listeners=PLAINTEXT://:19092\nadvertised.listeners=PLAINTEXT://0.0.0.0:19092\nlog.dirs=data\n",
    );
    assert!(line.contains("`advertised.listeners`") && line.contains("0.0.0.0"), "{line}");
    // Kafka 4.4.0: "No security protocol defined for listener INTERNAL".
    let line = refused("listeners=INTERNAL://127.0.0.1:19092\nlog.dirs=data\n");
    assert!(line.contains("INTERNAL") && line.contains("listener.security.protocol.map"), "{line}");
    // A key that is not Kafka's either: refused as before.
    let line = refused("listeners=PLAINTEXT://127.0.0.1:19092\nnum.partitons=3\n");
    assert!(line.contains("num.partitons"), "{line}");
}
