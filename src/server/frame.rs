//! Kafka's request framing: a 4-byte big-endian size, then that many bytes.
//!
//! The size is checked before anything is allocated for it: negative or above
//! `socket.request.max.bytes` is refused. The buffer then grows only as bytes actually arrive (in
//! steps of at most [`READ_CHUNK`]), so a peer that claims 100 MB and sends nothing costs nothing.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest step by which the read buffer grows at once.
pub const READ_CHUNK: usize = 64 * 1024;
/// A read buffer larger than this is released after the request that needed it.
pub const KEEP_BUFFER: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("request size {size} is outside [0, {max}] (socket.request.max.bytes)")]
    BadSize { size: i32, max: usize },
    #[error("connection closed in the middle of a request")]
    Truncated,
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads one frame's payload (without the size). `Ok(None)` is a clean end of stream between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Bytes>, FrameError> {
    while buf.len() < 4 {
        buf.reserve(4096);
        if stream.read_buf(buf).await? == 0 {
            return if buf.is_empty() { Ok(None) } else { Err(FrameError::Truncated) };
        }
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let len = match usize::try_from(size) {
        Ok(n) if n <= max => n,
        _ => return Err(FrameError::BadSize { size, max }),
    };
    let total = len + 4;
    while buf.len() < total {
        buf.reserve((total - buf.len()).min(READ_CHUNK));
        if stream.read_buf(buf).await? == 0 {
            return Err(FrameError::Truncated);
        }
    }
    buf.advance(4);
    Ok(Some(buf.split_to(len).freeze()))
}

/// Drops an oversized idle buffer so one large request does not pin memory for the connection's life.
pub fn trim_buffer(buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() > KEEP_BUFFER {
        *buf = BytesMut::with_capacity(4096);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn framed(payloads: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in payloads {
            out.extend_from_slice(&(p.len() as i32).to_be_bytes());
            out.extend_from_slice(p);
        }
        out
    }

    #[tokio::test]
    async fn refuses_negative_and_oversized_sizes() {
        let mut buf = BytesMut::new();
        let mut neg: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        assert!(matches!(read_frame(&mut neg, &mut buf, 100).await, Err(FrameError::BadSize { .. })));
        let mut buf = BytesMut::new();
        let mut big: &[u8] = &[0x7f, 0xff, 0xff, 0xff];
        assert!(matches!(read_frame(&mut big, &mut buf, 100).await, Err(FrameError::BadSize { .. })));
        assert!(buf.capacity() < 100_000, "nothing sized by the claim was allocated");
    }

    #[tokio::test]
    async fn truncated_frame_is_an_error_and_clean_eof_is_not() {
        let mut buf = BytesMut::new();
        let mut part: &[u8] = &[0, 0, 0, 10, 1, 2];
        assert!(matches!(read_frame(&mut part, &mut buf, 100).await, Err(FrameError::Truncated)));
        let mut buf = BytesMut::new();
        let mut empty: &[u8] = &[];
        assert!(read_frame(&mut empty, &mut buf, 100).await.unwrap().is_none());
    }

    proptest! {
        #[test]
        fn splits_any_sequence_of_frames(payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..20)) {
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let bytes = framed(&payloads);
                let mut reader: &[u8] = &bytes;
                let mut buf = BytesMut::new();
                for p in &payloads {
                    let f = read_frame(&mut reader, &mut buf, 1000).await.unwrap().unwrap();
                    assert_eq!(&f[..], &p[..]);
                }
                assert!(read_frame(&mut reader, &mut buf, 1000).await.unwrap().is_none());
            });
        }
    }
}
