//! The records of `__transaction_state` in Kafka's format (`TransactionLogKey` v0 /
//! `TransactionLogValue` v0 and v1, transaction coordinator module; Kafka's `TransactionLog`):
//!
//! - key: int16 version 0, then the transactional id as an int16-length string;
//! - value v0: int16 version, producer id int64, producer epoch int16, transaction timeout int32
//!   (ms), state int8 (Kafka's state ids), partitions as a nullable array (null when Empty) of
//!   {topic, partition ids}, last update time int64 (ms), transaction start time int64 (ms, -1);
//! - value v1 (flexible, what Kafka writes with `transaction.version` >= 1, as strom finalizes it):
//!   the same fields with compact arrays and strings and tagged fields, the client's transaction
//!   version in tag 2 when not 0;
//! - a null value (tombstone) removes the id (expiry).
//!
//! Like Kafka, the previous and next producer ids and the last producer epoch are not written: they
//! come back as -1 after a restart. A stock consumer reading `__transaction_state` sees Kafka's bytes.

use std::collections::BTreeSet;

use bytes::{BufMut, Bytes, BytesMut};

use crate::coordinator_log::wire::{
    get_array_len, get_i16, get_i32, get_i64, get_i8, get_string, get_tagged, put_compact_string, put_string,
    put_uvarint,
};

use super::model::{TxnMetadata, TxnRecord, TxnState, ALL_STATES};

/// Key version (always 0).
const VERSION: i16 = 0;
/// Value version written: 1, as Kafka with `transaction.version` >= 1.
const VALUE_VERSION: i16 = 1;
/// The tag of ClientTransactionVersion in value v1.
const TAG_CLIENT_TXN_VERSION: u32 = 2;

/// Skips a tagged-fields section, returning the ClientTransactionVersion tag if present.
fn get_client_txn_version(b: &mut Bytes) -> Option<Option<i16>> {
    let mut client_version = None;
    get_tagged(b, |tag, mut field| {
        if tag == TAG_CLIENT_TXN_VERSION {
            client_version = get_i16(&mut field);
        }
    })?;
    Some(client_version)
}

/// The record key of `transactional_id`; `None` if it is longer than an int16-length string holds.
pub fn encode_key(transactional_id: &str) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(4 + transactional_id.len());
    out.put_i16(VERSION);
    put_string(&mut out, Some(transactional_id))?;
    Some(out.freeze())
}

/// The state's id in Kafka's transaction log.
fn state_id(s: TxnState) -> i8 {
    ALL_STATES.iter().position(|x| *x == s).map_or(-1, |i| i as i8)
}

/// The partitions of `m` grouped by topic, in order.
fn topics(m: &TxnMetadata) -> Vec<(&str, Vec<i32>)> {
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (t, p) in &m.partitions {
        match topics.last_mut() {
            Some((name, ps)) if *name == t.as_str() => ps.push(*p),
            _ => topics.push((t, vec![*p])),
        }
    }
    topics
}

/// The record value of `m` (v1, flexible).
pub fn encode_value(m: &TxnMetadata) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(64);
    out.put_i16(VALUE_VERSION);
    out.put_i64(m.producer_id);
    out.put_i16(m.producer_epoch);
    out.put_i32(m.timeout_ms);
    out.put_i8(state_id(m.state));
    if m.state == TxnState::Empty {
        put_uvarint(&mut out, 0);
    } else {
        let topics = topics(m);
        put_uvarint(&mut out, u32::try_from(topics.len()).ok()?.checked_add(1)?);
        for (t, ps) in topics {
            put_compact_string(&mut out, Some(t))?;
            put_uvarint(&mut out, u32::try_from(ps.len()).ok()?.checked_add(1)?);
            for p in ps {
                out.put_i32(p);
            }
            put_uvarint(&mut out, 0);
        }
    }
    out.put_i64(m.last_update_ms);
    out.put_i64(m.txn_start_ms);
    if m.client_txn_version != 0 {
        put_uvarint(&mut out, 1);
        put_uvarint(&mut out, TAG_CLIENT_TXN_VERSION);
        put_uvarint(&mut out, 2);
        out.put_i16(m.client_txn_version);
    } else {
        put_uvarint(&mut out, 0);
    }
    Some(out.freeze())
}

/// A record's key and value, or `None` for an id too long to be a key.
pub fn encode(r: &TxnRecord) -> Option<(Bytes, Option<Bytes>)> {
    match r {
        TxnRecord::Set(m) => Some((encode_key(&m.transactional_id)?, Some(encode_value(m)?))),
        TxnRecord::Delete(id) => Some((encode_key(id)?, None)),
    }
}

/// Decodes one record of `__transaction_state`; `None` for anything that is not a v0 key/value
/// pair of this format (skipped by replay, never a panic).
pub fn decode(key: &Bytes, value: Option<&Bytes>) -> Option<TxnRecord> {
    let mut k = key.clone();
    if get_i16(&mut k)? != VERSION {
        return None;
    }
    let id = get_string(&mut k, false)?;
    let Some(value) = value else { return Some(TxnRecord::Delete(id)) };
    let mut v = value.clone();
    let version = get_i16(&mut v)?;
    if !(0..=1).contains(&version) {
        return None;
    }
    let flexible = version >= 1;
    let producer_id = get_i64(&mut v)?;
    let producer_epoch = get_i16(&mut v)?;
    let timeout_ms = get_i32(&mut v)?;
    let state = *ALL_STATES.get(usize::try_from(get_i8(&mut v)?).ok()?)?;
    let mut partitions = BTreeSet::new();
    for _ in 0..get_array_len(&mut v, flexible, 2)? {
        let topic = get_string(&mut v, flexible)?;
        // Each partition id takes 4 bytes: a count the value cannot hold is corrupt.
        for _ in 0..get_array_len(&mut v, flexible, 4)? {
            partitions.insert((topic.clone(), get_i32(&mut v)?));
        }
        if flexible {
            get_tagged(&mut v, |_, _| {})?;
        }
    }
    let last_update_ms = get_i64(&mut v)?;
    let txn_start_ms = get_i64(&mut v)?;
    let client_txn_version = if flexible { get_client_txn_version(&mut v)?.unwrap_or(0) } else { 0 };
    Some(TxnRecord::Set(TxnMetadata {
        transactional_id: id,
        producer_id,
        next_producer_id: -1,
        client_txn_version,
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
            next_producer_id: -1,
            client_txn_version: 2,
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

    /// Version, producer id 4001, epoch 7, timeout 60 s and the state byte: the fixed head of a value.
    fn head(version: u8, state: u8) -> Vec<u8> {
        let mut want = vec![0u8, version];
        want.extend_from_slice(&4001i64.to_be_bytes());
        want.extend_from_slice(&7i16.to_be_bytes());
        want.extend_from_slice(&60_000i32.to_be_bytes());
        want.push(state);
        want
    }

    #[test]
    fn bytes_are_kafkas() {
        // TransactionLogKey v0: version 0, then "app-1" as an int16-length string.
        assert_eq!(encode_key("app-1").unwrap().as_ref(), b"\x00\x00\x00\x05app-1");
        // TransactionLogValue v1: compact arrays and strings, tagged fields, ClientTransactionVersion in tag 2.
        let v = encode_value(&meta(TxnState::Ongoing, &[("a", 0), ("a", 2), ("b", 1)])).unwrap();
        let mut want = head(1, 1);
        want.push(3); // two topics
        want.extend_from_slice(b"\x02a\x03\x00\x00\x00\x00\x00\x00\x00\x02\x00");
        want.extend_from_slice(b"\x02b\x02\x00\x00\x00\x01\x00");
        want.extend_from_slice(&1_700_000_000_123i64.to_be_bytes());
        want.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        want.extend_from_slice(&[1, 2, 2, 0, 2]);
        assert_eq!(v.as_ref(), want.as_slice());
        // Empty: null partitions.
        let e = encode_value(&meta(TxnState::Empty, &[])).unwrap();
        assert_eq!(e[head(1, 0).len()], 0);
    }

    #[test]
    fn reads_kafkas_v0_values() {
        let mut v0 = head(0, 1);
        v0.extend_from_slice(&1i32.to_be_bytes());
        v0.extend_from_slice(b"\x00\x01a\x00\x00\x00\x01\x00\x00\x00\x05");
        v0.extend_from_slice(&1_700_000_000_123i64.to_be_bytes());
        v0.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
        let want = TxnMetadata { client_txn_version: 0, ..meta(TxnState::Ongoing, &[("a", 5)]) };
        assert_eq!(decode(&encode_key("app-1").unwrap(), Some(&Bytes::from(v0))), Some(TxnRecord::Set(want)));
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
        // One topic claiming 2^28 partitions in a few bytes.
        let mut v = head(1, 1);
        v.extend_from_slice(b"\x02\x02a\xff\xff\xff\x7f\x00\x00\x00\x00");
        assert_eq!(decode(&k, Some(&Bytes::from(v))), None, "a partition count the value cannot hold");
        assert!(encode_key(&"x".repeat(40_000)).is_none());
    }

    proptest! {
        #[test]
        fn round_trip(
            state in 0usize..8,
            epoch in any::<i16>(),
            pid in any::<i64>(),
            tv in 0i16..3,
            parts in proptest::collection::btree_set(("[a-z_.-]{1,200}", 0i32..1000), 0..20),
        ) {
            let state = ALL_STATES[state];
            let mut m = meta(state, &[]);
            m.producer_id = pid;
            m.producer_epoch = epoch;
            m.client_txn_version = tv;
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
