//! One client connection: read a frame, handle it, write the response, repeat. Requests are handled
//! strictly one at a time, so responses leave in request order (pipelined requests wait in the read
//! buffer). Shutdown and the idle timeout are only observed between requests, so a request that has
//! started is always answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info_span, warn, Instrument};

use super::frame::{read_frame, trim_buffer, FrameError};
use crate::api::{handle_frame, ApiContext, Reply, RequestInfo};

/// Per-connection limits from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// socket.request.max.bytes
    pub max_request_bytes: usize,
    /// connections.max.idle.ms
    pub idle: Duration,
}

/// Serves one connection until the peer closes it, it misbehaves, it idles out, or shutdown.
pub async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<ApiContext>,
    limits: ConnLimits,
    shutdown: CancellationToken,
) {
    let span = info_span!("conn", %peer, client_id = tracing::field::Empty);
    async move {
        let mut buf = BytesMut::with_capacity(4096);
        let mut client_id_recorded = false;
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = tokio::time::timeout(limits.idle, read_frame(&mut stream, &mut buf, limits.max_request_bytes)) => r,
            };
            let frame = match next {
                Err(_) => {
                    debug!("closing idle connection");
                    break;
                }
                Ok(Ok(Some(frame))) => frame,
                Ok(Ok(None)) => break,
                Ok(Err(FrameError::Io(e))) => {
                    debug!(error = %e, "connection read failed");
                    break;
                }
                Ok(Err(e)) => {
                    warn!(error = %e, "closing connection");
                    break;
                }
            };
            let mut info = RequestInfo { client_host: format!("/{}", peer.ip()), ..RequestInfo::default() };
            let reply = handle_frame(&ctx, frame, &mut info).await;
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
                Some(Ok(Ok(()))) | None => {}
            }
            debug!(api = info.api_key, version = info.api_version, correlation_id = info.correlation_id, "request served");
            trim_buffer(&mut buf);
        }
        let _ = stream.shutdown().await;
    }
    .instrument(span)
    .await
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
