//! Transactions over real TCP (KIP-98): the coordinator APIs, their error paths as Kafka 4.4 answers
//! them, transactional produce checks, and read_committed visibility.

mod common;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
    DescribeTransactionsRequest, EndTxnRequest, FindCoordinatorRequest, GroupId, InitProducerIdRequest,
    ListTransactionsRequest, ProducerId, TransactionalId,
};
use kafka_protocol::ResponseError;

fn tid(s: &str) -> TransactionalId {
    TransactionalId(common::s(s))
}

async fn init(c: &mut Client, id: &str, timeout_ms: i32) -> (i16, i64, i16) {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(Some(tid(id)))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let r = c.call(&req, 4).await;
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

/// The per-partition error codes of an AddPartitionsToTxn v0-3 answer, in request order.
fn add_codes(r: &AddPartitionsToTxnResponse) -> Vec<(String, i32, i16)> {
    r.results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index, p.partition_error_code))
        })
        .collect()
}

async fn add(
    c: &mut Client,
    id: &str,
    pid: i64,
    epoch: i16,
    parts: &[(&str, i32)],
    version: i16,
) -> Vec<(String, i32, i16)> {
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (t, p) in parts {
        match topics.iter_mut().find(|x| *x.name == **t) {
            Some(x) => x.partitions.push(*p),
            None => {
                topics.push(AddPartitionsToTxnTopic::default().with_name(tn(t)).with_partitions(vec![*p]))
            }
        }
    }
    let req = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(tid(id))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(topics);
    add_codes(&c.call(&req, version).await)
}

async fn end(c: &mut Client, id: &str, pid: i64, epoch: i16, commit: bool, version: i16) -> i16 {
    let req = EndTxnRequest::default()
        .with_transactional_id(tid(id))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    c.call(&req, version).await.error_code
}

async fn txn_produce(
    c: &mut Client,
    id: &str,
    topic: &str,
    partition: i32,
    batch: Bytes,
    version: i16,
) -> (i16, Option<String>) {
    let req = produce_request(topic, partition, batch, -1).with_transactional_id(Some(tid(id)));
    let r = c.call(&req, version).await;
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.error_message.as_ref().map(|m| m.to_string()))
}

const NONE: i16 = 0;

#[tokio::test]
async fn coordinator_apis_answer_as_kafka_does() {
    let b = TestBroker::start().await;
    let mut c = b.client().await;
    create_topic(&mut c, "t", 2).await;

    // FindCoordinator for a transactional id: this broker.
    let fc = c.call(&FindCoordinatorRequest::default().with_key(common::s("x")).with_key_type(1), 3).await;
    assert_eq!((fc.error_code, fc.node_id.0), (NONE, b.broker().cluster.node_id()));

    assert_eq!(init(&mut c, "x", 900_001).await.0, ResponseError::InvalidTransactionTimeout.code());
    let (e, pid, epoch) = init(&mut c, "x", 60_000).await;
    assert_eq!((e, epoch), (NONE, 0));
    assert_eq!(init(&mut c, "x", 60_000).await, (NONE, pid, 1), "a new session bumps the epoch");
    let epoch = 1;

    // A transactional batch to a partition not added: INVALID_TXN_STATE with Kafka's message (Produce <= v10).
    let (code, msg) = txn_produce(&mut c, "x", "t", 0, txn_batch(&["a"], pid, epoch, 0), 9).await;
    assert_eq!(code, ResponseError::InvalidTxnState.code());
    assert_eq!(msg.as_deref(), Some("Partition was not added to the transaction"));

    // An unknown partition fails alone; the others are OPERATION_NOT_ATTEMPTED; __consumer_offsets
    // may not be added directly.
    assert_eq!(
        add(&mut c, "x", pid, epoch, &[("t", 0), ("t", 7)], 3).await,
        vec![
            ("t".into(), 0, ResponseError::OperationNotAttempted.code()),
            ("t".into(), 7, ResponseError::UnknownTopicOrPartition.code())
        ]
    );
    assert_eq!(
        add(&mut c, "x", pid, epoch, &[("__consumer_offsets", 3)], 3).await,
        vec![("__consumer_offsets".into(), 3, ResponseError::TopicAuthorizationFailed.code())]
    );
    // EndTxn with nothing ongoing is an invalid state.
    assert_eq!(end(&mut c, "x", pid, epoch, true, 3).await, ResponseError::InvalidTxnState.code());

    // Add, produce, commit.
    assert_eq!(
        add(&mut c, "x", pid, epoch, &[("t", 0), ("t", 1)], 3).await.iter().map(|x| x.2).collect::<Vec<_>>(),
        vec![NONE, NONE]
    );
    assert_eq!(txn_produce(&mut c, "x", "t", 0, txn_batch(&["a", "b"], pid, epoch, 0), 9).await.0, NONE);
    assert_eq!(txn_produce(&mut c, "x", "t", 1, txn_batch(&["c"], pid, epoch, 0), 9).await.0, NONE);
    // A transactional batch needs the request's transactional id.
    let anon = produce_request("t", 0, txn_batch(&["d"], pid, epoch, 2), -1);
    assert_eq!(
        c.call(&anon, 9).await.responses[0].partition_responses[0].error_code,
        ResponseError::TransactionalIdAuthorizationFailed.code()
    );
    let offsets = c
        .call(
            &AddOffsetsToTxnRequest::default()
                .with_transactional_id(tid("x"))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_group_id(GroupId(common::s("g"))),
            3,
        )
        .await;
    assert_eq!(offsets.error_code, NONE);
    let described = c
        .call(&DescribeTransactionsRequest::default().with_transactional_ids(vec![tid("x"), tid("nope")]), 0)
        .await;
    let x = &described.transaction_states[0];
    assert_eq!(
        (x.error_code, x.transaction_state.as_str(), x.producer_id.0, x.producer_epoch),
        (NONE, "Ongoing", pid, epoch)
    );
    let parts: Vec<(String, Vec<i32>)> =
        x.topics.iter().map(|t| (t.topic.to_string(), t.partitions.clone())).collect();
    assert!(parts.contains(&("t".to_string(), vec![0, 1])), "{parts:?}");
    assert_eq!(described.transaction_states[1].error_code, ResponseError::TransactionalIdNotFound.code());
    let listed = c
        .call(
            &ListTransactionsRequest::default()
                .with_state_filters(vec![common::s("Ongoing"), common::s("Bogus")]),
            1,
        )
        .await;
    assert_eq!(listed.transaction_states.len(), 1);
    assert_eq!(listed.unknown_state_filters.iter().map(|s| s.to_string()).collect::<Vec<_>>(), vec!["Bogus"]);
    // v2 (KIP-1152): the pattern must match the whole id (Kafka 4.4: "tx" lists nothing for "tx-a");
    // an invalid one is INVALID_REGULAR_EXPRESSION; empty is no filter.
    for (pattern, ids, error) in [
        ("x", vec!["x"], NONE),
        ("", vec!["x"], NONE),
        ("(?i)X", vec!["x"], NONE),
        ("x.+", vec![], NONE),
        ("[", vec![], ResponseError::InvalidRegularExpression.code()),
    ] {
        let req = ListTransactionsRequest::default().with_transactional_id_pattern(Some(common::s(pattern)));
        let listed = c.call(&req, 2).await;
        let got: Vec<String> =
            listed.transaction_states.iter().map(|t| t.transactional_id.to_string()).collect();
        assert_eq!(
            (got, listed.error_code),
            (ids.iter().map(|s| s.to_string()).collect(), error),
            "{pattern}"
        );
    }

    // DescribeProducers: the producer's transaction started at offset 0 of partition 0.
    let dp = c
        .call(
            &kafka_protocol::messages::DescribeProducersRequest::default().with_topics(vec![
                kafka_protocol::messages::describe_producers_request::TopicRequest::default()
                    .with_name(tn("t"))
                    .with_partition_indexes(vec![0, 9]),
            ]),
            0,
        )
        .await;
    let parts = &dp.topics[0].partitions;
    let active = &parts[0].active_producers;
    assert_eq!(active.len(), 1);
    assert_eq!(
        (
            active[0].producer_id.0,
            active[0].producer_epoch,
            active[0].last_sequence,
            active[0].current_txn_start_offset
        ),
        (pid, i32::from(epoch), 1, 0)
    );
    assert_eq!(parts[1].error_code, ResponseError::UnknownTopicOrPartition.code());

    assert_eq!(end(&mut c, "x", pid, epoch, true, 3).await, NONE);
    // Retried commit: fine; abort of the committed transaction: invalid.
    assert_eq!(end(&mut c, "x", pid, epoch, true, 3).await, NONE);
    assert_eq!(end(&mut c, "x", pid, epoch, false, 3).await, ResponseError::InvalidTxnState.code());

    // The markers are in the log: 2 records + marker on partition 0, 1 record + marker on partition 1.
    assert_eq!(b.broker().cluster.logs.partition("t", 0).unwrap().log_end_offset(), 3);
    assert_eq!(b.broker().cluster.logs.partition("t", 1).unwrap().log_end_offset(), 2);

    // A new session fences the old epoch: PRODUCER_FENCED from v2, INVALID_PRODUCER_EPOCH before.
    assert_eq!(init(&mut c, "x", 60_000).await, (NONE, pid, 2));
    assert_eq!(add(&mut c, "x", pid, epoch, &[("t", 0)], 3).await[0].2, ResponseError::ProducerFenced.code());
    assert_eq!(
        add(&mut c, "x", pid, epoch, &[("t", 0)], 1).await[0].2,
        ResponseError::InvalidProducerEpoch.code()
    );
    assert_eq!(end(&mut c, "x", pid, epoch, true, 1).await, ResponseError::InvalidProducerEpoch.code());
    assert_eq!(
        add(&mut c, "x", pid + 1, 2, &[("t", 0)], 3).await[0].2,
        ResponseError::InvalidProducerIdMapping.code()
    );
    assert_eq!(end(&mut c, "unknown", pid, 2, true, 3).await, ResponseError::InvalidProducerIdMapping.code());
}

/// A transactional id longer than Kafka's transaction-log key can hold (an int16-length string): Kafka's
/// `TransactionLog.keyToBytes` throws and the request is answered UNKNOWN_SERVER_ERROR; nothing is
/// kept, and every other id is served.
#[tokio::test]
async fn a_huge_transactional_id_is_refused_and_harms_no_one() {
    let b = TestBroker::start().await;
    let mut c = b.client().await;
    let big = "x".repeat(100 * 1024);
    assert_eq!(init(&mut c, &big, 60_000).await, (ResponseError::UnknownServerError.code(), -1, -1));
    assert_eq!(end(&mut c, &big, 0, 0, true, 3).await, ResponseError::InvalidProducerIdMapping.code());
    let (e2, _, epoch) = init(&mut c, "small", 60_000).await;
    assert_eq!((e2, epoch), (NONE, 0));
    // Just below the bound is fine.
    let (e3, _, _) = init(&mut c, &"y".repeat(32_767), 60_000).await;
    assert_eq!(e3, NONE);
}

#[tokio::test]
async fn an_open_transaction_survives_a_crash_and_is_aborted_by_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = [("transaction.abort.timed.out.transaction.cleanup.interval.ms", "200")];
    let b = TestBroker::start_in(dir.path(), &cfg).await;
    let mut c = b.client().await;
    create_topic(&mut c, "t", 1).await;
    let (_, pid, epoch) = init(&mut c, "crash", 3_000).await;
    assert_eq!(add(&mut c, "crash", pid, epoch, &[("t", 0)], 3).await[0].2, NONE);
    assert_eq!(txn_produce(&mut c, "crash", "t", 0, txn_batch(&["a"], pid, epoch, 0), 9).await.0, NONE);
    // Restart: the coordinator replays its log; the ongoing transaction is still ongoing.
    drop(c);
    b.stop().await;
    let b = TestBroker::start_in(dir.path(), &cfg).await;
    let mut c = b.client().await;
    let d =
        c.call(&DescribeTransactionsRequest::default().with_transactional_ids(vec![tid("crash")]), 0).await;
    assert_eq!(d.transaction_states[0].transaction_state.as_str(), "Ongoing");
    // The timeout aborts it with a bumped epoch: an abort marker follows the record.
    let log = b.broker().cluster.logs.partition("t", 0).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while log.log_end_offset() < 2 {
        assert!(std::time::Instant::now() < deadline, "the timed-out transaction was not aborted");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let d =
        c.call(&DescribeTransactionsRequest::default().with_transactional_ids(vec![tid("crash")]), 0).await;
    assert_eq!(
        (d.transaction_states[0].transaction_state.as_str(), d.transaction_states[0].producer_epoch),
        ("CompleteAbort", epoch + 1)
    );
    assert_eq!(end(&mut c, "crash", pid, epoch, true, 3).await, ResponseError::ProducerFenced.code());
}

#[tokio::test]
async fn markers_with_old_epochs_are_refused_and_deleted_topics_do_not_block_a_commit() {
    use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
    use kafka_protocol::messages::{DeleteTopicsRequest, WriteTxnMarkersRequest};
    let b = TestBroker::start().await;
    let mut c = b.client().await;
    create_topic(&mut c, "keep", 1).await;
    create_topic(&mut c, "doomed", 1).await;
    init(&mut c, "m", 60_000).await;
    let (_, pid, epoch) = init(&mut c, "m", 60_000).await;
    assert_eq!(epoch, 1);
    let both = [("keep", 0), ("doomed", 0)];
    assert!(add(&mut c, "m", pid, epoch, &both, 3).await.iter().all(|x| x.2 == NONE));
    for (t, _) in both {
        assert_eq!(txn_produce(&mut c, "m", t, 0, txn_batch(&["v"], pid, epoch, 0), 9).await.0, NONE);
    }
    // A marker from an older epoch than the partition has seen is refused (Kafka: INVALID_PRODUCER_EPOCH).
    let marker = |epoch: i16| {
        WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_transaction_result(false)
            .with_coordinator_epoch(0)
            .with_topics(vec![WritableTxnMarkerTopic::default()
                .with_name(tn("keep"))
                .with_partition_indexes(vec![0])])])
    };
    let r = c.call(&marker(0), 1).await;
    assert_eq!(r.markers[0].topics[0].partitions[0].error_code, ResponseError::InvalidProducerEpoch.code());
    assert_eq!(
        b.broker().cluster.logs.partition("keep", 0).unwrap().log_end_offset(),
        1,
        "no marker written"
    );
    // A topic of the transaction is deleted: the commit still completes on the others.
    let del = c.call(&DeleteTopicsRequest::default().with_topic_names(vec![tn("doomed")]), 4).await;
    assert_eq!(del.responses[0].error_code, NONE);
    assert_eq!(end(&mut c, "m", pid, epoch, true, 3).await, NONE);
    let log = b.broker().cluster.logs.partition("keep", 0).unwrap();
    assert_eq!((log.log_end_offset(), log.last_stable_offset()), (2, 2), "record and commit marker");
    let d = c.call(&DescribeTransactionsRequest::default().with_transactional_ids(vec![tid("m")]), 0).await;
    assert_eq!(d.transaction_states[0].transaction_state.as_str(), "CompleteCommit");
}

#[tokio::test]
async fn the_coordinator_state_is_the_internal_topic_transaction_state() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::start_in(dir.path(), &[("transaction.state.log.num.partitions", "3")]).await;
    let mut c = b.client().await;
    create_topic(&mut c, "t", 1).await;
    // Created on the first use of a transactional id, as Kafka does.
    assert!(metadata_all(&mut c)
        .await
        .topics
        .iter()
        .all(|t| t.name.as_ref().map(|n| n.as_str()) != Some("__transaction_state")));
    let (_, pid, epoch) = init(&mut c, "app", 60_000).await;
    assert_eq!(add(&mut c, "app", pid, epoch, &[("t", 0)], 3).await[0].2, NONE);
    let md = metadata_all(&mut c).await;
    let ts = md
        .topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some("__transaction_state"))
        .expect("listed");
    assert!(ts.is_internal);
    assert_eq!(ts.partitions.len(), 3);
    // Clients may not write to it.
    let r = c.call(&produce_request("__transaction_state", 0, record_batch(&["x"]), -1), 9).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, ResponseError::InvalidTopicException.code());
    // Its records are Kafka's: key = version 0 + "app"; the last value says Ongoing with partition t-0.
    let p = strom::txn::coordinator::partition_for("app", 3);
    let log = b.broker().cluster.logs.partition("__transaction_state", p).unwrap();
    let read = log.read(log.log_start_offset(), 1 << 20, true).unwrap();
    let mut buf = read.records.clone();
    let recs: Vec<_> = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf)
        .unwrap()
        .into_iter()
        .flat_map(|s| s.records)
        .collect();
    let last = recs.last().unwrap();
    assert_eq!(last.key.as_deref(), Some(&b"\x00\x00\x00\x03app"[..]));
    let v = last.value.clone().unwrap();
    assert_eq!(v[2 + 8 + 2 + 4], 1, "state byte Ongoing");
    // A restart replays the topic.
    drop(c);
    b.stop().await;
    let b = TestBroker::start_in(dir.path(), &[("transaction.state.log.num.partitions", "3")]).await;
    let mut c = b.client().await;
    let d = c.call(&DescribeTransactionsRequest::default().with_transactional_ids(vec![tid("app")]), 0).await;
    assert_eq!(
        (d.transaction_states[0].transaction_state.as_str(), d.transaction_states[0].producer_id.0),
        ("Ongoing", pid)
    );
    assert_eq!(end(&mut c, "app", pid, epoch, false, 3).await, NONE);
}
