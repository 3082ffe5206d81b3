//! `__consumer_offsets` as a real internal topic, as Kafka 4.4 has it: absent until a group is used
//! (FindCoordinator creates it), then listed with `is_internal` and `offsets.topic.num.partitions`
//! partitions; each group's records in partition `abs(hash(group)) % partitions` in Kafka's record
//! format (a stock consumer can fetch and decode them); offsets surviving a restart; and the move of
//! an older data directory's `__strom_groups` log into the topic.

mod common;

use common::{create_topic, metadata_all, metadata_for, s, tn, Client, TestBroker};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    BrokerId, FetchRequest, FindCoordinatorRequest, GroupId, ListOffsetsRequest, OffsetCommitRequest,
    OffsetFetchRequest,
};
use kafka_protocol::records::RecordBatchDecoder;
use strom::coordinator_log::partition_for;
use strom::coordinator_log::RecordLog;
use strom::group::log_format;
use strom::group::model::{CommittedOffset, GroupRecord};
use strom::group::store::{FileGroupLog, GROUP_LOG_DIR};

const OFFSETS: &str = "__consumer_offsets";

async fn find_coordinator(c: &mut Client, group: &str) -> i16 {
    c.call(&FindCoordinatorRequest::default().with_key(s(group)), 3).await.error_code
}

async fn commit(c: &mut Client, group: &str, topic: &str, partition: i32, offset: i64) {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default().with_name(tn(topic)).with_partitions(vec![
            OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(s("m"))),
        ])]);
    let resp = c.call(&req, 8).await;
    assert_eq!(resp.topics[0].partitions[0].error_code, 0, "commit {group} {topic}-{partition}");
}

async fn committed(c: &mut Client, group: &str, topic: &str, partition: i32) -> i64 {
    let req = OffsetFetchRequest::default().with_group_id(GroupId(s(group))).with_topics(Some(vec![
        OffsetFetchRequestTopic::default().with_name(tn(topic)).with_partition_indexes(vec![partition]),
    ]));
    c.call(&req, 7).await.topics[0].partitions[0].committed_offset
}

/// Every record of `__consumer_offsets` partition `p` from its log start, fetched as a consumer
/// does and decoded.
async fn fetch_records(c: &mut Client, p: i32) -> Vec<GroupRecord> {
    let fetch = |offset: i64| {
        FetchRequest::default().with_max_wait_ms(0).with_min_bytes(1).with_max_bytes(1 << 20).with_topics(
            vec![FetchTopic::default().with_topic(tn(OFFSETS)).with_partitions(vec![
                FetchPartition::default()
                    .with_partition(p)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20),
            ])],
        )
    };
    // The log start (ListOffsets EARLIEST): compaction moves it.
    let earliest = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
        ListOffsetsTopic::default().with_name(tn(OFFSETS)).with_partitions(vec![
            ListOffsetsPartition::default().with_partition_index(p).with_timestamp(-2),
        ]),
    ]);
    let start = c.call(&earliest, 5).await.topics[0].partitions[0].offset;
    let resp = c.call(&fetch(start), 12).await;
    let part = &resp.responses[0].partitions[0];
    assert_eq!(part.error_code, 0, "fetch {OFFSETS}-{p}");
    let mut bytes = part.records.clone().unwrap_or_default();
    let mut out = Vec::new();
    for set in RecordBatchDecoder::decode_all(&mut bytes).expect("Kafka record batches") {
        for r in set.records {
            let key = r.key.expect("every record has a key");
            out.push(log_format::decode(&key, r.value.as_ref(), None).expect("Kafka's record format"));
        }
    }
    out
}

fn listed_offsets_topic(m: &kafka_protocol::messages::MetadataResponse) -> Option<(bool, usize)> {
    m.topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.as_str()) == Some(OFFSETS))
        .map(|t| (t.is_internal, t.partitions.len()))
}

#[tokio::test]
async fn created_by_the_first_group_use_listed_internal_and_holding_kafkas_records() {
    let mut broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 2).await;
    // Not there before a group is used (Kafka creates it on first use).
    assert_eq!(listed_offsets_topic(&metadata_all(&mut c).await), None);
    let by_name = metadata_for(&mut c, &[OFFSETS]).await;
    assert_eq!(by_name.topics[0].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION before first use");

    assert_eq!(find_coordinator(&mut c, "g1").await, 0);
    assert_eq!(listed_offsets_topic(&metadata_all(&mut c).await), Some((true, 50)));
    let by_name = metadata_for(&mut c, &[OFFSETS]).await;
    assert_eq!((by_name.topics[0].error_code, by_name.topics[0].is_internal), (0, true));

    commit(&mut c, "g1", "t", 1, 42).await;
    let records = fetch_records(&mut c, partition_for("g1", 50)).await;
    let offsets: Vec<(String, String, i32, Option<i64>)> = records
        .iter()
        .filter_map(|r| match r {
            GroupRecord::Offset { group, topic, partition, value } => {
                Some((group.clone(), topic.clone(), *partition, value.as_ref().map(|v| v.offset)))
            }
            _ => None,
        })
        .collect();
    assert_eq!(offsets, vec![("g1".to_string(), "t".to_string(), 1, Some(42))]);

    // Survives a restart (replayed from the topic), and clients may not produce to it.
    broker.restart().await;
    let mut c = broker.client().await;
    assert_eq!(committed(&mut c, "g1", "t", 1).await, 42);
    assert_eq!(listed_offsets_topic(&metadata_all(&mut c).await), Some((true, 50)));
    assert!(!broker.data_dir().join(GROUP_LOG_DIR).exists(), "no second group log");
    broker.stop().await;
}

#[tokio::test]
async fn an_older_data_directorys_group_log_moves_into_the_topic() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        // What an older strom left: a file group log with an offset, a deleted one and a group.
        let log = FileGroupLog::open(&dir.path().join(GROUP_LOG_DIR)).expect("old log");
        let offset = |group: &str, offset: Option<i64>| GroupRecord::Offset {
            group: group.into(),
            topic: "t".into(),
            partition: 0,
            value: offset.map(|offset| CommittedOffset {
                offset,
                leader_epoch: -1,
                metadata: String::new(),
                commit_ms: strom::log::now_ms(),
            }),
        };
        log.append(&[
            offset("old", Some(7)),
            offset("gone", Some(3)),
            offset("gone", None),
            offset("old", Some(9)),
        ])
        .expect("append");
    }
    let mut broker = TestBroker::start_in(dir.path(), &[]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1).await;
    assert_eq!(committed(&mut c, "old", "t", 0).await, 9);
    assert_eq!(committed(&mut c, "gone", "t", 0).await, -1);
    assert!(!dir.path().join(GROUP_LOG_DIR).exists(), "the old log is removed once moved");
    assert_eq!(listed_offsets_topic(&metadata_all(&mut c).await), Some((true, 50)));
    let records = fetch_records(&mut c, partition_for("old", 50)).await;
    assert!(records.iter().any(|r| matches!(r, GroupRecord::Offset { group, value: Some(v), .. }
        if group == "old" && v.offset == 9)));
    // And from the topic after a restart.
    broker.restart().await;
    let mut c = broker.client().await;
    assert_eq!(committed(&mut c, "old", "t", 0).await, 9);
    broker.stop().await;
}

#[tokio::test]
async fn metadata_auto_creation_makes_the_offsets_topic_as_the_coordinator_needs_it() {
    // A client asking for __consumer_offsets with auto-creation on (a lag monitor before any group is
    // used) gets the internal topic with its 50 partitions, never a broker-default one-partition
    // topic the coordinator could not use; other internal topics are not auto-created.
    let broker =
        TestBroker::start_with(&[("auto.create.topics.enable", "true"), ("num.partitions", "1")]).await;
    let mut c = broker.client().await;
    let names = [OFFSETS, "__transaction_state"];
    let req = kafka_protocol::messages::MetadataRequest::default()
        .with_topics(Some(
            names
                .iter()
                .map(|n| {
                    kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(common::tn(n)))
                })
                .collect(),
        ))
        .with_allow_auto_topic_creation(true);
    let resp = c.call(&req, 12).await;
    let got: Vec<(i16, bool, usize)> =
        resp.topics.iter().map(|t| (t.error_code, t.is_internal, t.partitions.len())).collect();
    assert_eq!(
        got,
        vec![(0, true, 50), (3, true, 0)],
        "unknown internal names are flagged internal, as Kafka does"
    );
    assert_eq!(find_coordinator(&mut c, "g").await, 0);
    commit(&mut c, "g", OFFSETS, 0, 1).await;
    broker.stop().await;
}

/// A spawned strom, SIGKILLed when dropped (so a failing test leaves no process behind).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The strom binary on `dir` at a free 127.0.0.1 port, and a client once it answers.
async fn spawn_strom(dir: &std::path::Path) -> (Killed, Client) {
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_strom"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(Killed)
        .expect("spawn strom");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let started = std::time::Instant::now();
    loop {
        if let Ok(c) = Client::connect(addr).await {
            return (child, c);
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "strom did not start");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn committed_offsets_survive_kill_9() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (strom, mut c) = spawn_strom(tmp.path()).await;
    create_topic(&mut c, "t", 1).await;
    assert_eq!(find_coordinator(&mut c, "g").await, 0);
    for offset in [5, 17, 42] {
        commit(&mut c, "g", "t", 0, offset).await;
    }
    drop(strom); // SIGKILL
    let (strom, mut c) = spawn_strom(tmp.path()).await;
    assert_eq!(committed(&mut c, "g", "t", 0).await, 42, "the last acknowledged commit after kill -9");
    commit(&mut c, "g", "t", 0, 43).await;
    drop(strom);
    let (_strom, mut c) = spawn_strom(tmp.path()).await;
    assert_eq!(committed(&mut c, "g", "t", 0).await, 43);
}

#[tokio::test]
async fn delete_records_refuses_the_internal_topics() {
    // Kafka 4.4.0 answers INVALID_TOPIC_EXCEPTION for every partition of __consumer_offsets and
    // __transaction_state (kafka-delete-records): the coordinators' state is never cut away.
    use kafka_protocol::messages::delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic};
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1).await;
    assert_eq!(find_coordinator(&mut c, "g").await, 0);
    let p = partition_for("g", 50);
    commit(&mut c, "g", "t", 0, 7).await;
    let req =
        kafka_protocol::messages::DeleteRecordsRequest::default().with_timeout_ms(1000).with_topics(vec![
            DeleteRecordsTopic::default().with_name(tn(OFFSETS)).with_partitions(vec![
                DeleteRecordsPartition::default().with_partition_index(p).with_offset(-1),
            ]),
        ]);
    let r = c.call(&req, 2).await;
    let got = &r.topics[0].partitions[0];
    assert_eq!((got.error_code, got.low_watermark), (17, -1));
    drop(c);
    let mut broker = broker;
    broker.restart().await;
    let mut c = broker.client().await;
    assert_eq!(committed(&mut c, "g", "t", 0).await, 7);
    broker.stop().await;
}

#[tokio::test]
async fn deleting_the_offsets_topic_forgets_the_groups_at_once() {
    // Kafka 4.4.0 lets a client delete __consumer_offsets and forgets every group right away
    // (kafka-consumer-groups --describe: GroupIdNotFoundException); strom must not keep serving
    // offsets that a restart would lose.
    let broker = TestBroker::start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 1).await;
    assert_eq!(find_coordinator(&mut c, "g").await, 0);
    commit(&mut c, "g", "t", 0, 7).await;
    let del = kafka_protocol::messages::DeleteTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topic_names(vec![tn(OFFSETS)]);
    assert_eq!(c.call(&del, 5).await.responses[0].error_code, 0);
    assert_eq!(committed(&mut c, "g", "t", 0).await, -1, "gone at once, as after a restart");
    // The coordinator recreates the topic on the next use.
    assert_eq!(find_coordinator(&mut c, "g").await, 0);
    commit(&mut c, "g", "t", 0, 8).await;
    assert_eq!(committed(&mut c, "g", "t", 0).await, 8);
    assert_eq!(listed_offsets_topic(&metadata_all(&mut c).await), Some((true, 50)));
    drop(c);
    let mut broker = broker;
    broker.restart().await;
    let mut c = broker.client().await;
    assert_eq!(committed(&mut c, "g", "t", 0).await, 8, "the commit after the deletion is durable");
    broker.stop().await;
}
