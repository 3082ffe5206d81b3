//! Produce and Fetch over real TCP, as a Kafka client sees them: offsets, whole batches, high
//! watermark and log start offset at every served version; KIP-74's "at least one batch"; long
//! polling woken by an append; Produce's refusals (and that nothing refused is ever visible);
//! acks=0; idempotent producers across a restart; ListOffsets, OffsetForLeaderEpoch, fetch
//! sessions (KIP-227) and DeleteRecords.

mod common;

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::{
    create_topic, create_topic_result, list_offset, log_end, log_start, metadata_for, new_topic,
    parse_batches, produce, produce_request, record_batch, record_batch_with, record_values, restamp_crc, tn,
    Client, Producer, TestBroker,
};
use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiVersionsRequest, BrokerId, DeleteRecordsRequest, FetchRequest, FetchResponse, InitProducerIdRequest,
    OffsetForLeaderEpochRequest, ProduceRequest, ProducerId,
};
use kafka_protocol::records::Compression;
use uuid::Uuid;

// Kafka error codes used here.
const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const CORRUPT_MESSAGE: i16 = 2;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_REQUIRED_ACKS: i16 = 21;
const INVALID_TIMESTAMP: i16 = 32;
const UNSUPPORTED_VERSION: i16 = 35;
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
const UNKNOWN_LEADER_EPOCH: i16 = 75;
const UNSUPPORTED_COMPRESSION_TYPE: i16 = 76;
const INVALID_RECORD: i16 = 87;
const UNKNOWN_TOPIC_ID: i16 = 100;

/// How a fetch names a partition: by name (Fetch v4–v12) or by topic id (v13+).
#[derive(Clone, Copy)]
enum Topic<'a> {
    Name(&'a str),
    Id(Uuid),
}

fn fetch_topic(topic: Topic<'_>, partitions: &[(i32, i64)], partition_max_bytes: i32) -> FetchTopic {
    let t = match topic {
        Topic::Name(n) => FetchTopic::default().with_topic(tn(n)),
        Topic::Id(id) => FetchTopic::default().with_topic_id(id),
    };
    t.with_partitions(
        partitions
            .iter()
            .map(|(p, offset)| {
                FetchPartition::default()
                    .with_partition(*p)
                    .with_fetch_offset(*offset)
                    .with_partition_max_bytes(partition_max_bytes)
            })
            .collect(),
    )
}

/// A sessionless fetch of these partitions of one topic, answered at once (max_wait 0).
fn fetch_request(topic: Topic<'_>, partitions: &[(i32, i64)]) -> FetchRequest {
    FetchRequest::default()
        .with_max_wait_ms(0)
        .with_min_bytes(1)
        .with_max_bytes(50 << 20)
        .with_topics(vec![fetch_topic(topic, partitions, 1 << 20)])
}

/// The answer for one partition of a fetch response; panics unless it is there exactly once.
fn partition_of(resp: &FetchResponse, partition: i32) -> &PartitionData {
    let found: Vec<&PartitionData> = resp
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .filter(|p| p.partition_index == partition)
        .collect();
    assert_eq!(found.len(), 1, "partition {partition} answered once in {resp:?}");
    found[0]
}

fn records_of(p: &PartitionData) -> Bytes {
    p.records.clone().expect("records are never null")
}

/// Fetches one partition from `offset` and returns its answer.
async fn fetch_one(
    c: &mut Client,
    topic: Topic<'_>,
    partition: i32,
    offset: i64,
    version: i16,
) -> PartitionData {
    let resp = c.call(&fetch_request(topic, &[(partition, offset)]), version).await;
    assert_eq!(resp.error_code, NONE, "v{version}: top-level error");
    assert_eq!(resp.responses.len(), 1, "v{version}: one topic answered");
    match topic {
        Topic::Name(n) => assert_eq!(resp.responses[0].topic.as_str(), n, "v{version}"),
        Topic::Id(id) => assert_eq!(resp.responses[0].topic_id, id, "v{version}"),
    }
    partition_of(&resp, partition).clone()
}

/// A batch of `n` records of `size` bytes each.
fn sized_batch(n: usize, size: usize) -> Bytes {
    let value = vec![b'x'; size];
    let values: Vec<&[u8]> = (0..n).map(|_| value.as_slice()).collect();
    record_batch_with(&values, None, Producer::NONE, Compression::None)
}

#[tokio::test]
async fn produced_batches_come_back_whole_with_consecutive_offsets_at_every_version() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "rt", 1).await;

    // Produce v3, v7, v9 by name, v13 by topic id.
    let p = produce(&mut c, "rt", 0, record_batch(&["a0", "a1", "a2"]), 3).await;
    assert_eq!((p.error_code, p.base_offset, p.log_append_time_ms), (NONE, 0, -1), "v3: {p:?}");
    let p = produce(&mut c, "rt", 0, record_batch(&["b0", "b1"]), 7).await;
    assert_eq!((p.error_code, p.base_offset, p.log_start_offset), (NONE, 3, 0), "v7: {p:?}");
    let p = produce(&mut c, "rt", 0, record_batch(&["c0"]), 9).await;
    assert_eq!((p.error_code, p.base_offset, p.log_start_offset), (NONE, 5, 0), "v9: {p:?}");
    let by_id = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
        TopicProduceData::default().with_topic_id(id).with_partition_data(vec![
            PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(record_batch(&["d0", "d1", "d2", "d3"]))),
        ]),
    ]);
    let resp = c.call(&by_id, 13).await;
    assert_eq!(resp.responses.len(), 1);
    assert_eq!(resp.responses[0].topic_id, id, "v13 answers by topic id");
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset, p.log_start_offset), (NONE, 6, 0), "v13: {p:?}");

    let expected_values: Vec<(i64, String)> = ["a0", "a1", "a2", "b0", "b1", "c0", "d0", "d1", "d2", "d3"]
        .iter()
        .enumerate()
        .map(|(i, v)| (i as i64, v.to_string()))
        .collect();
    for (version, topic) in
        [(4, Topic::Name("rt")), (11, Topic::Name("rt")), (13, Topic::Id(id)), (18, Topic::Id(id))]
    {
        let p = fetch_one(&mut c, topic, 0, 0, version).await;
        assert_eq!(p.error_code, NONE, "v{version}");
        assert_eq!((p.high_watermark, p.last_stable_offset), (10, 10), "v{version}");
        if version >= 5 {
            assert_eq!(p.log_start_offset, 0, "v{version}");
        }
        let records = records_of(&p);
        let batches = parse_batches(&records);
        let shape: Vec<(i64, i64, i32)> =
            batches.iter().map(|b| (b.base_offset, b.last_offset, b.record_count)).collect();
        assert_eq!(
            shape,
            vec![(0, 2, 3), (3, 4, 2), (5, 5, 1), (6, 9, 4)],
            "v{version}: the produced batches"
        );
        assert_eq!(record_values(&records), expected_values, "v{version}");

        // From the middle of a batch: that whole batch (the client skips what it already has).
        let p = fetch_one(&mut c, topic, 0, 4, version).await;
        let batches = parse_batches(&records_of(&p));
        assert_eq!(batches[0].base_offset, 3, "v{version}: fetch at 4 starts with the batch holding 4");
        let p = fetch_one(&mut c, topic, 0, 8, version).await;
        let shape: Vec<i64> = parse_batches(&records_of(&p)).iter().map(|b| b.base_offset).collect();
        assert_eq!(shape, vec![6], "v{version}: fetch at 8");
        // At the log end: nothing, no error.
        let p = fetch_one(&mut c, topic, 0, 10, version).await;
        assert_eq!((p.error_code, p.high_watermark), (NONE, 10), "v{version}");
        assert!(records_of(&p).is_empty(), "v{version}: nothing past the end");
    }
    assert_eq!(log_end(&mut c, "rt", 0).await, 10);
    broker.stop().await;
}

#[tokio::test]
async fn max_bytes_still_returns_one_whole_batch_but_nothing_beyond_the_budget() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "big", 2).await;
    let first = sized_batch(1, 1000);
    let second = sized_batch(1, 1000);
    assert_eq!(produce(&mut c, "big", 0, first.clone(), 9).await.error_code, NONE);
    assert_eq!(produce(&mut c, "big", 0, second.clone(), 9).await.error_code, NONE);
    assert_eq!(produce(&mut c, "big", 1, sized_batch(1, 1000), 9).await.error_code, NONE);

    let both = |max_bytes: i32, partition_max_bytes: i32| {
        FetchRequest::default()
            .with_max_wait_ms(0)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_topics(vec![fetch_topic(Topic::Name("big"), &[(0, 0), (1, 0)], partition_max_bytes)])
    };
    for version in [4, 11, 12] {
        // Response limit below the first batch: the first partition still gets one whole batch (KIP-74),
        // the second gets nothing (the budget is spent), without an error.
        let resp = c.call(&both(100, 1 << 20), version).await;
        let p0 = partition_of(&resp, 0);
        let batches = parse_batches(&records_of(p0));
        assert_eq!(batches.len(), 1, "v{version}: exactly one batch for partition 0");
        assert_eq!((batches[0].base_offset, batches[0].size), (0, first.len()), "v{version}");
        let p1 = partition_of(&resp, 1);
        assert_eq!((p1.error_code, p1.high_watermark), (NONE, 1), "v{version}");
        assert!(records_of(p1).is_empty(), "v{version}: partition 1 gets nothing beyond the budget");

        // Partition limit below the batch size: the same, per partition.
        let resp = c.call(&both(50 << 20, 100), version).await;
        assert_eq!(parse_batches(&records_of(partition_of(&resp, 0))).len(), 1, "v{version}");
        assert!(records_of(partition_of(&resp, 1)).is_empty(), "v{version}");

        // A limit between one and two batches: only whole batches, and no more than the limit.
        let limit = (first.len() + second.len() / 2) as i32;
        let resp = c.call(&both(limit, 1 << 20), version).await;
        let records = records_of(partition_of(&resp, 0));
        assert!(
            records.len() <= limit as usize,
            "v{version}: {} bytes for a limit of {limit}",
            records.len()
        );
        assert_eq!(parse_batches(&records).len(), 1, "v{version}");

        // Enough room: everything.
        let resp = c.call(&both(50 << 20, 1 << 20), version).await;
        assert_eq!(parse_batches(&records_of(partition_of(&resp, 0))).len(), 2, "v{version}");
        assert_eq!(parse_batches(&records_of(partition_of(&resp, 1))).len(), 1, "v{version}");
    }
    broker.stop().await;
}

#[tokio::test]
async fn a_fetch_at_the_log_end_waits_for_max_wait_and_is_woken_by_a_produce() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "poll", 1).await;
    let waiting = |max_wait_ms: i32| {
        FetchRequest::default()
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![fetch_topic(Topic::Name("poll"), &[(0, 0)], 1 << 20)])
    };

    // Nothing arrives: the answer comes after max_wait, empty.
    let started = Instant::now();
    let resp = c.call(&waiting(300), 12).await;
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(250), "answered after {elapsed:?}, before max_wait 300 ms");
    assert!(elapsed < Duration::from_secs(5), "answered after {elapsed:?}");
    let p = partition_of(&resp, 0);
    assert_eq!((p.error_code, p.high_watermark), (NONE, 0));
    assert!(records_of(p).is_empty());

    // A produce from another connection wakes a waiting fetch long before its max_wait.
    let addr = broker.addr();
    let fetcher = tokio::spawn(async move {
        let mut c = Client::connect(addr).await.expect("connect");
        let started = Instant::now();
        let resp = c.call(&waiting(10_000), 12).await;
        (started.elapsed(), resp)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!fetcher.is_finished(), "the fetch answered before any data arrived");
    let mut producer = broker.client().await;
    assert_eq!(produce(&mut producer, "poll", 0, record_batch(&["wake"]), 9).await.error_code, NONE);
    let (elapsed, resp) = tokio::time::timeout(Duration::from_secs(10), fetcher)
        .await
        .expect("the waiting fetch is answered")
        .expect("fetch task");
    assert!(elapsed >= Duration::from_millis(250), "answered after {elapsed:?}, before the produce");
    assert!(elapsed < Duration::from_secs(3), "woken only after {elapsed:?} of max_wait 10 s");
    let p = partition_of(&resp, 0);
    assert_eq!((p.error_code, p.high_watermark), (NONE, 1));
    assert_eq!(record_values(&records_of(p)), vec![(0, "wake".to_string())]);
    broker.stop().await;
}

#[tokio::test]
async fn fetch_errors_are_per_partition() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "errs", 2).await;
    assert_eq!(produce(&mut c, "errs", 0, record_batch(&["x", "y", "z"]), 9).await.error_code, NONE);

    for version in [4, 11, 12] {
        for offset in [-5, 13] {
            let p = fetch_one(&mut c, Topic::Name("errs"), 0, offset, version).await;
            assert_eq!(p.error_code, OFFSET_OUT_OF_RANGE, "v{version}: offset {offset}");
            assert!(records_of(&p).is_empty(), "v{version}");
        }
        let p = fetch_one(&mut c, Topic::Name("no-such-topic"), 0, 0, version).await;
        assert_eq!(p.error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{version}: unknown topic");
        let p = fetch_one(&mut c, Topic::Name("errs"), 2, 0, version).await;
        assert_eq!(p.error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{version}: partition out of range");
        let p = fetch_one(&mut c, Topic::Name("errs"), -1, 0, version).await;
        assert_eq!(p.error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{version}: negative partition");
    }
    for version in [13, 16, 18] {
        for offset in [-5, 13] {
            let p = fetch_one(&mut c, Topic::Id(id), 0, offset, version).await;
            assert_eq!(p.error_code, OFFSET_OUT_OF_RANGE, "v{version}: offset {offset}");
        }
        let p = fetch_one(&mut c, Topic::Id(Uuid::new_v4()), 0, 0, version).await;
        assert_eq!(p.error_code, UNKNOWN_TOPIC_ID, "v{version}: unknown topic id");
        let p = fetch_one(&mut c, Topic::Id(id), 2, 0, version).await;
        assert_eq!(p.error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{version}: partition out of range");
    }

    // One bad partition does not spoil the others in the same request.
    let req = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_topics(vec![fetch_topic(Topic::Name("errs"), &[(0, 0), (1, 7), (9, 0)], 1 << 20)]);
    let resp = c.call(&req, 12).await;
    assert_eq!(resp.error_code, NONE);
    let p0 = partition_of(&resp, 0);
    assert_eq!((p0.error_code, p0.high_watermark), (NONE, 3));
    assert_eq!(parse_batches(&records_of(p0)).len(), 1);
    assert_eq!(partition_of(&resp, 1).error_code, OFFSET_OUT_OF_RANGE);
    assert_eq!(partition_of(&resp, 9).error_code, UNKNOWN_TOPIC_OR_PARTITION);

    // KIP-320: a leader epoch newer than the broker's is UNKNOWN_LEADER_EPOCH; the current one is fine.
    let epoch = metadata_for(&mut c, &["errs"]).await.topics[0].partitions[0].leader_epoch;
    for (current, expected) in [(epoch, NONE), (epoch + 1, UNKNOWN_LEADER_EPOCH)] {
        let mut req = fetch_request(Topic::Name("errs"), &[(0, 0)]);
        req.topics[0].partitions[0].current_leader_epoch = current;
        let resp = c.call(&req, 12).await;
        assert_eq!(partition_of(&resp, 0).error_code, expected, "fetch with leader epoch {current}");
        let mut lo = kafka_protocol::messages::ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![kafka_protocol::messages::list_offsets_request::ListOffsetsTopic::default()
                .with_name(tn("errs"))
                .with_partitions(vec![Default::default()])]);
        lo.topics[0].partitions[0].timestamp = -1;
        lo.topics[0].partitions[0].current_leader_epoch = current;
        let resp = c.call(&lo, 7).await;
        assert_eq!(
            resp.topics[0].partitions[0].error_code, expected,
            "ListOffsets with leader epoch {current}"
        );
    }
    broker.stop().await;
}

#[tokio::test]
async fn log_append_time_topics_stamp_the_broker_time() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let r = create_topic_result(&mut c, new_topic("lat", 1, &[("message.timestamp.type", "LogAppendTime")]))
        .await;
    assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
    let before = common::now_ms();
    let old = record_batch_with(
        &[b"a".as_slice(), b"b".as_slice()],
        Some(&[1000, 2000]),
        Producer::NONE,
        Compression::None,
    );
    let p = produce(&mut c, "lat", 0, old, 9).await;
    let after = common::now_ms();
    assert_eq!(p.error_code, NONE, "{:?}", p.error_message);
    assert!(
        (before..=after).contains(&p.log_append_time_ms),
        "log_append_time_ms {} outside [{before}, {after}]",
        p.log_append_time_ms
    );
    let f = fetch_one(&mut c, Topic::Name("lat"), 0, 0, 12).await;
    let batches = parse_batches(&records_of(&f));
    assert_eq!(batches.len(), 1);
    assert_ne!(batches[0].attributes & (1 << 3), 0, "the batch is marked LogAppendTime");
    assert_eq!(batches[0].max_timestamp, p.log_append_time_ms);
    // ListOffsets by time uses the append time.
    let found = list_offset(&mut c, "lat", 0, 5000, 7).await;
    assert_eq!((found.offset, found.timestamp), (0, p.log_append_time_ms));
    broker.stop().await;
}

#[tokio::test]
async fn refused_batches_get_kafkas_error_and_are_never_visible() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let r = create_topic_result(&mut c, new_topic("strict", 1, &[("max.message.bytes", "2000")])).await;
    assert_eq!(r.error_code, NONE, "{:?}", r.error_message);
    let good = record_batch(&["g0", "g1"]);
    let p = produce(&mut c, "strict", 0, good.clone(), 9).await;
    assert_eq!((p.error_code, p.base_offset), (NONE, 0));
    let end = 2;

    let mut cases: Vec<(&str, i16, i16, Bytes)> = Vec::new(); // (what, version, expected code, records)

    let mut corrupt = BytesMut::from(&good[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0x40;
    cases.push(("CRC32C mismatch", 9, CORRUPT_MESSAGE, corrupt.freeze()));

    // batchLength one short: the batch it describes fails its CRC (and a byte is left over).
    let mut short = BytesMut::from(&good[..]);
    let len = i32::from_be_bytes(short[8..12].try_into().unwrap());
    short[8..12].copy_from_slice(&(len - 1).to_be_bytes());
    cases.push(("batch length one short", 9, CORRUPT_MESSAGE, short.freeze()));

    // batchLength below any batch's minimum.
    let mut tiny = BytesMut::from(&good[..]);
    tiny[8..12].copy_from_slice(&5i32.to_be_bytes());
    cases.push(("batch length 5", 9, CORRUPT_MESSAGE, tiny.freeze()));

    let mut two = BytesMut::from(&good[..]);
    two.extend_from_slice(&record_batch(&["second"]));
    cases.push(("two batches in one partition", 9, INVALID_RECORD, two.freeze()));
    cases.push(("two batches at v3", 3, INVALID_RECORD, {
        let mut b = BytesMut::from(&good[..]);
        b.extend_from_slice(&good);
        b.freeze()
    }));

    cases.push(("batch above max.message.bytes", 9, MESSAGE_TOO_LARGE, sized_batch(1, 3000)));

    let value = vec![b'z'; 500];
    let zstd = record_batch_with(&[value.as_slice(); 4], None, Producer::NONE, Compression::Zstd);
    cases.push(("zstd on Produce v6", 6, UNSUPPORTED_COMPRESSION_TYPE, zstd.clone()));
    cases.push(("zstd on Produce v3", 3, UNSUPPORTED_COMPRESSION_TYPE, zstd.clone()));

    let mut control = BytesMut::from(&good[..]);
    let attrs = i16::from_be_bytes([control[21], control[22]]) | (1 << 5);
    control[21..23].copy_from_slice(&attrs.to_be_bytes());
    restamp_crc(&mut control);
    cases.push(("control batch from a client", 9, INVALID_RECORD, control.freeze()));

    let no_seq =
        record_batch_with(&[b"s".as_slice()], None, Producer::idempotent(7, 0, -1), Compression::None);
    cases.push(("producer id without a sequence", 9, INVALID_RECORD, no_seq));

    cases.push(("no records at all", 9, INVALID_RECORD, Bytes::new()));

    // lastOffsetDelta + 1 != recordCount.
    let mut count = BytesMut::from(&good[..]);
    count[57..61].copy_from_slice(&3i32.to_be_bytes());
    restamp_crc(&mut count);
    cases.push(("record count disagreeing with the offset delta", 9, INVALID_RECORD, count.freeze()));

    // CreateTime more than message.timestamp.after.max.ms (1 hour) ahead.
    let future = record_batch_with(
        &[b"late".as_slice()],
        Some(&[common::now_ms() + 2 * 3_600_000]),
        Producer::NONE,
        Compression::None,
    );
    cases.push(("timestamp two hours ahead", 9, INVALID_TIMESTAMP, future));

    for (what, version, expected, records) in cases {
        let p = produce(&mut c, "strict", 0, records, version).await;
        assert_eq!(p.error_code, expected, "{what}: {:?}", p.error_message);
        assert_eq!(p.base_offset, -1, "{what}");
        assert_eq!(log_end(&mut c, "strict", 0).await, end, "{what}: the log end moved");
    }

    // acks outside {-1, 0, 1}: INVALID_REQUIRED_ACKS, nothing appended.
    for acks in [2, -2, 5] {
        let resp = c.call(&produce_request("strict", 0, good.clone(), acks), 9).await;
        let p = &resp.responses[0].partition_responses[0];
        assert_eq!(p.error_code, INVALID_REQUIRED_ACKS, "acks={acks}");
        assert_eq!(log_end(&mut c, "strict", 0).await, end, "acks={acks}");
    }

    // Fetch shows only the good batch.
    let p = fetch_one(&mut c, Topic::Name("strict"), 0, 0, 12).await;
    assert_eq!(record_values(&records_of(&p)), vec![(0, "g0".to_string()), (1, "g1".to_string())]);

    // zstd is fine from Produce v7 on.
    let p = produce(&mut c, "strict", 0, zstd, 7).await;
    assert_eq!((p.error_code, p.base_offset), (NONE, 2), "zstd on v7: {:?}", p.error_message);
    assert_eq!(log_end(&mut c, "strict", 0).await, 6);
    broker.stop().await;
}

#[tokio::test]
async fn unknown_topics_and_partitions_on_produce() {
    let broker = TestBroker::start_with(&[("auto.create.topics.enable", "false")]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "known", 2).await;
    let b = record_batch(&["v"]);
    assert_eq!(produce(&mut c, "missing", 0, b.clone(), 9).await.error_code, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(produce(&mut c, "known", 2, b.clone(), 3).await.error_code, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(produce(&mut c, "known", -1, b.clone(), 9).await.error_code, UNKNOWN_TOPIC_OR_PARTITION);
    let by_id = |topic_id: Uuid, partition: i32| {
        ProduceRequest::default().with_acks(1).with_timeout_ms(5000).with_topic_data(vec![
            TopicProduceData::default().with_topic_id(topic_id).with_partition_data(vec![
                PartitionProduceData::default().with_index(partition).with_records(Some(b.clone())),
            ]),
        ])
    };
    let resp = c.call(&by_id(Uuid::new_v4(), 0), 13).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, UNKNOWN_TOPIC_ID);
    let resp = c.call(&by_id(id, 5), 13).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    // The good partition in the same request as a bad one is appended.
    let req = ProduceRequest::default().with_acks(-1).with_timeout_ms(5000).with_topic_data(vec![
        TopicProduceData::default().with_name(tn("known")).with_partition_data(vec![
            PartitionProduceData::default().with_index(1).with_records(Some(b.clone())),
            PartitionProduceData::default().with_index(7).with_records(Some(b.clone())),
        ]),
    ]);
    let resp = c.call(&req, 9).await;
    let codes: Vec<(i32, i16)> =
        resp.responses[0].partition_responses.iter().map(|p| (p.index, p.error_code)).collect();
    assert_eq!(codes, vec![(1, NONE), (7, UNKNOWN_TOPIC_OR_PARTITION)]);
    assert_eq!(log_end(&mut c, "known", 0).await, 0);
    assert_eq!(log_end(&mut c, "known", 1).await, 1);
    broker.stop().await;
}

#[tokio::test]
async fn acks_zero_gets_no_response_and_the_next_request_gets_its_own() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "fire", 1).await;
    for version in [3, 9, 12] {
        c.send(&produce_request("fire", 0, record_batch(&["f"]), 0), version).await;
        // A refused acks=0 produce is not answered either.
        c.send(&produce_request("no-such-topic-here", 0, record_batch(&["f"]), 0), version).await;
        // `call` checks that the next frame carries the ApiVersions request's correlation id.
        let resp = c.call(&ApiVersionsRequest::default(), 0).await;
        assert_eq!(resp.error_code, NONE, "v{version}");
    }
    assert_eq!(log_end(&mut c, "fire", 0).await, 3, "every acks=0 batch was appended");
    broker.stop().await;
}

async fn init_producer_id(c: &mut Client, version: i16) -> (i64, i16) {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let resp = c.call(&req, version).await;
    assert_eq!(resp.error_code, NONE, "InitProducerId v{version}");
    (resp.producer_id.0, resp.producer_epoch)
}

fn idempotent_batch(values: &[&str], pid: i64, epoch: i16, seq: i32) -> Bytes {
    let v: Vec<&[u8]> = values.iter().map(|s| s.as_bytes()).collect();
    record_batch_with(&v, None, Producer::idempotent(pid, epoch, seq), Compression::None)
}

#[tokio::test]
async fn idempotent_producers_get_duplicates_answered_and_gaps_and_old_epochs_refused_across_a_restart() {
    let mut broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "idem", 1).await;

    let mut ids = Vec::new();
    for version in 0..=5 {
        let (id, epoch) = init_producer_id(&mut c, version).await;
        assert!(id >= 0, "v{version}: producer id {id}");
        assert_eq!(epoch, 0, "v{version}");
        ids.push(id);
    }
    let mut distinct = ids.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), ids.len(), "producer ids are distinct: {ids:?}");
    let pid = ids[0];

    let first = idempotent_batch(&["i0", "i1", "i2"], pid, 0, 0);
    let p = produce(&mut c, "idem", 0, first.clone(), 9).await;
    assert_eq!((p.error_code, p.base_offset), (NONE, 0));
    // The same batch again (a retry): success with the original offset, nothing appended.
    let p = produce(&mut c, "idem", 0, first.clone(), 9).await;
    assert_eq!((p.error_code, p.base_offset), (NONE, 0), "duplicate: {:?}", p.error_message);
    assert_eq!(log_end(&mut c, "idem", 0).await, 3);
    let second = idempotent_batch(&["i3", "i4"], pid, 0, 3);
    let p = produce(&mut c, "idem", 0, second.clone(), 9).await;
    assert_eq!((p.error_code, p.base_offset), (NONE, 3));
    // The older of the two is still a duplicate.
    let p = produce(&mut c, "idem", 0, first.clone(), 9).await;
    assert_eq!((p.error_code, p.base_offset), (NONE, 0), "older duplicate");

    // A gap in the sequence.
    let p = produce(&mut c, "idem", 0, idempotent_batch(&["gap"], pid, 0, 9), 9).await;
    assert_eq!(p.error_code, OUT_OF_ORDER_SEQUENCE_NUMBER, "{:?}", p.error_message);
    assert_eq!(log_end(&mut c, "idem", 0).await, 5);

    // A new epoch starts over at 0; the old epoch is then fenced.
    let bumped = idempotent_batch(&["e1"], pid, 1, 0);
    let p = produce(&mut c, "idem", 0, bumped.clone(), 9).await;
    assert_eq!((p.error_code, p.base_offset), (NONE, 5), "{:?}", p.error_message);
    let p = produce(&mut c, "idem", 0, idempotent_batch(&["old"], pid, 0, 5), 9).await;
    assert_eq!(p.error_code, INVALID_PRODUCER_EPOCH, "{:?}", p.error_message);
    assert_eq!(log_end(&mut c, "idem", 0).await, 6);

    // Another producer is independent.
    let other = idempotent_batch(&["o0"], ids[1], 0, 0);
    assert_eq!(produce(&mut c, "idem", 0, other.clone(), 9).await.base_offset, 6);

    broker.restart().await;
    let mut c = broker.client().await;
    let p = produce(&mut c, "idem", 0, bumped, 9).await;
    assert_eq!((p.error_code, p.base_offset), (NONE, 5), "duplicate after a restart: {:?}", p.error_message);
    let p = produce(&mut c, "idem", 0, other, 9).await;
    assert_eq!((p.error_code, p.base_offset), (NONE, 6), "duplicate after a restart");
    assert_eq!(log_end(&mut c, "idem", 0).await, 7);
    let p = produce(&mut c, "idem", 0, idempotent_batch(&["gap"], pid, 1, 5), 9).await;
    assert_eq!(p.error_code, OUT_OF_ORDER_SEQUENCE_NUMBER, "gap after a restart");
    let p = produce(&mut c, "idem", 0, idempotent_batch(&["old"], pid, 0, 5), 9).await;
    assert_eq!(p.error_code, INVALID_PRODUCER_EPOCH, "old epoch after a restart");
    let p = produce(&mut c, "idem", 0, idempotent_batch(&["e1b"], pid, 1, 1), 9).await;
    assert_eq!((p.error_code, p.base_offset), (NONE, 7), "in sequence after a restart");
    // A fresh id from the restarted broker is not one handed out before.
    let (fresh, _) = init_producer_id(&mut c, 4).await;
    assert!(!ids.contains(&fresh), "producer id {fresh} handed out twice");
    broker.stop().await;
}

#[tokio::test]
async fn list_offsets_and_offset_for_leader_epoch() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "times", 2).await;
    let md = metadata_for(&mut c, &["times"]).await;
    let epoch = md.topics[0].partitions[0].leader_epoch;
    let batch = |values: &[&str], ts: &[i64]| {
        let v: Vec<&[u8]> = values.iter().map(|s| s.as_bytes()).collect();
        record_batch_with(&v, Some(ts), Producer::NONE, Compression::None)
    };
    // Offsets 0-2 (timestamps not in order inside the batch), then 3-4.
    assert_eq!(
        produce(&mut c, "times", 0, batch(&["t0", "t1", "t2"], &[1000, 3000, 2000]), 9).await.base_offset,
        0
    );
    assert_eq!(produce(&mut c, "times", 0, batch(&["t3", "t4"], &[4000, 5000]), 9).await.base_offset, 3);

    for version in 1..=10 {
        let epoch_expected = if version >= 4 { epoch } else { -1 };
        let p = list_offset(&mut c, "times", 0, -2, version).await;
        assert_eq!((p.error_code, p.offset, p.timestamp), (NONE, 0, -1), "v{version} earliest");
        assert_eq!(p.leader_epoch, epoch_expected, "v{version} earliest");
        let p = list_offset(&mut c, "times", 0, -1, version).await;
        assert_eq!((p.error_code, p.offset, p.timestamp), (NONE, 5, -1), "v{version} latest");
        assert_eq!(p.leader_epoch, epoch_expected, "v{version} latest");
        // The first offset whose timestamp is at or after the target, with that record's timestamp.
        for (target, offset, ts) in [
            (0, 0, 1000),
            (1000, 0, 1000),
            (1500, 1, 3000),
            (2500, 1, 3000),
            (3000, 1, 3000),
            (3500, 3, 4000),
            (5000, 4, 5000),
            (6000, -1, -1),
        ] {
            let p = list_offset(&mut c, "times", 0, target, version).await;
            assert_eq!((p.error_code, p.offset, p.timestamp), (NONE, offset, ts), "v{version} at {target}");
            // Nothing found: every field -1, the leader epoch too (Kafka 4.4).
            let epoch_found = if offset >= 0 { epoch_expected } else { -1 };
            assert_eq!(p.leader_epoch, epoch_found, "v{version} at {target}");
        }
        // An empty partition: earliest = latest = 0, nothing by time.
        assert_eq!(list_offset(&mut c, "times", 1, -1, version).await.offset, 0, "v{version}");
        assert_eq!(list_offset(&mut c, "times", 1, 1000, version).await.offset, -1, "v{version}");
        // Special timestamps below the version that introduced them: UNSUPPORTED_VERSION, all -1;
        // from it on, max timestamp of an empty partition and latest tiered find nothing (Kafka 4.4.0).
        for (special, since) in [(-3, 7), (-4, 8), (-5, 9)] {
            let p = list_offset(&mut c, "times", 1, special, version).await;
            let error = if version < since { UNSUPPORTED_VERSION } else { NONE };
            let offset = if special == -4 && version >= since { 0 } else { -1 };
            let epoch_found = if offset == 0 { epoch_expected } else { -1 };
            assert_eq!(
                (p.error_code, p.offset, p.timestamp, p.leader_epoch),
                (error, offset, -1, epoch_found),
                "v{version} special {special}"
            );
        }
        if version >= 7 {
            // KIP-734: the record with the largest timestamp.
            let p = list_offset(&mut c, "times", 0, -3, version).await;
            assert_eq!((p.error_code, p.offset, p.timestamp), (NONE, 4, 5000), "v{version} max timestamp");
        }
        assert_eq!(
            list_offset(&mut c, "nope", 0, -1, version).await.error_code,
            UNKNOWN_TOPIC_OR_PARTITION,
            "v{version}"
        );
        assert_eq!(
            list_offset(&mut c, "times", 2, -1, version).await.error_code,
            UNKNOWN_TOPIC_OR_PARTITION,
            "v{version}"
        );
    }

    for version in 2..=4 {
        let req = OffsetForLeaderEpochRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
            OffsetForLeaderTopic::default().with_topic(tn("times")).with_partitions(vec![
                OffsetForLeaderPartition::default().with_partition(0).with_leader_epoch(epoch),
                OffsetForLeaderPartition::default().with_partition(1).with_leader_epoch(epoch),
                OffsetForLeaderPartition::default().with_partition(7).with_leader_epoch(epoch),
                // An epoch the broker never had: undefined epoch and offset, no error.
                OffsetForLeaderPartition::default().with_partition(0).with_leader_epoch(epoch + 1),
                // Undefined asked: undefined answered; an epoch before the first: it, ending where
                // the first starts (Kafka 4.4.0: -5 → (-5, 0)).
                OffsetForLeaderPartition::default().with_partition(0).with_leader_epoch(-1),
                OffsetForLeaderPartition::default().with_partition(0).with_leader_epoch(-5),
            ]),
        ]);
        let resp = c.call(&req, version).await;
        let got: Vec<(i32, i16, i32, i64)> = resp.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition, p.error_code, p.leader_epoch, p.end_offset))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, NONE, epoch, 5),
                (1, NONE, epoch, 0),
                (7, UNKNOWN_TOPIC_OR_PARTITION, -1, -1),
                (0, NONE, -1, -1),
                (0, NONE, -1, -1),
                (0, NONE, -5, 0)
            ],
            "OffsetForLeaderEpoch v{version}"
        );
    }
    broker.stop().await;
}

fn session_fetch(session_id: i32, epoch: i32, topics: Vec<FetchTopic>) -> FetchRequest {
    common::fetch::session_fetch(100, session_id, epoch, topics)
}

#[tokio::test]
async fn fetch_sessions_answer_incremental_fetches_with_only_the_partitions_with_news() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "sess", 2).await;
    assert_eq!(produce(&mut c, "sess", 0, record_batch(&["p0"]), 9).await.error_code, NONE);
    assert_eq!(produce(&mut c, "sess", 1, record_batch(&["p1"]), 9).await.error_code, NONE);

    for (version, topic) in [(7, Topic::Name("sess")), (12, Topic::Name("sess")), (15, Topic::Id(id))] {
        // Epoch 0: a full fetch that opens a session, positioned at the log end of both partitions.
        let (e0, e1) = (log_end(&mut c, "sess", 0).await, log_end(&mut c, "sess", 1).await);
        let full = session_fetch(0, 0, vec![fetch_topic(topic, &[(0, e0), (1, e1)], 1 << 20)]);
        let resp = c.call(&full, version).await;
        assert_eq!(resp.error_code, NONE, "v{version}");
        let session = resp.session_id;
        assert_ne!(session, 0, "v{version}: a session was created");
        assert_eq!(partition_of(&resp, 0).high_watermark, e0, "v{version}");
        assert_eq!(partition_of(&resp, 1).high_watermark, e1, "v{version}");

        // Nothing new: an incremental fetch names no partition and gets none back.
        let resp = c.call(&session_fetch(session, 1, vec![]), version).await;
        assert_eq!((resp.error_code, resp.session_id), (NONE, session), "v{version}");
        let answered: usize = resp.responses.iter().map(|t| t.partitions.len()).sum();
        assert_eq!(answered, 0, "v{version}: no partition has news: {resp:?}");

        // Data in partition 1 only: only partition 1 is answered.
        assert_eq!(produce(&mut c, "sess", 1, record_batch(&["news"]), 9).await.error_code, NONE);
        let resp = c.call(&session_fetch(session, 2, vec![]), version).await;
        assert_eq!((resp.error_code, resp.session_id), (NONE, session), "v{version}");
        let answered: Vec<i32> =
            resp.responses.iter().flat_map(|t| &t.partitions).map(|p| p.partition_index).collect();
        assert_eq!(answered, vec![1], "v{version}: only the partition with news");
        let p1 = partition_of(&resp, 1);
        assert_eq!(p1.high_watermark, e1 + 1, "v{version}");
        assert_eq!(record_values(&records_of(p1)), vec![(e1, "news".to_string())], "v{version}");
        match topic {
            Topic::Name(n) => assert_eq!(resp.responses[0].topic.as_str(), n),
            Topic::Id(i) => assert_eq!(resp.responses[0].topic_id, i),
        }

        // The client moves partition 1 on; then there is nothing new again.
        let moved = session_fetch(session, 3, vec![fetch_topic(topic, &[(1, e1 + 1)], 1 << 20)]);
        let resp = c.call(&moved, version).await;
        assert_eq!(resp.error_code, NONE, "v{version}");
        let resp = c.call(&session_fetch(session, 4, vec![]), version).await;
        let answered: usize = resp.responses.iter().map(|t| t.partitions.len()).sum();
        assert_eq!(answered, 0, "v{version}: {resp:?}");

        // A wrong epoch and an unknown session id are top-level errors.
        let resp = c.call(&session_fetch(session, 9, vec![]), version).await;
        assert_eq!(resp.error_code, INVALID_FETCH_SESSION_EPOCH, "v{version}");
        assert!(resp.responses.is_empty(), "v{version}");
        let resp = c.call(&session_fetch(session.wrapping_add(1000), 1, vec![]), version).await;
        assert_eq!(resp.error_code, FETCH_SESSION_ID_NOT_FOUND, "v{version}");
        assert!(resp.responses.is_empty(), "v{version}");

        // Epoch -1 closes the session (a sessionless full fetch), after which the id is unknown.
        let close = session_fetch(session, -1, vec![fetch_topic(topic, &[(0, 0)], 1 << 20)]);
        let resp = c.call(&close, version).await;
        assert_eq!((resp.error_code, resp.session_id), (NONE, 0), "v{version}");
        let resp = c.call(&session_fetch(session, 5, vec![]), version).await;
        assert_eq!(resp.error_code, FETCH_SESSION_ID_NOT_FOUND, "v{version}");
    }
    broker.stop().await;
}

async fn delete_records(
    c: &mut Client,
    topic: &str,
    partition: i32,
    offset: i64,
    version: i16,
) -> (i16, i64) {
    let req =
        DeleteRecordsRequest::default().with_timeout_ms(5000).with_topics(vec![DeleteRecordsTopic::default(
        )
        .with_name(tn(topic))
        .with_partitions(vec![DeleteRecordsPartition::default()
            .with_partition_index(partition)
            .with_offset(offset)])]);
    let resp = c.call(&req, version).await;
    assert_eq!(resp.topics.len(), 1);
    assert_eq!(resp.topics[0].name.as_str(), topic);
    let p = &resp.topics[0].partitions[0];
    assert_eq!(p.partition_index, partition);
    (p.error_code, p.low_watermark)
}

#[tokio::test]
async fn delete_records_moves_the_log_start_offset() {
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "trim", 3).await;
    for p in 0..3 {
        for values in [&["r0", "r1"][..], &["r2", "r3", "r4"], &["r5"]] {
            assert_eq!(produce(&mut c, "trim", p, record_batch(values), 9).await.error_code, NONE);
        }
    }
    for (version, partition) in [(0, 0), (1, 1), (2, 2)] {
        assert_eq!(delete_records(&mut c, "trim", partition, 3, version).await, (NONE, 3), "v{version}");
        assert_eq!(log_start(&mut c, "trim", partition).await, 3, "v{version}: ListOffsets earliest follows");
        assert_eq!(log_end(&mut c, "trim", partition).await, 6, "v{version}");
        // Below the new start: out of range. At it: the whole batch holding it.
        let p = fetch_one(&mut c, Topic::Name("trim"), partition, 0, 12).await;
        assert_eq!(p.error_code, OFFSET_OUT_OF_RANGE, "v{version}");
        let p = fetch_one(&mut c, Topic::Name("trim"), partition, 3, 12).await;
        assert_eq!((p.error_code, p.log_start_offset, p.high_watermark), (NONE, 3, 6), "v{version}");
        assert_eq!(parse_batches(&records_of(&p))[0].base_offset, 2, "v{version}");
        // Beyond the high watermark: OFFSET_OUT_OF_RANGE, nothing changes.
        assert_eq!(delete_records(&mut c, "trim", partition, 10, version).await.0, OFFSET_OUT_OF_RANGE);
        assert_eq!(log_start(&mut c, "trim", partition).await, 3, "v{version}");
        // Backwards is a no-op that reports the current low watermark.
        assert_eq!(delete_records(&mut c, "trim", partition, 1, version).await, (NONE, 3), "v{version}");
        // -1: up to the high watermark.
        assert_eq!(delete_records(&mut c, "trim", partition, -1, version).await, (NONE, 6), "v{version}");
        assert_eq!(log_start(&mut c, "trim", partition).await, 6, "v{version}");
        let p = fetch_one(&mut c, Topic::Name("trim"), partition, 6, 12).await;
        assert_eq!((p.error_code, p.log_start_offset), (NONE, 6), "v{version}");
        assert!(records_of(&p).is_empty());
    }
    // Producing after a full trim continues at the old end.
    assert_eq!(produce(&mut c, "trim", 0, record_batch(&["again"]), 9).await.base_offset, 6);
    assert_eq!(delete_records(&mut c, "missing", 0, 0, 2).await.0, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(delete_records(&mut c, "trim", 3, 0, 2).await.0, UNKNOWN_TOPIC_OR_PARTITION);
    broker.stop().await;
}
