//! Reading and writing the fields of Kafka's generated coordinator messages (the `*Key`/`*Value`
//! records of `__consumer_offsets` and `__transaction_state`): big-endian integers, int16-length
//! strings and int32-length bytes of the classic versions, and the unsigned-varint lengths, compact
//! strings/bytes/arrays and tagged fields of the flexible versions (Kafka's `ByteBufferAccessor` and
//! `MessageUtil`). Every reader returns `None` on input that is short or inconsistent; none panics or
//! allocates more than the input holds.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Writes an unsigned varint.
pub fn put_uvarint(out: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// Reads an unsigned varint (at most 5 bytes).
pub fn get_uvarint(b: &mut Bytes) -> Option<u32> {
    let mut v = 0u32;
    for shift in (0..35).step_by(7) {
        let byte = (b.remaining() >= 1).then(|| b.get_u8())?;
        v |= u32::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// A compact length field: `n + 1`, or 0 for null.
pub fn put_compact_len(out: &mut BytesMut, n: Option<usize>) -> Option<()> {
    match n {
        None => put_uvarint(out, 0),
        Some(n) => put_uvarint(out, u32::try_from(n).ok()?.checked_add(1)?),
    }
    Some(())
}

/// A compact length: `Some(None)` for null.
pub fn get_compact_len(b: &mut Bytes) -> Option<Option<usize>> {
    let n = get_uvarint(b)?;
    Some(n.checked_sub(1).and_then(|n| usize::try_from(n).ok()))
}

/// An int16-length string (`None`: null, length -1); `None` if longer than an int16 holds.
pub fn put_string(out: &mut BytesMut, s: Option<&str>) -> Option<()> {
    match s {
        None => out.put_i16(-1),
        Some(s) => {
            out.put_i16(i16::try_from(s.len()).ok()?);
            out.put_slice(s.as_bytes());
        }
    }
    Some(())
}

/// A compact string (`None`: null).
pub fn put_compact_string(out: &mut BytesMut, s: Option<&str>) -> Option<()> {
    put_compact_len(out, s.map(str::len))?;
    out.put_slice(s.unwrap_or_default().as_bytes());
    Some(())
}

/// An int32-length (classic) or compact (flexible) byte array.
pub fn put_bytes(out: &mut BytesMut, b: &[u8], flexible: bool) -> Option<()> {
    if flexible {
        put_compact_len(out, Some(b.len()))?;
    } else {
        out.put_i32(i32::try_from(b.len()).ok()?);
    }
    out.put_slice(b);
    Some(())
}

pub fn get_i8(b: &mut Bytes) -> Option<i8> {
    (b.remaining() >= 1).then(|| b.get_i8())
}

pub fn get_i16(b: &mut Bytes) -> Option<i16> {
    (b.remaining() >= 2).then(|| b.get_i16())
}

pub fn get_i32(b: &mut Bytes) -> Option<i32> {
    (b.remaining() >= 4).then(|| b.get_i32())
}

pub fn get_i64(b: &mut Bytes) -> Option<i64> {
    (b.remaining() >= 8).then(|| b.get_i64())
}

fn take(b: &mut Bytes, len: usize) -> Option<Bytes> {
    (b.remaining() >= len).then(|| b.split_to(len))
}

/// A nullable string, int16-length (classic) or compact (flexible); `Some(None)` for null.
pub fn get_nullable_string(b: &mut Bytes, flexible: bool) -> Option<Option<String>> {
    let len = if flexible {
        get_compact_len(b)?
    } else {
        let n = get_i16(b)?;
        (n >= 0).then_some(n as usize)
    };
    match len {
        None => Some(None),
        Some(len) => String::from_utf8(take(b, len)?.to_vec()).ok().map(Some),
    }
}

/// A non-null string, int16-length (classic) or compact (flexible).
pub fn get_string(b: &mut Bytes, flexible: bool) -> Option<String> {
    get_nullable_string(b, flexible)?
}

/// A non-null byte array, int32-length (classic) or compact (flexible).
pub fn get_bytes(b: &mut Bytes, flexible: bool) -> Option<Bytes> {
    let len = if flexible { get_compact_len(b)?? } else { usize::try_from(get_i32(b)?).ok()? };
    take(b, len)
}

/// An array's element count, int32 (classic, -1 null) or compact (flexible, 0 null); null is 0.
/// Refused when the rest of the input cannot hold that many elements of at least `min_size` bytes.
pub fn get_array_len(b: &mut Bytes, flexible: bool, min_size: usize) -> Option<usize> {
    let n =
        if flexible { get_compact_len(b)?.unwrap_or(0) } else { usize::try_from(get_i32(b)?.max(0)).ok()? };
    (n.saturating_mul(min_size.max(1)) <= b.remaining()).then_some(n)
}

/// Reads a tagged-fields section, calling `field(tag, bytes)` for each.
pub fn get_tagged(b: &mut Bytes, mut field: impl FnMut(u32, Bytes)) -> Option<()> {
    for _ in 0..get_uvarint(b)? {
        let tag = get_uvarint(b)?;
        let size = usize::try_from(get_uvarint(b)?).ok()?;
        field(tag, take(b, size)?);
    }
    Some(())
}
