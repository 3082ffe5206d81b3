//! Produced batches whose records are broken: each is refused with the answer Apache Kafka 4.4.0
//! gives (every field: error code, error message, log start offset, record errors), nothing is
//! appended, and a valid record produced after it is read back by a consumer. The expected answers
//! were taken from a real Kafka 4.4.0 (`scripts/kafka-reference`), Produce v8 and v11.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{create_topic_result, log_end, new_topic, produce, record_values, TestBroker};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{BrokerId, FetchRequest};
use strom::log::batch::testing::{batch_with, compressed_batch, put_varlong, record, with_codec};

const NONE: i16 = 0;
const UNKNOWN_SERVER_ERROR: i16 = -1;
const CORRUPT_MESSAGE: i16 = 2;
const MESSAGE_TOO_LARGE: i16 = 10;
const RECORD_LIST_TOO_LARGE: i16 = 18;
const INVALID_TIMESTAMP: i16 = 32;
const INVALID_RECORD: i16 = 87;

/// What Kafka answers for one refused batch.
#[derive(Debug)]
struct Expect<'a> {
    code: i16,
    message: Option<&'a str>,
    /// The partition's log start offset (0 here), or -1 where Kafka reports it unknown.
    log_start_offset: i64,
    record_errors: &'a [(i32, &'a str)],
}

const fn refused(code: i16, log_start_offset: i64) -> Expect<'static> {
    Expect { code, message: None, log_start_offset, record_errors: &[] }
}

fn now_ms() -> i64 {
    common::now_ms()
}

fn recs(n: i32, key: Option<&[u8]>) -> Vec<u8> {
    (0..n).flat_map(|i| record(i, 0, key, Some(b"value"), &[])).collect()
}

/// A 1-record batch of `records` bytes as they are, timestamped now.
fn raw(count: i32, records: &[u8]) -> Bytes {
    Bytes::from(batch_with(count, records, now_ms()))
}

fn bytes_of(b: Vec<u8>) -> Bytes {
    Bytes::from(b)
}

fn junk(n: usize) -> Vec<u8> {
    (0..n as u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8).collect()
}

/// A zstd frame of `value_len` zeros as one record's value, built from RLE blocks: ~4 bytes per
/// 128 KiB, so a 900 MB record is a ~28 KB batch.
fn zstd_bomb(value_len: u64) -> Bytes {
    let mut head = vec![0u8, 0, 0]; // attributes, timestamp delta, offset delta
    put_varlong(&mut head, -1); // null key
    put_varlong(&mut head, value_len as i64);
    let body_len = head.len() as u64 + value_len + 1; // + header count 0 (one more zero)
    let mut start = Vec::new();
    put_varlong(&mut start, body_len as i64);
    start.extend(head);
    let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD, 0x00, 7 << 3]; // magic, no content size, 128 KiB window
    let block_header = |size: u64, kind: u64, last: bool| {
        let h = (size << 3) | (kind << 1) | u64::from(last);
        [h as u8, (h >> 8) as u8, (h >> 16) as u8]
    };
    frame.extend(block_header(start.len() as u64, 0, false)); // raw block: the record's start
    frame.extend(&start);
    let mut zeros = value_len + 1;
    while zeros > 0 {
        let n = zeros.min(128 << 10);
        zeros -= n;
        frame.extend(block_header(n, 1, zeros == 0)); // RLE block of zeros
        frame.push(0);
    }
    bytes_of(with_codec(batch_with(1, &frame, now_ms()), 4))
}

async fn fetch_all(c: &mut common::Client, topic: &str) -> Bytes {
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(64 << 20)
        .with_topics(vec![FetchTopic::default().with_topic(common::tn(topic)).with_partitions(vec![
            FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(64 << 20),
        ])]);
    let resp = c.call(&req, 11).await;
    let p = &resp.responses[0].partitions[0];
    assert_eq!(p.error_code, NONE, "fetch {topic}");
    p.records.clone().unwrap_or_default()
}

fn check(case: &str, version: i16, got: &PartitionProduceResponse, want: &Expect<'_>) {
    let what = format!("{case} (Produce v{version})");
    assert_eq!(got.error_code, want.code, "{what}: error code; message {:?}", got.error_message);
    assert_eq!(got.error_message.as_deref(), want.message, "{what}: error message");
    assert_eq!(got.base_offset, -1, "{what}: base offset");
    assert_eq!(got.log_append_time_ms, -1, "{what}: log append time");
    assert_eq!(got.log_start_offset, want.log_start_offset, "{what}: log start offset");
    let errors: Vec<(i32, &str)> = got
        .record_errors
        .iter()
        .map(|e| (e.batch_index, e.batch_index_error_message.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(errors, want.record_errors, "{what}: record errors");
}

/// Produces each bad batch (v8 and v11), checks Kafka's answer and that the log did not move, then
/// one valid record; finally every valid record reads back in order.
async fn refuse_each(c: &mut common::Client, topic: &str, cases: Vec<(&str, Bytes, Expect<'_>)>) {
    let mut valid = Vec::new();
    for (case, batch, want) in &cases {
        for version in [8, 11] {
            let end = log_end(c, topic, 0).await;
            let got = produce(c, topic, 0, batch.clone(), version).await;
            check(case, version, &got, want);
            assert_eq!(log_end(c, topic, 0).await, end, "{case}: the refused batch moved the log end");
            let value = format!("after {case} v{version}");
            let ok = produce(
                c,
                topic,
                0,
                common::record_batch_with(
                    &[value.as_bytes()],
                    None,
                    common::Producer::NONE,
                    kafka_protocol::records::Compression::None,
                ),
                version,
            )
            .await;
            assert_eq!((ok.error_code, ok.base_offset), (NONE, end), "{case}: a valid record after it");
            valid.push((end, value));
        }
    }
    assert_eq!(record_values(&fetch_all(c, topic).await), valid, "{topic}: what a consumer reads");
    if let Some(read) = kcat_reads(c.peer(), topic).await {
        assert_eq!(read, valid, "{topic}: what librdkafka's consumer (kcat) reads");
    }
}

/// Every record of partition 0 as (offset, value) read by a stock librdkafka consumer (kcat, which
/// `scripts/test` installs); `None`, with the reason printed, where kcat is not installed.
async fn kcat_reads(addr: std::net::SocketAddr, topic: &str) -> Option<Vec<(i64, String)>> {
    let out = tokio::process::Command::new("kcat")
        .args(["-C", "-b", &addr.to_string(), "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q"])
        .args(["-f", "%o %s\n"])
        .output();
    let out = match tokio::time::timeout(Duration::from_secs(60), out).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            eprintln!("kcat not run ({e}): the stock-consumer check of {topic} is skipped");
            return None;
        }
        Err(_) => panic!("kcat did not finish reading {topic} within 60 s: a consumer is stuck"),
    };
    assert!(out.status.success(), "kcat failed: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    Some(
        text.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(o, v)| (o.parse().unwrap_or(-1), v.to_string()))
            .collect(),
    )
}

#[tokio::test]
async fn broken_records_are_refused_as_kafka_refuses_them() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    assert_eq!(create_topic_result(&mut c, new_topic("t", 1, &[])).await.error_code, NONE);
    let mut cases = vec![
        ("200 random bytes under a correct CRC", raw(3, &junk(200)), refused(INVALID_RECORD, 0)),
        (
            "codec 7",
            bytes_of(compressed_batch(1, &recs(1, None), 7, now_ms())),
            refused(UNKNOWN_SERVER_ERROR, 0),
        ),
        (
            "codec 5",
            bytes_of(compressed_batch(1, &recs(1, None), 5, now_ms())),
            refused(UNKNOWN_SERVER_ERROR, 0),
        ),
        ("2 records where the header says 3", raw(3, &recs(2, None)), refused(INVALID_RECORD, 0)),
        ("4 records where the header says 3", raw(3, &recs(4, None)), refused(INVALID_RECORD, 0)),
        (
            "a trailing byte inside a record",
            {
                let mut r = record(0, 0, Some(b"k"), None, &[]);
                r[0] += 2;
                r.push(0);
                raw(1, &r)
            },
            refused(INVALID_RECORD, 0),
        ),
        (
            "a negative header count",
            {
                let mut r = vec![0u8, 0, 0, 1, 1];
                put_varlong(&mut r, -3);
                let mut framed = Vec::new();
                put_varlong(&mut framed, r.len() as i64);
                framed.extend(r);
                raw(1, &framed)
            },
            refused(INVALID_RECORD, 0),
        ),
        (
            "a count of 2^31-1 with one record inside",
            {
                let mut b = batch_with(1, &recs(1, None), now_ms());
                b[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
                b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
                bytes_of(with_codec(b, 0))
            },
            refused(INVALID_RECORD, 0),
        ),
        (
            "a control batch",
            {
                let mut b = batch_with(1, &recs(1, None), now_ms());
                b[22] |= 0x20;
                bytes_of(with_codec(b, 0))
            },
            refused(INVALID_RECORD, 0),
        ),
        (
            "a bad CRC",
            {
                let mut b = batch_with(1, &recs(1, None), now_ms());
                b[17] ^= 0xff;
                bytes_of(b)
            },
            refused(CORRUPT_MESSAGE, -1),
        ),
        (
            "magic 3",
            {
                let mut b = batch_with(1, &recs(1, None), now_ms());
                b[16] = 3;
                bytes_of(b)
            },
            Expect { message: Some("Invalid magic found in record: 3"), ..refused(CORRUPT_MESSAGE, -1) },
        ),
    ];
    // A record length of 2^31-1; a length varint with its 5th byte's top bit set.
    let mut long = Vec::new();
    put_varlong(&mut long, i64::from(i32::MAX));
    long.extend_from_slice(&[0; 8]);
    cases.push(("a record length of 2^31-1", raw(1, &long), refused(INVALID_RECORD, 0)));
    let too_long = [0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0];
    cases.push(("a record length varint of 6 bytes", raw(1, &too_long), refused(UNKNOWN_SERVER_ERROR, 0)));
    for codec in 1..=4 {
        let name: &'static str = ["", "gzip", "snappy", "lz4", "zstd"][codec as usize];
        // Random bytes labelled as compressed: undecodable, a server error in Kafka.
        cases.push((
            name,
            bytes_of(with_codec(batch_with(3, &junk(200), now_ms()), codec)),
            refused(UNKNOWN_SERVER_ERROR, 0),
        ));
        // Random bytes compressed properly: decodable, then invalid records.
        cases.push((
            name,
            bytes_of(compressed_batch(3, &junk(200), codec, now_ms())),
            refused(INVALID_RECORD, 0),
        ));
        cases.push((
            name,
            bytes_of(compressed_batch(3, &recs(2, None), codec, now_ms())),
            refused(INVALID_RECORD, 0),
        ));
        cases.push((
            name,
            bytes_of(compressed_batch(3, &recs(4, None), codec, now_ms())),
            refused(INVALID_RECORD, 0),
        ));
    }
    refuse_each(&mut c, "t", cases).await;
    broker.stop().await;
}

/// Batches Kafka 4.4.0 stores but librdkafka's consumer stalls on, crashes on or silently drops
/// records of (and kafka-protocol's decoder refuses): strom refuses them.
#[tokio::test]
async fn batches_that_poison_consumers_are_refused_where_kafka_stores_them() {
    use std::io::Write;
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    assert_eq!(create_topic_result(&mut c, new_topic("strict", 1, &[])).await.error_code, NONE);
    let one = record(0, 0, Some(b"k"), Some(b"v"), &[]);
    let gzip = |data: &[u8]| {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    let lz4_frame = |data: &[u8]| {
        let mut e = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
        e.write_all(data).unwrap();
        e.finish().0
    };
    let mut key_len_minus_5 = vec![0u8, 0, 0];
    put_varlong(&mut key_len_minus_5, -5);
    key_len_minus_5.extend([2, b'v', 0]);
    let mut framed = Vec::new();
    put_varlong(&mut framed, key_len_minus_5.len() as i64);
    framed.extend(key_len_minus_5);
    let mut overflow = vec![0u8, 0, 0, 0x86, 0x80, 0x80, 0x80, 0x10, b'k', b'e', b'y', 1, 0];
    overflow.insert(0, (overflow.len() as u8) << 1);
    let deltas: Vec<u8> = [1, 2].iter().flat_map(|d| record(*d, 0, None, Some(b"v"), &[])).collect();
    let mut snappy_claim = vec![0x80, 0xa8, 0xd6, 0xb9, 0x07]; // a raw snappy block claiming 2 GB
    snappy_claim.extend([0; 40]);
    let cases = vec![
        ("a key length of -5", raw(1, &framed), refused(INVALID_RECORD, 0)),
        ("a varint with a bit past 32", raw(1, &overflow), refused(INVALID_RECORD, 0)),
        ("offset deltas 1, 2", raw(2, &deltas), refused(INVALID_RECORD, 0)),
        (
            "two gzip members",
            bytes_of(with_codec(batch_with(1, &[gzip(b""), gzip(&one)].concat(), now_ms()), 1)),
            refused(UNKNOWN_SERVER_ERROR, 0),
        ),
        (
            "a byte after the LZ4 frame",
            bytes_of(with_codec(batch_with(1, &[lz4_frame(&one), vec![0]].concat(), now_ms()), 3)),
            refused(UNKNOWN_SERVER_ERROR, 0),
        ),
        (
            "a 67-byte snappy block claiming 2 GB",
            bytes_of(with_codec(batch_with(1, &snappy_claim, now_ms()), 2)),
            refused(UNKNOWN_SERVER_ERROR, 0),
        ),
    ];
    refuse_each(&mut c, "strict", cases).await;
    broker.stop().await;
}

#[tokio::test]
async fn a_decompression_bomb_is_refused_without_allocating_its_size() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    assert_eq!(create_topic_result(&mut c, new_topic("bomb", 1, &[])).await.error_code, NONE);
    let bomb = zstd_bomb(900 << 20);
    assert!(bomb.len() < 40_000, "the bomb is {} bytes", bomb.len());
    let started = std::time::Instant::now();
    // strom stops reading at 64 x max.message.bytes of decompressed records (Kafka has no bound).
    refuse_each(&mut c, "bomb", vec![("a 900 MB zstd bomb", bomb, refused(MESSAGE_TOO_LARGE, -1))]).await;
    assert!(started.elapsed() < Duration::from_secs(60), "took {:?}", started.elapsed());
    // The same record at 8 MB is accepted: the bound is far above real batches.
    let fine = zstd_bomb(8 << 20);
    assert_eq!(produce(&mut c, "bomb", 0, fine, 11).await.error_code, NONE);
    broker.stop().await;
}

#[tokio::test]
async fn per_record_rules_list_each_refused_record() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    for (name, configs) in [
        ("tc", &[("cleanup.policy", "compact")][..]),
        ("tlat", &[("message.timestamp.type", "LogAppendTime")][..]),
        ("tts", &[("message.timestamp.before.max.ms", "3600000")][..]),
    ] {
        assert_eq!(create_topic_result(&mut c, new_topic(name, 1, configs)).await.error_code, NONE);
    }
    const NO_KEY: &str = "Compacted topic cannot accept message without key in topic partition tc-0";
    let mut keyless = record(0, 0, Some(b"k"), Some(b"v"), &[]);
    keyless.extend(record(1, 0, None, Some(b"v"), &[]));
    let no_key =
        |errors| Expect { code: INVALID_RECORD, message: None, log_start_offset: 0, record_errors: errors };
    let one = format!("One or more records have been rejected due to 1 record errors in total, and only showing the first three errors at most: [RecordError(batchIndex=1, message='{NO_KEY}')]");
    let cases = vec![
        ("a keyless 2nd record", raw(2, &keyless), Expect { message: Some(&one), ..no_key(&[(1, NO_KEY)]) }),
        (
            "a keyless 2nd record, gzip",
            bytes_of(compressed_batch(2, &keyless, 1, now_ms())),
            Expect { message: Some(&one), ..no_key(&[(1, NO_KEY)]) },
        ),
    ];
    // The valid records sent after each case carry keys (record_batch_with keys every record).
    refuse_each(&mut c, "tc", cases).await;

    // A producer may not stamp LogAppendTime on a LogAppendTime topic.
    let now = now_ms();
    let mut lat = batch_with(1, &record(0, 0, Some(b"k"), Some(b"vv"), &[]), now);
    lat[22] |= 0x08;
    let lat_msg = format!("Invalid timestamp type in message DefaultRecord(offset=0, timestamp={now}, key=1 bytes, value=2 bytes). Producer should not set timestamp type to LogAppendTime.");
    let lat_errors = [(0, lat_msg.as_str())];
    // Compressed, Kafka reads the record without key and value and names it so.
    let mut lat_gzip = compressed_batch(1, &record(0, 0, Some(b"k"), Some(b"vv"), &[]), 1, now);
    lat_gzip[22] |= 0x08;
    let lat_gzip_msg = lat_msg.replace("DefaultRecord(", "PartialDefaultRecord(");
    let lat_gzip_errors = [(0, lat_gzip_msg.as_str())];
    let invalid_timestamp = |record_errors| Expect {
        code: INVALID_TIMESTAMP,
        message: Some("One or more records have been rejected due to invalid timestamp"),
        log_start_offset: 0,
        record_errors,
    };
    refuse_each(
        &mut c,
        "tlat",
        vec![
            ("LogAppendTime from the producer", bytes_of(with_codec(lat, 0)), invalid_timestamp(&lat_errors)),
            ("the same, gzip", bytes_of(with_codec(lat_gzip, 1)), invalid_timestamp(&lat_gzip_errors)),
        ],
    )
    .await;

    // Each record's own timestamp is checked, not only the batch's: the 2nd is two days old.
    let old = -2 * 86_400_000i64;
    let mut stale = record(0, 0, Some(b"k"), Some(b"v"), &[]);
    stale.extend(record(1, old, Some(b"k"), Some(b"v"), &[]));
    let got = produce(&mut c, "tts", 0, raw(2, &stale), 11).await;
    assert_eq!(got.error_code, INVALID_TIMESTAMP);
    assert_eq!(
        got.error_message.as_deref(),
        Some("One or more records have been rejected due to invalid timestamp")
    );
    assert_eq!(got.log_start_offset, 0);
    assert_eq!(got.record_errors.len(), 1);
    assert_eq!(got.record_errors[0].batch_index, 1);
    let m = got.record_errors[0].batch_index_error_message.as_deref().unwrap_or("");
    assert!(
        m.starts_with("Timestamp ")
            && m.contains(" of message with offset 1 is out of range. The timestamp should be within ["),
        "{m}"
    );
    broker.stop().await;
}

#[tokio::test]
async fn batch_size_limits_answer_as_kafka() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let seg = [("segment.bytes", "1048576"), ("max.message.bytes", "2000000")];
    assert_eq!(create_topic_result(&mut c, new_topic("tseg", 1, &seg)).await.error_code, NONE);
    assert_eq!(create_topic_result(&mut c, new_topic("tbig", 1, &[])).await.error_code, NONE);
    let big = raw(1, &record(0, 0, Some(b"k"), Some(&vec![7u8; 1_500_000]), &[]));
    refuse_each(
        &mut c,
        "tseg",
        vec![("1.5 MB into 1 MiB segments", big.clone(), refused(RECORD_LIST_TOO_LARGE, -1))],
    )
    .await;
    refuse_each(&mut c, "tbig", vec![("1.5 MB over max.message.bytes", big, refused(MESSAGE_TOO_LARGE, -1))])
        .await;
    broker.stop().await;
}

#[tokio::test]
async fn a_wrong_max_timestamp_is_corrected_as_kafka_does() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    assert_eq!(create_topic_result(&mut c, new_topic("mts", 1, &[])).await.error_code, NONE);
    let now = now_ms();
    let two = [record(0, 0, Some(b"a"), Some(b"1"), &[]), record(1, 5, Some(b"b"), Some(b"2"), &[])].concat();
    // The producer claims a max timestamp of now-1000; the records say now+5.
    let mut b = batch_with(2, &two, now - 1000);
    b[27..35].copy_from_slice(&now.to_be_bytes());
    let got = produce(&mut c, "mts", 0, bytes_of(with_codec(b, 0)), 11).await;
    assert_eq!(got.error_code, NONE);
    let stored = common::parse_batches(&fetch_all(&mut c, "mts").await);
    assert_eq!(stored[0].max_timestamp, now + 5);
    broker.stop().await;
}
