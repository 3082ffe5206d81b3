//! Running out of file descriptors. The strom binary runs under `RLIMIT_NOFILE` 256 (soft and hard, set
//! in the child before exec) with small segments, 300 extra client connections are opened, and every
//! partition takes appends that roll segment after segment.
//!
//! - With the default `max.connections` (derived from the limit), the broker serves only as many
//!   connections as leave the log its reserve, and every append succeeds.
//! - With `max.connections` set far above the limit, the connections exhaust the descriptors: appends
//!   may then fail, but only with the retriable KAFKA_STORAGE_ERROR, and once the connections close
//!   every partition writes again, without a restart, and holds exactly the acknowledged batches.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use kafka_protocol::messages::ApiVersionsRequest;

const LIMIT: u64 = 256;
const EXTRA_CONNECTIONS: usize = 300;
const PARTITIONS: i32 = 8;
const TOPIC: &str = "fds";
/// KAFKA_STORAGE_ERROR.
const STORAGE_ERROR: i16 = 56;

/// The strom binary under a low descriptor limit; its stderr lines are collected.
struct Strom {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Strom {
    fn start(env: &[(&str, &str)]) -> Strom {
        let data = tempfile::tempdir().expect("tempdir");
        let cwd = tempfile::tempdir().expect("tempdir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_strom"));
        cmd.args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .current_dir(cwd.path())
            .env("RUST_LOG", "info")
            .env("STROM_LOG_SEGMENT_BYTES", "4096")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                let limit = rustix::process::Rlimit { current: Some(LIMIT), maximum: Some(LIMIT) };
                rustix::process::setrlimit(rustix::process::Resource::Nofile, limit).map_err(Into::into)
            });
        }
        let mut child = cmd.spawn().expect("spawn strom");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.contains("strom started").then(|| field(&line, "listen")).flatten() {
                    let _ = tx.send(addr);
                }
                lines.lock().expect("log lock").push(line);
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).expect("strom started");
        Strom { child, addr: addr.parse().expect("listen address"), log, _dirs: (data, cwd) }
    }

    /// A `key=value` field of the first log line containing `what`.
    fn logged(&self, what: &str, key: &str) -> Option<String> {
        self.log.lock().expect("log lock").iter().find(|l| l.contains(what)).and_then(|l| field(l, key))
    }

    fn stop(mut self) {
        let pid = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let status = self.child.wait().expect("wait for strom");
        assert!(status.success(), "strom stopped cleanly: {status}");
    }
}

impl Drop for Strom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn field(line: &str, key: &str) -> Option<String> {
    let prefix = format!("{key}=");
    line.split_whitespace().find_map(|w| w.strip_prefix(&prefix)).map(str::to_string)
}

/// Opens `n` connections and sends each an ApiVersions request. Returns the connections (kept open)
/// and how many were answered within a few seconds. The others wait in the accept backlog, or, once
/// that is full, in the kernel's SYN retries (their connect times out here).
async fn crowd(addr: SocketAddr, n: usize) -> (Vec<Client>, usize) {
    let wait = Duration::from_secs(3);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        tasks.spawn(async move {
            let Ok(Ok(mut c)) = tokio::time::timeout(wait, Client::connect(addr)).await else {
                return None;
            };
            c.send(&ApiVersionsRequest::default(), 3).await;
            let answered = tokio::time::timeout(wait, c.read_frame()).await;
            Some((c, matches!(answered, Ok(Ok(Some(_))))))
        });
    }
    let (mut clients, mut answered) = (Vec::new(), 0);
    while let Some(r) = tasks.join_next().await {
        if let Some((c, ok)) = r.expect("connection task") {
            answered += usize::from(ok);
            clients.push(c);
        }
    }
    (clients, answered)
}

/// Ten records of 100 bytes: about 1.2 KB, so a 4 KB segment rolls every few batches.
fn batch(p: i32, round: usize) -> bytes::Bytes {
    let values: Vec<String> = (0..10).map(|i| format!("p{p} r{round} #{i} {}", "x".repeat(90))).collect();
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    record_batch(&refs)
}

#[tokio::test]
async fn with_the_default_cap_a_crowd_of_connections_leaves_the_log_its_descriptors() {
    let strom = Strom::start(&[]);
    let cap: usize =
        strom.logged("descriptor budget", "max_connections").expect("budget logged").parse().unwrap();
    assert!(cap < LIMIT as usize, "the cap ({cap}) keeps a reserve below the limit ({LIMIT})");
    let mut c = Client::connect(strom.addr).await.expect("connect");
    create_topic(&mut c, TOPIC, PARTITIONS).await;

    let (crowd, answered) = crowd(strom.addr, EXTRA_CONNECTIONS).await;
    assert_eq!(answered, cap - 1, "served connections stop at the cap (one is ours)");
    for round in 0..30 {
        for p in 0..PARTITIONS {
            let r = produce(&mut c, TOPIC, p, batch(p, round), 9).await;
            assert_eq!(r.error_code, 0, "partition {p}, round {round}: {:?}", r.error_message);
        }
    }
    drop(crowd);
    for p in 0..PARTITIONS {
        assert_eq!(produce(&mut c, TOPIC, p, batch(p, 30), 9).await.error_code, 0);
        assert_eq!(log_end(&mut c, TOPIC, p).await, 31 * 10);
    }
    println!("limit {LIMIT}: cap {cap} connections, {answered} of {EXTRA_CONNECTIONS} extra served; 31 rounds × {PARTITIONS} partitions written");
    drop(c);
    strom.stop();
}

#[tokio::test]
async fn after_running_out_of_descriptors_every_partition_writes_again() {
    // Far above the budget: the connections now take every descriptor there is.
    let strom = Strom::start(&[("STROM_MAX_CONNECTIONS", "1000")]);
    let mut c = Client::connect(strom.addr).await.expect("connect");
    create_topic(&mut c, TOPIC, PARTITIONS).await;
    let (crowd, answered) = crowd(strom.addr, EXTRA_CONNECTIONS).await;
    assert!(answered < EXTRA_CONNECTIONS, "the broker ran out of descriptors ({answered} served)");

    let mut acked = [0i64; PARTITIONS as usize];
    let (mut ok, mut refused) = (0, 0);
    for round in 0..30 {
        for p in 0..PARTITIONS {
            let r = produce(&mut c, TOPIC, p, batch(p, round), 9).await;
            match r.error_code {
                0 => {
                    assert_eq!(r.base_offset, acked[p as usize], "partition {p}: dense offsets");
                    acked[p as usize] += 10;
                    ok += 1;
                }
                STORAGE_ERROR => refused += 1,
                other => panic!("partition {p}: error {other} ({:?})", r.error_message),
            }
        }
    }

    // The connections go; every partition takes writes again, without a restart.
    drop(crowd);
    let started = Instant::now();
    for p in 0..PARTITIONS {
        loop {
            let r = produce(&mut c, TOPIC, p, batch(p, 99), 9).await;
            if r.error_code == 0 {
                assert_eq!(r.base_offset, acked[p as usize]);
                acked[p as usize] += 10;
                break;
            }
            assert_eq!(r.error_code, STORAGE_ERROR, "{:?}", r.error_message);
            assert!(started.elapsed() < Duration::from_secs(10), "partition {p} still refuses writes");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            log_end(&mut c, TOPIC, p).await,
            acked[p as usize],
            "partition {p} holds what was acknowledged"
        );
    }
    println!(
        "limit {LIMIT}, max.connections 1000: {answered} of {EXTRA_CONNECTIONS} extra served; \
         {ok} appends acknowledged, {refused} refused (retriable) while out of descriptors; \
         all writable {} ms after the connections closed",
        started.elapsed().as_millis()
    );
    drop(c);
    strom.stop();
}
