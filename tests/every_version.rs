//! Every (API, version) in the version table is answered at that version, with the request's
//! correlation id; and pipelined requests are answered in request order.

mod common;

use std::collections::BTreeSet;

use bytes::Bytes;
use common::{decode_response_as, encode_request, new_topic, s, tn, Client, TestBroker};
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, Request};
use strom::api::versions::SUPPORTED;

/// What a decoded response says, reduced to what these tests check.
#[derive(Debug)]
struct Summary {
    correlation_id: i32,
    /// Top-level error code, or the first per-item error code (0 when none).
    error: i16,
    /// Number of result items (topics, resources, brokers...).
    items: usize,
}

/// Decodes a response frame of `key` at `version`, strictly (no trailing bytes).
fn summarize(key: ApiKey, version: i16, frame: Bytes) -> Summary {
    fn first(codes: impl IntoIterator<Item = i16>) -> i16 {
        codes.into_iter().find(|c| *c != 0).unwrap_or(0)
    }
    macro_rules! dec {
        ($t:ty) => {
            decode_response_as::<$t>(key, frame, version)
        };
    }
    match key {
        ApiKey::ApiVersions => {
            let (h, r) = dec!(ApiVersionsResponse);
            Summary { correlation_id: h.correlation_id, error: r.error_code, items: r.api_keys.len() }
        }
        ApiKey::Metadata => {
            let (h, r) = dec!(MetadataResponse);
            assert_eq!(r.brokers.len(), 1, "Metadata v{version} lists this broker");
            Summary {
                correlation_id: h.correlation_id,
                error: first(r.topics.iter().map(|t| t.error_code)),
                items: r.topics.len(),
            }
        }
        ApiKey::CreateTopics => {
            let (h, r) = dec!(CreateTopicsResponse);
            Summary {
                correlation_id: h.correlation_id,
                error: first(r.topics.iter().map(|t| t.error_code)),
                items: r.topics.len(),
            }
        }
        ApiKey::DeleteTopics => {
            let (h, r) = dec!(DeleteTopicsResponse);
            Summary {
                correlation_id: h.correlation_id,
                error: first(r.responses.iter().map(|t| t.error_code)),
                items: r.responses.len(),
            }
        }
        ApiKey::CreatePartitions => {
            let (h, r) = dec!(CreatePartitionsResponse);
            Summary {
                correlation_id: h.correlation_id,
                error: first(r.results.iter().map(|t| t.error_code)),
                items: r.results.len(),
            }
        }
        ApiKey::DescribeConfigs => {
            let (h, r) = dec!(DescribeConfigsResponse);
            Summary {
                correlation_id: h.correlation_id,
                error: first(r.results.iter().map(|t| t.error_code)),
                items: r.results.len(),
            }
        }
        ApiKey::DescribeCluster => {
            let (h, r) = dec!(DescribeClusterResponse);
            Summary { correlation_id: h.correlation_id, error: r.error_code, items: r.brokers.len() }
        }
        // APIs without a dedicated check here: a strict generic decode of the response.
        other => {
            let h = common::decode_any_response(other, version, frame).unwrap_or_else(|e| panic!("{e}"));
            Summary { correlation_id: h.correlation_id, error: 0, items: 0 }
        }
    }
}

/// The APIs whose minimal request must be answered without any error code.
fn error_free_when_minimal(key: ApiKey) -> bool {
    matches!(
        key,
        ApiKey::ApiVersions
            | ApiKey::Metadata
            | ApiKey::CreateTopics
            | ApiKey::DeleteTopics
            | ApiKey::CreatePartitions
            | ApiKey::DescribeConfigs
            | ApiKey::DescribeCluster
    )
}

fn frame<R: Request>(req: &R, version: i16, corr: i32) -> Vec<u8> {
    encode_request(req, version, corr)
}

fn minimal(key: ApiKey, version: i16, corr: i32) -> Vec<u8> {
    common::minimal_request(key, version, corr)
}

/// A request that makes the broker fill in a non-trivial response (topics with partitions, configs,
/// ids), so every field a handler sets must encode at that version. `topic` exists with 1
/// partition when this is called (except for CreateTopics, which creates it).
fn substantial(key: ApiKey, version: i16, corr: i32, topic: &str) -> Option<(Vec<u8>, usize)> {
    Some(match key {
        ApiKey::ApiVersions => (minimal(key, version, corr), SUPPORTED.len()),
        ApiKey::Metadata => {
            let t = MetadataRequestTopic::default().with_name(Some(tn(topic)));
            let mut r = MetadataRequest::default().with_topics(Some(vec![t]));
            if version >= 4 {
                r = r.with_allow_auto_topic_creation(false);
            }
            if version >= 8 {
                r = r.with_include_topic_authorized_operations(true);
            }
            if (8..=10).contains(&version) {
                r = r.with_include_cluster_authorized_operations(true);
            }
            (frame(&r, version, corr), 1)
        }
        ApiKey::CreateTopics => {
            let r = CreateTopicsRequest::default().with_topics(vec![new_topic(
                topic,
                1,
                &[("retention.ms", "1000")],
            )]);
            (frame(&r, version, corr), 1)
        }
        ApiKey::DeleteTopics => {
            let r = if version >= 6 {
                DeleteTopicsRequest::default()
                    .with_topics(vec![DeleteTopicState::default().with_name(Some(tn(topic)))])
            } else {
                DeleteTopicsRequest::default().with_topic_names(vec![tn(topic)])
            };
            (frame(&r, version, corr), 1)
        }
        ApiKey::CreatePartitions => {
            let r = CreatePartitionsRequest::default().with_topics(vec![CreatePartitionsTopic::default()
                .with_name(tn(topic))
                .with_count(2)
                .with_assignments(None)]);
            (frame(&r, version, corr), 1)
        }
        ApiKey::DescribeConfigs => {
            let r = DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_include_documentation(version >= 3)
                .with_resources(vec![
                    DescribeConfigsResource::default()
                        .with_resource_type(2)
                        .with_resource_name(s(topic))
                        .with_configuration_keys(None),
                    DescribeConfigsResource::default()
                        .with_resource_type(4)
                        .with_resource_name(s("1"))
                        .with_configuration_keys(None),
                ]);
            (frame(&r, version, corr), 2)
        }
        ApiKey::DescribeCluster => {
            let r = DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
            (frame(&r, version, corr), 1)
        }
        // Covered by the minimal-request test only.
        _ => return None,
    })
}

async fn exchange(c: &mut Client, key: ApiKey, version: i16, bytes: &[u8]) -> Summary {
    c.write_raw(bytes).await.unwrap();
    let f = match c.read_frame().await {
        Ok(Some(f)) => f,
        other => panic!("{key:?} v{version}: no response ({other:?})"),
    };
    summarize(key, version, f)
}

#[tokio::test]
async fn every_supported_version_answers_a_minimal_request() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let mut corr = 1000;
    let mut pairs = 0;
    for &(key, lo, hi) in SUPPORTED {
        for v in lo..=hi {
            corr += 7;
            let sum = exchange(&mut c, key, v, &minimal(key, v, corr)).await;
            assert_eq!(sum.correlation_id, corr, "{key:?} v{v}");
            if error_free_when_minimal(key) {
                assert_eq!(sum.error, 0, "{key:?} v{v}: {sum:?}");
            }
            pairs += 1;
        }
    }
    let expected: usize = SUPPORTED.iter().map(|(_, lo, hi)| (hi - lo + 1) as usize).sum();
    assert_eq!(pairs, expected);
    assert!(pairs >= 40, "the table covers at least the admin APIs ({pairs} pairs)");
    broker.stop().await;
}

#[tokio::test]
async fn every_supported_version_answers_a_substantial_request() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let mut corr = 1;
    for &(key, lo, hi) in SUPPORTED {
        for v in lo..=hi {
            let topic = format!("ev-{}-v{v}", key as i16);
            corr += 1;
            let Some((bytes, items)) = substantial(key, v, corr, &topic) else { continue };
            if key != ApiKey::CreateTopics {
                common::create_topic(&mut c, &topic, 1).await;
            }
            let sum = exchange(&mut c, key, v, &bytes).await;
            assert_eq!(sum.correlation_id, corr, "{key:?} v{v}");
            assert_eq!(sum.error, 0, "{key:?} v{v}: {sum:?}");
            assert_eq!(sum.items, items, "{key:?} v{v}: {sum:?}");
        }
    }
    // CreateTopics created one topic per version, DeleteTopics deleted its own.
    let all = common::metadata_all(&mut c).await;
    let names: BTreeSet<String> = all.topics.iter().map(|t| t.name.as_ref().unwrap().0.to_string()).collect();
    for v in 2..=7 {
        assert!(names.contains(&format!("ev-{}-v{v}", ApiKey::CreateTopics as i16)), "{names:?}");
    }
    for v in 1..=6 {
        assert!(!names.contains(&format!("ev-{}-v{v}", ApiKey::DeleteTopics as i16)), "{names:?}");
    }
    broker.stop().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_request_order() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    common::create_topic(&mut c, "pipelined", 1).await;

    // Every (api, version), three rounds, interleaved; correlation ids deliberately not monotonic.
    let mut sent: Vec<(ApiKey, i16, i32)> = Vec::new();
    let mut bytes = Vec::new();
    for round in 0..3 {
        for &(key, lo, hi) in SUPPORTED {
            for v in lo..=hi {
                let corr = ((sent.len() as i32) * 7919 + round) % 100_003 - 50_000;
                let f = if key == ApiKey::DescribeConfigs || key == ApiKey::Metadata {
                    substantial(key, v, corr, "pipelined").unwrap().0
                } else {
                    minimal(key, v, corr)
                };
                bytes.extend_from_slice(&f);
                sent.push((key, v, corr));
            }
        }
    }
    // One write for all of them: the broker sees them back to back, without waiting for answers.
    let (written, frames, read) = c.pipeline(&bytes, sent.len()).await;
    written.unwrap();
    read.unwrap();
    assert_eq!(frames.len(), sent.len(), "one response per request");
    for (i, ((key, v, corr), f)) in sent.iter().zip(frames).enumerate() {
        let sum = summarize(*key, *v, f);
        assert_eq!(sum.correlation_id, *corr, "response {i} ({key:?} v{v}) out of order");
        if error_free_when_minimal(*key) {
            assert_eq!(sum.error, 0, "{key:?} v{v}");
        }
    }
    assert!(sent.len() > 100);
    broker.stop().await;
}

#[tokio::test]
async fn concurrent_connections_each_get_their_own_answers() {
    let broker = TestBroker::start().await;
    let mut tasks = Vec::new();
    for n in 0..8 {
        let addr = broker.addr();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await.unwrap();
            let mut bytes = Vec::new();
            for i in 0..50 {
                bytes.extend_from_slice(&encode_request(
                    &MetadataRequest::default(),
                    (i % 14) as i16,
                    n * 1000 + i,
                ));
            }
            let (written, frames, read) = c.pipeline(&bytes, 50).await;
            written.unwrap();
            read.unwrap();
            assert_eq!(frames.len(), 50);
            for (i, f) in (0..50).zip(frames) {
                let sum = summarize(ApiKey::Metadata, (i % 14) as i16, f);
                assert_eq!(sum.correlation_id, n * 1000 + i);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    broker.stop().await;
}

#[test]
fn encoded_minimal_requests_are_what_a_client_sends() {
    // Sanity check of the helper itself: a minimal Metadata v1 request is header v1 + an empty array.
    let f = encode_request(&MetadataRequest::default(), 1, 5);
    let body_len = MetadataRequest::default().compute_size(1).unwrap();
    assert_eq!(body_len, 4);
    assert_eq!(&f[..4], &((2 + 2 + 4 + 2 + "strom-tests".len() + 4) as i32).to_be_bytes());
}
