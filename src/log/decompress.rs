//! Bounded, streaming readers over a compressed batch's records (codec ids 1–4 of the batch
//! attributes), for validating produced batches.
//!
//! Each reader decompresses straight from the batch bytes (no copy of the compressed input) into
//! buffers of a fixed size, never into one buffer the size of the decompressed data, so a "bomb" (a
//! few KB that claim gigabytes) costs at most the decoder's own window. The caller caps how many
//! decompressed bytes it is willing to read.
//!
//! Formats, as Kafka's `Compression` classes write and read them:
//! - gzip: one RFC 1952 member;
//! - snappy: snappy-java's "xerial" framing (`\x82SNAPPY\0` + two i32 versions, then blocks of
//!   `u32 length` + raw snappy), or a single raw snappy block when that header is absent, as
//!   `SnappyInputStream` falls back (librdkafka writes that raw form);
//! - lz4: one LZ4 frame (Kafka's `Lz4BlockInputStream`);
//! - zstd: zstd frames, the decoder's window capped at [`ZSTD_WINDOW_LOG_MAX`] (zstd's own default,
//!   as Kafka's zstd-jni reader).
//!
//! Stricter than Kafka, because librdkafka's consumers stop at (or crash on, or silently drop
//! records of) such batches: bytes after the gzip member or the LZ4 frame, and more than one gzip
//! member, are refused; Java's readers ignore trailing bytes and read concatenated gzip members.

use std::io::{self, Read};

/// Codec ids in the batch attributes (bits 0–2).
pub const CODEC_NONE: i16 = 0;
pub const CODEC_GZIP: i16 = 1;
pub const CODEC_SNAPPY: i16 = 2;
pub const CODEC_LZ4: i16 = 3;
pub const CODEC_ZSTD: i16 = 4;

/// Largest zstd window accepted (2^27 = 128 MiB): zstd's default limit, which Kafka's reader keeps
/// too, so producers at levels 20–22 are served. Compressed batches are validated a few at a time
/// (see `api::produce`), which bounds what windows cost together.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// Snappy cannot expand input by more than this factor (a 3-byte copy element yields at most 64
/// bytes): a block whose header claims more is refused before anything is allocated for it.
const SNAPPY_MAX_EXPANSION: usize = 22;

/// snappy-java's stream header: magic, then version 1 and compatible version 1 (i32 each).
const SNAPPY_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const SNAPPY_HEADER_LEN: usize = 16;

/// A reader of the decompressed bytes of `compressed` for `codec`; `None` for a codec id that is
/// not one of 1–4. `max_block` bounds a single snappy block's decompressed size (bytes): the one
/// codec whose blocks are decompressed whole.
pub fn reader<'a>(
    codec: i16,
    compressed: &'a [u8],
    max_block: usize,
) -> Option<io::Result<Box<dyn Read + 'a>>> {
    let r: io::Result<Box<dyn Read + 'a>> = match codec {
        CODEC_GZIP => Ok(Box::new(GzipReader(flate2::bufread::GzDecoder::new(compressed)))),
        CODEC_SNAPPY => Ok(Box::new(SnappyReader::new(compressed, max_block))),
        CODEC_LZ4 => lz4::Decoder::new(compressed).map(|d| Box::new(Lz4Reader(Some(d))) as Box<dyn Read>),
        CODEC_ZSTD => zstd::stream::read::Decoder::with_buffer(compressed).and_then(|mut d| {
            d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
            Ok(Box::new(d) as Box<dyn Read>)
        }),
        _ => return None,
    };
    Some(r)
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// One gzip member; bytes after it (another member, or anything else) are an error.
struct GzipReader<'a>(flate2::bufread::GzDecoder<&'a [u8]>);

impl Read for GzipReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(out)?;
        if n == 0 && !out.is_empty() && !self.0.get_ref().is_empty() {
            return Err(invalid("bytes after the gzip member"));
        }
        Ok(n)
    }
}

/// One LZ4 frame, which must end with its end mark and be followed by nothing. (The decoder reads
/// no further than the frame needs, so what is left of the input is what follows the frame.)
struct Lz4Reader<'a>(Option<lz4::Decoder<&'a [u8]>>);

impl Read for Lz4Reader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let Some(d) = self.0.as_mut() else { return Ok(0) };
        let n = d.read(out)?;
        if n > 0 || out.is_empty() {
            return Ok(n);
        }
        let Some(d) = self.0.take() else { return Ok(0) };
        let (rest, finished) = d.finish();
        if finished.is_err() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if !rest.is_empty() {
            return Err(invalid("bytes after the LZ4 frame"));
        }
        Ok(0)
    }
}

/// Reads snappy-java's framing one block at a time into a reused buffer.
struct SnappyReader<'a> {
    /// Compressed bytes not yet decoded (after the header once it has been read).
    input: &'a [u8],
    /// Whether the stream header has been looked at.
    started: bool,
    /// The current block, decompressed; `pos` is how much of it has been handed out.
    block: Vec<u8>,
    pos: usize,
    /// Largest decompressed block accepted, bytes.
    max_block: usize,
    decoder: snap::raw::Decoder,
}

impl<'a> SnappyReader<'a> {
    fn new(input: &'a [u8], max_block: usize) -> Self {
        SnappyReader {
            input,
            started: false,
            block: Vec::new(),
            pos: 0,
            max_block,
            decoder: snap::raw::Decoder::new(),
        }
    }

    /// Decompresses one raw snappy block into `self.block`, refusing one larger than `max_block` or
    /// than its compressed size could possibly expand to (before allocating for it).
    fn decode(&mut self, raw: &[u8]) -> io::Result<()> {
        let len = snap::raw::decompress_len(raw).map_err(|_| invalid("bad snappy block length"))?;
        if len > raw.len().saturating_mul(SNAPPY_MAX_EXPANSION).saturating_add(64) {
            return Err(invalid("snappy block claims more than its bytes can hold"));
        }
        if len > self.max_block {
            return Err(invalid("snappy block larger than the decompression bound"));
        }
        self.block.resize(len, 0);
        let n = self.decoder.decompress(raw, &mut self.block).map_err(|_| invalid("bad snappy block"))?;
        self.block.truncate(n);
        self.pos = 0;
        Ok(())
    }

    /// Loads the next block; `false` at the end of the stream.
    fn next_block(&mut self) -> io::Result<bool> {
        if !self.started {
            self.started = true;
            if self.input.get(..SNAPPY_MAGIC.len()) != Some(&SNAPPY_MAGIC[..]) {
                // No framing: the whole input is one raw snappy block.
                let all = std::mem::take(&mut self.input);
                if all.is_empty() {
                    return Ok(false);
                }
                self.decode(all)?;
                return Ok(true);
            }
            self.input = self.input.get(SNAPPY_HEADER_LEN..).ok_or(io::ErrorKind::UnexpectedEof)?;
        }
        loop {
            let Some((len, rest)) = self.input.split_first_chunk::<4>() else {
                return if self.input.is_empty() {
                    Ok(false)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            };
            let len = u32::from_be_bytes(*len) as usize;
            let raw = rest.get(..len).ok_or(io::ErrorKind::UnexpectedEof)?;
            self.input = rest.get(len..).unwrap_or_default();
            self.decode(raw)?;
            if !self.block.is_empty() {
                return Ok(true);
            }
        }
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.block.len() && !self.next_block()? {
            return Ok(0);
        }
        let n = out.len().min(self.block.len() - self.pos);
        out[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(codec: i16, data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        reader(codec, data, 1 << 20).ok_or(invalid("codec"))??.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn every_codec_round_trips_what_kafka_protocol_compresses() {
        use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};
        let plain: Vec<u8> = (0..100_000u32).flat_map(|i| (i % 251).to_be_bytes()).collect();
        let fill = |b: &mut bytes::BytesMut| -> anyhow::Result<()> {
            b.extend_from_slice(&plain);
            Ok(())
        };
        let mut gz = bytes::BytesMut::new();
        Gzip::compress(&mut gz, fill).unwrap();
        let mut sn = bytes::BytesMut::new();
        Snappy::compress(&mut sn, fill).unwrap();
        let mut l4 = bytes::BytesMut::new();
        Lz4::compress(&mut l4, fill).unwrap();
        let mut zs = bytes::BytesMut::new();
        Zstd::compress(&mut zs, fill).unwrap();
        for (codec, data) in [(CODEC_GZIP, gz), (CODEC_SNAPPY, sn), (CODEC_LZ4, l4), (CODEC_ZSTD, zs)] {
            assert_eq!(read_all(codec, &data).unwrap(), plain, "codec {codec}");
        }
    }

    #[test]
    fn raw_snappy_without_framing_is_read_as_one_block() {
        let plain = b"hello hello hello hello".repeat(10);
        let raw = snap::raw::Encoder::new().compress_vec(&plain).unwrap();
        assert_eq!(read_all(CODEC_SNAPPY, &raw).unwrap(), plain);
    }

    #[test]
    fn a_snappy_block_above_the_bound_is_refused_before_allocating() {
        let plain = vec![0u8; 4 << 20];
        let raw = snap::raw::Encoder::new().compress_vec(&plain).unwrap();
        let mut r = reader(CODEC_SNAPPY, &raw, 1 << 20).unwrap().unwrap();
        assert_eq!(r.read(&mut [0u8; 16]).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_snappy_block_claiming_more_than_its_bytes_can_hold_is_refused() {
        // A 67-byte request once made strom zero-fill 2 GB: the claimed length is now checked
        // against what the compressed bytes could expand to, whatever the bound.
        let mut raw = Vec::new();
        let mut claim = 2_000_000_000u64;
        while claim >= 0x80 {
            raw.push((claim as u8) | 0x80);
            claim >>= 7;
        }
        raw.push(claim as u8);
        raw.extend_from_slice(&[0; 40]);
        let mut r = reader(CODEC_SNAPPY, &raw, usize::MAX).unwrap().unwrap();
        let e = r.read(&mut [0u8; 16]).unwrap_err();
        assert_eq!((e.kind(), e.to_string().contains("claims more")), (io::ErrorKind::InvalidData, true));
    }

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_is_one_member_with_nothing_after_it() {
        assert_eq!(read_all(CODEC_GZIP, &gzip(b"hello")).unwrap(), b"hello");
        // librdkafka's consumer crashes on an empty member followed by another, and drops records
        // of two members: refused (Java's reader would read both).
        let two = [gzip(b""), gzip(b"hello")].concat();
        assert_eq!(read_all(CODEC_GZIP, &two).unwrap_err().kind(), io::ErrorKind::InvalidData);
        let trailing = [gzip(b"hello"), vec![0]].concat();
        assert!(read_all(CODEC_GZIP, &trailing).is_err());
    }

    #[test]
    fn lz4_is_one_whole_frame_with_nothing_after_it() {
        let mut e = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
        std::io::Write::write_all(&mut e, &b"hello lz4 ".repeat(1000)).unwrap();
        let (frame, done) = e.finish();
        done.unwrap();
        assert_eq!(read_all(CODEC_LZ4, &frame).unwrap(), b"hello lz4 ".repeat(1000));
        // A byte after the end mark stalls librdkafka's consumer forever; a frame without its end
        // mark is refused by Kafka.
        let trailing = [frame.clone(), vec![0]].concat();
        assert_eq!(read_all(CODEC_LZ4, &trailing).unwrap_err().kind(), io::ErrorKind::InvalidData);
        let cut = &frame[..frame.len() - 4];
        assert_eq!(read_all(CODEC_LZ4, cut).unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn zstd_frames_with_kafkas_largest_window_are_read() {
        // Levels 20-22 (Kafka's compression.zstd.level allows them) use windows up to 2^27.
        let plain = b"zstd at a high level ".repeat(5000);
        let mut e = zstd::stream::Encoder::new(Vec::new(), 22).unwrap();
        e.set_parameter(zstd::stream::raw::CParameter::WindowLog(27)).unwrap();
        std::io::Write::write_all(&mut e, &plain).unwrap();
        let frame = e.finish().unwrap();
        assert_eq!(read_all(CODEC_ZSTD, &frame).unwrap(), plain);
    }

    #[test]
    fn garbage_and_unknown_codecs_fail_without_panicking() {
        let junk = [0x5au8; 200];
        for codec in 1..=4 {
            assert!(read_all(codec, &junk).is_err(), "codec {codec}");
            assert!(read_all(codec, &[]).map_or(true, |v| v.is_empty()));
        }
        assert!(reader(5, &junk, 1).is_none());
        assert!(reader(7, &junk, 1).is_none());
    }
}
