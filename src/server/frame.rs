//! Kafka's request framing: a 4-byte big-endian size, then that many bytes.
//!
//! A request is read in two steps so that the connection can decide in between, before the body is
//! buffered: [`read_head`] reads the size and the first bytes of the header (api key, version,
//! correlation id); [`read_body`] then reads the rest. The size is checked before anything is
//! allocated for it: negative or above `socket.request.max.bytes` is refused.
//!
//! Memory. The connection's buffer stays small (a few KiB): it holds sizes, headers, and requests that
//! arrived whole in one read. A body that has not arrived yet gets a buffer of its own, of exactly its
//! size, filled only as bytes arrive and holding nothing of the next request, so it is freed as soon as
//! the request is dropped (a large request never stays pinned to its connection).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};

/// How much the connection's buffer grows by to read sizes and headers (and small requests whole).
pub const READ_CHUNK: usize = 4096;
/// Bytes of the request header read with the size: api key, api version, correlation id.
pub const HEAD_BYTES: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("request size {size} is outside [0, {max}] (socket.request.max.bytes)")]
    BadSize { size: i32, max: usize },
    #[error("connection closed in the middle of a request")]
    Truncated,
    #[error("read failed: {0}")]
    Io(#[from] std::io::Error),
}

/// What is known of a request before its body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHead {
    /// Size of the request in bytes, without the 4-byte size itself.
    pub len: usize,
    /// Api key, api version and correlation id; `None` when the request is shorter than that.
    pub api: Option<(i16, i16, i32)>,
}

/// Reads a request's size and the start of its header into `buf`. `Ok(None)` is a clean end of stream
/// between requests.
pub async fn read_head<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<FrameHead>, FrameError> {
    while buf.len() < 4 {
        buf.reserve(READ_CHUNK);
        if stream.read_buf(buf).await? == 0 {
            return if buf.is_empty() { Ok(None) } else { Err(FrameError::Truncated) };
        }
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let len = match usize::try_from(size) {
        Ok(n) if n <= max => n,
        _ => return Err(FrameError::BadSize { size, max }),
    };
    while buf.len() < 4 + len.min(HEAD_BYTES) {
        buf.reserve(READ_CHUNK);
        if stream.read_buf(buf).await? == 0 {
            return Err(FrameError::Truncated);
        }
    }
    let api = match buf.get(4..4 + HEAD_BYTES) {
        Some(h) if len >= HEAD_BYTES => Some((
            i16::from_be_bytes([h[0], h[1]]),
            i16::from_be_bytes([h[2], h[3]]),
            i32::from_be_bytes([h[4], h[5], h[6], h[7]]),
        )),
        _ => None,
    };
    Ok(Some(FrameHead { len, api }))
}

/// Reads the rest of the request whose head [`read_head`] returned and returns it (without the size).
pub async fn read_body<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
    head: FrameHead,
) -> Result<Bytes, FrameError> {
    let len = head.len;
    buf.advance(4);
    if buf.len() >= len {
        return Ok(buf.split_to(len).freeze());
    }
    let mut body = BytesMut::with_capacity(len);
    body.extend_from_slice(buf);
    buf.clear();
    while body.len() < len {
        let want = len - body.len();
        let mut rest = (&mut body).limit(want);
        if stream.read_buf(&mut rest).await? == 0 {
            return Err(FrameError::Truncated);
        }
    }
    Ok(body.freeze())
}

/// Reads and drops the rest of a request that is refused from its head, without buffering it.
pub async fn skip_body<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
    head: FrameHead,
) -> Result<(), FrameError> {
    buf.advance(4);
    let mut left = head.len;
    loop {
        let n = left.min(buf.len());
        buf.advance(n);
        left -= n;
        if left == 0 {
            return Ok(());
        }
        buf.reserve(READ_CHUNK);
        if stream.read_buf(&mut (&mut *buf).limit(left.min(READ_CHUNK))).await? == 0 {
            return Err(FrameError::Truncated);
        }
    }
}

/// Reads one whole request (without the size), with no budget: [`read_head`] then [`read_body`].
/// `Ok(None)` is a clean end of stream between requests.
pub async fn read_frame<R: AsyncRead + Unpin>(
    stream: &mut R,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Option<Bytes>, FrameError> {
    match read_head(stream, buf, max).await? {
        Some(head) => Ok(Some(read_body(stream, buf, head).await?)),
        None => Ok(None),
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

    #[tokio::test]
    async fn head_then_body_with_the_next_request_left_in_the_buffer() {
        let first = vec![0, 3, 0, 12, 0, 0, 0, 9, 1, 2, 3];
        let bytes = framed(&[first.clone(), vec![5u8; 10_000], vec![7u8; 3]]);
        let mut reader: &[u8] = &bytes;
        let mut buf = BytesMut::new();
        let head = read_head(&mut reader, &mut buf, 100_000).await.unwrap().unwrap();
        assert_eq!(head, FrameHead { len: 11, api: Some((3, 12, 9)) });
        assert_eq!(&read_body(&mut reader, &mut buf, head).await.unwrap()[..], &first[..]);
        // Not arrived whole: read into a buffer of its own, the connection's buffer stays small.
        let head = read_head(&mut reader, &mut buf, 100_000).await.unwrap().unwrap();
        assert_eq!(head, FrameHead { len: 10_000, api: Some((0x0505, 0x0505, 0x0505_0505)) });
        let body = read_body(&mut reader, &mut buf, head).await.unwrap();
        assert!(body.len() == 10_000 && body.iter().all(|b| *b == 5));
        assert!(buf.capacity() <= 2 * READ_CHUNK, "connection buffer grew to {}", buf.capacity());
        let head = read_head(&mut reader, &mut buf, 100_000).await.unwrap().unwrap();
        assert_eq!(head, FrameHead { len: 3, api: None }, "too short for a header");
        assert_eq!(&read_body(&mut reader, &mut buf, head).await.unwrap()[..], &[7, 7, 7]);
        assert!(read_head(&mut reader, &mut buf, 100_000).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn skipping_a_body_keeps_the_next_request() {
        let bytes = framed(&[vec![1u8; 50_000], vec![0, 18, 0, 3, 0, 0, 0, 1]]);
        let mut reader: &[u8] = &bytes;
        let mut buf = BytesMut::new();
        let head = read_head(&mut reader, &mut buf, 100_000).await.unwrap().unwrap();
        skip_body(&mut reader, &mut buf, head).await.unwrap();
        assert!(buf.capacity() <= 2 * READ_CHUNK);
        let head = read_head(&mut reader, &mut buf, 100_000).await.unwrap().unwrap();
        assert_eq!(head, FrameHead { len: 8, api: Some((18, 3, 1)) });
        let mut short: &[u8] = &[0, 0, 0, 100, 0, 1, 0, 1, 0, 0, 0, 1, 9];
        let mut buf = BytesMut::new();
        let head = read_head(&mut short, &mut buf, 1000).await.unwrap().unwrap();
        assert!(matches!(skip_body(&mut short, &mut buf, head).await, Err(FrameError::Truncated)));
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
