//! Produce (v3–v13): validates each partition's batch without decoding its records, appends it to the
//! partition log, and answers per partition. acks=0 requests get no response at all.

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::partitions::{find_log, find_topic, TopicKey};
use super::ApiContext;
use crate::cluster::Topic;
use crate::log::batch::{self, BatchHeader};
use crate::log::{now_ms, AppendInfo, LogConfig, PartitionLog};

/// The zstd codec id in batch attributes; clients may use it only from Produce v7.
const CODEC_ZSTD: i16 = 4;

/// Why a partition's batch was not appended.
struct Refusal {
    error: ResponseError,
    message: Option<String>,
}

/// A partition's answer before it is put on the wire.
type Outcome = Result<AppendInfo, Refusal>;

fn refuse(error: ResponseError, message: impl Into<Option<String>>) -> Refusal {
    Refusal { error, message: message.into() }
}

/// The length of the complete batches at the start of `records`, as Kafka's batch iterator reads
/// them: a batch length below the header size is CORRUPT_MESSAGE; an incomplete trailing batch (or a
/// tail shorter than a batch's length fields) ends the iteration and is dropped; no complete batch at
/// all is INVALID_RECORD.
fn complete_batches(records: &[u8]) -> Result<usize, Refusal> {
    let mut pos = 0usize;
    while let Some((_, len)) = records.get(pos..).and_then(batch::peek_offset_and_len) {
        let Some(total) = usize::try_from(len).ok().filter(|l| *l >= batch::HEADER_LEN - batch::LOG_OVERHEAD)
        else {
            return Err(refuse(
                ResponseError::CorruptMessage,
                format!("Record batch size {len} is too small"),
            ));
        };
        let end = pos + batch::LOG_OVERHEAD + total;
        if end > records.len() {
            break;
        }
        pos = end;
    }
    if pos == 0 {
        return Err(refuse(
            ResponseError::InvalidRecord,
            "Produce requests must have at least one record batch per partition".to_string(),
        ));
    }
    Ok(pos)
}

/// Checks Kafka applies to a produced batch before it reaches the log (the log checks the rest).
fn precheck(records: &[u8], version: i16, config: &LogConfig, now: i64) -> Result<(), Refusal> {
    let ranges =
        batch::split_batches(records).map_err(|e| refuse(ResponseError::CorruptMessage, e.to_string()))?;
    let [range] = ranges.as_slice() else {
        return Err(refuse(
            ResponseError::InvalidRecord,
            format!(
                "Produce requests with version {version} must have exactly one record batch per partition"
            ),
        ));
    };
    let bytes = &records[range.clone()];
    let Some(h) = BatchHeader::parse(bytes) else {
        return Err(refuse(
            ResponseError::CorruptMessage,
            "record batch shorter than its header".to_string(),
        ));
    };
    if h.magic != 2 {
        // Kafka's ProduceRequest.validateRecords: only magic v2 from Produce v3 on.
        return Err(refuse(
            ResponseError::InvalidRecord,
            format!("Produce requests with version {version} must use magic 2"),
        ));
    }
    if h.base_offset != 0 {
        return Err(refuse(
            ResponseError::InvalidRecord,
            format!("The baseOffset of the record batch should be 0, but it is {}", h.base_offset),
        ));
    }
    let max_message_bytes = config.max_message_bytes;
    if bytes.len() > max_message_bytes {
        return Err(refuse(
            ResponseError::MessageTooLarge,
            format!("The batch size {} exceeds max.message.bytes {max_message_bytes}", bytes.len()),
        ));
    }
    if h.is_control() {
        return Err(refuse(ResponseError::InvalidRecord, "Clients may not send control batches".to_string()));
    }
    if h.is_transactional() {
        return Err(refuse(ResponseError::InvalidTxnState, "Transactions are not supported yet".to_string()));
    }
    if h.compression_codec() == CODEC_ZSTD && version < 7 {
        return Err(refuse(ResponseError::UnsupportedCompressionType, None));
    }
    if h.producer_id >= 0 && h.base_sequence < 0 {
        return Err(refuse(ResponseError::InvalidRecord, "Idempotent batch without a sequence".to_string()));
    }
    if !config.log_append_time {
        let (before, after) = (config.timestamp_before_max_ms, config.timestamp_after_max_ms);
        if h.max_timestamp > now.saturating_add(after)
            || (h.base_timestamp >= 0 && h.base_timestamp < now.saturating_sub(before))
        {
            return Err(refuse(
                ResponseError::InvalidTimestamp,
                "Timestamp is out of range (message.timestamp.before/after.max.ms)".to_string(),
            ));
        }
    }
    Ok(())
}

fn append(log: &PartitionLog, records: &Bytes, epoch: i32, now: i64) -> Outcome {
    log.append(records, epoch, now).map_err(|e| refuse(e.kafka_error(), e.to_string()))
}

async fn produce_partition(
    ctx: &ApiContext,
    topic: &Topic,
    index: i32,
    records: Option<&Bytes>,
    version: i16,
) -> Outcome {
    let log = find_log(ctx, topic, index).map_err(|e| refuse(e, None))?;
    let records = records
        .filter(|r| !r.is_empty())
        .ok_or_else(|| refuse(ResponseError::InvalidRecord, "No records".to_string()))?;
    let now = now_ms();
    let config = log.config();
    let records = &records.slice(..complete_batches(records)?);
    precheck(records, version, &config, now)?;
    let epoch = topic.leader_epoch;
    if config.sync_every_append() {
        // fsync before acknowledging: keep the blocking write off the async workers.
        let (log, records) = (log.clone(), records.clone());
        match tokio::task::spawn_blocking(move || append(&log, &records, epoch, now)).await {
            Ok(o) => o,
            Err(e) => Err(refuse(ResponseError::UnknownServerError, e.to_string())),
        }
    } else {
        append(&log, records, epoch, now)
    }
}

fn encode_outcome(index: i32, o: Outcome, version: i16) -> PartitionProduceResponse {
    let r = PartitionProduceResponse::default().with_index(index);
    match o {
        Ok(info) => r
            .with_base_offset(info.base_offset)
            .with_log_append_time_ms(info.log_append_time.unwrap_or(-1))
            .with_log_start_offset(info.log_start_offset),
        Err(refusal) => {
            tracing::debug!(error = ?refusal.error, message = refusal.message.as_deref().unwrap_or(""), version, "produce refused");
            r.with_error_code(refusal.error.code())
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1)
                .with_error_message(refusal.message.map(StrBytes::from_string))
        }
    }
}

/// Handles a Produce request; `None` means "send no response" (acks=0).
pub async fn handle(ctx: &ApiContext, req: ProduceRequest, version: i16) -> Option<ProduceResponse> {
    let valid_acks = matches!(req.acks, -1..=1);
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let mut appended = false;
    for t in &req.topic_data {
        let key = if version >= 13 { TopicKey::Id(t.topic_id) } else { TopicKey::Name(&t.name) };
        let topic = find_topic(ctx, key);
        let mut partitions = Vec::with_capacity(t.partition_data.len());
        for p in &t.partition_data {
            let outcome = match (&topic, valid_acks) {
                (_, false) => Err(refuse(ResponseError::InvalidRequiredAcks, None)),
                (Err(e), _) => Err(refuse(*e, None)),
                (Ok(topic), true) => {
                    produce_partition(ctx, topic, p.index, p.records.as_ref(), version).await
                }
            };
            appended |= outcome.as_ref().is_ok_and(|i| !i.duplicate);
            partitions.push(encode_outcome(p.index, outcome, version));
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
                .with_partition_responses(partitions),
        );
    }
    if appended {
        ctx.cluster.logs.notify_appended();
    }
    (req.acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}
