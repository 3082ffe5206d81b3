//! A response buffer that does not copy record sets.
//!
//! kafka-protocol encodes a `Bytes` field with `put_slice`, which would copy every fetched record set
//! into the response. [`ChunkedBuf`] is told which record sets the response carries; when the encoder
//! writes exactly one of them (same address, same length), the buffer keeps a reference to it as its
//! own chunk instead of copying. The frame then goes out as a list of chunks with one vectored write,
//! so fetched records are copied once on their way from the page cache to the socket (by the read
//! from the segment file), not twice.

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

/// Record sets smaller than this are copied: a separate chunk costs more than the copy.
const MIN_SHARED: usize = 512;

/// An encoding buffer made of inline bytes and shared record sets.
pub struct ChunkedBuf {
    done: Vec<Bytes>,
    done_len: usize,
    current: BytesMut,
    shared: Vec<Bytes>,
    /// Writes aimed before `current` (never done by message encoders) land here and are dropped.
    scratch: Vec<u8>,
}

impl ChunkedBuf {
    /// A buffer that will reference (not copy) any of `shared` the encoder writes.
    pub fn new(shared: Vec<Bytes>) -> ChunkedBuf {
        let shared = shared.into_iter().filter(|b| b.len() >= MIN_SHARED).collect();
        ChunkedBuf {
            done: Vec::new(),
            done_len: 0,
            current: BytesMut::with_capacity(1024),
            shared,
            scratch: Vec::new(),
        }
    }

    /// The encoded bytes, in order.
    pub fn into_chunks(mut self) -> Vec<Bytes> {
        if !self.current.is_empty() {
            self.done.push(self.current.freeze());
        }
        self.done
    }

    fn len(&self) -> usize {
        self.done_len + self.current.len()
    }
}

// SAFETY: every method delegates to the inner `BytesMut`, which upholds `BufMut`'s contract.
unsafe impl BufMut for ChunkedBuf {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller initialised `cnt` bytes of `chunk_mut()`, which is the inner buffer's.
        unsafe { self.current.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        let found = self.shared.iter().position(|b| b.as_ptr() == src.as_ptr() && b.len() == src.len());
        match found {
            Some(i) => {
                let records = self.shared.swap_remove(i);
                if !self.current.is_empty() {
                    let inline = self.current.split().freeze();
                    self.done_len += inline.len();
                    self.done.push(inline);
                }
                self.done_len += records.len();
                self.done.push(records);
            }
            None => self.current.extend_from_slice(src),
        }
    }
}

impl ByteBufMut for ChunkedBuf {
    fn offset(&self) -> usize {
        self.len()
    }

    fn seek(&mut self, offset: usize) {
        let local = offset.saturating_sub(self.done_len);
        self.current.resize(local, 0);
    }

    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        let (start, end) = (r.start.saturating_sub(self.done_len), r.end.saturating_sub(self.done_len));
        if r.start >= self.done_len && end <= self.current.len() {
            return &mut self.current[start..end];
        }
        // Only record-batch encoding fills gaps, and never across a shared chunk.
        self.scratch.resize(r.len(), 0);
        &mut self.scratch[..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::FetchResponse;
    use kafka_protocol::protocol::{Decodable, Encodable};

    #[test]
    fn shares_record_sets_and_encodes_the_same_bytes() {
        let records = Bytes::from(vec![7u8; 4096]);
        for version in [4i16, 11, 12, 16] {
            let resp = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                .with_topic(kafka_protocol::messages::TopicName("t".into()))
                .with_partitions(vec![PartitionData::default().with_records(Some(records.clone()))])]);
            let mut plain = BytesMut::new();
            resp.encode(&mut plain, version).unwrap();
            let mut chunked = ChunkedBuf::new(vec![records.clone()]);
            resp.encode(&mut chunked, version).unwrap();
            let chunks = chunked.into_chunks();
            assert!(chunks.iter().any(|c| c.as_ptr() == records.as_ptr()), "records were not copied");
            let joined: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            assert_eq!(joined, plain.to_vec());
            let back = FetchResponse::decode(&mut Bytes::from(joined), version).unwrap();
            assert_eq!(back.responses[0].partitions[0].records.as_ref(), Some(&records));
        }
    }
}
