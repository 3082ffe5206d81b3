//! The transaction APIs (KIP-98, KIP-447): AddPartitionsToTxn (v0–v5), AddOffsetsToTxn (v0–v4),
//! EndTxn (v0–v5), TxnOffsetCommit (v0–v5), DescribeTransactions (v0), ListTransactions (v0–v2),
//! over `txn::TransactionCoordinator` and, for offsets, the group coordinator.
//!
//! Transactions v2 (KIP-890 part 2) are chosen per request version, as Kafka does: EndTxn v5+ bumps
//! the epoch and answers the producer id and epoch to go on with; TxnOffsetCommit v5+ adds the
//! group's offsets partition to the transaction itself (no AddOffsetsToTxn); AddPartitionsToTxn v4+
//! is the broker-to-broker form (v5 only allows TRANSACTION_ABORTABLE in its answers).
//!
//! Coordinator calls that may write markers or allocate producer ids run on a blocking thread.

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::describe_transactions_response::{self, TopicData};
use kafka_protocol::messages::list_transactions_response;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    DescribeTransactionsRequest, DescribeTransactionsResponse, EndTxnRequest, EndTxnResponse,
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TopicName, TransactionalId,
    TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::partitions::{find_topic, TopicKey};
use super::ApiContext;
use crate::group::txn_offsets::TxnCommitRequest;
use crate::log::now_ms;
use crate::txn::model::{TxnPartition, TxnState};
use crate::txn::TxnError;

/// The internal topic holding group offsets; AddOffsetsToTxn adds one of its partitions.
pub use crate::group::store::OFFSETS_TOPIC;

/// The error a request of `version` gets: PRODUCER_FENCED exists from `fenced_since` on (KIP-588);
/// older versions get INVALID_PRODUCER_EPOCH, as Kafka's KafkaApis maps it.
pub fn txn_error(e: &TxnError, version: i16, fenced_since: i16) -> ResponseError {
    match e.kafka_error() {
        ResponseError::ProducerFenced if version < fenced_since => ResponseError::InvalidProducerEpoch,
        other => other,
    }
}

/// Runs a blocking coordinator call off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TxnError> + Send + 'static,
) -> Result<T, TxnError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(TxnError::Storage(e.to_string())))
}

fn partition_results(
    topics: &[AddPartitionsToTxnTopic],
    code: impl Fn(&str, i32) -> i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default().with_name(t.name.clone()).with_results_by_partition(
                t.partitions
                    .iter()
                    .map(|p| {
                        AddPartitionsToTxnPartitionResult::default()
                            .with_partition_index(*p)
                            .with_partition_error_code(code(&t.name, *p))
                    })
                    .collect(),
            )
        })
        .collect()
}

/// One transaction's AddPartitionsToTxn: unknown partitions are UNKNOWN_TOPIC_OR_PARTITION (internal
/// topics, which Kafka leaves out of its authorization filter, TOPIC_AUTHORIZATION_FAILED) and the
/// others OPERATION_NOT_ATTEMPTED; otherwise every partition gets the coordinator's answer.
async fn add_partitions_one(
    ctx: &ApiContext,
    transactional_id: &TransactionalId,
    producer_id: ProducerId,
    producer_epoch: i16,
    verify_only: bool,
    topics: &[AddPartitionsToTxnTopic],
    version: i16,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let refusal = |topic: &str, p: i32| {
        if topic == OFFSETS_TOPIC {
            Some(ResponseError::TopicAuthorizationFailed)
        } else if find_topic(ctx, TopicKey::Name(topic)).is_ok_and(|t| (0..t.partitions).contains(&p)) {
            None
        } else {
            Some(ResponseError::UnknownTopicOrPartition)
        }
    };
    if topics.iter().any(|t| t.partitions.iter().any(|p| refusal(&t.name, *p).is_some())) {
        return partition_results(topics, |t, p| {
            refusal(t, p).unwrap_or(ResponseError::OperationNotAttempted).code()
        });
    }
    let partitions: Vec<TxnPartition> =
        topics.iter().flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p))).collect();
    let (id, pid) = (transactional_id.to_string(), producer_id.0);
    if verify_only {
        let txn = ctx.txn.clone();
        return partition_results(topics, |t, p| {
            match txn.verify_partition(&id, pid, producer_epoch, &(t.to_string(), p)) {
                Ok(()) => 0,
                Err(e) => txn_error(&e, version, 2).code(),
            }
        });
    }
    let txn = ctx.txn.clone();
    let r = blocking(move || txn.add_partitions(&id, pid, producer_epoch, &partitions, now_ms())).await;
    let code = match r {
        Ok(()) => 0,
        Err(e) => txn_error(&e, version, 2).code(),
    };
    partition_results(topics, |_, _| code)
}

pub async fn add_partitions_to_txn(
    ctx: &ApiContext,
    req: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    if version <= 3 {
        let results = add_partitions_one(
            ctx,
            &req.v3_and_below_transactional_id,
            req.v3_and_below_producer_id,
            req.v3_and_below_producer_epoch,
            false,
            &req.v3_and_below_topics,
            version,
        )
        .await;
        return AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results);
    }
    let mut results = Vec::with_capacity(req.transactions.len());
    for t in &req.transactions {
        let topics = add_partitions_one(
            ctx,
            &t.transactional_id,
            t.producer_id,
            t.producer_epoch,
            t.verify_only,
            &t.topics,
            version,
        )
        .await;
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(t.transactional_id.clone())
                .with_topic_results(topics),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

pub async fn add_offsets_to_txn(
    ctx: &ApiContext,
    req: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let txn = ctx.txn.clone();
    let partition = (OFFSETS_TOPIC.to_string(), txn.offsets_partition(&req.group_id));
    let (id, pid, epoch) = (req.transactional_id.to_string(), req.producer_id.0, req.producer_epoch);
    let r = blocking(move || txn.add_partitions(&id, pid, epoch, &[partition], now_ms())).await;
    AddOffsetsToTxnResponse::default()
        .with_error_code(r.err().map_or(0, |e| txn_error(&e, version, 2).code()))
}

pub async fn end_txn(ctx: &ApiContext, req: EndTxnRequest, version: i16) -> EndTxnResponse {
    let txn = ctx.txn.clone();
    let (id, pid, epoch, commit) =
        (req.transactional_id.to_string(), req.producer_id.0, req.producer_epoch, req.committed);
    // Kafka's `TransactionVersion.transactionVersionForEndTxn`: v5+ is transactions v2.
    let v2 = version >= 5;
    let r = blocking(move || {
        if v2 {
            txn.end_txn_v2(&id, pid, epoch, commit, now_ms())
        } else {
            txn.end_txn(&id, pid, epoch, commit, now_ms())
        }
    })
    .await;
    // The v5 producer id and epoch: the ones to go on with after a v2 success, else -1.
    let (code, (pid, epoch)) = match r {
        Ok(next) if v2 => (0, next),
        Ok(_) => (0, (-1, -1)),
        Err(e) => (txn_error(&e, version, 2).code(), (-1, -1)),
    };
    EndTxnResponse::default()
        .with_error_code(code)
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
}

pub async fn txn_offset_commit(
    ctx: &ApiContext,
    req: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let respond = |code: &dyn Fn(&str, i32, usize) -> i16| {
        let mut i = 0;
        let topics = req
            .topics
            .iter()
            .map(|t| {
                TxnOffsetCommitResponseTopic::default().with_name(t.name.clone()).with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            i += 1;
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code(&t.name, p.partition_index, i - 1))
                        })
                        .collect(),
                )
            })
            .collect();
        TxnOffsetCommitResponse::default().with_topics(topics)
    };
    if req.group_id.is_empty() {
        return respond(&|_, _, _| ResponseError::InvalidGroupId.code());
    }
    // The group's offsets partition must be in the transaction (AddOffsetsToTxn first), checked as
    // Kafka's group coordinator verifies it with the transaction coordinator; from v5 (transactions
    // v2) the check adds it instead, as AddOffsetsToTxn would.
    let offsets_partition = (OFFSETS_TOPIC.to_string(), ctx.txn.offsets_partition(&req.group_id));
    let (id, pid, epoch) = (req.transactional_id.to_string(), req.producer_id.0, req.producer_epoch);
    let checked = if version >= 5 {
        let txn = ctx.txn.clone();
        blocking(move || txn.add_partitions(&id, pid, epoch, &[offsets_partition], now_ms())).await
    } else {
        ctx.txn.verify_partition(&id, pid, epoch, &offsets_partition)
    };
    if let Err(e) = checked {
        let code = match e {
            TxnError::ProducerFenced => ResponseError::InvalidProducerEpoch,
            TxnError::TransactionAbortable if version < 4 => ResponseError::InvalidTxnState,
            e => e.kafka_error(),
        }
        .code();
        return respond(&|_, _, _| code);
    }
    let known = |topic: &str, p: i32| {
        find_topic(ctx, TopicKey::Name(topic)).is_ok_and(|t| (0..t.partitions).contains(&p))
    };
    let offsets: Vec<_> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.to_string(),
                    p.partition_index,
                    p.committed_offset,
                    p.committed_leader_epoch,
                    p.committed_metadata.as_ref().map(|m| m.to_string()),
                )
            })
        })
        .collect();
    super::groups::ensure_offsets_topic(ctx).await;
    let commit = TxnCommitRequest {
        group_id: req.group_id.to_string(),
        producer_id: req.producer_id.0,
        producer_epoch: req.producer_epoch,
        generation: if version >= 3 { req.generation_id } else { -1 },
        member_id: if version >= 3 { req.member_id.to_string() } else { String::new() },
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        offsets: offsets.iter().filter(|o| known(&o.0, o.1)).cloned().collect(),
    };
    let mut results = ctx.groups.txn_commit(&commit, now_ms()).into_iter();
    let codes: Vec<i16> = offsets
        .iter()
        .map(|o| {
            if !known(&o.0, o.1) {
                ResponseError::UnknownTopicOrPartition.code()
            } else {
                results
                    .next()
                    .map_or(ResponseError::UnknownServerError.code(), |r| r.err().map_or(0, |e| e.code()))
            }
        })
        .collect();
    respond(&|_, _, i| codes.get(i).copied().unwrap_or(0))
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub async fn describe_transactions(
    ctx: &ApiContext,
    req: DescribeTransactionsRequest,
    _version: i16,
) -> DescribeTransactionsResponse {
    let states = req
        .transactional_ids
        .iter()
        .map(|id| {
            let s =
                describe_transactions_response::TransactionState::default().with_transactional_id(id.clone());
            match ctx.txn.describe(id) {
                _ if id.is_empty() => s.with_error_code(ResponseError::InvalidRequest.code()),
                None => s.with_error_code(ResponseError::TransactionalIdNotFound.code()),
                Some(m) => {
                    let mut topics: Vec<TopicData> = Vec::new();
                    for (topic, p) in &m.partitions {
                        match topics.last_mut() {
                            Some(t) if *t.topic == **topic => t.partitions.push(*p),
                            _ => topics.push(
                                TopicData::default()
                                    .with_topic(TopicName(text(topic)))
                                    .with_partitions(vec![*p]),
                            ),
                        }
                    }
                    s.with_transaction_state(text(m.state.name()))
                        .with_transaction_timeout_ms(m.timeout_ms)
                        .with_transaction_start_time_ms(m.txn_start_ms)
                        .with_producer_id(ProducerId(m.producer_id))
                        .with_producer_epoch(m.producer_epoch)
                        .with_topics(topics)
                }
            }
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}

pub async fn list_transactions(
    ctx: &ApiContext,
    req: ListTransactionsRequest,
    version: i16,
) -> ListTransactionsResponse {
    let mut unknown = Vec::new();
    let mut states = Vec::new();
    for f in &req.state_filters {
        match TxnState::from_name(f) {
            Some(s) => states.push(s),
            None => unknown.push(f.clone()),
        }
    }
    // v2 (KIP-1152): ids matching the pattern as a whole (RE2 syntax, as Kafka's RE2J `matches()`);
    // null or empty is no filter, an invalid pattern INVALID_REGULAR_EXPRESSION.
    let pattern = match req.transactional_id_pattern.as_deref().filter(|p| version >= 2 && !p.is_empty()) {
        None => None,
        Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(re) => Some(re),
            Err(_) => {
                return ListTransactionsResponse::default()
                    .with_error_code(ResponseError::InvalidRegularExpression.code())
            }
        },
    };
    let now = now_ms();
    let listed = ctx
        .txn
        .list()
        .into_iter()
        .filter(|m| pattern.as_ref().is_none_or(|re| re.is_match(&m.transactional_id)))
        .filter(|m| states.is_empty() || states.contains(&m.state))
        .filter(|m| {
            req.producer_id_filters.is_empty() || req.producer_id_filters.contains(&ProducerId(m.producer_id))
        })
        // v1 (KIP-994): only transactions running longer than the filter (ms); -1 is no filter. Ids
        // with no transaction (start -1) pass it, as in Kafka.
        .filter(|m| version < 1 || req.duration_filter < 0 || now - m.txn_start_ms > req.duration_filter)
        .map(|m| {
            list_transactions_response::TransactionState::default()
                .with_transactional_id(TransactionalId(text(&m.transactional_id)))
                .with_producer_id(ProducerId(m.producer_id))
                .with_transaction_state(text(m.state.name()))
        })
        .collect();
    ListTransactionsResponse::default().with_unknown_state_filters(unknown).with_transaction_states(listed)
}

/// DescribeProducers (v0): the active producers of each partition, from its log's producer state
/// (Kafka's `Partition.activeProducerState`).
pub async fn describe_producers(
    ctx: &ApiContext,
    req: kafka_protocol::messages::DescribeProducersRequest,
    _version: i16,
) -> kafka_protocol::messages::DescribeProducersResponse {
    use kafka_protocol::messages::describe_producers_response::{
        PartitionResponse, ProducerState, TopicResponse,
    };
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = find_topic(ctx, TopicKey::Name(&t.name));
            let partitions = t
                .partition_indexes
                .iter()
                .map(|p| {
                    let r = PartitionResponse::default().with_partition_index(*p);
                    let log =
                        topic.as_ref().map_err(|e| *e).and_then(|t| super::partitions::find_log(ctx, t, *p));
                    match log {
                        Err(e) => r.with_error_code(e.code()),
                        Ok(log) => r.with_active_producers(
                            log.producers()
                                .into_iter()
                                .map(|s| {
                                    ProducerState::default()
                                        .with_producer_id(ProducerId(s.producer_id))
                                        .with_producer_epoch(i32::from(s.producer_epoch))
                                        .with_last_sequence(s.last_sequence)
                                        .with_last_timestamp(s.last_timestamp)
                                        .with_coordinator_epoch(s.coordinator_epoch)
                                        .with_current_txn_start_offset(s.current_txn_start_offset)
                                })
                                .collect(),
                        ),
                    }
                })
                .collect();
            TopicResponse::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    kafka_protocol::messages::DescribeProducersResponse::default().with_topics(topics)
}
