//! Produce (v3–v13): validates each partition's batch — its header, then every record in place
//! (`log::validator`, Kafka's LogValidator) — appends it to the partition log, and answers per
//! partition. acks=0 requests get no response at all.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::partitions::{find_log, find_topic, TopicKey};
use super::ApiContext;
use crate::cluster::Topic;
use crate::log::batch::{self, BatchError, BatchHeader};
use crate::log::decompress::CODEC_ZSTD;
use crate::log::validator::{self, RecordProblem, RecordsError};
use crate::log::{now_ms, AppendInfo, LogConfig, LogError, PartitionLog};
use crate::txn::TxnError;

/// Why a partition's batch was not appended, with every field Kafka fills in for it. Kafka sends
/// an error message only for record-level refusals; elsewhere the text is for our log alone.
struct Refusal {
    error: ResponseError,
    /// The response's `error_message`.
    message: Option<String>,
    /// Why, for the broker's log.
    detail: Option<String>,
    /// Records refused by a per-record rule (Produce v8+ `record_errors`).
    record_errors: Vec<RecordProblem>,
    /// -1, or the partition's log start offset for refusals from inside the log append.
    log_start_offset: i64,
}

/// A partition's answer before it is put on the wire.
type Outcome = Result<AppendInfo, Refusal>;

/// A refusal before the log is reached, or one of the errors Kafka's ReplicaManager reports with
/// an unknown log start offset (corrupt or too large batches, storage errors): no message, -1.
fn refuse(error: ResponseError, detail: impl Into<Option<String>>) -> Refusal {
    Refusal { error, message: None, detail: detail.into(), record_errors: Vec::new(), log_start_offset: -1 }
}

/// Any other failure inside Kafka's log append (an invalid batch or record, an out-of-order
/// sequence, a server error): no message, the partition's log start offset.
fn refuse_in_log(error: ResponseError, detail: impl Into<Option<String>>, log: &PartitionLog) -> Refusal {
    Refusal { log_start_offset: log.log_start_offset(), ..refuse(error, detail) }
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

/// Checks Kafka applies to a produced batch's header before its records, in Kafka's order
/// (ProduceRequest.validateRecords, UnifiedLog.analyzeAndValidateRecords,
/// LogValidator.validateBatch). Returns the batch's header.
fn precheck(
    records: &[u8],
    version: i16,
    config: &LogConfig,
    log: &PartitionLog,
) -> Result<BatchHeader, Refusal> {
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
    match h.magic {
        2 => {}
        // Kafka's ProduceRequest.validateRecords: only magic v2 from Produce v3 on.
        0 | 1 => {
            return Err(refuse(
                ResponseError::InvalidRecord,
                format!("Produce requests with version {version} must use magic 2"),
            ))
        }
        // Kafka's batch iterator fails on an unknown magic, and says so.
        magic => {
            let m = format!("Invalid magic found in record: {magic}");
            return Err(Refusal { message: Some(m.clone()), ..refuse(ResponseError::CorruptMessage, m) });
        }
    }
    if h.compression_codec() == CODEC_ZSTD && version < 7 {
        return Err(refuse(ResponseError::UnsupportedCompressionType, None));
    }
    if h.base_offset != 0 {
        return Err(refuse_in_log(
            ResponseError::InvalidRecord,
            format!("The baseOffset of the record batch should be 0, but it is {}", h.base_offset),
            log,
        ));
    }
    let max_message_bytes = config.max_message_bytes;
    if bytes.len() > max_message_bytes {
        return Err(refuse(
            ResponseError::MessageTooLarge,
            format!("The batch size {} exceeds max.message.bytes {max_message_bytes}", bytes.len()),
        ));
    }
    // Lengths and CRC32C (CORRUPT_MESSAGE), then the record count against lastOffsetDelta.
    let h = batch::validate(bytes).map_err(|e| match e {
        BatchError::Corrupt(_) | BatchError::UnsupportedMagic(_) => {
            refuse(LogError::Batch(e.clone()).kafka_error(), e.to_string())
        }
        BatchError::Invalid(_) => refuse_in_log(ResponseError::InvalidRecord, e.to_string(), log),
    })?;
    if h.is_control() {
        return Err(refuse_in_log(
            ResponseError::InvalidRecord,
            "Clients may not send control batches".to_string(),
            log,
        ));
    }
    if h.producer_id >= 0 && h.base_sequence < 0 {
        return Err(refuse_in_log(
            ResponseError::InvalidRecord,
            "Idempotent batch without a sequence".to_string(),
            log,
        ));
    }
    Ok(h)
}

/// Walks every record of the (single, prechecked) batch in `records` as Kafka's `LogValidator`
/// does, then checks its size against `segment.bytes`. Returns the batch to append: `records`
/// itself, or — in the rare case the producer's maxTimestamp or timestamp type is not what Kafka
/// would store — a corrected copy; with its header.
///
/// With `inline_cap`, at most that many bytes are decompressed here; a batch that needs more (and
/// whose topic allows more) is answered `Err(PastInlineCap)`, to be validated again off the async
/// workers ([`validate_compressed`]).
#[allow(clippy::too_many_arguments)]
fn validate(
    records: &Bytes,
    h: &BatchHeader,
    config: &LogConfig,
    now: i64,
    log: &PartitionLog,
    topic: &str,
    partition: i32,
    inline_cap: Option<u64>,
) -> Result<Result<(Bytes, BatchHeader), Refusal>, PastInlineCap> {
    let mut rules = config.record_rules(now);
    let full_bound = rules.max_decompressed_bytes;
    if let Some(cap) = inline_cap {
        rules.max_decompressed_bytes = full_bound.min(cap);
    }
    let info = match validator::validate_records(records, h, &rules, topic, partition) {
        Ok(info) => info,
        Err(RecordsError::TooLarge(limit)) if limit < full_bound => return Err(PastInlineCap),
        Err(e) => return Ok(Err(record_refusal(e, log))),
    };
    Ok(finish_validation(records, h, &info, config))
}

/// A compressed batch decompresses to more than the inline cap: see [`validate`].
struct PastInlineCap;

/// Decompressed bytes a compressed batch may cost on an async worker (about a millisecond of CPU
/// for every codec but gzip): every batch a client's defaults build fits, a bomb moves on to
/// [`validate_compressed`] after this much.
const INLINE_DECOMPRESSED_BYTES: u64 = 4 << 20;

/// The checks after the records' walk: `segment.bytes`, and Kafka's correction of maxTimestamp.
fn finish_validation(
    records: &Bytes,
    h: &BatchHeader,
    info: &validator::RecordsInfo,
    config: &LogConfig,
) -> Result<(Bytes, BatchHeader), Refusal> {
    if records.len() as u64 > config.segment_bytes {
        // UnifiedLog.append: RecordBatchTooLargeException.
        return Err(refuse(
            ResponseError::RecordListTooLarge,
            format!("batch of {} bytes exceeds segment.bytes {}", records.len(), config.segment_bytes),
        ));
    }
    let stamped_by_producer = h.attributes & batch::ATTR_LOG_APPEND_TIME != 0;
    if config.log_append_time || (info.max_timestamp == h.max_timestamp && !stamped_by_producer) {
        return Ok((records.clone(), *h));
    }
    // LogValidator: batch.setMaxTimestamp(CREATE_TIME, max of the records' timestamps).
    let mut fixed = records.to_vec();
    batch::set_max_timestamp(&mut fixed, info.max_timestamp, false);
    let fixed_header = BatchHeader::parse(&fixed).ok_or_else(|| {
        refuse(ResponseError::UnknownServerError, "batch shorter than its header".to_string())
    })?;
    Ok((Bytes::from(fixed), fixed_header))
}

/// Compressed batches validated at once, broker-wide: one per core. Decompressing is CPU work of up
/// to 64 × `max.message.bytes` per batch with a decoder window of up to 128 MiB (zstd), so it runs
/// on blocking threads, a bounded number at a time, and never holds up the tasks serving other
/// clients.
fn compressed_validations() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    })
}

/// [`validate`] for a compressed batch, on a blocking thread once a permit of
/// [`compressed_validations`] is free.
async fn validate_compressed(
    records: Bytes,
    header: BatchHeader,
    config: LogConfig,
    now: i64,
    log: Arc<PartitionLog>,
    topic: String,
    partition: i32,
) -> Result<(Bytes, BatchHeader), Refusal> {
    let _permit = compressed_validations()
        .acquire()
        .await
        .map_err(|e| refuse(ResponseError::UnknownServerError, e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        validate(&records, &header, &config, now, &log, &topic, partition, None).unwrap_or_else(
            |PastInlineCap| {
                Err(refuse(ResponseError::UnknownServerError, "validation past its own bound".to_string()))
            },
        )
    })
    .await
    .unwrap_or_else(|e| Err(refuse(ResponseError::UnknownServerError, e.to_string())))
}

/// The Kafka answer for records the validator refused.
fn record_refusal(e: RecordsError, log: &PartitionLog) -> Refusal {
    match e {
        RecordsError::Invalid(m) => refuse_in_log(ResponseError::InvalidRecord, m, log),
        RecordsError::Unreadable(m) => refuse_in_log(ResponseError::UnknownServerError, m, log),
        RecordsError::TooLarge(limit) => refuse(
            ResponseError::MessageTooLarge,
            format!("the records of the batch decompress to more than {limit} bytes"),
        ),
        RecordsError::Records { timestamp, problems, total } => {
            // LogValidator.processRecordErrors: one summary, the records listed by index.
            let message = if timestamp {
                "One or more records have been rejected due to invalid timestamp".to_string()
            } else {
                let shown: Vec<String> = problems
                    .iter()
                    .take(3)
                    .map(|p| format!("RecordError(batchIndex={}, message='{}')", p.batch_index, p.message))
                    .collect();
                format!(
                    "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
                    total,
                    shown.join(", ")
                )
            };
            let error =
                if timestamp { ResponseError::InvalidTimestamp } else { ResponseError::InvalidRecord };
            Refusal { message: Some(message), record_errors: problems, ..refuse_in_log(error, None, log) }
        }
    }
}

/// Appends the single batch `records`, validated (header and records) by this module.
fn append(log: &PartitionLog, records: &Bytes, header: BatchHeader, epoch: i32, now: i64) -> Outcome {
    log.append_validated(records, header, epoch, now).map_err(|e| match e {
        LogError::Storage(_) => refuse(e.kafka_error(), e.to_string()),
        _ => refuse_in_log(e.kafka_error(), e.to_string(), log),
    })
}

/// A transactional batch may only go to a partition of its producer's ongoing transaction
/// (transaction verification, KIP-890 part 1, on by default in Kafka 4.x), with Kafka's
/// ReplicaManager mapping of the coordinator's answer. Produce v12+ is transactions v2, where the
/// partition is added to the transaction implicitly.
async fn verify_transactional(
    ctx: &ApiContext,
    transactional_id: Option<&str>,
    topic: &Topic,
    index: i32,
    h: &BatchHeader,
    version: i16,
) -> Result<(), Refusal> {
    let Some(id) = transactional_id else {
        // Kafka authorizes transactional records by their request's transactional id.
        return Err(refuse(
            ResponseError::TransactionalIdAuthorizationFailed,
            "no transactional id".to_string(),
        ));
    };
    let partition = (topic.name.clone(), index);
    let mut r = ctx.txn.verify_partition(id, h.producer_id, h.producer_epoch, &partition);
    if version >= 12 && r == Err(TxnError::TransactionAbortable) {
        // The first batch of the transaction here: the add writes the coordinator's log, off the
        // async workers (as the coordinator APIs do).
        let (txn, id, (pid, epoch)) = (ctx.txn.clone(), id.to_string(), (h.producer_id, h.producer_epoch));
        r = tokio::task::spawn_blocking(move || txn.add_partitions(&id, pid, epoch, &[partition], now_ms()))
            .await
            .unwrap_or_else(|e| Err(TxnError::Storage(e.to_string())));
    }
    r.map_err(|e| match e {
        TxnError::TransactionAbortable if version <= 10 => {
            let m = "Partition was not added to the transaction".to_string();
            Refusal { message: Some(m.clone()), ..refuse(ResponseError::InvalidTxnState, m) }
        }
        TxnError::ProducerFenced => refuse(ResponseError::InvalidProducerEpoch, e.to_string()),
        TxnError::ConcurrentTransactions | TxnError::Storage(_) => {
            refuse(ResponseError::NotEnoughReplicas, e.to_string())
        }
        e => refuse(e.kafka_error(), e.to_string()),
    })
}

async fn produce_partition(
    ctx: &ApiContext,
    topic: &Topic,
    index: i32,
    records: Option<&Bytes>,
    version: i16,
    transactional_id: Option<&str>,
) -> Outcome {
    let log = find_log(ctx, topic, index).map_err(|e| refuse(e, None))?;
    let records = records
        .filter(|r| !r.is_empty())
        .ok_or_else(|| refuse(ResponseError::InvalidRecord, "No records".to_string()))?;
    let now = now_ms();
    let config = log.config();
    let records = &records.slice(..complete_batches(records)?);
    let header = precheck(records, version, &config, &log)?;
    if header.is_transactional() {
        verify_transactional(ctx, transactional_id, topic, index, &header, version).await?;
    }
    // Uncompressed records are walked in place at ~10 GB/s, and a compressed batch up to a few MiB
    // decompressed costs about a millisecond: both are validated here. A larger one moves to a
    // blocking thread (validate_compressed), so a bomb never holds up other clients' tasks.
    let inline_cap = (header.compression_codec() != 0).then_some(INLINE_DECOMPRESSED_BYTES);
    let (records, header) =
        &match validate(records, &header, &config, now, &log, &topic.name, index, inline_cap) {
            Ok(validated) => validated?,
            Err(PastInlineCap) => {
                validate_compressed(
                    records.clone(),
                    header,
                    config.clone(),
                    now,
                    log.clone(),
                    topic.name.clone(),
                    index,
                )
                .await?
            }
        };
    let header = *header;
    let epoch = topic.leader_epoch;
    if config.sync_every_append() {
        // fsync before acknowledging: keep the blocking write off the async workers.
        let (log, records) = (log.clone(), records.clone());
        match tokio::task::spawn_blocking(move || append(&log, &records, header, epoch, now)).await {
            Ok(o) => o,
            Err(e) => Err(refuse(ResponseError::UnknownServerError, e.to_string())),
        }
    } else {
        append(&log, records, header, epoch, now)
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
            let detail = refusal.detail.as_deref().or(refusal.message.as_deref()).unwrap_or("");
            tracing::debug!(error = ?refusal.error, detail, version, "produce refused");
            let record_errors = refusal
                .record_errors
                .into_iter()
                .map(|p| {
                    BatchIndexAndErrorMessage::default()
                        .with_batch_index(p.batch_index)
                        .with_batch_index_error_message(Some(StrBytes::from_string(p.message)))
                })
                .collect();
            r.with_error_code(refusal.error.code())
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(refusal.log_start_offset)
                .with_record_errors(record_errors)
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
                // Kafka's ReplicaManager: "Cannot append to internal topic".
                (Ok(t), _) if crate::cluster::names::is_internal(&t.name) => Err(refuse(
                    ResponseError::InvalidTopicException,
                    format!("Cannot append to internal topic {}", t.name),
                )),
                (Ok(topic), true) => {
                    let txn_id = req.transactional_id.as_ref().map(|t| &***t);
                    produce_partition(ctx, topic, p.index, p.records.as_ref(), version, txn_id).await
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
