//! Hostile input over real TCP: the broker (running in this process) must never die, never grow
//! without bound, and keep answering well-behaved clients.
//!
//! - frames whose collection counts claim billions of elements (the bound carried in
//!   patches/kafka-protocol; without it the process aborts on the allocation),
//! - negative and oversized frame sizes, and a size that is claimed but never sent,
//! - unknown API keys and unserved versions,
//! - a deterministic fuzz loop of >= 100,000 mutated and random frames, each checked against an
//!   oracle that decodes it the way the broker does: a decodable request of a served version must
//!   be answered (correlation id and version checked), anything else must close the connection.
//!
//! The tests in this file share one process-wide RSS measurement, so they run one at a time.
//! Set STROM_FUZZ_SEED to replay the fuzz loop with another seed.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use common::{
    decode_response_as, encode_request_payload, framed, peak_rss_kb, put_string, put_uvarint, raw_header,
    reset_peak_rss, rss_kb, s, tn, Client, TestBroker,
};
use kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsTopic,
};
use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Request};
use strom::api::versions::{is_served, SUPPORTED};
use uuid::Uuid;

/// Allowed RSS growth of the whole process over the test's baseline.
const RSS_BUDGET_KB: u64 = 200 * 1024;

static SERIAL: Mutex<()> = Mutex::new(());
static PANICS: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();

/// Runs one test body on its own runtime, one test at a time, and fails it if any thread of the
/// process (a broker task included) panicked meanwhile.
fn run_serial<F: std::future::Future<Output = ()>>(body: F) {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
    let before = PANICS.load(Ordering::SeqCst);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(body);
    drop(rt);
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        before,
        "a thread panicked while the broker was serving (see stderr)"
    );
}

/// A well-behaved client on a fresh connection still gets a Metadata answer.
async fn assert_serving(broker: &TestBroker, when: &str) {
    let mut c =
        Client::connect(broker.addr()).await.unwrap_or_else(|e| panic!("{when}: cannot connect: {e}"));
    let resp = c.call(&MetadataRequest::default().with_topics(None), 12).await;
    assert_eq!(resp.brokers.len(), 1, "{when}");
    assert_eq!(resp.brokers[0].port, i32::from(broker.addr().port()), "{when}");
}

fn assert_rss_bounded(baseline_kb: u64, when: &str) {
    let now = rss_kb();
    assert!(
        now <= baseline_kb + RSS_BUDGET_KB,
        "{when}: RSS grew from {baseline_kb} kB to {now} kB (budget +{RSS_BUDGET_KB} kB)"
    );
}

/// Sends one frame on a new connection and expects the broker to close it without answering.
async fn expect_closed_after(broker: &TestBroker, bytes: &[u8], what: &str) {
    let mut c = Client::connect(broker.addr()).await.unwrap();
    // The broker may close (and reset) while we are still writing; that is fine.
    let _ = c.write_raw(bytes).await;
    c.expect_closed(what).await;
}

/// After sending `frame` (size prefix included): the broker either closes the connection or answers
/// it (with its correlation id); it neither hangs nor answers something else.
async fn closed_or_answered(c: &mut Client, frame: &[u8], what: &str) {
    match c.read_frame().await {
        Ok(None) => {}
        Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "{what}: neither answered nor closed"),
        Ok(Some(f)) => {
            assert_eq!(f.get(..4), frame.get(8..12), "{what}: answered with another correlation id")
        }
    }
}

fn payload_with_body(api_key: ApiKey, version: i16, body: &[u8]) -> Vec<u8> {
    let mut p = raw_header(api_key as i16, version, 9, api_key.request_header_version(version));
    p.put_slice(body);
    framed(&p)
}

fn count_i32(n: i32) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

fn count_uvarint(n: u32) -> Vec<u8> {
    let mut b = BytesMut::new();
    put_uvarint(&mut b, n);
    b.to_vec()
}

fn is_flexible(key: ApiKey, version: i16) -> bool {
    key.request_header_version(version) >= 2
}

/// A collection count claiming far more elements than the frame holds, in the version's encoding.
fn huge_count(key: ApiKey, version: i16, variant: usize) -> Vec<u8> {
    if is_flexible(key, version) {
        count_uvarint([u32::MAX, 0x8000_0000, i32::MAX as u32][variant % 3])
    } else {
        count_i32([i32::MAX, 0x4000_0000, 0x0100_0000][variant % 3])
    }
}

fn string(key: ApiKey, version: i16, v: &str) -> Vec<u8> {
    let mut b = BytesMut::new();
    if is_flexible(key, version) {
        put_uvarint(&mut b, v.len() as u32 + 1);
        b.put_slice(v.as_bytes());
    } else {
        put_string(&mut b, Some(v));
    }
    b.to_vec()
}

/// Hand-made frames whose collection counts claim billions of elements.
fn huge_count_frames() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let pad = [0u8; 4];
    for variant in 0..3 {
        for v in 0..=13 {
            let k = ApiKey::Metadata;
            // topics count, then 4 bytes: an 8-byte body (or shorter for varints).
            let mut body = huge_count(k, v, variant);
            body.extend_from_slice(&pad);
            out.push((
                format!("Metadata v{v} topics count (variant {variant})"),
                payload_with_body(k, v, &body),
            ));
        }
        for v in 2..=7 {
            let k = ApiKey::CreateTopics;
            let mut body = huge_count(k, v, variant);
            body.extend_from_slice(&pad);
            out.push((format!("CreateTopics v{v} topics count"), payload_with_body(k, v, &body)));
            // One topic whose assignments, then whose configs, claim billions.
            let one = if is_flexible(k, v) { count_uvarint(2) } else { count_i32(1) };
            let empty = if is_flexible(k, v) { count_uvarint(1) } else { count_i32(0) };
            let head =
                [one.clone(), string(k, v, "t"), 1i32.to_be_bytes().to_vec(), 1i16.to_be_bytes().to_vec()]
                    .concat();
            let assignments = [head.clone(), huge_count(k, v, variant), pad.to_vec()].concat();
            out.push((format!("CreateTopics v{v} assignments count"), payload_with_body(k, v, &assignments)));
            let configs = [head.clone(), empty.clone(), huge_count(k, v, variant), pad.to_vec()].concat();
            out.push((format!("CreateTopics v{v} configs count"), payload_with_body(k, v, &configs)));
            let broker_ids =
                [head, one.clone(), 0i32.to_be_bytes().to_vec(), huge_count(k, v, variant), pad.to_vec()]
                    .concat();
            out.push((format!("CreateTopics v{v} broker_ids count"), payload_with_body(k, v, &broker_ids)));
        }
        for v in 1..=6 {
            let k = ApiKey::DeleteTopics;
            let mut body = huge_count(k, v, variant);
            body.extend_from_slice(&pad);
            out.push((format!("DeleteTopics v{v} count"), payload_with_body(k, v, &body)));
        }
        for v in 1..=4 {
            let k = ApiKey::DescribeConfigs;
            let mut body = huge_count(k, v, variant);
            body.extend_from_slice(&pad);
            out.push((format!("DescribeConfigs v{v} resources count"), payload_with_body(k, v, &body)));
            let one = if is_flexible(k, v) { count_uvarint(2) } else { count_i32(1) };
            let keys = [one, vec![2u8], string(k, v, "t"), huge_count(k, v, variant), pad.to_vec()].concat();
            out.push((
                format!("DescribeConfigs v{v} configuration_keys count"),
                payload_with_body(k, v, &keys),
            ));
        }
        for v in 0..=3 {
            let k = ApiKey::CreatePartitions;
            let mut body = huge_count(k, v, variant);
            body.extend_from_slice(&pad);
            out.push((format!("CreatePartitions v{v} topics count"), payload_with_body(k, v, &body)));
            let one = if is_flexible(k, v) { count_uvarint(2) } else { count_i32(1) };
            let assignments = [
                one.clone(),
                string(k, v, "t"),
                5i32.to_be_bytes().to_vec(),
                huge_count(k, v, variant),
                pad.to_vec(),
            ]
            .concat();
            out.push((
                format!("CreatePartitions v{v} assignments count"),
                payload_with_body(k, v, &assignments),
            ));
            let ids = [
                one.clone(),
                string(k, v, "t"),
                5i32.to_be_bytes().to_vec(),
                one,
                huge_count(k, v, variant),
                pad.to_vec(),
            ]
            .concat();
            out.push((format!("CreatePartitions v{v} broker_ids count"), payload_with_body(k, v, &ids)));
        }
        for v in 3..=4 {
            // Compact strings claiming 4 GB, and a tagged-field block claiming 4 billion fields.
            let k = ApiKey::ApiVersions;
            let body = [count_uvarint(u32::MAX), pad.to_vec()].concat();
            out.push((
                format!("ApiVersions v{v} client_software_name length"),
                payload_with_body(k, v, &body),
            ));
            let body = [count_uvarint(1), count_uvarint(1), count_uvarint(u32::MAX), pad.to_vec()].concat();
            out.push((format!("ApiVersions v{v} tagged field count"), payload_with_body(k, v, &body)));
            let body = [
                count_uvarint(1),
                count_uvarint(1),
                count_uvarint(1),
                count_uvarint(0),
                count_uvarint(u32::MAX),
            ]
            .concat();
            out.push((format!("ApiVersions v{v} tagged field size"), payload_with_body(k, v, &body)));
        }
        // A request header whose tagged fields claim billions.
        let mut p = BytesMut::new();
        p.put_i16(ApiKey::Metadata as i16);
        p.put_i16(12);
        p.put_i32(1);
        put_string(&mut p, None);
        put_uvarint(&mut p, [u32::MAX, 0x8000_0000, i32::MAX as u32][variant]);
        p.put_slice(&pad);
        out.push(("header v2 tagged field count".into(), framed(&p)));
        // A client id longer than the frame.
        let mut p = BytesMut::new();
        p.put_i16(ApiKey::Metadata as i16);
        p.put_i16(1);
        p.put_i32(1);
        p.put_i16(i16::MAX);
        p.put_slice(&pad);
        out.push(("header client id length".into(), framed(&p)));
    }
    out
}

#[test]
fn huge_collection_counts_are_refused_without_allocating() {
    run_serial(async {
        let broker = TestBroker::start().await;
        assert_serving(&broker, "before").await;
        let baseline = rss_kb();
        let peak_tracked = reset_peak_rss();
        let frames = huge_count_frames();
        assert!(frames.len() > 150);
        // Most on their own connection, some after a good request on the same connection.
        for (i, (what, bytes)) in frames.iter().enumerate() {
            if i % 3 == 0 {
                let mut c = Client::connect(broker.addr()).await.unwrap();
                let good = common::encode_request(&MetadataRequest::default(), 1, 5);
                let (w, answers, r) = c.pipeline(&[good, bytes.clone()].concat(), 1).await;
                w.unwrap();
                r.unwrap();
                assert_eq!(answers.len(), 1, "{what}: the good request before it is answered");
                closed_or_answered(&mut c, bytes, what).await;
            } else {
                let mut c = Client::connect(broker.addr()).await.unwrap();
                let _ = c.write_raw(bytes).await;
                closed_or_answered(&mut c, bytes, what).await;
            }
            if i % 20 == 0 {
                assert_rss_bounded(baseline, what);
            }
        }
        assert_serving(&broker, "after huge counts").await;
        assert_rss_bounded(baseline, "after huge counts");
        if peak_tracked {
            let peak = peak_rss_kb();
            assert!(peak <= baseline + RSS_BUDGET_KB, "peak RSS {peak} kB, baseline {baseline} kB");
        }
        broker.stop().await;
    });
}

#[test]
fn counts_that_fit_the_frame_cost_memory_in_proportion_to_the_frame() {
    // The bound lets a count up to the bytes remaining through; a 1 MB frame of empty topic names
    // (2 bytes each) really decodes to 512k topics. That must stay proportionate and be released.
    run_serial(async {
        let broker = TestBroker::start().await;
        assert_serving(&broker, "before").await;
        let baseline = rss_kb();
        let peak_tracked = reset_peak_rss();
        let n: i32 = 512 * 1024;
        let mut body = BytesMut::new();
        body.put_i32(n);
        body.put_bytes(0, 2 * n as usize);
        let frame = payload_with_body(ApiKey::Metadata, 0, &body);
        for round in 0..3 {
            let mut c = Client::connect(broker.addr()).await.unwrap();
            let (w, answers, r) = c.pipeline(&frame, 1).await;
            w.unwrap();
            r.unwrap();
            assert_eq!(answers.len(), 1, "round {round}: a decodable request is answered");
            let (h, resp) = decode_response_as::<MetadataResponse>(ApiKey::Metadata, answers[0].clone(), 0);
            assert_eq!(h.correlation_id, 9);
            // 512k copies of the empty name are one topic, refused as an illegal name.
            assert_eq!(resp.topics.len(), 1);
            assert_eq!(resp.topics[0].error_code, 17);
            // Claiming one element more than the bytes present is refused.
            let mut bad = BytesMut::new();
            bad.put_i32(2 * n + 1);
            bad.put_bytes(0, 2 * n as usize);
            expect_closed_after(
                &broker,
                &payload_with_body(ApiKey::Metadata, 0, &bad),
                "count above remaining",
            )
            .await;
        }
        assert_serving(&broker, "after").await;
        assert_rss_bounded(baseline, "after 1 MB frames");
        if peak_tracked {
            let peak = peak_rss_kb();
            eprintln!("1 MB frames of 512k empty topic names: RSS {baseline} kB, peak {peak} kB");
            assert!(peak <= baseline + RSS_BUDGET_KB, "peak RSS {peak} kB, baseline {baseline} kB");
        }
        broker.stop().await;
    });
}

#[test]
fn negative_and_oversized_frame_sizes_close_the_connection() {
    run_serial(async {
        let broker = TestBroker::start_with(&[("socket.request.max.bytes", "1024")]).await;
        assert_serving(&broker, "before").await;
        let baseline = rss_kb();
        let peak_tracked = reset_peak_rss();
        for size in [-1i32, i32::MIN, -1024, 1025, 4096, 100 * 1024 * 1024, i32::MAX] {
            let mut bytes = size.to_be_bytes().to_vec();
            bytes.extend_from_slice(&[0u8; 16]);
            expect_closed_after(&broker, &bytes, &format!("size {size}")).await;
            // A size on its own, with nothing after it.
            expect_closed_after(&broker, &size.to_be_bytes(), &format!("bare size {size}")).await;
        }
        // Exactly socket.request.max.bytes is still served: Metadata v1 with a client id that pads
        // the frame to 1024 bytes.
        let client_id = "c".repeat(1024 - (2 + 2 + 4 + 2) - 4);
        let payload = encode_request_payload(&MetadataRequest::default(), 1, 31, Some(&client_id));
        assert_eq!(payload.len(), 1024);
        let mut c = Client::connect(broker.addr()).await.unwrap();
        c.write_raw(&framed(&payload)).await.unwrap();
        let (h, _) = c.recv::<MetadataRequest>(1).await;
        assert_eq!(h.correlation_id, 31);
        // One byte more is refused.
        let client_id = "c".repeat(1024 - (2 + 2 + 4 + 2) - 4 + 1);
        let payload = encode_request_payload(&MetadataRequest::default(), 1, 32, Some(&client_id));
        c.write_raw(&framed(&payload)).await.unwrap();
        c.expect_closed("1025-byte request").await;

        assert_serving(&broker, "after bad sizes").await;
        assert_rss_bounded(baseline, "after bad sizes");
        if peak_tracked {
            assert!(peak_rss_kb() <= baseline + 16 * 1024, "nothing was allocated for the claimed sizes");
        }
        broker.stop().await;
    });
}

#[test]
fn a_claimed_but_unsent_frame_costs_nothing() {
    run_serial(async {
        // Default socket.request.max.bytes: 100 MB.
        let broker = TestBroker::start().await;
        assert_serving(&broker, "before").await;
        let baseline = rss_kb();
        let peak_tracked = reset_peak_rss();
        let mut idle = Vec::new();
        for _ in 0..20 {
            let mut c = Client::connect(broker.addr()).await.unwrap();
            let mut bytes = (100 * 1024 * 1024i32).to_be_bytes().to_vec();
            bytes.extend_from_slice(&encode_request_payload(&MetadataRequest::default(), 1, 1, Some("x")));
            c.write_raw(&bytes).await.unwrap();
            idle.push(c);
        }
        // Give the broker time to read what was sent.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_serving(&broker, "with 20 connections each claiming 100 MB").await;
        let grown = rss_kb().saturating_sub(baseline);
        assert!(grown < 64 * 1024, "20 claims of 100 MB cost {grown} kB");
        if peak_tracked {
            let peak = peak_rss_kb().saturating_sub(baseline);
            assert!(peak < 64 * 1024, "20 claims of 100 MB peaked at +{peak} kB");
        }
        drop(idle);
        assert_serving(&broker, "after").await;
        broker.stop().await;
    });
}

#[test]
fn unknown_apis_and_unserved_versions_close_the_connection() {
    run_serial(async {
        let broker = TestBroker::start().await;
        let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
        for key in [999i16, -1, i16::MAX, i16::MIN, 93, 1000] {
            let mut p = raw_header(key, 0, 1, 1);
            p.put_i32(0);
            cases.push((format!("api key {key}"), framed(&p)));
        }
        for v in [99i16, 14, -1, i16::MAX, i16::MIN] {
            let mut p = raw_header(ApiKey::Metadata as i16, v, 1, 2);
            p.put_u8(1);
            p.put_u8(0);
            cases.push((format!("Metadata v{v}"), framed(&p)));
        }
        // Below the served range, and APIs kafka-protocol knows but strom does not serve.
        let below: Vec<(ApiKey, i16)> =
            SUPPORTED.iter().filter(|(_, lo, _)| *lo > 0).map(|(k, lo, _)| (*k, lo - 1)).collect();
        assert!(!below.is_empty());
        for (k, v) in below {
            let mut p = raw_header(k as i16, v, 1, k.request_header_version(v));
            p.put_i32(0);
            cases.push((format!("{k:?} v{v}"), framed(&p)));
        }
        for k in [ApiKey::Produce, ApiKey::Fetch, ApiKey::SaslHandshake, ApiKey::DescribeTopicPartitions] {
            if strom::api::versions::served_range(k).is_none() {
                let mut p = raw_header(k as i16, 1, 1, 1);
                p.put_i32(0);
                cases.push((format!("unserved {k:?}"), framed(&p)));
            }
        }
        // Frames shorter than a request header, and an empty frame.
        for len in [0usize, 1, 3, 7] {
            cases.push((format!("{len}-byte frame"), framed(&[0u8; 7][..len])));
        }
        for (what, bytes) in &cases {
            expect_closed_after(&broker, bytes, what).await;
            // And after a good request on the same connection: the good one is answered first.
            let mut c = Client::connect(broker.addr()).await.unwrap();
            let good = common::encode_request(&ApiVersionsRequest::default(), 0, 77);
            let (w, answers, r) = c.pipeline(&[good, bytes.clone()].concat(), 1).await;
            w.unwrap();
            r.unwrap();
            assert_eq!(answers.len(), 1, "{what}");
            c.expect_closed(what).await;
        }
        assert_serving(&broker, "after unknown apis").await;
        broker.stop().await;
    });
}

// ---------------------------------------------------------------------------------------------
// The fuzz loop.

/// SplitMix64: small, deterministic, good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// What the broker must do with a frame, judged by decoding it the way the broker does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Answered: a response of `key` at `version` carrying `correlation_id`.
    Answer { key: ApiKey, version: i16, correlation_id: i32 },
    /// The connection is closed without an answer.
    Close,
    /// A decodable request whose outcome this oracle does not pin down (an API it has no rule for,
    /// or Produce with acks=0, which gets no answer, or a close as Kafka does on errors): answered
    /// with the right correlation id, unanswered, or closed are all accepted.
    Either { key: ApiKey, version: i16, correlation_id: i32 },
}

/// The APIs for which a decodable request of a served version must be answered. (Kafka never closes
/// a connection over a request it could parse.)
fn always_answered(key: ApiKey) -> bool {
    matches!(
        key,
        ApiKey::ApiVersions
            | ApiKey::Metadata
            | ApiKey::CreateTopics
            | ApiKey::DeleteTopics
            | ApiKey::CreatePartitions
            | ApiKey::DescribeConfigs
            | ApiKey::DescribeCluster
            | ApiKey::Produce
            | ApiKey::Fetch
            | ApiKey::ListOffsets
            | ApiKey::InitProducerId
            | ApiKey::OffsetForLeaderEpoch
    )
}

/// Whether answering would make the broker do slow work worth avoiding in a fuzz loop (creating
/// many partition directories, a Fetch long poll).
fn expensive(key: ApiKey, version: i16, body: &mut Bytes) -> bool {
    match key {
        ApiKey::CreateTopics => match CreateTopicsRequest::decode(body, version) {
            Ok(r) if !r.validate_only => {
                r.topics
                    .iter()
                    .map(|t| i64::from(t.num_partitions.max(t.assignments.len() as i32).max(1)))
                    .sum::<i64>()
                    > 16
                    || r.topics.len() > 4
            }
            _ => false,
        },
        ApiKey::CreatePartitions => match CreatePartitionsRequest::decode(body, version) {
            Ok(r) if !r.validate_only => r.topics.iter().any(|t| t.count > 16),
            _ => false,
        },
        ApiKey::Fetch => FetchRequest::decode(body, version).map(|r| r.max_wait_ms > 50).unwrap_or(false),
        _ => false,
    }
}

/// Decodes `payload` (a frame without its size) exactly as src/api/mod.rs does and says what the
/// broker must do with it; `None` when the frame is too expensive to send.
fn oracle(payload: &[u8]) -> Option<Expect> {
    if payload.len() < 8 {
        return Some(Expect::Close);
    }
    let raw_key = i16::from_be_bytes([payload[0], payload[1]]);
    let version = i16::from_be_bytes([payload[2], payload[3]]);
    let correlation_id = i32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
    let Ok(key) = ApiKey::try_from(raw_key) else { return Some(Expect::Close) };
    if !is_served(key, version) {
        if key == ApiKey::ApiVersions {
            return Some(Expect::Answer { key, version: 0, correlation_id });
        }
        return Some(Expect::Close);
    }
    let mut buf = Bytes::copy_from_slice(payload);
    if RequestHeader::decode(&mut buf, key.request_header_version(version)).is_err() {
        return Some(Expect::Close);
    }
    let body = buf.clone();
    if common::decode_any_request(key, version, &mut buf).is_err() {
        return Some(Expect::Close);
    }
    if expensive(key, version, &mut body.clone()) {
        return None;
    }
    let acks_zero = key == ApiKey::Produce
        && ProduceRequest::decode(&mut body.clone(), version).map(|r| r.acks == 0).unwrap_or(false);
    if !always_answered(key) || acks_zero {
        return Some(Expect::Either { key, version, correlation_id });
    }
    Some(Expect::Answer { key, version, correlation_id })
}

/// Checks that `frame` is a strictly decodable response of `key` at `version` carrying
/// `correlation_id`; returns why not.
fn check_answer(key: ApiKey, version: i16, correlation_id: i32, frame: Bytes) -> Result<(), String> {
    let header = common::decode_any_response(key, version, frame)?;
    if header.correlation_id != correlation_id {
        return Err(format!("correlation id {} instead of {correlation_id}", header.correlation_id));
    }
    Ok(())
}

/// A valid request payload and the length of its header.
struct Base {
    payload: Vec<u8>,
    header_len: usize,
}

fn base<R: Request>(req: &R, version: i16) -> Base {
    let full = encode_request_payload(req, version, 1, Some("fuzz"));
    let key = ApiKey::try_from(R::KEY).unwrap();
    let header_len = 8 + 2 + 4 + usize::from(key.request_header_version(version) >= 2);
    Base { payload: full.to_vec(), header_len }
}

/// A record batch (magic 2) of two small records.
fn record_batch() -> Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = (0..2)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: -1,
            timestamp: 1_700_000_000_000 + i,
            key: Some(Bytes::from_static(b"key")),
            value: Some(Bytes::from_static(b"value")),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions { version: 2, compression: Compression::None },
    )
    .expect("encode record batch");
    buf.freeze()
}

/// Valid requests of every served (api, version) this file knows, with varied content.
fn bases(topic_id: Uuid) -> Vec<Base> {
    let mut out = Vec::new();
    for &(key, lo, hi) in SUPPORTED {
        for v in lo..=hi {
            match key {
                ApiKey::ApiVersions => {
                    out.push(base(&ApiVersionsRequest::default(), v));
                    if v >= 3 {
                        out.push(base(
                            &ApiVersionsRequest::default()
                                .with_client_software_name(s("fuzz-client"))
                                .with_client_software_version(s("1.0.0")),
                            v,
                        ));
                    }
                }
                ApiKey::Metadata => {
                    let named = |names: &[&str]| {
                        Some(
                            names
                                .iter()
                                .map(|n| MetadataRequestTopic::default().with_name(Some(tn(n))))
                                .collect(),
                        )
                    };
                    let mut reqs = vec![
                        MetadataRequest::default(),
                        MetadataRequest::default().with_topics(named(&["fz-0"])),
                        MetadataRequest::default().with_topics(named(&["fz-1", "missing", "bad/name"])),
                    ];
                    if v >= 1 {
                        reqs.push(MetadataRequest::default().with_topics(None));
                    }
                    if v >= 10 {
                        reqs.push(MetadataRequest::default().with_topics(Some(vec![
                            MetadataRequestTopic::default().with_name(None).with_topic_id(topic_id),
                            MetadataRequestTopic::default().with_name(None).with_topic_id(Uuid::from_u128(7)),
                        ])));
                    }
                    for mut r in reqs {
                        if v >= 4 {
                            r = r.with_allow_auto_topic_creation(false);
                        }
                        if v >= 8 {
                            r = r.with_include_topic_authorized_operations(true);
                        }
                        if (8..=10).contains(&v) {
                            r = r.with_include_cluster_authorized_operations(true);
                        }
                        out.push(base(&r, v));
                    }
                }
                ApiKey::CreateTopics => {
                    let cfg = |k: &str, val: &str| {
                        CreatableTopicConfig::default().with_name(s(k)).with_value(Some(s(val)))
                    };
                    let plain = CreatableTopic::default()
                        .with_name(tn("fz-new"))
                        .with_num_partitions(2)
                        .with_replication_factor(-1)
                        .with_configs(vec![cfg("retention.ms", "1000"), cfg("cleanup.policy", "compact")]);
                    let assigned = CreatableTopic::default()
                        .with_name(tn("fz-assigned"))
                        .with_num_partitions(-1)
                        .with_replication_factor(-1)
                        .with_assignments(vec![CreatableReplicaAssignment::default()
                            .with_partition_index(0)
                            .with_broker_ids(vec![BrokerId(1)])]);
                    let existing = CreatableTopic::default()
                        .with_name(tn("fz-0"))
                        .with_num_partitions(1)
                        .with_replication_factor(1);
                    out.push(base(
                        &CreateTopicsRequest::default()
                            .with_topics(vec![plain.clone()])
                            .with_validate_only(true),
                        v,
                    ));
                    out.push(base(
                        &CreateTopicsRequest::default()
                            .with_topics(vec![assigned, existing])
                            .with_validate_only(true),
                        v,
                    ));
                    // Really creates (mutated names create more topics, bounded by `expensive`).
                    out.push(base(
                        &CreateTopicsRequest::default().with_topics(vec![plain.with_num_partitions(1)]),
                        v,
                    ));
                }
                ApiKey::DeleteTopics => {
                    if v >= 6 {
                        out.push(base(
                            &DeleteTopicsRequest::default().with_topics(vec![
                                DeleteTopicState::default().with_name(Some(tn("fz-absent"))),
                                DeleteTopicState::default().with_name(None).with_topic_id(Uuid::from_u128(9)),
                            ]),
                            v,
                        ));
                    } else {
                        out.push(base(
                            &DeleteTopicsRequest::default()
                                .with_topic_names(vec![tn("fz-absent"), tn("fz-new")]),
                            v,
                        ));
                    }
                }
                ApiKey::CreatePartitions => {
                    let t = CreatePartitionsTopic::default().with_name(tn("fz-1")).with_count(3);
                    out.push(base(
                        &CreatePartitionsRequest::default()
                            .with_topics(vec![t.clone().with_assignments(None)])
                            .with_validate_only(true),
                        v,
                    ));
                    out.push(base(
                        &CreatePartitionsRequest::default()
                            .with_topics(vec![t.with_assignments(Some(vec![
                                CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(1)]),
                                CreatePartitionsAssignment::default().with_broker_ids(vec![BrokerId(1)]),
                            ]))])
                            .with_validate_only(true),
                        v,
                    ));
                }
                ApiKey::DescribeConfigs => {
                    let r =
                        DescribeConfigsRequest::default().with_include_synonyms(true).with_resources(vec![
                            DescribeConfigsResource::default()
                                .with_resource_type(2)
                                .with_resource_name(s("fz-0"))
                                .with_configuration_keys(None),
                            DescribeConfigsResource::default()
                                .with_resource_type(4)
                                .with_resource_name(s("1"))
                                .with_configuration_keys(Some(vec![s("num.partitions"), s("log.dirs")])),
                            DescribeConfigsResource::default()
                                .with_resource_type(8)
                                .with_resource_name(s("1")),
                        ]);
                    out.push(base(&r, v));
                }
                ApiKey::DescribeCluster => {
                    out.push(base(&DescribeClusterRequest::default(), v));
                    out.push(base(
                        &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
                        v,
                    ));
                }
                ApiKey::Produce => {
                    for acks in [-1i16, 1] {
                        let topic = TopicProduceData::default().with_partition_data(vec![
                            PartitionProduceData::default().with_index(0).with_records(Some(record_batch())),
                        ]);
                        let topic =
                            if v >= 13 { topic.with_topic_id(topic_id) } else { topic.with_name(tn("fz-0")) };
                        out.push(base(
                            &ProduceRequest::default()
                                .with_acks(acks)
                                .with_timeout_ms(1000)
                                .with_topic_data(vec![topic]),
                            v,
                        ));
                    }
                }
                ApiKey::Fetch => {
                    let topic = FetchTopic::default().with_partitions(vec![FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(64 * 1024)]);
                    let topic =
                        if v >= 13 { topic.with_topic_id(topic_id) } else { topic.with_topic(tn("fz-0")) };
                    let mut r = FetchRequest::default()
                        .with_max_wait_ms(0)
                        .with_min_bytes(0)
                        .with_topics(vec![topic]);
                    if v >= 7 {
                        r = r.with_session_epoch(-1);
                    }
                    out.push(base(&r, v));
                }
                ApiKey::ListOffsets => {
                    for ts in [-1i64, -2] {
                        let r =
                            ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
                                ListOffsetsTopic::default().with_name(tn("fz-0")).with_partitions(vec![
                                    ListOffsetsPartition::default()
                                        .with_partition_index(0)
                                        .with_timestamp(ts),
                                ]),
                            ]);
                        out.push(base(&r, v));
                    }
                }
                ApiKey::InitProducerId => {
                    out.push(base(&InitProducerIdRequest::default().with_transaction_timeout_ms(60_000), v));
                }
                ApiKey::OffsetForLeaderEpoch => {
                    let r = OffsetForLeaderEpochRequest::default().with_topics(vec![
                        OffsetForLeaderTopic::default().with_topic(tn("fz-0")).with_partitions(vec![
                            OffsetForLeaderPartition::default().with_partition(0).with_leader_epoch(0),
                        ]),
                    ]);
                    out.push(base(&r, v));
                }
                // An API added to SUPPORTED later: fuzzed through random frames only.
                _ => {}
            }
        }
    }
    out
}

const INTERESTING_32: &[u32] =
    &[0x7fff_ffff, 0xffff_ffff, 0x8000_0000, 0, 1, 0xffff, 0x1_0000, 0x0100_0000, 0xffff_fffe];
const INTERESTING_16: &[u16] = &[0x7fff, 0xffff, 0x8000, 0, 1, 0xff, 0x100];
const INTERESTING_8: &[u8] = &[0, 1, 0x7f, 0x80, 0xff, 0x3f];
const INTERESTING_VARINT: &[&[u8]] = &[
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0x80, 0x80, 0x80, 0x80, 0x08],
    &[0xff, 0xff, 0xff, 0xff, 0x07],
    &[0x80, 0x80, 0x01],
    &[0x00],
];

/// One to three mutations of a valid request payload.
fn mutate(rng: &mut Rng, b: &Base, all: &[Base]) -> Vec<u8> {
    let mut p = b.payload.clone();
    let hl = b.header_len.min(p.len());
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        let len = p.len();
        let body_pos = |rng: &mut Rng, len: usize| {
            if len > hl {
                hl + rng.below(len - hl)
            } else {
                rng.below(len.max(1))
            }
        };
        match rng.below(100) {
            0..=29 if len > 0 => {
                let i = body_pos(rng, len).min(len - 1);
                p[i] ^= 1 << rng.below(8);
            }
            30..=37 if len > 0 => {
                let i = rng.below(len);
                p[i] = rng.byte();
            }
            38..=54 if len > 0 => {
                let i = body_pos(rng, len).min(len - 1);
                let patch: Vec<u8> = match rng.below(4) {
                    0 => rng.pick(INTERESTING_32).to_be_bytes().to_vec(),
                    1 => rng.pick(INTERESTING_16).to_be_bytes().to_vec(),
                    2 => vec![*rng.pick(INTERESTING_8)],
                    _ => rng.pick(INTERESTING_VARINT).to_vec(),
                };
                for (j, x) in patch.into_iter().enumerate() {
                    if i + j < p.len() {
                        p[i + j] = x;
                    } else {
                        p.push(x);
                    }
                }
            }
            55..=64 => {
                let cut =
                    if rng.below(4) == 0 { rng.below(len + 1) } else { body_pos(rng, len + 1).min(len) };
                p.truncate(cut);
            }
            65..=71 => {
                let n = 1 + rng.below(64);
                p.extend(rng.bytes(n));
            }
            72..=76 => {
                let i = body_pos(rng, len + 1).min(len);
                p.insert(i, rng.byte());
            }
            77..=81 if len > hl => {
                let i = body_pos(rng, len).min(len - 1);
                p.remove(i);
            }
            82..=87 if len >= 4 => {
                // Version confusion: the body of one version labelled as another (served or not).
                let key = i16::from_be_bytes([p[0], p[1]]);
                let range =
                    ApiKey::try_from(key).ok().and_then(strom::api::versions::served_range).unwrap_or((0, 0));
                let v = range.0 - 1 + rng.below((range.1 - range.0 + 3) as usize) as i16;
                p[2..4].copy_from_slice(&v.to_be_bytes());
            }
            88..=93 => {
                // Splice: this header, another request's body.
                let other = rng.pick(all);
                let mut q = p[..hl.min(p.len())].to_vec();
                q.extend_from_slice(&other.payload[other.header_len.min(other.payload.len())..]);
                p = q;
            }
            94..=99 => {
                let n = rng.below(64);
                p.truncate(hl);
                p.extend(rng.bytes(n));
            }
            _ => {
                if let Some(last) = p.last_mut() {
                    *last ^= 0xff;
                }
            }
        }
    }
    p
}

/// Random frames: random bytes, often behind the key and version of a served API.
fn random_payload(rng: &mut Rng) -> Vec<u8> {
    let n = rng.below(96);
    let mut p = rng.bytes(n);
    if p.len() >= 4 && rng.below(2) == 0 {
        let (key, lo, hi) = *rng.pick(SUPPORTED);
        let v = lo - 1 + rng.below((hi - lo + 3) as usize) as i16;
        p[0..2].copy_from_slice(&(key as i16).to_be_bytes());
        p[2..4].copy_from_slice(&v.to_be_bytes());
        if p.len() >= 10 && rng.below(2) == 0 {
            // A plausible client id length.
            let l = rng.below(4) as i16;
            p[8..10].copy_from_slice(&l.to_be_bytes());
        }
    }
    p
}

#[derive(Default, Debug)]
struct Stats {
    frames: usize,
    answered: usize,
    closed: usize,
    either: usize,
    skipped_expensive: usize,
    skipped_close_budget: usize,
    connections: usize,
}

/// Correlation id of the ApiVersions probe sent after an `Either` frame.
const PROBE_CORRELATION_ID: i32 = i32::MIN + 4242;

/// One connection: frames that must be answered, in order, then optionally one frame that must
/// close the connection (`Close`) or whose outcome is open (`Either`, followed by a probe request
/// that tells "unanswered" from "still thinking").
async fn run_connection(addr: std::net::SocketAddr, frames: &[(Vec<u8>, Expect)], seed: u64) {
    let mut bytes = Vec::new();
    for (p, _) in frames {
        bytes.extend_from_slice(&framed(p));
    }
    let last = frames.last().map(|(_, e)| *e);
    if let Some(Expect::Either { .. }) = last {
        bytes.extend_from_slice(&common::encode_request(
            &ApiVersionsRequest::default(),
            0,
            PROBE_CORRELATION_ID,
        ));
    }
    let answers = frames.iter().filter(|(_, e)| matches!(e, Expect::Answer { .. })).count();
    let mut c = Client::connect(addr).await.expect("connect");
    let (_written, got, read) = c.pipeline(&bytes, answers).await;
    let dump = |i: usize| {
        let (p, e) = &frames[i];
        format!(
            "frame {i} of {} expected {e:?}; payload ({} bytes) {:02x?} [seed {seed}]",
            frames.len(),
            p.len(),
            &p[..p.len().min(200)]
        )
    };
    let answered: Vec<usize> = frames
        .iter()
        .enumerate()
        .filter(|(_, (_, e))| matches!(e, Expect::Answer { .. }))
        .map(|(i, _)| i)
        .collect();
    if got.len() < answers {
        panic!(
            "the broker closed the connection instead of answering ({:?}): {}",
            read.err(),
            dump(answered[got.len()])
        );
    }
    for (f, &i) in got.into_iter().zip(&answered) {
        let Expect::Answer { key, version, correlation_id } = frames[i].1 else { unreachable!() };
        if let Err(why) = check_answer(key, version, correlation_id, f) {
            panic!("bad answer ({why}): {}", dump(i));
        }
    }
    let last_i = frames.len().saturating_sub(1);
    match last {
        Some(Expect::Close) => match c.read_frame().await {
            Ok(None) => {}
            // A reset counts as closed; a timeout means the broker neither answered nor closed.
            Err(e) => assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "{}", dump(last_i)),
            Ok(Some(f)) => panic!("answered ({} bytes) instead of closing: {}", f.len(), dump(last_i)),
        },
        Some(Expect::Either { key, version, correlation_id }) => {
            for _ in 0..2 {
                match c.read_frame().await {
                    Ok(None) => break,
                    Err(e) => {
                        assert_ne!(e.kind(), std::io::ErrorKind::TimedOut, "{}", dump(last_i));
                        break;
                    }
                    Ok(Some(f)) => {
                        let is_probe = f.len() >= 4 && f[..4] == PROBE_CORRELATION_ID.to_be_bytes();
                        if is_probe {
                            break;
                        }
                        if let Err(why) = check_answer(key, version, correlation_id, f) {
                            panic!("bad answer ({why}): {}", dump(last_i));
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

#[test]
fn fuzzed_frames_never_hurt_the_broker() {
    let seed: u64 = std::env::var("STROM_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_2024);
    const TOTAL_FRAMES: usize = 100_000;
    const RANDOM_FRAMES: usize = 3_000;
    const CLOSE_BUDGET: usize = 12_000;
    const MAX_PER_CONNECTION: usize = 400;
    run_serial(async move {
        let started = Instant::now();
        let broker = TestBroker::start_with(&[("auto.create.topics.enable", "false")]).await;
        let topic_id = {
            let mut c = broker.client().await;
            let id = common::create_topic(&mut c, "fz-0", 2).await;
            common::create_topic(&mut c, "fz-1", 1).await;
            id
        };
        let all = bases(topic_id);
        assert!(all.len() > 60, "{} base requests", all.len());
        for b in &all {
            assert!(matches!(oracle(&b.payload), Some(Expect::Answer { .. })), "every base request is valid");
        }
        let mut good = broker.client().await;
        assert_serving(&broker, "before fuzzing").await;
        let baseline = rss_kb();
        let mut rng = Rng(seed);
        let mut stats = Stats::default();
        let mut batch: Vec<(Vec<u8>, Expect)> = Vec::new();
        let mut closes_used = 0;

        let mut generated = 0usize;
        while stats.frames < TOTAL_FRAMES + RANDOM_FRAMES {
            let random_phase = stats.frames >= TOTAL_FRAMES;
            let payload = if random_phase || rng.below(50) == 0 {
                random_payload(&mut rng)
            } else {
                let b = rng.pick(&all);
                mutate(&mut rng, b, &all)
            };
            generated += 1;
            assert!(
                generated < 20 * (TOTAL_FRAMES + RANDOM_FRAMES),
                "the generator cannot produce enough frames"
            );
            let Some(expect) = oracle(&payload) else {
                stats.skipped_expensive += 1;
                continue;
            };
            let ends_connection = !matches!(expect, Expect::Answer { .. });
            if ends_connection {
                let budget = if random_phase { CLOSE_BUDGET + RANDOM_FRAMES } else { CLOSE_BUDGET };
                if closes_used >= budget {
                    stats.skipped_close_budget += 1;
                    continue;
                }
                closes_used += 1;
            }
            match expect {
                Expect::Answer { .. } => stats.answered += 1,
                Expect::Close => stats.closed += 1,
                Expect::Either { .. } => stats.either += 1,
            }
            stats.frames += 1;
            batch.push((payload, expect));
            if ends_connection || batch.len() >= MAX_PER_CONNECTION {
                run_connection(broker.addr(), &batch, seed).await;
                stats.connections += 1;
                batch.clear();
                if stats.connections % 100 == 0 {
                    assert_rss_bounded(baseline, &format!("after {} frames", stats.frames));
                    let resp = good.call(&MetadataRequest::default().with_topics(None), 12).await;
                    assert_eq!(resp.brokers.len(), 1);
                }
            }
        }
        if !batch.is_empty() {
            run_connection(broker.addr(), &batch, seed).await;
            stats.connections += 1;
        }
        assert_serving(&broker, "after fuzzing").await;
        let resp = good.call(&MetadataRequest::default().with_topics(None), 12).await;
        assert_rss_bounded(baseline, "after fuzzing");
        assert!(stats.frames >= TOTAL_FRAMES, "{stats:?}");
        assert!(stats.closed >= 1_000 && stats.answered >= 10_000, "both outcomes are exercised: {stats:?}");
        eprintln!(
            "fuzz: seed {seed}, {stats:?}, {} topics at the end, RSS {} kB -> {} kB, {:.1}s",
            resp.topics.len(),
            baseline,
            rss_kb(),
            started.elapsed().as_secs_f64()
        );
        broker.stop().await;
    });
}

#[test]
fn corrupted_frame_sizes_do_not_desynchronise_other_connections() {
    run_serial(async {
        let broker = TestBroker::start_with(&[("socket.request.max.bytes", "65536")]).await;
        let mut good = broker.client().await;
        let mut rng = Rng(0xf00d);
        let frame = common::encode_request(&MetadataRequest::default(), 4, 3);
        for i in 0..300 {
            let mut c = Client::connect(broker.addr()).await.unwrap();
            let mut bytes = frame.clone();
            let size = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            let new = match i % 4 {
                0 => size - 1 - rng.below(size as usize) as i32,
                1 => size + 1 + rng.below(100) as i32,
                2 => rng.next() as i32,
                _ => size ^ (1 << rng.below(31)),
            };
            bytes[..4].copy_from_slice(&new.to_be_bytes());
            let extra = rng.below(40);
            bytes.extend(rng.bytes(extra));
            let _ = c.write_raw(&bytes).await;
            // Half-close: the broker sees the end of the stream and must finish with this connection.
            let _ = c.shutdown_write().await;
            loop {
                match c.read_frame().await {
                    Ok(Some(_)) => continue,
                    Ok(None) => break,
                    Err(e) => {
                        assert_ne!(
                            e.kind(),
                            std::io::ErrorKind::TimedOut,
                            "size {new}: connection left hanging"
                        );
                        break;
                    }
                }
            }
            if i % 50 == 0 {
                let resp = good.call(&MetadataRequest::default(), 1).await;
                assert_eq!(resp.brokers.len(), 1);
            }
        }
        assert_serving(&broker, "after corrupted sizes").await;
        broker.stop().await;
    });
}

#[test]
fn idle_and_stalled_connections_are_closed_after_connections_max_idle_ms() {
    run_serial(async {
        let broker = TestBroker::start_with(&[("connections.max.idle.ms", "300")]).await;
        // Silent from the start.
        let mut silent = broker.client().await;
        // Half a frame, then nothing (slowloris).
        let mut stalled = broker.client().await;
        let frame = common::encode_request(&MetadataRequest::default(), 1, 1);
        stalled.write_raw(&frame[..frame.len() / 2]).await.unwrap();
        // Active: a request every 100 ms for 1.2 s stays open throughout.
        let mut active = broker.client().await;
        let started = Instant::now();
        while started.elapsed() < Duration::from_millis(1200) {
            let resp = active.call(&ApiVersionsRequest::default(), 0).await;
            assert_eq!(resp.error_code, 0);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for (c, what) in [(&mut silent, "silent connection"), (&mut stalled, "connection stalled mid-frame")]
        {
            let t = Instant::now();
            c.expect_closed(what).await;
            assert!(t.elapsed() < Duration::from_secs(5), "{what} closed only after {:?}", t.elapsed());
        }
        assert_serving(&broker, "after idle connections").await;
        broker.stop().await;
    });
}

/// A client that sends requests but never reads the responses leaves the broker blocked writing to
/// it. Kafka counts that as idle (no socket activity) and closes it after connections.max.idle.ms;
/// strom's idle timer only covers reading, so the connection, and its max.connections slot, are held
/// for good: with max.connections=1 one such client locks everybody out.
#[test]
fn a_client_that_never_reads_is_closed_after_connections_max_idle_ms() {
    run_serial(async {
        let broker =
            TestBroker::start_with(&[("connections.max.idle.ms", "300"), ("max.connections", "1")]).await;
        let mut greedy = broker.client().await;
        // ~4,000 DescribeConfigs(broker) answers of several kB each: far more than socket buffers hold.
        let req = DescribeConfigsRequest::default().with_include_synonyms(true).with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(s("1"))
                .with_configuration_keys(None),
        ]);
        let mut bytes = Vec::new();
        for i in 0..4000 {
            bytes.extend_from_slice(&common::encode_request(&req, 4, i));
        }
        greedy.write_raw(&bytes).await.unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        // The only connection slot must be free again by now.
        let mut next = Client::connect(broker.addr()).await.unwrap();
        let corr = next.send(&ApiVersionsRequest::default(), 0).await;
        let answered = tokio::time::timeout(Duration::from_secs(5), next.read_frame()).await;
        let Ok(Ok(Some(frame))) = answered else {
            panic!(
                "a new client was not served: the never-reading client still holds the only connection slot"
            )
        };
        let (h, _) = common::decode_response::<ApiVersionsRequest>(frame, 0);
        assert_eq!(h.correlation_id, corr);
        drop(greedy);
        broker.stop().await;
    });
}
