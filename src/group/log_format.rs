//! The records of `__consumer_offsets` in Kafka's format (the group coordinator's message schemas
//! `OffsetCommitKey`/`OffsetCommitValue` and `GroupMetadataKey`/`GroupMetadataValue`; what Kafka's
//! `GroupCoordinatorRecordHelpers` writes and `GroupCoordinatorRecordSerde` reads):
//!
//! - the key starts with an int16 record type (its "version"): 0 or 1 an offset commit (group,
//!   topic, partition as int16-length strings and an int32), 2 a group's metadata (group); higher
//!   types are KIP-848/share/streams group records, which strom does not write and skips;
//! - OffsetCommitValue, written at version 4 as Kafka 4.4 does (flexible): offset int64, leader
//!   epoch int32, metadata compact string, commit timestamp int64 (ms), tagged fields (tag 0: the
//!   topic id, written by Kafka only for commits by topic id, which strom's OffsetCommit v2–v9 are
//!   not). Versions 0–3 are read too (v1 carries an expire timestamp, ignored);
//! - GroupMetadataValue, written at version 3 (classic encoding): protocol type, generation int32,
//!   protocol and leader as nullable strings, current state timestamp int64 (ms), then the members:
//!   member id, group instance id (nullable), client id, client host, rebalance and session timeouts
//!   int32 (ms), subscription and assignment int32-length bytes. Versions 0–4 are read;
//! - a null value (tombstone) deletes the offset or the group.
//!
//! An offset commit in a transactional batch is a transactional offset commit (TxnOffsetCommit) of
//! the batch's producer; it stays pending until that producer's COMMIT/ABORT control marker in the
//! same partition. Those are decided by the caller from the batch ([`decode`]'s `producer`).

use bytes::{BufMut, Bytes, BytesMut};

use super::model::{CommittedOffset, GroupMetadataRecord, GroupRecord, MemberRecord};
use crate::coordinator_log::wire::{
    get_array_len, get_bytes, get_i16, get_i32, get_i64, get_nullable_string, get_string, get_tagged,
    put_bytes, put_compact_string, put_string, put_uvarint,
};

/// Key type of an offset commit as Kafka writes it (OffsetCommitKey version 1).
const OFFSET_KEY: i16 = 1;
/// Key type of a group's metadata (GroupMetadataKey version 2).
const GROUP_KEY: i16 = 2;
/// OffsetCommitValue version written (Kafka 4.4's `offsetCommitValueVersion` without an expire time).
const OFFSET_VALUE_VERSION: i16 = 4;
/// GroupMetadataValue version written (Kafka 4.4's `newGroupMetadataRecord`).
const GROUP_VALUE_VERSION: i16 = 3;

/// The key of an offset commit record.
pub fn offset_key(group: &str, topic: &str, partition: i32) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(10 + group.len() + topic.len());
    out.put_i16(OFFSET_KEY);
    put_string(&mut out, Some(group))?;
    put_string(&mut out, Some(topic))?;
    out.put_i32(partition);
    Some(out.freeze())
}

/// The key of a group metadata record.
pub fn group_key(group: &str) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(4 + group.len());
    out.put_i16(GROUP_KEY);
    put_string(&mut out, Some(group))?;
    Some(out.freeze())
}

/// OffsetCommitValue v4.
pub fn offset_value(v: &CommittedOffset) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(32 + v.metadata.len());
    out.put_i16(OFFSET_VALUE_VERSION);
    out.put_i64(v.offset);
    out.put_i32(v.leader_epoch);
    put_compact_string(&mut out, Some(&v.metadata))?;
    out.put_i64(v.commit_ms);
    put_uvarint(&mut out, 0);
    Some(out.freeze())
}

/// GroupMetadataValue v3. The current state timestamp is the time the group became empty, or
/// `now_ms` (Kafka's `currentStateTimestampOrDefault`).
pub fn group_value(m: &GroupMetadataRecord, now_ms: i64) -> Option<Bytes> {
    let mut out = BytesMut::with_capacity(64);
    out.put_i16(GROUP_VALUE_VERSION);
    put_string(&mut out, Some(&m.protocol_type))?;
    out.put_i32(m.generation);
    put_string(&mut out, m.protocol.as_deref())?;
    put_string(&mut out, m.leader.as_deref())?;
    out.put_i64(m.empty_since_ms.unwrap_or(now_ms));
    out.put_i32(i32::try_from(m.members.len()).ok()?);
    for member in &m.members {
        put_string(&mut out, Some(&member.member_id))?;
        put_string(&mut out, member.instance_id.as_deref())?;
        put_string(&mut out, Some(&member.client_id))?;
        put_string(&mut out, Some(&member.client_host))?;
        out.put_i32(member.rebalance_timeout_ms);
        out.put_i32(member.session_timeout_ms);
        put_bytes(&mut out, &member.subscription, false)?;
        put_bytes(&mut out, &member.assignment, false)?;
    }
    Some(out.freeze())
}

/// The key and value of a data record (`None` for a transaction end, which is a control marker, or
/// for names too long for an int16-length string).
pub fn encode(r: &GroupRecord, now_ms: i64) -> Option<(Bytes, Option<Bytes>)> {
    match r {
        GroupRecord::Offset { group, topic, partition, value } => Some((
            offset_key(group, topic, *partition)?,
            match value {
                Some(v) => Some(offset_value(v)?),
                None => None,
            },
        )),
        GroupRecord::TxnOffset { group, topic, partition, value, .. } => {
            Some((offset_key(group, topic, *partition)?, Some(offset_value(value)?)))
        }
        GroupRecord::Metadata { group, value } => Some((
            group_key(group)?,
            match value {
                Some(m) => Some(group_value(m, now_ms)?),
                None => None,
            },
        )),
        GroupRecord::TxnEnd { .. } => None,
    }
}

fn decode_offset_value(value: &Bytes) -> Option<CommittedOffset> {
    let mut v = value.clone();
    let version = get_i16(&mut v)?;
    if !(0..=4).contains(&version) {
        return None;
    }
    let flexible = version >= 4;
    let offset = get_i64(&mut v)?;
    let leader_epoch = if version >= 3 { get_i32(&mut v)? } else { -1 };
    let metadata = get_string(&mut v, flexible)?;
    let commit_ms = get_i64(&mut v)?;
    if version == 1 {
        get_i64(&mut v)?;
    }
    if flexible {
        get_tagged(&mut v, |_, _| {})?;
    }
    Some(CommittedOffset { offset, leader_epoch, metadata, commit_ms })
}

fn decode_group_value(value: &Bytes) -> Option<GroupMetadataRecord> {
    let mut v = value.clone();
    let version = get_i16(&mut v)?;
    if !(0..=4).contains(&version) {
        return None;
    }
    let flexible = version >= 4;
    let protocol_type = get_string(&mut v, flexible)?;
    let generation = get_i32(&mut v)?;
    let protocol = get_nullable_string(&mut v, flexible)?;
    let leader = get_nullable_string(&mut v, flexible)?;
    let state_ms = if version >= 2 { get_i64(&mut v)? } else { -1 };
    let mut members = Vec::new();
    for _ in 0..get_array_len(&mut v, flexible, 12)? {
        let member_id = get_string(&mut v, flexible)?;
        let instance_id = if version >= 3 { get_nullable_string(&mut v, flexible)? } else { None };
        let client_id = get_string(&mut v, flexible)?;
        let client_host = get_string(&mut v, flexible)?;
        let rebalance_timeout_ms = if version >= 1 { get_i32(&mut v)? } else { -1 };
        let session_timeout_ms = get_i32(&mut v)?;
        let subscription = get_bytes(&mut v, flexible)?.to_vec();
        let assignment = get_bytes(&mut v, flexible)?.to_vec();
        if flexible {
            get_tagged(&mut v, |_, _| {})?;
        }
        members.push(MemberRecord {
            member_id,
            instance_id,
            client_id,
            client_host,
            session_timeout_ms,
            rebalance_timeout_ms,
            subscription,
            assignment,
        });
    }
    if flexible {
        get_tagged(&mut v, |_, _| {})?;
    }
    let empty_since_ms = (members.is_empty() && state_ms >= 0).then_some(state_ms);
    Some(GroupMetadataRecord { protocol_type, generation, protocol, leader, members, empty_since_ms })
}

/// Decodes one data record of `__consumer_offsets`. `producer`: the producer id and epoch of a
/// transactional batch (its offset commits are transactional). `None` for records that are not an
/// offset commit or classic group record (other group types, corrupt bytes): skipped by replay.
pub fn decode(key: &Bytes, value: Option<&Bytes>, producer: Option<(i64, i16)>) -> Option<GroupRecord> {
    let mut k = key.clone();
    match get_i16(&mut k)? {
        0 | 1 => {
            let group = get_string(&mut k, false)?;
            let topic = get_string(&mut k, false)?;
            let partition = get_i32(&mut k)?;
            let value = match value {
                Some(v) => Some(decode_offset_value(v)?),
                None => None,
            };
            match (producer, value) {
                (Some((producer_id, producer_epoch)), Some(value)) => Some(GroupRecord::TxnOffset {
                    group,
                    producer_id,
                    producer_epoch,
                    topic,
                    partition,
                    value,
                }),
                (_, value) => Some(GroupRecord::Offset { group, topic, partition, value }),
            }
        }
        2 => {
            let group = get_string(&mut k, false)?;
            let value = match value {
                Some(v) => Some(decode_group_value(v)?),
                None => None,
            };
            Some(GroupRecord::Metadata { group, value })
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "log_format_tests.rs"]
mod tests;
