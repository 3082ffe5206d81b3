//! What the load generators of `scripts/bench` (`produce_load`, `txn_load`) share: request framing
//! and blocking request/response calls over one TCP connection, encoded with kafka-protocol.

// Each load generator uses a part of this module.
#![allow(dead_code)]
use std::io::{Read, Write};
use std::net::TcpStream;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// Prints `why` and the usage line, exits with status 2.
pub fn usage(why: &str, line: &str) -> ! {
    eprintln!("{why}");
    eprintln!("usage: {line}");
    std::process::exit(2)
}

/// The body (header excluded) of a request.
pub fn encode_body<R: Encodable>(req: &R, version: i16) -> Result<Bytes, String> {
    let mut buf = BytesMut::new();
    req.encode(&mut buf, version).map_err(|e| format!("encoding a request: {e}"))?;
    Ok(buf.freeze())
}

/// A whole request frame (size, header, body).
pub fn frame(key: ApiKey, version: i16, correlation_id: i32, body: &[u8]) -> Result<Vec<u8>, String> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("strom-load")));
    let mut h = BytesMut::new();
    header
        .encode(&mut h, key.request_header_version(version))
        .map_err(|e| format!("encoding a header: {e}"))?;
    let mut out = Vec::with_capacity(4 + h.len() + body.len());
    out.extend_from_slice(&((h.len() + body.len()) as i32).to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(body);
    Ok(out)
}

/// Reads one response of `key` at `version` and decodes its body.
pub fn read_response<T: Decodable>(sock: &mut TcpStream, key: ApiKey, version: i16) -> Result<T, String> {
    let mut len = [0u8; 4];
    sock.read_exact(&mut len).map_err(|e| format!("reading a response: {e}"))?;
    let mut buf = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
    sock.read_exact(&mut buf).map_err(|e| format!("reading a response: {e}"))?;
    let mut b = Bytes::from(buf);
    ResponseHeader::decode(&mut b, key.response_header_version(version))
        .map_err(|e| format!("decoding a response header: {e}"))?;
    T::decode(&mut b, version).map_err(|e| format!("decoding a {key:?} response: {e}"))
}

/// One request and its response.
pub fn call<R: Encodable, T: Decodable>(
    sock: &mut TcpStream,
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    req: &R,
) -> Result<T, String> {
    let f = frame(key, version, correlation_id, &encode_body(req, version)?)?;
    sock.write_all(&f).map_err(|e| format!("sending: {e}"))?;
    read_response(sock, key, version)
}

/// The command line as `--flag value` pairs; a flag without a value is refused through `usage`.
pub fn flag_pairs(usage: fn(&str) -> !) -> Vec<(String, String)> {
    let mut it = std::env::args().skip(1);
    let mut out = Vec::new();
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| usage(&format!("{flag} needs a value")));
        out.push((flag, value));
    }
    out
}

/// `value` of `flag` as a number, or refused through `usage`.
pub fn number(flag: &str, value: &str, usage: fn(&str) -> !) -> u64 {
    value.parse().unwrap_or_else(|_| usage(&format!("{flag}: not a number: {value}")))
}
