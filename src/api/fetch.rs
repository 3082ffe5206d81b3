//! Fetch (v4–v18): whole batches from the partition logs, straight from the segment files without
//! decoding records; long polling woken by appends (no polling loop); `max_bytes`, partition max bytes
//! and KIP-74's "at least one batch" for the first partition with data.
//!
//! Fetch sessions (KIP-227): every response carries session id 0, which tells clients no session was
//! created, so each fetch is a full fetch; that is the path Kafka falls back to when its session cache
//! is full, and every client supports it.

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse};
use kafka_protocol::ResponseError;

use super::partitions::{check_leader_epoch, find_log, find_topic, TopicKey};
use super::ApiContext;
use crate::log::LogError;

/// Kafka's isolation level codes.
const READ_COMMITTED: i8 = 1;

/// One pass over the requested partitions.
struct Pass {
    response: FetchResponse,
    bytes: usize,
    any_error: bool,
}

fn read_pass(ctx: &ApiContext, req: &FetchRequest, version: i16) -> Pass {
    let mut budget = req.max_bytes.max(0) as usize;
    let mut min_one = true;
    let mut any_error = false;
    let mut total = 0usize;
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let key = if version >= 13 { TopicKey::Id(t.topic_id) } else { TopicKey::Name(&t.topic) };
        let topic = find_topic(ctx, key);
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let base = PartitionData::default()
                .with_partition_index(p.partition)
                .with_high_watermark(-1)
                .with_last_stable_offset(-1)
                .with_log_start_offset(-1)
                .with_preferred_read_replica(BrokerId(-1))
                .with_records(Some(Bytes::new()));
            let log = topic.as_ref().map_err(|e| *e).and_then(|topic| {
                check_leader_epoch(p.current_leader_epoch, topic.leader_epoch)?;
                find_log(ctx, topic, p.partition)
            });
            let log = match log {
                Ok(l) => l,
                Err(e) => {
                    any_error = true;
                    partitions.push(base.with_error_code(e.code()));
                    continue;
                }
            };
            let limit = (p.partition_max_bytes.max(0) as usize).min(budget);
            let aborted = (req.isolation_level == READ_COMMITTED).then(Vec::new);
            match log.read(p.fetch_offset, limit, min_one) {
                Ok(r) => {
                    let n = r.records.len();
                    if n > 0 {
                        min_one = false;
                        budget = budget.saturating_sub(n);
                        total += n;
                    }
                    partitions.push(
                        base.with_high_watermark(r.log_end_offset)
                            .with_last_stable_offset(r.log_end_offset)
                            .with_log_start_offset(r.log_start_offset)
                            .with_aborted_transactions(aborted)
                            .with_records(Some(r.records)),
                    );
                }
                Err(LogError::OffsetOutOfRange { log_start, log_end, .. }) => {
                    any_error = true;
                    partitions.push(
                        base.with_error_code(ResponseError::OffsetOutOfRange.code())
                            .with_high_watermark(log_end)
                            .with_last_stable_offset(log_end)
                            .with_log_start_offset(log_start),
                    );
                }
                Err(e) => {
                    any_error = true;
                    tracing::warn!(error = %e, partition = p.partition, "fetch read failed");
                    partitions.push(base.with_error_code(e.kafka_error().code()));
                }
            }
        }
        let entry = FetchableTopicResponse::default().with_partitions(partitions);
        topics.push(if version >= 13 {
            entry.with_topic_id(t.topic_id)
        } else {
            entry.with_topic(t.topic.clone())
        });
    }
    Pass {
        response: FetchResponse::default().with_session_id(0).with_responses(topics),
        bytes: total,
        any_error,
    }
}

pub async fn handle(ctx: &ApiContext, req: FetchRequest, version: i16) -> FetchResponse {
    let mut appends = ctx.cluster.logs.subscribe_appends();
    let wait = Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let deadline = tokio::time::Instant::now() + wait;
    let min_bytes = req.min_bytes.max(0) as usize;
    loop {
        appends.borrow_and_update();
        let pass = read_pass(ctx, &req, version);
        let satisfied = pass.bytes >= min_bytes || pass.any_error;
        if satisfied || tokio::time::Instant::now() >= deadline {
            return pass.response;
        }
        if tokio::time::timeout_at(deadline, appends.changed()).await.is_err() {
            return read_pass(ctx, &req, version).response;
        }
    }
}
