//! Tests of the `__consumer_offsets` codec. The fixtures are the bytes of a real Apache Kafka 4.4.0
//! `__consumer_offsets` partition (`__consumer_offsets-48`, group `grp1`: a console consumer that
//! joined, read 3 records of topic `ot`, committed and left).

use super::*;
use proptest::prelude::*;

fn hex(s: &str) -> Bytes {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    Bytes::from(
        digits
            .chunks(2)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap_or("zz"), 16).unwrap_or(0))
            .collect::<Vec<u8>>(),
    )
}

/// GroupMetadataKey v2 of `grp1`.
const KAFKA_GROUP_KEY: &str = "0002000467727031";
/// GroupMetadataValue v3 as the group was Stable: generation 1, protocol `range`, one member.
const KAFKA_STABLE: &str = "00030008636f6e73756d657200000001000572616e67650035636f6e736f6c652d636f6e73756d65722d61663331663635362d363662392d343865632d383366332d626566333661616631353562000001a22dc3b150000000010035636f6e736f6c652d636f6e73756d65722d61663331663635362d363662392d343865632d383366332d626566333661616631353562ffff0010636f6e736f6c652d636f6e73756d6572000a2f3132372e302e302e31000493e00000afc80000001800030000000100026f74ffffffff00000000ffffffffffff0000001600030000000100026f740000000100000000ffffffff";
/// GroupMetadataValue v3 after the member left: Empty, generation 2.
const KAFKA_EMPTY: &str = "00030008636f6e73756d657200000002ffffffff000001a22dc3b4c200000000";
/// OffsetCommitKey v1 of (`grp1`, `ot`, 0).
const KAFKA_OFFSET_KEY: &str = "000100046772703100026f7400000000";
/// OffsetCommitValue v4: offset 3, leader epoch 0, no metadata, with the topic id in tag 0.
const KAFKA_OFFSET: &str =
    "000400000000000000030000000001000001a22dc3b47d0100105059ae9ed0584c189607f9d64b911cc5";

const MEMBER: &str = "console-consumer-af31f656-66b9-48ec-83f3-bef36aaf155b";

#[test]
fn decodes_kafkas_records() {
    let stable = decode(&hex(KAFKA_GROUP_KEY), Some(&hex(KAFKA_STABLE)), None);
    let Some(GroupRecord::Metadata { group, value: Some(m) }) = stable else { panic!("{stable:?}") };
    assert_eq!(group, "grp1");
    assert_eq!((m.protocol_type.as_str(), m.generation), ("consumer", 1));
    assert_eq!((m.protocol.as_deref(), m.leader.as_deref()), (Some("range"), Some(MEMBER)));
    let [member] = m.members.as_slice() else { panic!("{:?}", m.members) };
    assert_eq!(member.member_id, MEMBER);
    assert_eq!(member.instance_id, None);
    assert_eq!((member.client_id.as_str(), member.client_host.as_str()), ("console-consumer", "/127.0.0.1"));
    assert_eq!((member.rebalance_timeout_ms, member.session_timeout_ms), (300_000, 45_000));
    assert_eq!(member.subscription.len(), 0x18);
    assert_eq!(member.assignment.len(), 0x16);
    assert_eq!(m.empty_since_ms, None);

    let empty = decode(&hex(KAFKA_GROUP_KEY), Some(&hex(KAFKA_EMPTY)), None);
    let Some(GroupRecord::Metadata { value: Some(m), .. }) = empty else { panic!("{empty:?}") };
    assert_eq!((m.generation, m.protocol.clone(), m.leader.clone()), (2, None, None));
    assert_eq!(m.empty_since_ms, Some(0x01a2_2dc3_b4c2));

    assert_eq!(
        decode(&hex(KAFKA_OFFSET_KEY), Some(&hex(KAFKA_OFFSET)), None),
        Some(GroupRecord::Offset {
            group: "grp1".into(),
            topic: "ot".into(),
            partition: 0,
            value: Some(CommittedOffset {
                offset: 3,
                leader_epoch: 0,
                metadata: String::new(),
                commit_ms: 0x01a2_2dc3_b47d
            }),
        })
    );
}

#[test]
fn writes_kafkas_bytes() {
    assert_eq!(offset_key("grp1", "ot", 0), Some(hex(KAFKA_OFFSET_KEY)));
    assert_eq!(group_key("grp1"), Some(hex(KAFKA_GROUP_KEY)));
    // Kafka's value without the topic id tag (a commit by topic name).
    let v =
        CommittedOffset { offset: 3, leader_epoch: 0, metadata: String::new(), commit_ms: 0x01a2_2dc3_b47d };
    assert_eq!(offset_value(&v), Some(hex("000400000000000000030000000001000001a22dc3b47d00")));
    for fixture in [KAFKA_STABLE, KAFKA_EMPTY] {
        let Some(GroupRecord::Metadata { value: Some(m), .. }) =
            decode(&hex(KAFKA_GROUP_KEY), Some(&hex(fixture)), None)
        else {
            panic!("fixture does not decode")
        };
        // The Stable record's state timestamp is the time it was written.
        assert_eq!(group_value(&m, 0x01a2_2dc3_b150), Some(hex(fixture)));
    }
}

#[test]
fn tombstones_transactions_and_other_types() {
    let key = hex(KAFKA_OFFSET_KEY);
    assert_eq!(
        decode(&key, None, None),
        Some(GroupRecord::Offset { group: "grp1".into(), topic: "ot".into(), partition: 0, value: None })
    );
    assert_eq!(
        decode(&hex(KAFKA_GROUP_KEY), None, None),
        Some(GroupRecord::Metadata { group: "grp1".into(), value: None })
    );
    let Some(GroupRecord::TxnOffset { producer_id, producer_epoch, .. }) =
        decode(&key, Some(&hex(KAFKA_OFFSET)), Some((7, 3)))
    else {
        panic!("an offset in a transactional batch is transactional")
    };
    assert_eq!((producer_id, producer_epoch), (7, 3));
    // A KIP-848 consumer group record (type 3) and truncated bytes are skipped, not errors.
    assert_eq!(decode(&hex("0003000467727031"), Some(&hex("0000")), None), None);
    assert_eq!(decode(&key, Some(&hex("000400")), None), None);
    // A member count the value cannot hold.
    assert_eq!(
        decode(&hex(KAFKA_GROUP_KEY), Some(&hex("0003000000000000ffffffff00000000000000007fffffff")), None),
        None
    );
}

fn member() -> impl Strategy<Value = MemberRecord> {
    (
        "[a-z0-9-]{1,40}",
        proptest::option::of("[a-z0-9]{1,10}"),
        "[a-z-]{0,20}",
        "/[0-9.]{1,15}",
        any::<i32>(),
        any::<i32>(),
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(member_id, instance_id, client_id, client_host, s, r, subscription, assignment)| {
            MemberRecord {
                member_id,
                instance_id,
                client_id,
                client_host,
                session_timeout_ms: s,
                rebalance_timeout_ms: r,
                subscription,
                assignment,
            }
        })
}

proptest! {
    #[test]
    fn offsets_round_trip(group in "\\PC{0,30}", topic in "[a-zA-Z0-9._-]{1,249}", partition in any::<i32>(),
                          offset in any::<i64>(), epoch in any::<i32>(), metadata in "\\PC{0,100}",
                          commit_ms in any::<i64>(), txn in proptest::option::of((0i64..i64::MAX, any::<i16>()))) {
        let value = CommittedOffset { offset, leader_epoch: epoch, metadata, commit_ms };
        let r = match txn {
            Some((producer_id, producer_epoch)) => GroupRecord::TxnOffset {
                group, producer_id, producer_epoch, topic, partition, value },
            None => GroupRecord::Offset { group, topic, partition, value: Some(value) },
        };
        let (k, v) = encode(&r, 0).unwrap();
        prop_assert_eq!(decode(&k, v.as_ref(), txn), Some(r));
    }

    #[test]
    fn groups_round_trip(group in "\\PC{0,30}", protocol_type in "[a-z]{0,10}", generation in any::<i32>(),
                         protocol in proptest::option::of("[a-z]{1,10}"), leader in proptest::option::of("[a-z]{1,10}"),
                         members in proptest::collection::vec(member(), 0..5), state_ms in 0i64..i64::MAX) {
        let empty_since_ms = members.is_empty().then_some(state_ms);
        let m = GroupMetadataRecord { protocol_type, generation, protocol, leader, members, empty_since_ms };
        let r = GroupRecord::Metadata { group, value: Some(m) };
        let (k, v) = encode(&r, 5).unwrap();
        prop_assert_eq!(decode(&k, v.as_ref(), None), Some(r));
    }

    #[test]
    fn never_panics_on_any_bytes(k in proptest::collection::vec(any::<u8>(), 0..64),
                                 v in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&Bytes::from(k), Some(&Bytes::from(v)), None);
    }
}
