//! The records of `__transaction_state` in Kafka's format (`TransactionLogKey` /
//! `TransactionLogValue` v0, transaction coordinator module; written by Kafka's `TransactionLog`):
//!
//! - key: int16 version 0, then the transactional id as an int16-length string;
//! - value: int16 version 0, producer id int64, producer epoch int16, transaction timeout int32 (ms),
//!   state int8 (Kafka's state ids), partitions as a nullable array (int32 count, -1 = null; null
//!   when Empty) of {topic: int16-length string, partition ids: int32 count + int32s}, last update
//!   time int64 (ms), transaction start time int64 (ms, -1 when none);
//! - a null value (tombstone) removes the id (expiry).
//!
//! Like Kafka, the previous producer id and last producer epoch are not written: they come back as
//! -1 after a restart. A stock consumer reading `__transaction_state` sees exactly Kafka's bytes.

use std::collections::BTreeSet;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::model::{TxnMetadata, TxnRecord, TxnState, ALL_STATES};

/// Key and value version written (v0: what Kafka writes without `transaction.version` >= 1).
const VERSION: i16 = 0;

fn put_string(out: &mut BytesMut, s: &str) -> Option<()> {
    out.put_i16(i16::try_from(s.len()).ok()?);
    out.put_slice(s.as_bytes());
    Some(())
}

/// The record key of `transactional_id`; `None` if it is longer than an int16-length string holds.
pub fn encode_key(transactional_id: &str) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(4 + transactional_id.len());
    out.put_i16(VERSION);
    put_string(&mut out, transactional_id)?;
    Some(out.freeze())
}

/// The state's id in Kafka's transaction log.
fn state_id(s: TxnState) -> i8 {
    ALL_STATES.iter().position(|x| *x == s).map_or(-1, |i| i as i8)
}

/// The record value of `m`.
pub fn encode_value(m: &TxnMetadata) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(64);
    out.put_i16(VERSION);
    out.put_i64(m.producer_id);
    out.put_i16(m.producer_epoch);
    out.put_i32(m.timeout_ms);
    out.put_i8(state_id(m.state));
    if m.state == TxnState::Empty {
        out.put_i32(-1);
    } else {
        let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
        for (t, p) in &m.partitions {
            match topics.last_mut() {
                Some((name, ps)) if *name == t.as_str() => ps.push(*p),
                _ => topics.push((t, vec![*p])),
            }
        }
        out.put_i32(i32::try_from(topics.len()).ok()?);
        for (t, ps) in topics {
            put_string(&mut out, t)?;
            out.put_i32(i32::try_from(ps.len()).ok()?);
            for p in ps {
                out.put_i32(p);
            }
        }
    }
    out.put_i64(m.last_update_ms);
    out.put_i64(m.txn_start_ms);
    Some(out.freeze())
}

/// A record's key and value, or `None` for an id too long to be a key.
pub fn encode(r: &TxnRecord) -> Option<(Bytes, Option<Bytes>)> {
    match r {
        TxnRecord::Set(m) => Some((encode_key(&m.transactional_id)?, Some(encode_value(m)?))),
        TxnRecord::Delete(id) => Some((encode_key(id)?, None)),
    }
}

fn get_string(b: &mut Bytes) -> Option<String> {
    let len = usize::try_from(get_i16(b)?).ok()?;
    if b.remaining() < len {
        return None;
    }
    String::from_utf8(b.split_to(len).to_vec()).ok()
}

fn get_i16(b: &mut Bytes) -> Option<i16> {
    (b.remaining() >= 2).then(|| b.get_i16())
}

fn get_i32(b: &mut Bytes) -> Option<i32> {
    (b.remaining() >= 4).then(|| b.get_i32())
}

fn get_i64(b: &mut Bytes) -> Option<i64> {
    (b.remaining() >= 8).then(|| b.get_i64())
}

/// Decodes one record of `__transaction_state`; `None` for anything that is not a v0 key/value
/// pair of this format (skipped by replay, never a panic).
pub fn decode(key: &Bytes, value: Option<&Bytes>) -> Option<TxnRecord> {
    let mut k = key.clone();
    if get_i16(&mut k)? != VERSION {
        return None;
    }
    let id = get_string(&mut k)?;
    let Some(value) = value else { return Some(TxnRecord::Delete(id)) };
    let mut v = value.clone();
    if get_i16(&mut v)? != VERSION {
        return None;
    }
    let producer_id = get_i64(&mut v)?;
    let producer_epoch = get_i16(&mut v)?;
    let timeout_ms = get_i32(&mut v)?;
    let state = *ALL_STATES.get(usize::try_from((v.remaining() >= 1).then(|| v.get_i8())?).ok()?)?;
    let mut partitions = BTreeSet::new();
    let topics = get_i32(&mut v)?;
    for _ in 0..topics.max(0) {
        let topic = get_string(&mut v)?;
        let count = get_i32(&mut v)?;
        // Each partition id takes 4 bytes: a count the value cannot hold is corrupt.
        if usize::try_from(count).ok()? > v.remaining() / 4 {
            return None;
        }
        for _ in 0..count {
            partitions.insert((topic.clone(), get_i32(&mut v)?));
        }
    }
    let last_update_ms = get_i64(&mut v)?;
    let txn_start_ms = get_i64(&mut v)?;
    Some(TxnRecord::Set(TxnMetadata {
        transactional_id: id,
        producer_id,
        last_producer_id: -1,
        producer_epoch,
        last_producer_epoch: -1,
        timeout_ms,
        state,
        partitions,
        txn_start_ms,
        last_update_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn meta(state: TxnState, partitions: &[(&str, i32)]) -> TxnMetadata {
        TxnMetadata {
            transactional_id: "app-1".into(),
            producer_id: 4001,
            last_producer_id: -1,
            producer_epoch: 7,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state,
            partitions: partitions.iter().map(|(t, p)| (t.to_string(), *p)).collect(),
            txn_start_ms: if partitions.is_empty() { -1 } else { 1_700_000_000_000 },
            last_update_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn bytes_are_kafkas() {
        // TransactionLogKey v0: version 0, then "app-1" as an int16-length string.
        assert_eq!(encode_key("app-1").unwrap().as_ref(), b"\x00\x00\x00\x05app-1");
        let v = encode_value(&meta(TxnState::Ongoing, &[("a", 0), ("a", 2), ("b", 1)])).unwrap();
        let mut want = vec![0u8, 0];
        want.extend_from_slice(&4001i64.to_be_bytes());
        want.extend_from_slice(&7i16.to_be_bytes());
        want.extend_from_slice(&60_000i32.to_be_bytes());
        want.push(1); // Ongoing
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(b"\x00\x01a\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x02");
        want.extend_from_slice(b"\x00\x01b\x00\x00\x00\x01\x00\x00\x00\x01");
        want.extend_from_slice(&1_700_000_000_123i64.to_be_bytes());
        want.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        assert_eq!(v.as_ref(), want.as_slice());
        // Empty: null partitions.
        let e = encode_value(&meta(TxnState::Empty, &[])).unwrap();
        assert_eq!(&e[2 + 8 + 2 + 4..2 + 8 + 2 + 4 + 5], &[0, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn tombstones_and_garbage() {
        let k = encode_key("x").unwrap();
        assert_eq!(decode(&k, None), Some(TxnRecord::Delete("x".into())));
        assert_eq!(
            decode(&Bytes::from_static(b"\x00\x01\x00\x01x"), None),
            None,
            "key version 1 is not ours"
        );
        let mut v = encode_value(&meta(TxnState::Ongoing, &[("a", 0)])).unwrap().to_vec();
        v[2 + 8 + 2 + 4 + 1 + 4 + 3..][..4].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(decode(&k, Some(&Bytes::from(v))), None, "a partition count the value cannot hold");
        assert!(encode_key(&"x".repeat(40_000)).is_none());
    }

    proptest! {
        #[test]
        fn round_trip(
            state in 0usize..8,
            epoch in any::<i16>(),
            pid in any::<i64>(),
            parts in proptest::collection::btree_set(("[a-z_.-]{1,20}", 0i32..1000), 0..20),
        ) {
            let state = ALL_STATES[state];
            let mut m = meta(state, &[]);
            m.producer_id = pid;
            m.producer_epoch = epoch;
            if state != TxnState::Empty {
                m.partitions = parts;
            }
            let (k, v) = encode(&TxnRecord::Set(m.clone())).unwrap();
            prop_assert_eq!(decode(&k, v.as_ref()), Some(TxnRecord::Set(m)));
        }

        #[test]
        fn never_panics_on_any_bytes(k in proptest::collection::vec(any::<u8>(), 0..64),
                                     v in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&Bytes::from(k), Some(&Bytes::from(v)));
        }
    }
}
