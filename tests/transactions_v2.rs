//! Transactions v2 (KIP-890 part 2) over real TCP, as a Kafka 4.x client with `transaction.version`
//! 2 drives them: Produce v12 and TxnOffsetCommit v5 add their partitions to the transaction
//! themselves, and EndTxn v5 bumps the epoch at every commit or abort and answers the new one.

mod common;

use bytes::Bytes;
use common::*;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, DescribeTransactionsRequest, EndTxnRequest, GroupId, InitProducerIdRequest,
    OffsetFetchRequest, ProducerId, TransactionalId, TxnOffsetCommitRequest,
};
use kafka_protocol::ResponseError;

const NONE: i16 = 0;

fn tid(s: &str) -> TransactionalId {
    TransactionalId(common::s(s))
}

async fn init(c: &mut Client, id: &str) -> (i64, i16) {
    let req = InitProducerIdRequest::default()
        .with_transactional_id(Some(tid(id)))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let r = c.call(&req, 5).await;
    assert_eq!(r.error_code, NONE);
    (r.producer_id.0, r.producer_epoch)
}

/// EndTxn at `version`: (error, producer id, producer epoch) of the answer.
async fn end(c: &mut Client, id: &str, pid: i64, epoch: i16, commit: bool, version: i16) -> (i16, i64, i16) {
    let req = EndTxnRequest::default()
        .with_transactional_id(tid(id))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit);
    let r = c.call(&req, version).await;
    (r.error_code, r.producer_id.0, r.producer_epoch)
}

async fn txn_produce(c: &mut Client, id: &str, batch: Bytes, version: i16) -> i16 {
    let req = produce_request("t", 0, batch, -1).with_transactional_id(Some(tid(id)));
    c.call(&req, version).await.responses[0].partition_responses[0].error_code
}

/// TxnOffsetCommit of offset `offset` of t-0 for group `group` (generation -1: no member checks).
async fn commit_offset(
    c: &mut Client,
    id: &str,
    pid: i64,
    epoch: i16,
    group: &str,
    offset: i64,
    version: i16,
) -> i16 {
    let req = TxnOffsetCommitRequest::default()
        .with_transactional_id(tid(id))
        .with_group_id(GroupId(common::s(group)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_generation_id(-1)
        .with_topics(vec![TxnOffsetCommitRequestTopic::default().with_name(tn("t")).with_partitions(vec![
            TxnOffsetCommitRequestPartition::default().with_partition_index(0).with_committed_offset(offset),
        ])]);
    c.call(&req, version).await.topics[0].partitions[0].error_code
}

async fn committed_offset(c: &mut Client, group: &str) -> i64 {
    let req = OffsetFetchRequest::default().with_group_id(GroupId(common::s(group))).with_topics(Some(vec![
        OffsetFetchRequestTopic::default().with_name(tn("t")).with_partition_indexes(vec![0]),
    ]));
    c.call(&req, 7).await.topics[0].partitions[0].committed_offset
}

/// The (state, epoch, partitions) DescribeTransactions reports for `id`.
async fn describe(c: &mut Client, id: &str) -> (String, i16, Vec<(String, Vec<i32>)>) {
    let d = c.call(&DescribeTransactionsRequest::default().with_transactional_ids(vec![tid(id)]), 0).await;
    let s = &d.transaction_states[0];
    let parts = s.topics.iter().map(|t| (t.topic.to_string(), t.partitions.clone())).collect();
    (s.transaction_state.to_string(), s.producer_epoch, parts)
}

#[tokio::test]
async fn a_v2_transaction_adds_its_partitions_itself_and_ends_with_a_new_epoch() {
    let b = TestBroker::start().await;
    let mut c = b.client().await;
    create_topic(&mut c, "t", 1).await;
    let (pid, e) = init(&mut c, "v2").await;
    assert_eq!(e, 0);

    // Produce v12 adds t-0; TxnOffsetCommit v5 adds the group's __consumer_offsets partition
    // ("g".hashCode() = 103, 103 % 50 = 3). Neither needed an AddPartitionsToTxn/AddOffsetsToTxn.
    assert_eq!(txn_produce(&mut c, "v2", txn_batch(&["a", "b"], pid, e, 0), 12).await, NONE);
    assert_eq!(commit_offset(&mut c, "v2", pid, e, "g", 2, 5).await, NONE);
    let (state, epoch, parts) = describe(&mut c, "v2").await;
    assert_eq!((state.as_str(), epoch), ("Ongoing", e));
    assert!(parts.contains(&("t".into(), vec![0])), "{parts:?}");
    assert!(parts.contains(&("__consumer_offsets".into(), vec![3])), "{parts:?}");
    // TxnOffsetCommit v4 still needs AddOffsetsToTxn: another group's partition was not added.
    assert_eq!(
        commit_offset(&mut c, "v2", pid, e, "h", 1, 4).await,
        ResponseError::TransactionAbortable.code()
    );
    assert_eq!(committed_offset(&mut c, "g").await, -1, "not visible before the commit");

    // EndTxn v5: committed, and the producer goes on at the next epoch; the markers carry it.
    assert_eq!(end(&mut c, "v2", pid, e, true, 5).await, (NONE, pid, e + 1));
    let log = b.broker().cluster.logs.partition("t", 0).unwrap();
    assert_eq!((log.log_end_offset(), log.last_stable_offset()), (3, 3));
    assert_eq!(log.producer_epoch(pid), Some(e + 1));
    assert_eq!(committed_offset(&mut c, "g").await, 2);
    assert_eq!(describe(&mut c, "v2").await, ("CompleteCommit".into(), e + 1, vec![]));

    // The old epoch is fenced from new work; its EndTxn retry gets the answer it missed.
    assert_eq!(
        txn_produce(&mut c, "v2", txn_batch(&["x"], pid, e, 2), 12).await,
        ResponseError::InvalidProducerEpoch.code()
    );
    assert_eq!(
        commit_offset(&mut c, "v2", pid, e, "g", 9, 5).await,
        ResponseError::InvalidProducerEpoch.code()
    );
    let add = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(tid("v2"))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(e)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(tn("t"))
            .with_partitions(vec![0])]);
    let r = c.call(&add, 3).await;
    assert_eq!(
        r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
        ResponseError::ProducerFenced.code()
    );
    assert_eq!(end(&mut c, "v2", pid, e, true, 5).await, (NONE, pid, e + 1));
    assert_eq!(end(&mut c, "v2", pid, e, false, 5).await.0, ResponseError::InvalidTxnState.code());

    // The next transaction runs at the new epoch, its sequences from 0; its abort bumps again.
    let e = e + 1;
    assert_eq!(txn_produce(&mut c, "v2", txn_batch(&["c"], pid, e, 0), 12).await, NONE);
    assert_eq!(end(&mut c, "v2", pid, e, false, 5).await, (NONE, pid, e + 1));
    assert_eq!((log.log_end_offset(), log.last_stable_offset()), (5, 5));
    // An abort with nothing ongoing also bumps; a commit with nothing ongoing is invalid.
    let e = e + 1;
    assert_eq!(end(&mut c, "v2", pid, e, true, 5).await, (ResponseError::InvalidTxnState.code(), -1, -1));
    assert_eq!(end(&mut c, "v2", pid, e, false, 5).await, (NONE, pid, e + 1));
    assert_eq!(log.log_end_offset(), 5, "no partition, no marker");

    // EndTxn v4 is transactions v1: no bump, and the v5 fields are not set.
    let e = e + 1;
    assert_eq!(txn_produce(&mut c, "v2", txn_batch(&["d"], pid, e, 0), 12).await, NONE);
    assert_eq!(end(&mut c, "v2", pid, e, true, 4).await, (NONE, -1, -1));
    assert_eq!(describe(&mut c, "v2").await, ("CompleteCommit".into(), e, vec![]));
}
