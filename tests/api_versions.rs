//! ApiVersions over real TCP: every served version, the advertised table, the answer to a version
//! the broker does not know, and KIP-511 client software name validation.

mod common;

use std::collections::BTreeSet;

use bytes::BufMut;
use common::{decode_response, framed, put_string, s, TestBroker};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use strom::api::versions::SUPPORTED;

fn supported_table() -> BTreeSet<(i16, i16, i16)> {
    SUPPORTED.iter().map(|(k, lo, hi)| (*k as i16, *lo, *hi)).collect()
}

fn advertised(resp: &ApiVersionsResponse) -> BTreeSet<(i16, i16, i16)> {
    let set: BTreeSet<_> = resp.api_keys.iter().map(|a| (a.api_key, a.min_version, a.max_version)).collect();
    assert_eq!(set.len(), resp.api_keys.len(), "no api key is listed twice");
    set
}

fn request(version: i16) -> ApiVersionsRequest {
    if version >= 3 {
        ApiVersionsRequest::default()
            .with_client_software_name(s("strom-tests"))
            .with_client_software_version(s("0.1.0"))
    } else {
        ApiVersionsRequest::default()
    }
}

#[tokio::test]
async fn every_version_round_trips_and_advertises_the_supported_table() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    assert!(SUPPORTED.iter().any(|(k, lo, hi)| *k == ApiKey::ApiVersions && *lo == 0 && *hi == 4));
    for v in 0..=4 {
        let resp = c.call(&request(v), v).await;
        assert_eq!(resp.error_code, 0, "v{v}");
        assert_eq!(advertised(&resp), supported_table(), "v{v} advertises exactly SUPPORTED");
        assert_eq!(resp.throttle_time_ms, 0, "v{v}");
    }
    broker.stop().await;
}

#[tokio::test]
async fn v0_with_a_null_client_id_is_answered() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let payload = common::encode_request_payload(&ApiVersionsRequest::default(), 0, 77, None);
    c.write_raw(&framed(&payload)).await.unwrap();
    let (h, resp) = c.recv::<ApiVersionsRequest>(0).await;
    assert_eq!(h.correlation_id, 77);
    assert_eq!(resp.error_code, 0);
    assert_eq!(advertised(&resp), supported_table());
    broker.stop().await;
}

#[tokio::test]
async fn unknown_version_gets_a_v0_answer_with_unsupported_version_and_the_ranges() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    // Header v2 (what a newer client would send for ApiVersions v99) + an empty tagged-field block.
    let mut payload = bytes::BytesMut::new();
    payload.put_i16(ApiKey::ApiVersions as i16);
    payload.put_i16(99);
    payload.put_i32(4242);
    put_string(&mut payload, Some("future-client"));
    payload.put_u8(0); // header tagged fields
    payload.put_u8(0); // body tagged fields
    c.write_raw(&framed(&payload)).await.unwrap();

    let frame = c.read_frame().await.unwrap().expect("an answer, not a close");
    // Decoded strictly as header v0 + ApiVersionsResponse v0, every byte consumed.
    let (h, resp) = decode_response::<ApiVersionsRequest>(frame, 0);
    assert_eq!(h.correlation_id, 4242);
    assert_eq!(resp.error_code, 35, "UNSUPPORTED_VERSION");
    // Kafka 4.4 lists only ApiVersions' own range (its own is 0-5), so the client can retry.
    let listed = advertised(&resp);
    assert_eq!(listed, BTreeSet::from([(ApiKey::ApiVersions as i16, 0, 4)]));

    // The connection stays usable: the client retries with a version both sides know.
    let resp = c.call(&request(3), 3).await;
    assert_eq!(resp.error_code, 0);
    assert_eq!(advertised(&resp), supported_table());
    broker.stop().await;
}

#[tokio::test]
async fn invalid_client_software_name_or_version_is_invalid_request() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let cases = [
        ("-bad", "1.0"),
        ("bad-", "1.0"),
        ("", "1.0"),
        ("has space", "1.0"),
        ("good", "1.0-"),
        ("good", ""),
        ("good", "1/0"),
    ];
    for v in 3..=4 {
        for (name, version) in cases {
            let req = ApiVersionsRequest::default()
                .with_client_software_name(s(name))
                .with_client_software_version(s(version));
            let resp = c.call(&req, v).await;
            assert_eq!(resp.error_code, 42, "v{v} name {name:?} version {version:?}: INVALID_REQUEST");
            assert!(resp.api_keys.is_empty(), "an invalid request lists no ranges");
        }
        // Valid names with dots and dashes are accepted on the same connection.
        let req = ApiVersionsRequest::default()
            .with_client_software_name(s("apache-kafka-java"))
            .with_client_software_version(s("4.1.0"));
        let resp = c.call(&req, v).await;
        assert_eq!(resp.error_code, 0, "v{v}");
        assert_eq!(advertised(&resp), supported_table());
    }
    broker.stop().await;
}

/// The features as Kafka 4.4.0 reports them for a new single-node cluster (its ApiVersions v4
/// answer), for those strom has: `transaction.version` finalized at 2 (clients then use transactions
/// v2), `metadata.version` 33 (4.4-IV2), `kraft.version` 1, `eligible.leader.replicas.version` 1.
/// The supported ranges starting at 0 only from v4: Kafka leaves them out of older answers
/// (KAFKA-17011).
#[tokio::test]
async fn features_are_reported_as_kafka_4_4_reports_them() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let owned =
        |v: &[(&str, i16, i16)]| v.iter().map(|(n, a, b)| (n.to_string(), *a, *b)).collect::<Vec<_>>();
    for v in 0..=4 {
        let resp = c.call(&request(v), v).await;
        let finalized: Vec<(String, i16, i16)> = resp
            .finalized_features
            .iter()
            .map(|f| (f.name.to_string(), f.min_version_level, f.max_version_level))
            .collect();
        let supported: Vec<(String, i16, i16)> = resp
            .supported_features
            .iter()
            .map(|f| (f.name.to_string(), f.min_version, f.max_version))
            .collect();
        if v < 3 {
            assert!(finalized.is_empty() && supported.is_empty(), "v{v} has no feature fields");
            continue;
        }
        assert_eq!(
            finalized,
            owned(&[
                ("kraft.version", 1, 1),
                ("metadata.version", 33, 33),
                ("transaction.version", 2, 2),
                ("eligible.leader.replicas.version", 1, 1)
            ]),
            "v{v}"
        );
        assert!(resp.finalized_features_epoch >= 0, "v{v}: clients ignore features at epoch -1");
        let expected = if v >= 4 {
            owned(&[
                ("kraft.version", 0, 1),
                ("metadata.version", 7, 33),
                ("transaction.version", 0, 2),
                ("eligible.leader.replicas.version", 0, 1),
            ])
        } else {
            owned(&[("metadata.version", 7, 33)])
        };
        assert_eq!(supported, expected, "v{v}");
    }
    broker.stop().await;
}
