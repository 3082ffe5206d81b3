//! One client connection: read a request, handle it, write the response, repeat. Requests are handled
//! strictly one at a time, so responses leave in request order (pipelined requests wait in the read
//! buffer).
//!
//! Each request is read in two steps: its size and header first, then, once the broker-wide budget
//! ([`RequestBudget`]) grants its size, its body. A request Kafka would refuse from its header alone (an
//! unknown API, a version strom does not serve) is refused there, its body skipped unbuffered.
//! Shutdown is observed while reading and while waiting for budget, the idle timeout while reading; a
//! request that has been read whole is always answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use kafka_protocol::messages::ApiKey;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::error::Elapsed;
use tracing::{debug, info_span, warn, Instrument};

use super::budget::RequestBudget;
use super::frame::{read_body, read_head, skip_body, FrameError, FrameHead};
use super::slots::Slot;
use crate::api::{handle_frame, versions, ApiContext, Reply, RequestInfo};

/// Per-connection limits from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// socket.request.max.bytes
    pub max_request_bytes: usize,
    /// connections.max.idle.ms
    pub idle: Duration,
}

/// Serves one connection until the peer closes it, it misbehaves, it idles out, or its `slot` is
/// closed (shutdown, or one connection too many under a lowered `max.connections`).
pub async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<ApiContext>,
    limits: ConnLimits,
    budget: Arc<RequestBudget>,
    slot: &Slot,
    listener: usize,
) {
    let span = info_span!("conn", %peer, client_id = tracing::field::Empty);
    let shutdown = slot.closed();
    async move {
        let mut buf = BytesMut::with_capacity(4096);
        let mut client_id_recorded = false;
        loop {
            let head = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = tokio::time::timeout(limits.idle, read_head(&mut stream, &mut buf, limits.max_request_bytes)) => r,
            };
            let Some(Some(head)) = settle(head) else { break };
            slot.touch();
            if let Some(reason) = refused_from_head(&head) {
                let (api, version, correlation_id) = head.api.unwrap_or_default();
                warn!(api, version, correlation_id, %reason, "closing connection");
                // Read what was sent (as Kafka does) so the close is orderly, but without keeping it.
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = tokio::time::timeout(limits.idle, skip_body(&mut stream, &mut buf, head)) => {}
                }
                break;
            }
            // Waiting for budget is the broker's doing, not idleness: no idle timeout here.
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = budget.acquire(head.len) => p,
            };
            let frame = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = tokio::time::timeout(limits.idle, read_body(&mut stream, &mut buf, head)) => r,
            };
            let Some(frame) = settle(frame) else { break };
            let mut info =
                RequestInfo { client_host: format!("/{}", peer.ip()), listener, ..RequestInfo::default() };
            let reply = handle_frame(&ctx, frame, &mut info).await;
            // The request and its buffer are gone; the response is not part of the budget.
            drop(permit);
            if !client_id_recorded {
                if let Some(id) = &info.client_id {
                    tracing::Span::current().record("client_id", id.as_str());
                    client_id_recorded = true;
                }
            }
            // A peer that stops reading is idle too (as in Kafka): a write stalled for
            // connections.max.idle.ms closes the connection and frees its slot.
            let written = match reply {
                Reply::Frame(bytes) => Some(tokio::time::timeout(limits.idle, stream.write_all(&bytes)).await),
                Reply::Chunks(chunks) => Some(tokio::time::timeout(limits.idle, write_chunks(&mut stream, &chunks)).await),
                Reply::Nothing => None,
                Reply::Close(reason) => {
                    warn!(api = info.api_key, version = info.api_version, correlation_id = info.correlation_id, %reason, "closing connection");
                    break;
                }
            };
            match written {
                Some(Err(_)) => {
                    debug!("closing connection: the peer stopped reading");
                    break;
                }
                Some(Ok(Err(e))) => {
                    debug!(error = %e, "connection write failed");
                    break;
                }
                Some(Ok(Ok(()))) | None => slot.touch(),
            }
            debug!(api = info.api_key, version = info.api_version, correlation_id = info.correlation_id, "request served");
        }
        let _ = stream.shutdown().await;
    }
    .instrument(span)
    .await
}

/// The value of a timed read, or `None` (logged) when the connection is to be closed.
fn settle<T>(read: Result<Result<T, FrameError>, Elapsed>) -> Option<T> {
    match read {
        Ok(Ok(v)) => Some(v),
        Err(_) => {
            debug!("closing idle connection");
            None
        }
        Ok(Err(FrameError::Io(e))) => {
            debug!(error = %e, "connection read failed");
            None
        }
        // A client that goes away part-way through a request is a disconnect, not bad input: Kafka
        // logs nothing for it, so a thousand closing clients are not a thousand warnings.
        Ok(Err(FrameError::Truncated)) => {
            debug!("connection closed in the middle of a request");
            None
        }
        Ok(Err(e)) => {
            warn!(error = %e, "closing connection");
            None
        }
    }
}

/// Why Kafka would close the connection on this request's header alone, judged before its body is
/// buffered: an unknown API, or a version strom does not serve (except ApiVersions, which is answered
/// with the versions strom does serve). The same checks as [`handle_frame`], only earlier.
fn refused_from_head(head: &FrameHead) -> Option<String> {
    let (key, version, _) = head.api?;
    match ApiKey::try_from(key) {
        Err(_) => Some(format!("unknown api key {key}")),
        Ok(k) if k != ApiKey::ApiVersions && !versions::is_served(k, version) => {
            Some(format!("unsupported version {version} of {k:?}"))
        }
        Ok(_) => None,
    }
}

/// Writes `chunks` in order with vectored writes, handling partial writes.
async fn write_chunks(stream: &mut TcpStream, chunks: &[bytes::Bytes]) -> std::io::Result<()> {
    let mut index = 0;
    let mut offset = 0;
    while index < chunks.len() {
        let slices: Vec<std::io::IoSlice<'_>> = chunks[index..]
            .iter()
            .enumerate()
            .map(|(i, c)| std::io::IoSlice::new(if i == 0 { &c[offset..] } else { &c[..] }))
            .take(64)
            .collect();
        let mut written = stream.write_vectored(&slices).await?;
        if written == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while index < chunks.len() && written > 0 {
            let left = chunks[index].len() - offset;
            if written >= left {
                written -= left;
                index += 1;
                offset = 0;
            } else {
                offset += written;
                written = 0;
            }
        }
    }
    Ok(())
}
