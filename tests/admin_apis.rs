//! The admin APIs a one-node Kafka serves and its tools call (issue 15, part 3): DescribeLogDirs,
//! AlterReplicaLogDirs, ElectLeaders, Alter/ListPartitionReassignments, DescribeQuorum,
//! DescribeTopicPartitions and ListConfigResources, at every version kafka-protocol has.
//!
//! Every expected value below was first observed from a real Apache Kafka 4.4.0 (one combined
//! broker+controller node started by `scripts/kafka-reference`, topics `t1` with 3 partitions and
//! `t2` with 2) answering the same requests; where a value is the broker's own (paths, sizes, ids,
//! offsets) the test checks the rule Kafka follows instead.

mod common;

use common::*;
use kafka_protocol::messages::*;

/// A broker with topics `t1` (3 partitions, one batch in partition 1) and `t2` (2 partitions).
async fn broker_with_topics() -> (TestBroker, Client) {
    let b = TestBroker::start().await;
    let mut c = b.client().await;
    create_topic(&mut c, "t1", 3).await;
    create_topic(&mut c, "t2", 2).await;
    let r = produce(&mut c, "t1", 1, record_batch(&["a", "b", "c"]), 9).await;
    assert_eq!(r.error_code, 0);
    (b, c)
}

// ---------------------------------------------------------------------------------------------
// DescribeLogDirs / AlterReplicaLogDirs

#[tokio::test]
async fn describe_log_dirs_lists_the_data_dir_with_partition_sizes() {
    use describe_log_dirs_request::DescribableLogDirTopic;
    let (b, mut c) = broker_with_topics().await;
    let dir = std::fs::canonicalize(b.data_dir()).unwrap();
    let size_of = |p: i32| -> i64 {
        std::fs::read_dir(b.partition_dir("t1", p))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
            .map(|e| e.metadata().unwrap().len() as i64)
            .sum()
    };
    for v in 1..=4 {
        let r = c.call(&DescribeLogDirsRequest::default().with_topics(None), v).await;
        assert_eq!(r.error_code, 0);
        assert_eq!(r.results.len(), 1, "one log dir");
        let d = &r.results[0];
        assert_eq!(d.error_code, 0);
        assert_eq!(std::fs::canonicalize(d.log_dir.as_str()).unwrap(), dir);
        let listed: Vec<(String, i32, i64, i64, bool)> = d
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    (t.name.0.to_string(), p.partition_index, p.partition_size, p.offset_lag, p.is_future_key)
                })
            })
            .collect();
        let t1_1 = size_of(1);
        assert!(t1_1 > 61, "one batch in t1-1");
        assert_eq!(
            listed,
            vec![
                ("t1".into(), 0, 0, 0, false),
                ("t1".into(), 1, t1_1, 0, false),
                ("t1".into(), 2, 0, 0, false),
                ("t2".into(), 0, 0, 0, false),
                ("t2".into(), 1, 0, 0, false),
            ]
        );
        if v >= 4 {
            // Kafka: the filesystem's total and usable bytes (Java FileStore).
            assert!(d.total_bytes > 0 && d.usable_bytes > 0 && d.usable_bytes <= d.total_bytes, "{d:?}");
        } else {
            assert_eq!((d.total_bytes, d.usable_bytes), (-1, -1));
        }
    }
    // Kafka 4.4: only partitions that exist are listed; a topic left with none is left out.
    let t = vec![
        DescribableLogDirTopic::default().with_topic(tn("t1")).with_partitions(vec![1, 0, 7]),
        DescribableLogDirTopic::default().with_topic(tn("nope")).with_partitions(vec![0]),
    ];
    let r = c.call(&DescribeLogDirsRequest::default().with_topics(Some(t)), 4).await;
    let topics: Vec<(String, Vec<i32>)> = r.results[0]
        .topics
        .iter()
        .map(|t| (t.name.0.to_string(), t.partitions.iter().map(|p| p.partition_index).collect()))
        .collect();
    assert_eq!(topics, vec![("t1".to_string(), vec![0, 1])]);
    let r = c.call(&DescribeLogDirsRequest::default().with_topics(Some(vec![])), 4).await;
    assert_eq!(r.results.len(), 1);
    assert!(r.results[0].topics.is_empty());
}

#[tokio::test]
async fn alter_replica_log_dirs_answers_per_partition_as_kafka() {
    use alter_replica_log_dirs_request::*;
    let (_b, mut c) = broker_with_topics().await;
    let r = c.call(&DescribeLogDirsRequest::default().with_topics(Some(vec![])), 1).await;
    let dir = r.results[0].log_dir.to_string();
    let mk = |path: &str, topic: &str, parts: Vec<i32>| {
        AlterReplicaLogDir::default()
            .with_path(s(path))
            .with_topics(vec![AlterReplicaLogDirTopic::default().with_name(tn(topic)).with_partitions(parts)])
    };
    for v in 1..=2 {
        let req = AlterReplicaLogDirsRequest::default().with_dirs(vec![
            mk(&dir, "t1", vec![0, 9]),
            mk("/nonexistent", "t1", vec![1]),
            mk(&dir, "nope", vec![0]),
            mk("/nonexistent", "nope", vec![1]),
        ]);
        let r = c.call(&req, v).await;
        let mut got: Vec<(String, i32, i16)> = r
            .results
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(|p| (t.topic_name.0.to_string(), p.partition_index, p.error_code))
            })
            .collect();
        got.sort();
        // Kafka 4.4: same dir → NONE; unknown partition or topic → UNKNOWN_TOPIC_OR_PARTITION (3); a
        // path that is not a log dir → LOG_DIR_NOT_FOUND (57), checked before the partition.
        assert_eq!(
            got,
            vec![
                ("nope".into(), 0, 3),
                ("nope".into(), 1, 57),
                ("t1".into(), 0, 0),
                ("t1".into(), 1, 57),
                ("t1".into(), 9, 3),
            ],
            "v{v}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// ElectLeaders

/// (topic, partition, error code, error message) of every partition result, in answer order.
fn election_results(r: &ElectLeadersResponse) -> Vec<(String, i32, i16, Option<String>)> {
    r.replica_election_results
        .iter()
        .flat_map(|t| {
            t.partition_result.iter().map(|p| {
                (
                    t.topic.0.to_string(),
                    p.partition_id,
                    p.error_code,
                    p.error_message.as_ref().map(|m| m.to_string()),
                )
            })
        })
        .collect()
}

#[tokio::test]
async fn elect_leaders_is_never_needed_on_one_node() {
    use elect_leaders_request::TopicPartitions;
    let (_b, mut c) = broker_with_topics().await;
    let not_needed = Some("Leader election not needed for topic partition.".to_string());
    for v in 0..=2 {
        // v0 has no election type (always preferred); 1 is unclean: both not needed.
        for election_type in if v == 0 { vec![0] } else { vec![0i8, 1] } {
            let all = ElectLeadersRequest::default()
                .with_election_type(election_type)
                .with_topic_partitions(None)
                .with_timeout_ms(5000);
            let r = c.call(&all, v).await;
            // Kafka 4.4: every topic listed, with no partition (those not needing an election are left out).
            assert_eq!(r.error_code, 0);
            let mut topics: Vec<(String, usize)> = r
                .replica_election_results
                .iter()
                .map(|t| (t.topic.0.to_string(), t.partition_result.len()))
                .collect();
            topics.sort();
            assert_eq!(topics, vec![("t1".to_string(), 0), ("t2".to_string(), 0)], "v{v}");

            let some = all.with_topic_partitions(Some(vec![
                TopicPartitions::default().with_topic(tn("t1")).with_partitions(vec![0, 9]),
                TopicPartitions::default().with_topic(tn("nope")).with_partitions(vec![0]),
            ]));
            let r = c.call(&some, v).await;
            assert_eq!(r.error_code, 0);
            assert_eq!(
                election_results(&r),
                vec![
                    ("t1".into(), 0, 84, not_needed.clone()),
                    ("t1".into(), 9, 3, Some("No such partition as t1-9".into())),
                    ("nope".into(), 0, 3, Some("No such topic as nope".into())),
                ],
                "v{v} type {election_type}"
            );
        }
    }
    let bad = ElectLeadersRequest::default()
        .with_election_type(5)
        .with_topic_partitions(Some(vec![TopicPartitions::default()
            .with_topic(tn("t1"))
            .with_partitions(vec![0])]))
        .with_timeout_ms(5000);
    let r = c.call(&bad, 2).await;
    assert_eq!(r.error_code, 42, "INVALID_REQUEST");
    assert_eq!(election_results(&r), vec![("t1".into(), 0, 42, Some("Unknown election type 5".into()))]);
    let none = ElectLeadersRequest::default().with_topic_partitions(Some(vec![])).with_timeout_ms(5000);
    let r = c.call(&none, 2).await;
    assert_eq!((r.error_code, r.replica_election_results.len()), (0, 0));
}

// ---------------------------------------------------------------------------------------------
// AlterPartitionReassignments / ListPartitionReassignments

fn reassignment_results(r: &AlterPartitionReassignmentsResponse) -> Vec<(String, i32, i16, Option<String>)> {
    r.responses
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.error_code,
                    p.error_message.as_ref().map(|m| m.to_string()),
                )
            })
        })
        .collect()
}

#[tokio::test]
async fn reassignments_complete_at_once_or_fail_as_kafka() {
    use alter_partition_reassignments_request::*;
    let (_b, mut c) = broker_with_topics().await;
    let p = |i: i32, r: Option<Vec<i32>>| {
        ReassignablePartition::default()
            .with_partition_index(i)
            .with_replicas(r.map(|v| v.into_iter().map(BrokerId).collect()))
    };
    let unregistered = |b: i32| {
        Some(format!(
            "The manual partition assignment includes broker {b}, but no such broker is registered."
        ))
    };
    for v in 0..=1 {
        let topics = vec![
            ReassignableTopic::default().with_name(tn("t1")).with_partitions(vec![
                p(0, Some(vec![1])),
                p(1, Some(vec![2])),
                p(2, None),
                p(9, Some(vec![1])),
            ]),
            ReassignableTopic::default().with_name(tn("nope")).with_partitions(vec![p(0, Some(vec![1]))]),
        ];
        let r = c
            .call(&AlterPartitionReassignmentsRequest::default().with_timeout_ms(5000).with_topics(topics), v)
            .await;
        assert_eq!(
            (r.error_code, r.error_message.clone(), r.allow_replication_factor_change),
            (0, None, true)
        );
        assert_eq!(
            reassignment_results(&r),
            vec![
                ("t1".into(), 0, 0, None),
                ("t1".into(), 1, 39, unregistered(2)),
                ("t1".into(), 2, 85, None),
                ("t1".into(), 9, 3, Some("Unable to find partition t1:9.".into())),
                ("nope".into(), 0, 3, Some("Unable to find a topic named nope.".into())),
            ],
            "v{v}"
        );
        let topics = vec![ReassignableTopic::default().with_name(tn("t1")).with_partitions(vec![
            p(0, Some(vec![1, 1])),
            p(1, Some(vec![])),
            p(2, Some(vec![1, 2])),
        ])];
        let r = c
            .call(&AlterPartitionReassignmentsRequest::default().with_timeout_ms(5000).with_topics(topics), v)
            .await;
        assert_eq!(
            reassignment_results(&r),
            vec![
                (
                    "t1".into(),
                    0,
                    39,
                    Some("The manual partition assignment includes the broker 1 more than once.".into())
                ),
                (
                    "t1".into(),
                    1,
                    39,
                    Some("The manual partition assignment includes an empty replica list.".into())
                ),
                ("t1".into(), 2, 39, unregistered(2)),
            ],
            "v{v}"
        );
    }
    // An empty request: Kafka's controller answers a fresh response (message "", not null).
    let r = c
        .call(&AlterPartitionReassignmentsRequest::default().with_timeout_ms(5000).with_topics(vec![]), 1)
        .await;
    assert_eq!((r.error_code, r.error_message.as_deref(), r.responses.len()), (0, Some(""), 0));
    // v1 echoes allow_replication_factor_change; a partition named twice is answered twice.
    let topics = vec![ReassignableTopic::default()
        .with_name(tn("t1"))
        .with_partitions(vec![p(0, Some(vec![1])), p(0, Some(vec![1]))])];
    let req = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(5000)
        .with_allow_replication_factor_change(false)
        .with_topics(topics);
    let r = c.call(&req, 1).await;
    assert!(!r.allow_replication_factor_change);
    assert_eq!(reassignment_results(&r), vec![("t1".into(), 0, 0, None), ("t1".into(), 0, 0, None)]);

    use list_partition_reassignments_request::ListPartitionReassignmentsTopics;
    for topics in [
        None,
        Some(vec![
            ListPartitionReassignmentsTopics::default()
                .with_name(tn("t1"))
                .with_partition_indexes(vec![0, 9]),
            ListPartitionReassignmentsTopics::default().with_name(tn("nope")).with_partition_indexes(vec![0]),
        ]),
    ] {
        let r = c
            .call(&ListPartitionReassignmentsRequest::default().with_timeout_ms(5000).with_topics(topics), 0)
            .await;
        assert_eq!((r.error_code, r.error_message, r.topics.len()), (0, None, 0));
    }
}

// ---------------------------------------------------------------------------------------------
// DescribeQuorum

fn quorum_request(topic: &str, partitions: &[i32]) -> DescribeQuorumRequest {
    use describe_quorum_request::*;
    DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(tn(topic))
        .with_partitions(
            partitions.iter().map(|p| PartitionData::default().with_partition_index(*p)).collect(),
        )])
}

#[tokio::test]
async fn describe_quorum_shows_one_voter_leading() {
    let (b, mut c) = broker_with_topics().await;
    let mut last_offset = 0;
    for v in 0..=2 {
        let before = now_ms();
        let r = c.call(&quorum_request("__cluster_metadata", &[0]), v).await;
        // Kafka 4.4 (combined one-node KRaft): no error, the message "" (v2), one topic, one partition
        // led by the node at epoch 1, the node the only voter, no observers.
        assert_eq!((r.error_code, r.error_message.as_deref()), (0, Some("")));
        assert_eq!(r.topics.len(), 1);
        assert_eq!(r.topics[0].topic_name.0.as_str(), "__cluster_metadata");
        let p = &r.topics[0].partitions[0];
        assert_eq!((p.partition_index, p.error_code, p.leader_id.0, p.leader_epoch), (0, 0, 1, 1));
        assert_eq!(p.current_voters.len(), 1);
        assert!(p.observers.is_empty());
        let voter = &p.current_voters[0];
        assert_eq!(voter.replica_id.0, 1);
        // Stand-ins for the metadata log: the offset counts metadata changes (creation + 2 topics).
        assert!(p.high_watermark >= 3, "{p:?}");
        assert_eq!(voter.log_end_offset, p.high_watermark);
        assert!(p.high_watermark >= last_offset);
        last_offset = p.high_watermark;
        if v >= 1 {
            // The leader's own fetch and caught-up times are now, as Kafka's LeaderState reports.
            assert!(voter.last_fetch_timestamp >= before && voter.last_fetch_timestamp <= now_ms());
            assert_eq!(voter.last_caught_up_timestamp, voter.last_fetch_timestamp);
        } else {
            assert_eq!((voter.last_fetch_timestamp, voter.last_caught_up_timestamp), (-1, -1));
        }
        if v >= 2 {
            assert!(voter.replica_directory_id.as_u128() > 2, "a real directory id");
            assert_eq!(r.nodes.len(), 1);
            assert_eq!(r.nodes[0].node_id.0, 1);
            let l = &r.nodes[0].listeners[0];
            assert_eq!((l.host.as_str(), l.port), ("127.0.0.1", b.addr().port()));
        } else {
            assert!(r.nodes.is_empty());
        }
    }
    // One more metadata change moves the offsets on.
    create_topic(&mut c, "t3", 1).await;
    let r = c.call(&quorum_request("__cluster_metadata", &[0]), 2).await;
    assert_eq!(r.topics[0].partitions[0].high_watermark, last_offset + 1);

    // Anything but __cluster_metadata-0: Kafka 4.4 answers UNKNOWN_TOPIC_OR_PARTITION per partition.
    let r = c.call(&quorum_request("t1", &[0]), 2).await;
    assert_eq!((r.error_code, r.error_message.as_deref(), r.nodes.len()), (0, Some(""), 0));
    let p = &r.topics[0].partitions[0];
    assert_eq!(
        (
            p.partition_index,
            p.error_code,
            p.error_message.as_deref(),
            p.leader_id.0,
            p.leader_epoch,
            p.high_watermark
        ),
        (0, 3, Some("This server does not host this topic-partition."), 0, 0, 0)
    );
    assert!(p.current_voters.is_empty());
    let r = c.call(&DescribeQuorumRequest::default(), 2).await;
    assert_eq!((r.error_code, r.topics.len()), (0, 0));
}

// ---------------------------------------------------------------------------------------------
// DescribeTopicPartitions (KIP-966)

/// A topic's (name, error, partition indexes) and the next cursor, from an answer.
type Page = (Vec<(String, i16, Vec<i32>)>, Option<(String, i32)>);

async fn describe_partitions(
    c: &mut Client,
    topics: &[&str],
    limit: i32,
    cursor: Option<(&str, i32)>,
) -> Page {
    use describe_topic_partitions_request::{Cursor, TopicRequest};
    let req = DescribeTopicPartitionsRequest::default()
        .with_topics(topics.iter().map(|t| TopicRequest::default().with_name(tn(t))).collect())
        .with_response_partition_limit(limit)
        .with_cursor(cursor.map(|(t, p)| Cursor::default().with_topic_name(tn(t)).with_partition_index(p)));
    let r = c.call(&req, 0).await;
    let topics = r
        .topics
        .iter()
        .map(|t| {
            let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            (name, t.error_code, t.partitions.iter().map(|p| p.partition_index).collect())
        })
        .collect();
    (topics, r.next_cursor.map(|c| (c.topic_name.0.to_string(), c.partition_index)))
}

fn page(topics: &[(&str, i16, &[i32])], cursor: Option<(&str, i32)>) -> Page {
    (
        topics.iter().map(|(n, e, ps)| (n.to_string(), *e, ps.to_vec())).collect(),
        cursor.map(|(t, p)| (t.to_string(), p)),
    )
}

#[tokio::test]
async fn describe_topic_partitions_pages_as_kafka() {
    use describe_topic_partitions_request::TopicRequest;
    let (_b, mut c) = broker_with_topics().await;
    // Every field of one answer, as Kafka 4.4 gives it (topic ids aside).
    let req = DescribeTopicPartitionsRequest::default()
        .with_topics(
            ["t1", "nope", "bad name!"].iter().map(|t| TopicRequest::default().with_name(tn(t))).collect(),
        )
        .with_response_partition_limit(2000);
    let r = c.call(&req, 0).await;
    assert!(r.next_cursor.is_none());
    let names: Vec<Option<&str>> = r.topics.iter().map(|t| t.name.as_ref().map(|n| n.0.as_str())).collect();
    assert_eq!(names, vec![Some("bad name!"), Some("nope"), Some("t1")], "in name order");
    for (t, error) in r.topics.iter().zip([17, 3, 0]) {
        assert_eq!((t.error_code, t.is_internal, t.topic_authorized_operations), (error, false, 3576));
        if error != 0 {
            assert!(t.topic_id.is_nil() && t.partitions.is_empty());
        }
    }
    let t1 = &r.topics[2];
    assert!(!t1.topic_id.is_nil());
    assert_eq!(t1.partitions.len(), 3);
    for (i, p) in t1.partitions.iter().enumerate() {
        assert_eq!((p.error_code, p.partition_index, p.leader_id.0, p.leader_epoch), (0, i as i32, 1, 0));
        assert_eq!((p.replica_nodes.clone(), p.isr_nodes.clone()), (vec![BrokerId(1)], vec![BrokerId(1)]));
        assert_eq!(
            (p.eligible_leader_replicas.clone(), p.last_known_elr.clone()),
            (Some(vec![]), Some(vec![]))
        );
        assert!(p.offline_replicas.is_empty());
    }

    // Paging (Kafka 4.4's answers to the same requests).
    let both = ["t1", "t2"];
    assert_eq!(
        describe_partitions(&mut c, &both, 2, None).await,
        page(&[("t1", 0, &[0, 1])], Some(("t1", 2)))
    );
    assert_eq!(
        describe_partitions(&mut c, &both, 2, Some(("t1", 2))).await,
        page(&[("t1", 0, &[2]), ("t2", 0, &[0])], Some(("t2", 1)))
    );
    // All topics; a limit used up exactly points at the next topic's start.
    assert_eq!(
        describe_partitions(&mut c, &[], 3, None).await,
        page(&[("t1", 0, &[0, 1, 2])], Some(("t2", 0)))
    );
    assert_eq!(
        describe_partitions(&mut c, &[], 2000, Some(("t2", 0))).await,
        page(&[("t2", 0, &[0, 1])], None)
    );
    // A limit below 1 counts as 1; a cursor past the end answers the topic with no partition.
    assert_eq!(
        describe_partitions(&mut c, &["t1"], 0, None).await,
        page(&[("t1", 0, &[0])], Some(("t1", 1)))
    );
    assert_eq!(
        describe_partitions(&mut c, &["t1"], 2000, Some(("t1", 7))).await,
        page(&[("t1", 0, &[])], None)
    );
    // A cursor outside the named topics, or at a negative partition: INVALID_REQUEST for each topic.
    assert_eq!(
        describe_partitions(&mut c, &["t1"], 2000, Some(("zz", 0))).await,
        page(&[("t1", 42, &[])], None)
    );
    assert_eq!(
        describe_partitions(&mut c, &["t1"], 2000, Some(("t1", -1))).await,
        page(&[("t1", 42, &[])], None)
    );
}

// ---------------------------------------------------------------------------------------------
// ListConfigResources (KIP-714, KIP-1142)

#[tokio::test]
async fn list_config_resources_lists_broker_and_topics_as_kafka() {
    let (_b, mut c) = broker_with_topics().await;
    let list = |r: ListConfigResourcesResponse| -> (i16, Vec<(i8, String)>) {
        (
            r.error_code,
            r.config_resources.iter().map(|c| (c.resource_type, c.resource_name.to_string())).collect(),
        )
    };
    // v0 lists client-metrics subscriptions only (none here; Kafka 4.4 lists them by name).
    assert_eq!(list(c.call(&ListConfigResourcesRequest::default(), 0).await), (0, vec![]));
    // v1, Kafka 4.4: groups with configs (32), client metrics (16), broker logger (8), broker (4), topics (2),
    // in that order whatever the order asked; strom has no group configs nor client-metrics subscriptions.
    let all = vec![(8, "1".to_string()), (4, "1".to_string()), (2, "t1".to_string()), (2, "t2".to_string())];
    for (types, expected) in [
        (vec![], all.clone()),
        (vec![2i8, 32, 16, 4, 8], all),
        (vec![2], vec![(2, "t1".to_string()), (2, "t2".to_string())]),
        (vec![4], vec![(4, "1".to_string())]),
        (vec![8], vec![(8, "1".to_string())]),
        (vec![16], vec![]),
        (vec![32], vec![]),
    ] {
        let r = c.call(&ListConfigResourcesRequest::default().with_resource_types(types.clone()), 1).await;
        assert_eq!(list(r), (0, expected), "{types:?}");
    }
    // An unknown type: UNSUPPORTED_VERSION (35) and nothing listed.
    let r = c.call(&ListConfigResourcesRequest::default().with_resource_types(vec![2, 99]), 1).await;
    assert_eq!(list(r), (35, vec![]));
}
