//! Feeds arbitrary bytes, as one request frame (without its 4-byte size), to the decoding the broker
//! does in `strom::api::handle_frame`:
//!
//! `peek_info` (api key, version, correlation id), the version gate (`versions::is_served`), the
//! request header of the right version, then the body with kafka-protocol's decoder for that API:
//! what `src/api/mod.rs` does before a handler runs. Frames naming an API or version strom does not
//! serve are decoded too when kafka-protocol knows that version.
//!
//! A crash is a panic, an abort (e.g. an allocation sized from the wire), or a timeout/OOM reported
//! by libFuzzer (run with e.g. `-rss_limit_mb=512`).

#![no_main]

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;
use libfuzzer_sys::fuzz_target;
use strom::api::{encode_response, peek_info, versions};

/// Decodes `frame` the way `strom::api::handle_frame` does before a handler runs; for an API or
/// version strom does not serve (which the broker refuses without decoding) the frame is decoded
/// anyway when kafka-protocol knows that version, so tomorrow's APIs are covered today.
fn decode(frame: &Bytes) {
    let Some(info) = peek_info(frame) else { return };
    let Ok(key) = ApiKey::try_from(info.api_key) else { return };
    let version = info.api_version;
    if !versions::is_served(key, version) {
        if key == ApiKey::ApiVersions {
            // The broker answers an unknown ApiVersions version with a v0 response.
            let resp = versions::unsupported_version_response();
            assert!(encode_response(key, 0, info.correlation_id, &resp).is_ok());
            return;
        }
        let range = key.valid_versions();
        if version < range.min || version > range.max {
            return;
        }
    }
    let mut buf = frame.clone();
    if RequestHeader::decode(&mut buf, key.request_header_version(version)).is_err() {
        return;
    }
    let _ = RequestKind::decode(key, &mut buf, version);
}

fuzz_target!(|data: &[u8]| {
    decode(&Bytes::copy_from_slice(data));
});
