//! The broker-wide bound on request bytes (`queued.max.request.bytes`), over real TCP against the
//! `strom` binary run as a child process, so that its peak RSS (VmHWM) counts the broker alone and not
//! this test's own buffers.

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{
    create_topic, decode_response, framed, metadata_all, produce_request, raw_header, record_batch, Client,
    TestBroker,
};
use kafka_protocol::messages::{ApiVersionsRequest, ProduceRequest, ProduceResponse};
use tokio::sync::oneshot;

/// Connections that each send one large Produce at once.
const CLIENTS: usize = 50;
/// Size of each of those Produce requests in bytes (about 52 MB, below socket.request.max.bytes).
const REQUEST_BYTES: usize = 52_000_000;
/// Peak RSS the broker may reach while serving them, in kB.
const PEAK_LIMIT_KB: u64 = 600 * 1024;
/// Longest a Metadata request on another connection may wait meanwhile.
const METADATA_WITHIN: Duration = Duration::from_secs(5);
/// MESSAGE_TOO_LARGE: a batch above the topic's max.message.bytes.
const MESSAGE_TOO_LARGE: i16 = 10;

/// The `strom` binary running on a fresh data directory; killed when dropped.
struct ChildBroker {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl ChildBroker {
    fn start() -> ChildBroker {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_strom"))
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            // No config/strom.yaml or STROM_* variables from the caller's environment.
            .current_dir(dir.path())
            .env_clear()
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the strom binary");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the log for the bound address, then keeps draining it so the broker never blocks on it.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listen=").nth(1) {
                    if let (Some(tx), Some(addr)) = (tx.take(), rest.split_whitespace().next()) {
                        let _ = tx.send(addr.to_string());
                    }
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).expect("strom logs its listen address");
        ChildBroker { child, addr: addr.parse().unwrap(), _dir: dir }
    }

    /// A field of the broker's /proc/<pid>/status, in kB.
    fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} not in the broker's status"))
    }
}

impl Drop for ChildBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One Produce request frame (size prefix included) of about `bytes`: a single batch to `topic-0`.
fn produce_frame(topic: &str, bytes: usize) -> Bytes {
    let value = vec![b'x'; bytes - 200];
    let batch = common::record_batch_with(
        &[value.as_slice()],
        None,
        common::Producer::NONE,
        kafka_protocol::records::Compression::None,
    );
    let frame = common::encode_request(&produce_request(topic, 0, batch, 1), 9, 7);
    assert!(frame.len().abs_diff(bytes) < 1000, "frame of {} bytes", frame.len());
    Bytes::from(frame)
}

/// Sends the shared frame on a new connection and returns the partition's error code, keeping the
/// connection open (so a broker that pins the request's buffer to the connection shows in its RSS).
async fn send_large(addr: SocketAddr, frame: Bytes) -> (i16, Client) {
    let mut client = Client::connect(addr).await.unwrap();
    client.write_raw(&frame).await.unwrap();
    let (corr, resp) = recv_produce(&mut client).await;
    assert_eq!(corr, 7, "correlation id");
    assert_eq!(resp.responses.len(), 1);
    assert_eq!(resp.responses[0].partition_responses.len(), 1);
    (resp.responses[0].partition_responses[0].error_code, client)
}

async fn recv_produce(client: &mut Client) -> (i32, ProduceResponse) {
    let frame = client.read_frame().await.unwrap().expect("a Produce answer, not a close");
    let (h, resp) = decode_response::<ProduceRequest>(frame, 9);
    (h.correlation_id, resp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_52mb_produces_keep_the_broker_bounded_and_serving() {
    let broker = ChildBroker::start();
    let mut admin = Client::connect(broker.addr).await.unwrap();
    create_topic(&mut admin, "big", 1).await;
    // A small produce works and the broker is warm before the baseline is taken.
    let ok = admin.call(&produce_request("big", 0, record_batch(&["a"]), 1), 9).await;
    assert_eq!(ok.responses[0].partition_responses[0].error_code, 0);
    let baseline = broker.status_kb("VmRSS:");

    let frame = produce_frame("big", REQUEST_BYTES);
    let answered = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let (frame, answered) = (frame.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            let out = send_large(broker.addr, frame).await;
            answered.fetch_add(1, Ordering::SeqCst);
            out
        }));
    }

    // Meanwhile, Metadata on other connections is answered promptly, again and again.
    let mut slowest = Duration::ZERO;
    let mut checks_while_busy = 0;
    tokio::time::sleep(Duration::from_millis(300)).await;
    while answered.load(Ordering::SeqCst) < CLIENTS {
        let started = Instant::now();
        let metadata = async {
            let mut fresh = Client::connect(broker.addr).await.unwrap();
            metadata_all(&mut fresh).await
        };
        let resp = tokio::time::timeout(METADATA_WITHIN, metadata)
            .await
            .unwrap_or_else(|_| panic!("Metadata not answered within {METADATA_WITHIN:?} under load"));
        assert_eq!(resp.brokers.len(), 1);
        slowest = slowest.max(started.elapsed());
        if answered.load(Ordering::SeqCst) < CLIENTS {
            checks_while_busy += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(checks_while_busy > 0, "no Metadata request overlapped the large ones");

    let mut open = Vec::new();
    for t in tasks {
        let (code, client) = tokio::time::timeout(Duration::from_secs(300), t)
            .await
            .expect("every large Produce is answered")
            .unwrap();
        assert_eq!(code, MESSAGE_TOO_LARGE, "a 52 MB batch is refused per partition");
        open.push(client);
    }
    let peak = broker.status_kb("VmHWM:");
    let after = broker.status_kb("VmRSS:");
    eprintln!(
        "{CLIENTS} x {REQUEST_BYTES} B Produce: broker RSS baseline {baseline} kB, peak {peak} kB, \
         after {after} kB with the connections open; slowest Metadata meanwhile {slowest:?} \
         ({checks_while_busy} checks while busy)"
    );
    assert!(peak <= PEAK_LIMIT_KB, "broker peak RSS {peak} kB > {PEAK_LIMIT_KB} kB");
    // The request buffers are released once answered, not kept by their (still open) connections.
    assert!(after <= baseline + 64 * 1024, "RSS {after} kB after, baseline {baseline} kB");

    // The connections that sent the large requests are still served.
    for c in open.iter_mut().take(3) {
        assert_eq!(metadata_all(c).await.brokers.len(), 1);
    }
    assert_eq!(metadata_all(&mut admin).await.brokers.len(), 1);
}

/// Sizes for the in-process tests: requests of up to 4 MiB, a budget of 8 MiB (a main lane of 7 MiB
/// and a reserve of 1 MiB for requests of up to 64 KiB).
const SMALL_BUDGET: &[(&str, &str)] =
    &[("socket.request.max.bytes", "4194304"), ("queued.max.request.bytes", "8388608")];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_requests_are_answered_while_large_ones_hold_the_budget_and_those_are_served_in_turn() {
    let broker = TestBroker::start_with(SMALL_BUDGET).await;
    let mut admin = broker.client().await;
    create_topic(&mut admin, "big", 1).await;
    let frame = produce_frame("big", 4_000_000);
    // Three large requests, each sent in part: the first holds 4 MB of the 7 MiB lane, the second
    // waits for the rest of the lane, the third waits behind it.
    let mut large = Vec::new();
    for _ in 0..3 {
        let (go, wait) = oneshot::channel::<()>();
        let (frame, addr) = (frame.clone(), broker.addr());
        let task = tokio::spawn(async move {
            let mut c = Client::connect(addr).await.unwrap();
            let half = frame.len() / 2;
            c.write_raw(&frame[..half]).await.unwrap();
            wait.await.unwrap();
            c.write_raw(&frame[half..]).await.unwrap();
            recv_produce(&mut c).await
        });
        large.push((go, task));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Small requests on other connections do not queue behind them.
    for round in 0..20 {
        let mut c = broker.client().await;
        let small = async {
            assert_eq!(metadata_all(&mut c).await.brokers.len(), 1);
            c.call(&ApiVersionsRequest::default(), 2).await
        };
        let versions = tokio::time::timeout(Duration::from_secs(2), small)
            .await
            .unwrap_or_else(|_| panic!("round {round}: small requests wait behind the large ones"));
        assert_eq!(versions.error_code, 0);
    }
    assert!(large.iter().all(|(_, t)| !t.is_finished()), "no large request is complete yet");
    // Completed one by one, each is read and answered in turn: the small requests took nothing from
    // the lane the queued ones wait for.
    for (i, (go, task)) in large.into_iter().enumerate() {
        go.send(()).unwrap();
        let (corr, resp) = tokio::time::timeout(Duration::from_secs(30), task)
            .await
            .unwrap_or_else(|_| panic!("large request {i} not answered"))
            .unwrap();
        assert_eq!(corr, 7);
        assert_eq!(resp.responses[0].partition_responses[0].error_code, MESSAGE_TOO_LARGE);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_refused_from_its_header_takes_no_budget() {
    // A 4 MiB budget: a main lane of 3.5 MiB, too little for two 3 MB requests at once.
    let broker = TestBroker::start_with(&[
        ("socket.request.max.bytes", "4194304"),
        ("queued.max.request.bytes", "4194304"),
    ])
    .await;
    let mut admin = broker.client().await;
    create_topic(&mut admin, "big", 1).await;
    let batch = common::record_batch_with(
        &[vec![b'x'; 3_000_000].as_slice()],
        None,
        common::Producer::NONE,
        kafka_protocol::records::Compression::None,
    );
    for (what, key, version) in [("unknown api key 999", 999i16, 0i16), ("Produce v99", 0, 99)] {
        let mut payload = raw_header(key, version, 5, 1).to_vec();
        payload.resize(3_000_000, 0);
        let refused = framed(&payload);
        let mut c = broker.client().await;
        c.write_raw(&refused[..1_000_000]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Meanwhile a 3 MB Produce on another connection is read and answered.
        let mut p = broker.client().await;
        let resp = tokio::time::timeout(
            Duration::from_secs(10),
            p.call(&produce_request("big", 0, batch.clone(), 1), 9),
        )
        .await
        .unwrap_or_else(|_| panic!("{what}: the refused request holds budget"));
        assert_eq!(resp.responses[0].partition_responses[0].error_code, MESSAGE_TOO_LARGE);
        // The refused request is read to its end, unbuffered, and its connection closed.
        let _ = c.write_raw(&refused[1_000_000..]).await;
        c.expect_closed(what).await;
    }
    assert_eq!(metadata_all(&mut admin).await.brokers.len(), 1);
}
