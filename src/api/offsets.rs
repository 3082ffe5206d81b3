//! ListOffsets (v1–v10): earliest, latest, max timestamp and by timestamp — with isolation level
//! READ_COMMITTED (v2+), latest is the last stable offset and nothing at or past it is found by
//! timestamp, as Kafka's `Partition.fetchOffsetForTimestamp`; OffsetForLeaderEpoch
//! (v2–v4), which the Java consumer uses to validate its position (KIP-320); and DeleteRecords (v0–v2).

use std::collections::HashSet;

use bytes::Bytes;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, ListOffsetsRequest, ListOffsetsResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse,
};
use kafka_protocol::records::RecordBatchDecoder;
use kafka_protocol::ResponseError;

use super::partitions::{check_leader_epoch, find_log, find_topic, TopicKey};
use super::ApiContext;
use crate::log::{LogError, PartitionLog};

/// ListOffsets special timestamps.
const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
/// Kafka's isolation level code for READ_COMMITTED.
const READ_COMMITTED: i8 = 1;

/// (offset, timestamp) of the first record whose timestamp is ≥ `ts` in `batch` (records are decoded
/// here: this is the one read path that needs per-record timestamps).
fn first_record_at_or_after(batch: Bytes, ts: i64, log_start: i64) -> Option<(i64, i64)> {
    let header = crate::log::batch::BatchHeader::parse(&batch)?;
    if header.attributes & crate::log::batch::ATTR_LOG_APPEND_TIME != 0 {
        return Some((header.base_offset.max(log_start), header.max_timestamp));
    }
    let mut buf = batch;
    let set = RecordBatchDecoder::decode(&mut buf).ok()?;
    set.records.iter().find(|r| r.timestamp >= ts && r.offset >= log_start).map(|r| (r.offset, r.timestamp))
}

/// The record with the largest timestamp: (offset, timestamp).
fn max_timestamp_record(log: &PartitionLog) -> Result<Option<(i64, i64)>, LogError> {
    let Some((ts, batch_offset)) = log.max_timestamp() else { return Ok(None) };
    let batch = log.read(batch_offset, 1, true)?.records;
    let found = first_record_at_or_after(batch, ts, log.log_start_offset());
    Ok(Some(found.map_or((batch_offset, ts), |(offset, _)| (offset, ts))))
}

/// (timestamp, offset) for a ListOffsets `timestamp`, or `None` when nothing is found (Kafka then
/// answers timestamp -1, offset -1 and leader epoch -1). The last fetchable offset is the last
/// stable offset for READ_COMMITTED and the high watermark (the log end) otherwise: "latest" answers
/// it, and a record found by timestamp at or past it is not found. LATEST_TIERED finds nothing
/// without tiered storage (Kafka's `UnifiedLog.fetchOffsetByTimestamp`).
fn lookup(log: &PartitionLog, timestamp: i64, isolation_level: i8) -> Result<Option<(i64, i64)>, LogError> {
    let (start, end) = (log.log_start_offset(), log.log_end_offset());
    let last_fetchable = if isolation_level == READ_COMMITTED { log.last_stable_offset() } else { end };
    let found = match timestamp {
        LATEST => return Ok(Some((-1, last_fetchable))),
        EARLIEST | EARLIEST_LOCAL => return Ok(Some((-1, start))),
        LATEST_TIERED => return Ok(None),
        MAX_TIMESTAMP => max_timestamp_record(log)?.map(|(o, t)| (t, o)),
        ts => match log.batch_for_timestamp(ts)? {
            Some(batch) => first_record_at_or_after(batch, ts, start).map(|(o, t)| (t, o)),
            None => None,
        },
    };
    Ok(found.filter(|(_, offset)| *offset < last_fetchable))
}

/// The first ListOffsets version that knows a special timestamp (KIP-734 max timestamp v7, KIP-405
/// earliest local v8, latest tiered v9); asked for below it, Kafka answers UNSUPPORTED_VERSION for
/// that partition (`ReplicaManager.fetchOffset`).
fn min_version_of(timestamp: i64) -> i16 {
    match timestamp {
        MAX_TIMESTAMP => 7,
        EARLIEST_LOCAL => 8,
        LATEST_TIERED => 9,
        _ => 0,
    }
}

pub async fn list_offsets(ctx: &ApiContext, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let mut seen = HashSet::new();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = find_topic(ctx, TopicKey::Name(&t.name));
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    if !seen.insert((t.name.to_string(), p.partition_index)) {
                        return base.with_error_code(ResponseError::InvalidRequest.code());
                    }
                    if version < min_version_of(p.timestamp) {
                        return base.with_error_code(ResponseError::UnsupportedVersion.code());
                    }
                    let found = topic.as_ref().map_err(|e| *e).and_then(|topic| {
                        check_leader_epoch(p.current_leader_epoch, topic.leader_epoch)?;
                        let log = find_log(ctx, topic, p.partition_index)?;
                        lookup(&log, p.timestamp, req.isolation_level)
                            .map(|r| (r, topic.leader_epoch))
                            .map_err(|e| e.kafka_error())
                    });
                    match found {
                        Ok((Some((ts, offset)), epoch)) => {
                            // The leader epoch exists from v4 on (and may not be set below it).
                            let epoch = if version >= 4 { epoch } else { -1 };
                            base.with_timestamp(ts).with_offset(offset).with_leader_epoch(epoch)
                        }
                        Ok((None, _)) => base,
                        Err(e) => base.with_error_code(e.code()),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// The (epoch, end offset) Kafka's `LeaderEpochFileCache.endOffsetFor` answers for `requested`,
/// over a cache holding one epoch, `current`, which starts at the log start offset: -1 (undefined) or
/// a later epoch → not found (`None`: -1, -1); the current epoch → the log end offset; an earlier one
/// → (the requested epoch, where the current one starts).
fn epoch_end_offset(requested: i32, current: i32, log: &PartitionLog) -> Option<(i32, i64)> {
    match requested {
        -1 => None,
        r if r == current => Some((current, log.log_end_offset())),
        r if r > current => None,
        r => Some((r, log.log_start_offset())),
    }
}

pub async fn offset_for_leader_epoch(
    ctx: &ApiContext,
    req: OffsetForLeaderEpochRequest,
    _version: i16,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = find_topic(ctx, TopicKey::Name(&t.topic));
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let base = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let found = topic.as_ref().map_err(|e| *e).and_then(|topic| {
                        check_leader_epoch(p.current_leader_epoch, topic.leader_epoch)?;
                        Ok((topic.leader_epoch, find_log(ctx, topic, p.partition)?))
                    });
                    match found {
                        Ok((epoch, log)) => match epoch_end_offset(p.leader_epoch, epoch, &log) {
                            Some((e, end)) => base.with_leader_epoch(e).with_end_offset(end),
                            None => base,
                        },
                        Err(e) => base.with_error_code(e.code()),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(t.topic.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// DeleteRecords (v0–v2): moves each partition's log start offset forward (-1: to the high
/// watermark) and deletes the segments wholly below it.
pub async fn delete_records(
    ctx: &ApiContext,
    req: DeleteRecordsRequest,
    _version: i16,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let topic = find_topic(ctx, TopicKey::Name(&t.name));
        // Kafka refuses to cut an internal topic (its coordinators' state would be lost): every
        // partition INVALID_TOPIC_EXCEPTION (ReplicaManager.deleteRecordsOnLocalLog).
        let internal = crate::cluster::names::is_internal(&t.name);
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let base = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            if internal && topic.is_ok() {
                partitions.push(base.with_error_code(ResponseError::InvalidTopicException.code()));
                continue;
            }
            let log =
                topic.as_ref().map_err(|e| *e).and_then(|topic| find_log(ctx, topic, p.partition_index));
            let outcome = match log {
                Ok(log) => {
                    let offset = p.offset;
                    tokio::task::spawn_blocking(move || log.delete_records(offset, crate::log::now_ms()))
                        .await
                        .unwrap_or_else(|e| Err(LogError::Storage(e.to_string())))
                        .map_err(|e| e.kafka_error())
                }
                Err(e) => Err(e),
            };
            partitions.push(match outcome {
                Ok(low) => base.with_low_watermark(low),
                Err(e) => base.with_error_code(e.code()),
            });
        }
        topics
            .push(DeleteRecordsTopicResult::default().with_name(t.name.clone()).with_partitions(partitions));
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
