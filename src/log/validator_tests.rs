use proptest::prelude::*;

use super::*;
use crate::log::batch::testing::{batch_with, compressed_batch, put_varlong, record};
use crate::log::batch::{self, BatchHeader};

const ANY_TIME: RecordRules = RecordRules {
    max_decompressed_bytes: 64 << 20,
    max_record_bytes: 2_147_483_639,
    compacted: false,
    timestamps: TimestampRule::CreateTime { now_ms: 0, before_ms: i64::MAX, after_ms: i64::MAX },
};

fn check(b: &[u8], rules: &RecordRules) -> Result<RecordsInfo, RecordsError> {
    let h = batch::validate(b).expect("a well-formed header");
    validate_records(b, &h, rules, "t", 0)
}

fn records(n: i32, key: Option<&[u8]>) -> Vec<u8> {
    (0..n).flat_map(|i| record(i, i64::from(i), key, Some(b"value"), &[(b"h", Some(b"v"))])).collect()
}

fn invalid(r: Result<RecordsInfo, RecordsError>) -> String {
    match r {
        Err(RecordsError::Invalid(m)) => m,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn valid_batches_pass_in_every_codec_and_report_their_max_timestamp() {
    for codec in 0..=4 {
        let b = compressed_batch(3, &records(3, Some(b"k")), codec, 1000);
        let info = check(&b, &ANY_TIME).unwrap_or_else(|e| panic!("codec {codec}: {e:?}"));
        assert_eq!(info.max_timestamp, 1002, "codec {codec}");
    }
}

#[test]
fn garbage_records_under_a_correct_crc_are_refused_in_every_codec() {
    let junk: Vec<u8> = (0..200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    assert!(matches!(check(&batch_with(3, &junk, 1), &ANY_TIME), Err(RecordsError::Invalid(_))));
    // Random bytes labelled as compressed cannot be decompressed; as Kafka, a server error.
    for codec in 1..=4 {
        let b = crate::log::batch::testing::with_codec(batch_with(3, &junk, 1), codec);
        let r = check(&b, &ANY_TIME);
        assert!(matches!(r, Err(RecordsError::Unreadable(_))), "codec {codec}: {r:?}");
    }
    // Garbage compressed properly: decompresses fine, then fails as records.
    for codec in 1..=4 {
        assert!(matches!(
            check(&compressed_batch(3, &junk, codec, 1), &ANY_TIME),
            Err(RecordsError::Invalid(_))
        ));
    }
}

#[test]
fn unknown_codecs_are_refused() {
    for codec in 5..=7 {
        let b = compressed_batch(1, &records(1, None), codec, 1);
        assert_eq!(
            check(&b, &ANY_TIME),
            Err(RecordsError::Unreadable(format!("Unknown compression type id: {codec}")))
        );
    }
}

#[test]
fn counts_must_match_the_records_present() {
    // Fewer records than the header says, more, and a count of 2^31-1 with one record inside.
    assert!(invalid(check(&batch_with(3, &records(2, None), 1), &ANY_TIME)).contains("premature EOF"));
    assert!(invalid(check(&batch_with(3, &records(4, None), 1), &ANY_TIME)).contains("still remaining"));
    let mut huge = batch_with(1, &records(1, None), 1);
    huge[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
    huge[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let huge = crate::log::batch::testing::with_codec(huge, 0);
    assert!(invalid(check(&huge, &ANY_TIME)).contains("premature EOF"));
    for codec in 1..=4 {
        assert!(invalid(check(&compressed_batch(3, &records(2, None), codec, 1), &ANY_TIME))
            .contains("premature"));
        assert!(invalid(check(&compressed_batch(3, &records(4, None), codec, 1), &ANY_TIME))
            .contains("remaining"));
    }
}

#[test]
fn lengths_and_varints_are_checked() {
    // A record length of 2^31 (5-byte varint whose value overflows an i32), a 6-byte varint.
    let mut big_len = Vec::new();
    put_varlong(&mut big_len, 1 << 31);
    big_len.extend_from_slice(&[0; 20]);
    assert!(check(&batch_with(1, &big_len, 1), &ANY_TIME).is_err());
    // An over-long length varint: Kafka's uncompressed reader fails outside its error mapping.
    let too_long = [0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0];
    assert!(matches!(check(&batch_with(1, &too_long, 1), &ANY_TIME), Err(RecordsError::Unreadable(_))));
    assert!(
        invalid(check(&compressed_batch(1, &too_long, 1, 1), &ANY_TIME)).contains("invalid record structure")
    );
    // A key longer than the record; a record length one byte longer than its fields.
    let mut long_key = record(0, 0, Some(b"key"), None, &[]);
    long_key[4] = 40 << 1; // key length varint (after length, attributes, two zero deltas)
    assert!(check(&batch_with(1, &long_key, 1), &ANY_TIME).is_err());
    let mut padded = record(0, 0, Some(b"key"), None, &[]);
    padded[0] += 2; // length + 1 (zigzag)
    padded.push(0);
    assert!(invalid(check(&batch_with(1, &padded, 1), &ANY_TIME)).contains("Invalid record size"));
}

#[test]
fn headers_are_checked() {
    let rec = |headers_count: i64, header_key_len: i64| {
        let mut body = vec![0u8, 0, 0, 1]; // attributes, ts delta 0, offset delta 0, null key (-1)
        put_varlong(&mut body, -1); // null value
        put_varlong(&mut body, headers_count);
        put_varlong(&mut body, header_key_len);
        let mut out = Vec::new();
        put_varlong(&mut out, body.len() as i64);
        out.extend(body);
        out
    };
    assert!(invalid(check(&batch_with(1, &rec(-1, 0), 1), &ANY_TIME)).contains("number of record headers -1"));
    assert!(invalid(check(&batch_with(1, &rec(50, 0), 1), &ANY_TIME)).contains("larger than the remaining"));
    assert!(invalid(check(&batch_with(1, &rec(1, -3), 1), &ANY_TIME)).contains("negative header key size -3"));
}

#[test]
fn offset_deltas_must_count_up_from_zero() {
    let recs: Vec<u8> = [0, 5, 2].iter().flat_map(|d| record(*d, 0, None, Some(b"v"), &[])).collect();
    assert!(invalid(check(&compressed_batch(3, &recs, 0, 1), &ANY_TIME)).contains("offset delta 5"));
    // Compressed, Kafka fails on them with a server error.
    for codec in 1..=4 {
        let r = check(&compressed_batch(3, &recs, codec, 1), &ANY_TIME);
        assert!(matches!(&r, Err(RecordsError::Unreadable(m)) if m.contains("offset delta 5")), "{r:?}");
    }
}

#[test]
fn keyless_records_to_a_compacted_topic_are_listed_by_index() {
    let rules = RecordRules { compacted: true, ..ANY_TIME };
    let mut recs = record(0, 0, Some(b"k"), Some(b"v"), &[]);
    recs.extend(record(1, 0, None, Some(b"v"), &[]));
    recs.extend(record(2, 0, None, Some(b"v"), &[]));
    for codec in [0, 1, 4] {
        match check(&compressed_batch(3, &recs, codec, 1), &rules) {
            Err(RecordsError::Records { timestamp: false, problems, .. }) => {
                assert_eq!(problems.iter().map(|p| p.batch_index).collect::<Vec<_>>(), [1, 2]);
                assert_eq!(
                    problems[0].message,
                    "Compacted topic cannot accept message without key in topic partition t-0"
                );
            }
            other => panic!("codec {codec}: {other:?}"),
        }
    }
}

#[test]
fn each_record_timestamp_is_checked_and_log_append_time_from_a_producer_refused() {
    let rules = RecordRules {
        timestamps: TimestampRule::CreateTime { now_ms: 1500, before_ms: 500, after_ms: 500 },
        ..ANY_TIME
    };
    // Base 1500: deltas 0, 100, -600 (the third is 900, too old) — the batch's max (1600) is in range.
    let recs: Vec<u8> =
        [(0, 0i64), (1, 100), (2, -600)].iter().flat_map(|(o, t)| record(*o, *t, None, None, &[])).collect();
    let mut b = batch_with(3, &recs, 1600);
    b[27..35].copy_from_slice(&1500i64.to_be_bytes());
    let b = crate::log::batch::testing::with_codec(b, 0);
    match check(&b, &rules) {
        Err(RecordsError::Records { timestamp: true, problems, .. }) => {
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].batch_index, 2);
            assert_eq!(
                problems[0].message,
                "Timestamp 900 of message with offset 2 is out of range. The timestamp should be within [1000, 2000]"
            );
        }
        other => panic!("{other:?}"),
    }
    let mut lat = batch_with(1, &record(0, 0, None, None, &[]), 1500);
    lat[21..23].copy_from_slice(&batch::ATTR_LOG_APPEND_TIME.to_be_bytes());
    let lat = crate::log::batch::testing::with_codec(lat, 0);
    let on_lat_topic = RecordRules { timestamps: TimestampRule::LogAppendTime, ..ANY_TIME };
    match check(&lat, &on_lat_topic) {
        Err(RecordsError::Records { timestamp: true, problems, .. }) => assert_eq!(
            problems[0].message,
            "Invalid timestamp type in message DefaultRecord(offset=0, timestamp=1500, key=0 bytes, value=0 bytes). Producer should not set timestamp type to LogAppendTime."
        ),
        other => panic!("{other:?}"),
    }
    // On a CreateTime topic, Kafka reads the records as stamped with the batch's max timestamp.
    assert_eq!(check(&lat, &rules).map(|i| i.max_timestamp), Ok(1500));
}

#[test]
fn a_decompression_bomb_is_refused_at_the_bound_without_allocating_it() {
    // One record whose 300 MB value of zeros compresses to a few hundred KB.
    let value_len: i64 = 300 << 20;
    let mut head = vec![0u8, 0, 0, 1]; // attributes, deltas, null key
    put_varlong(&mut head, value_len);
    let mut rec = Vec::new();
    put_varlong(&mut rec, head.len() as i64 + value_len + 1);
    rec.extend(head);
    let mut payload = rec;
    payload.resize(payload.len() + value_len as usize, 0);
    payload.push(0); // no headers
    let bomb = compressed_batch(1, &payload, 4, 1);
    drop(payload);
    assert!(bomb.len() < 1 << 20, "bomb is {} bytes", bomb.len());
    let rules = RecordRules { max_decompressed_bytes: 64 << 20, ..ANY_TIME };
    assert_eq!(check(&bomb, &rules), Err(RecordsError::TooLarge(64 << 20)));
    // Below the bound the same record is fine.
    let roomy = RecordRules { max_decompressed_bytes: 400 << 20, ..ANY_TIME };
    assert!(check(&bomb, &roomy).is_ok());
}

#[test]
fn a_compressed_record_longer_than_max_decompressed_message_bytes_is_invalid() {
    // Kafka 4.4 with max.decompressed.message.bytes=1000: a gzip batch of one 100000-byte value is
    // INVALID_RECORD, a 100-byte one and an uncompressed 3000-byte one are appended.
    let rules = RecordRules { max_record_bytes: 1000, ..ANY_TIME };
    let big = encoded_batch(&[vec![b'a'; 100_000]], true, 1);
    match check(&big, &rules) {
        Err(RecordsError::Invalid(m)) => {
            assert!(m.ends_with("exceeds the configured maximum record size of 1000."), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert!(check(&encoded_batch(&[vec![b'a'; 100]], true, 1), &rules).is_ok());
    assert!(check(&encoded_batch(&[vec![b'a'; 3000]], true, 0), &rules).is_ok());
    // The bound is per record: ten records of 500 bytes pass.
    assert!(check(&encoded_batch(&vec![vec![b'a'; 500]; 10], true, 1), &rules).is_ok());
}

/// Batches as kafka-protocol's encoder writes them (what every test client sends).
fn encoded_batch(values: &[Vec<u8>], keyed: bool, codec: i16) -> bytes::Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let compression = match codec {
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        _ => Compression::None,
    };
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32,
            timestamp: 1_700_000_000_000 + i as i64,
            key: keyed.then(|| bytes::Bytes::from(format!("k{i}"))),
            value: Some(bytes::Bytes::copy_from_slice(v)),
            headers: [(
                kafka_protocol::protocol::StrBytes::from_static_str("h"),
                Some(bytes::Bytes::from_static(b"x")),
            )]
            .into_iter()
            .collect(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression })
        .expect("encode");
    buf.freeze()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Whatever the encoder writes, the validator accepts.
    #[test]
    fn encoder_batches_are_accepted(
        values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..20),
        keyed in any::<bool>(),
        codec in 0i16..=4,
    ) {
        let b = encoded_batch(&values, keyed, codec);
        let info = check(&b, &ANY_TIME);
        prop_assert!(info.is_ok(), "{:?}", info);
        prop_assert_eq!(info.unwrap().max_timestamp, 1_700_000_000_000 + values.len() as i64 - 1);
    }

    /// Any batch the validator accepts, kafka-protocol's own decoder reads back: the same number of
    /// records, at the offsets the header promises (flips, truncations and splices of valid batches).
    #[test]
    fn accepted_batches_decode_identically(
        values in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6),
        codec in prop_oneof![Just(0i16), Just(1), Just(4)],
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in any::<usize>(),
        truncate in any::<bool>(),
    ) {
        let good = encoded_batch(&values, true, codec);
        let mut recs = good[batch::HEADER_LEN..].to_vec();
        for (at, v) in &edits {
            if !recs.is_empty() {
                let i = at % recs.len();
                recs[i] = *v;
            }
        }
        if truncate && !recs.is_empty() {
            recs.truncate(cut % recs.len());
        }
        let h = BatchHeader::parse(&good).unwrap();
        let mut b = batch_with(h.record_count, &recs, h.max_timestamp);
        b[21..61].copy_from_slice(&good[21..61]);
        let b = crate::log::batch::testing::with_codec(b, codec);
        let Ok(hdr) = batch::validate(&b) else { return Ok(()) };
        if validate_records(&b, &hdr, &ANY_TIME, "t", 0).is_ok() {
            let mut bytes = bytes::Bytes::from(b.clone());
            let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut bytes);
            prop_assert!(sets.is_ok(), "accepted but undecodable: {:?}", sets.err());
            let decoded: Vec<_> = sets.unwrap().into_iter().flat_map(|s| s.records).collect();
            prop_assert_eq!(decoded.len() as i32, hdr.record_count);
            for (i, r) in decoded.iter().enumerate() {
                prop_assert_eq!(r.offset, i as i64);
            }
        }
    }

    /// No input makes the validator panic or allocate by a count or length it read.
    #[test]
    fn arbitrary_records_never_panic(
        recs in proptest::collection::vec(any::<u8>(), 0..400),
        count in any::<i32>(),
        codec in 0i16..8,
    ) {
        let mut b = batch_with(count.max(1), &recs, 1);
        b[23..27].copy_from_slice(&count.max(1).wrapping_sub(1).to_be_bytes());
        let b = crate::log::batch::testing::with_codec(b, codec);
        if let Ok(h) = batch::validate(&b) {
            let _ = validate_records(&b, &h, &ANY_TIME, "t", 0);
        }
    }
}

#[test]
fn a_key_problem_and_a_timestamp_problem_are_both_listed_as_invalid_timestamp() {
    // Kafka 4.4.0 on a compacted topic with message.timestamp.before.max.ms: record 0 has no key,
    // record 1 is too old; both are listed and the batch is INVALID_TIMESTAMP.
    let rules = RecordRules {
        compacted: true,
        timestamps: TimestampRule::CreateTime { now_ms: 10_000, before_ms: 1000, after_ms: 1000 },
        ..ANY_TIME
    };
    let mut recs = record(0, 0, None, Some(b"v"), &[]);
    recs.extend(record(1, -5000, Some(b"k"), Some(b"v"), &[]));
    match check(&batch_with(2, &recs, 10_000), &rules) {
        Err(RecordsError::Records { timestamp: true, problems, .. }) => {
            assert_eq!(problems.iter().map(|p| p.batch_index).collect::<Vec<_>>(), [0, 1]);
            assert!(problems[0].message.starts_with("Compacted topic cannot accept message without key"));
            assert!(problems[1]
                .message
                .starts_with("Timestamp 5000 of message with offset 1 is out of range"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_batch_of_countless_refused_records_lists_a_bounded_number() {
    let rules = RecordRules { compacted: true, ..ANY_TIME };
    let n = 50_000;
    let recs: Vec<u8> = (0..n).flat_map(|i| record(i, 0, None, None, &[])).collect();
    match check(&compressed_batch(n, &recs, 4, 1), &rules) {
        Err(RecordsError::Records { problems, total, .. }) => {
            assert_eq!(total, n as usize);
            assert_eq!(problems.len(), MAX_RECORD_PROBLEMS);
            assert_eq!(problems.last().map(|p| p.batch_index), Some(MAX_RECORD_PROBLEMS as i32 - 1));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn varints_with_bits_beyond_their_type_are_refused() {
    // Key length 6 written as 86 80 80 80 10: Kafka drops the bit past 32 and reads 3; librdkafka's
    // consumer stalls on it. A 10-byte varlong timestamp delta with a 10th byte above 1, likewise.
    let mut r = vec![0u8, 0, 0, 0x86, 0x80, 0x80, 0x80, 0x10, b'k', b'e', b'y', 1, 0];
    r.insert(0, (r.len() as u8) << 1);
    assert!(invalid(check(&batch_with(1, &r, 1), &ANY_TIME)).contains("overflows"));
    let mut r = vec![0u8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 1, 1, 0];
    r.insert(0, (r.len() as u8) << 1);
    assert!(invalid(check(&batch_with(1, &r, 1), &ANY_TIME)).contains("overflows"));
    // Five-byte encodings of small values that fit are fine.
    let mut r = vec![0u8, 0, 0, 0x86, 0x80, 0x80, 0x80, 0x00, b'k', b'e', b'y', 1, 0];
    r.insert(0, (r.len() as u8) << 1);
    assert!(check(&batch_with(1, &r, 1), &ANY_TIME).is_ok());
}
