//! Fetch (v4–v18): whole batches from the partition logs, straight from the segment files without
//! decoding records; long polling woken by appends and transaction markers (no polling loop);
//! `max_bytes`, partition max bytes and KIP-74's "at least one batch" for the first partition with
//! data. `isolation_level` READ_COMMITTED reads only below the last stable offset and returns the
//! aborted transactions overlapping the records (null for READ_UNCOMMITTED, as Kafka sends).
//!
//! Fetch sessions (KIP-227) are served by [`super::fetch_session`]: full fetches, and incremental
//! ones that answer only partitions with news.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{AbortedTransaction, FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::fetch_session::{FetchParams, PartitionKey, Plan, Sent};
use super::partitions::{check_leader_epoch, find_log, find_topic, TopicKey};
use super::ApiContext;
use crate::log::{AbortedTxn, LogError, PartitionLog, ReadResult};

/// Kafka's isolation level codes.
const READ_COMMITTED: i8 = 1;

/// Reads one partition at the request's isolation level: READ_COMMITTED gets the aborted
/// transactions too (`Some`), READ_UNCOMMITTED none (`None`, null on the wire).
fn read_at_level(
    log: &PartitionLog,
    isolation_level: i8,
    offset: i64,
    max_bytes: usize,
    min_one: bool,
) -> Result<(ReadResult, Option<Vec<AbortedTransaction>>), LogError> {
    if isolation_level != READ_COMMITTED {
        return log.read(offset, max_bytes, min_one).map(|r| (r, None));
    }
    let (r, aborted) = log.read_committed(offset, max_bytes, min_one)?;
    let wire = |t: &AbortedTxn| {
        AbortedTransaction::default()
            .with_producer_id(ProducerId(t.producer_id))
            .with_first_offset(t.first_offset)
    };
    Ok((r, Some(aborted.iter().map(wire).collect())))
}

/// One partition's answer and what it told the client.
struct PartitionResult {
    key: PartitionKey,
    data: PartitionData,
    sent: Sent,
    bytes: usize,
    error: bool,
}

/// Reads every partition once, sharing the response budget (KIP-74: the first partition with data
/// gets at least one whole batch).
fn read_pass(
    ctx: &ApiContext,
    req: &FetchRequest,
    version: i16,
    wanted: &[(PartitionKey, FetchParams)],
) -> Vec<PartitionResult> {
    // Kafka's fetch.max.bytes bounds what one response may carry, whatever the client asks.
    let cap = ctx.cluster.config.fetch_max_bytes;
    let mut budget = (req.max_bytes.max(0) as usize).min(cap);
    let mut min_one = true;
    let mut out = Vec::with_capacity(wanted.len());
    for (key, params) in wanted {
        let topic_key = if version >= 13 { TopicKey::Id(key.topic_id) } else { TopicKey::Name(&key.topic) };
        let base = PartitionData::default()
            .with_partition_index(key.partition)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_preferred_read_replica(BrokerId(-1))
            // Null unless a READ_COMMITTED read fills it, and null with a read error (Kafka 4.4).
            .with_aborted_transactions(None)
            .with_records(Some(Bytes::new()));
        let none = Sent { high_watermark: -1, last_stable_offset: -1, log_start_offset: -1 };
        let log = find_topic(ctx, topic_key).and_then(|topic| {
            check_leader_epoch(params.current_leader_epoch, topic.leader_epoch)?;
            find_log(ctx, &topic, key.partition)
        });
        let log = match log {
            Ok(l) => l,
            Err(e) => {
                // An unknown topic or partition: Kafka's `FetchResponse.partitionResponse`, whose
                // aborted transactions are an empty list.
                out.push(PartitionResult {
                    key: key.clone(),
                    data: base.with_error_code(e.code()).with_aborted_transactions(Some(Vec::new())),
                    sent: none,
                    bytes: 0,
                    error: true,
                });
                continue;
            }
        };
        let limit = (params.max_bytes.max(0) as usize).min(budget);
        let result = match read_at_level(&log, req.isolation_level, params.fetch_offset, limit, min_one) {
            Ok((r, aborted)) => {
                let n = r.records.len();
                if n > 0 {
                    min_one = false;
                    budget = budget.saturating_sub(n);
                }
                let sent = Sent {
                    high_watermark: r.log_end_offset,
                    last_stable_offset: r.last_stable_offset,
                    log_start_offset: r.log_start_offset,
                };
                let data = base
                    .with_high_watermark(sent.high_watermark)
                    .with_last_stable_offset(sent.last_stable_offset)
                    .with_log_start_offset(sent.log_start_offset)
                    .with_aborted_transactions(aborted)
                    .with_records(Some(r.records));
                PartitionResult { key: key.clone(), data, sent, bytes: n, error: false }
            }
            Err(LogError::OffsetOutOfRange { .. }) => {
                // Kafka 4.4's ReplicaManager answers a read error with no offsets at all: high
                // watermark, last stable offset and log start offset -1.
                let data = base.with_error_code(ResponseError::OffsetOutOfRange.code());
                PartitionResult { key: key.clone(), data, sent: none, bytes: 0, error: true }
            }
            Err(e) => {
                tracing::warn!(error = %e, partition = key.partition, "fetch read failed");
                PartitionResult {
                    key: key.clone(),
                    data: base.with_error_code(e.kafka_error().code()),
                    sent: none,
                    bytes: 0,
                    error: true,
                }
            }
        };
        out.push(result);
    }
    out
}

/// Groups partition answers by topic, in the order the topics first appear.
fn assemble(results: Vec<PartitionResult>, version: i16, session_id: i32) -> FetchResponse {
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    let mut keys: Vec<(String, uuid::Uuid)> = Vec::new();
    for r in results {
        let k = (r.key.topic.clone(), r.key.topic_id);
        match keys.iter().position(|x| *x == k) {
            Some(i) => topics[i].partitions.push(r.data),
            None => {
                let entry = FetchableTopicResponse::default().with_partitions(vec![r.data]);
                topics.push(if version >= 13 {
                    entry.with_topic_id(k.1)
                } else {
                    entry.with_topic(TopicName(StrBytes::from_string(k.0.clone())))
                });
                keys.push(k);
            }
        }
    }
    FetchResponse::default().with_session_id(session_id).with_responses(topics)
}

fn requested_partitions(
    req: &FetchRequest,
    version: i16,
) -> (Vec<(PartitionKey, FetchParams)>, Vec<PartitionKey>) {
    let key = |name: &TopicName, id: uuid::Uuid, partition: i32| {
        if version >= 13 {
            PartitionKey { topic: String::new(), topic_id: id, partition }
        } else {
            PartitionKey { topic: name.to_string(), topic_id: uuid::Uuid::nil(), partition }
        }
    };
    let wanted = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| {
                let params = FetchParams {
                    fetch_offset: p.fetch_offset,
                    max_bytes: p.partition_max_bytes,
                    current_leader_epoch: p.current_leader_epoch,
                };
                (key(&t.topic, t.topic_id, p.partition), params)
            })
        })
        .collect();
    let forgotten = req
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| key(&t.topic, t.topic_id, *p)))
        .collect();
    (wanted, forgotten)
}

pub async fn handle(ctx: &ApiContext, req: FetchRequest, version: i16) -> FetchResponse {
    let (requested, forgotten) = requested_partitions(&req, version);
    // Sessions exist from v7; older clients always fetch everything.
    let (session_id, epoch) = if version >= 7 { (req.session_id, req.session_epoch) } else { (0, -1) };
    let (session_id, wanted, previous) =
        match ctx.fetch_sessions.plan(session_id, epoch, requested, forgotten) {
            Plan::Error(e) => return FetchResponse::default().with_error_code(e.code()).with_session_id(0),
            Plan::Full { session_id, partitions } => (session_id, partitions, None),
            Plan::Incremental { session_id, partitions } => {
                let previous: Vec<Option<Sent>> = partitions.iter().map(|(_, _, s)| *s).collect();
                (session_id, partitions.into_iter().map(|(k, p, _)| (k, p)).collect(), Some(previous))
            }
        };
    let mut appends = ctx.cluster.logs.subscribe_appends();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let min_bytes = req.min_bytes.max(0) as usize;
    let results = loop {
        appends.borrow_and_update();
        let results = read_pass(ctx, &req, version, &wanted);
        let bytes: usize = results.iter().map(|r| r.bytes).sum();
        // A fetch of no partition (a consumer closing its session, a session with none) is answered at once, as
        // Kafka's ReplicaManager.fetchMessages does for empty fetchInfos; clients wait for it when they close.
        if wanted.is_empty()
            || bytes >= min_bytes
            || results.iter().any(|r| r.error)
            || tokio::time::Instant::now() >= deadline
        {
            break results;
        }
        if tokio::time::timeout_at(deadline, appends.changed()).await.is_err() {
            break read_pass(ctx, &req, version, &wanted);
        }
    };
    let sent: Vec<(PartitionKey, Sent)> = results.iter().map(|r| (r.key.clone(), r.sent)).collect();
    ctx.fetch_sessions.record_sent(session_id, &sent);
    let results = match previous {
        None => results,
        // Incremental: only partitions with records, an error, or changed offsets.
        Some(previous) => results
            .into_iter()
            .zip(previous)
            .filter(|(r, before)| r.bytes > 0 || r.error || *before != Some(r.sent))
            .map(|(r, _)| r)
            .collect(),
    };
    assemble(results, version, session_id)
}
