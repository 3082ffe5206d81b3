//! The group coordinator over real TCP, as Kafka's classic consumer-group clients use it:
//! FindCoordinator, the JoinGroup/SyncGroup/Heartbeat/LeaveGroup rebalance protocol (KIP-394's
//! MEMBER_ID_REQUIRED, a second member arriving while the group is stable), committed offsets
//! (OffsetCommit/OffsetFetch in both request shapes, OffsetDelete) and their survival across a
//! restart, and DescribeGroups/ListGroups/DeleteGroups.
//!
//! Every broker here runs with `group.initial.rebalance.delay.ms=0`, so nothing waits on a timer.

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::{create_topic, metadata_all, s, tn, Client, TestBroker};
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest,
    GroupId, HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest,
    OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::protocol::Encodable;
use tokio::task::JoinHandle;

// Kafka error codes used here.
const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const OFFSET_METADATA_TOO_LARGE: i16 = 12;
const ILLEGAL_GENERATION: i16 = 22;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const INVALID_GROUP_ID: i16 = 24;
const UNKNOWN_MEMBER_ID: i16 = 25;
const INVALID_SESSION_TIMEOUT: i16 = 26;
const REBALANCE_IN_PROGRESS: i16 = 27;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const MEMBER_ID_REQUIRED: i16 = 79;
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;

/// No initial rebalance delay: a join completes as soon as every known member has joined.
const NO_DELAY: &[(&str, &str)] = &[("group.initial.rebalance.delay.ms", "0")];

async fn start() -> TestBroker {
    TestBroker::start_with(NO_DELAY).await
}

/// A consumer-protocol subscription (version 0) to these topics, as JoinGroup metadata.
fn subscription(topics: &[&str]) -> Bytes {
    let sub = ConsumerProtocolSubscription::default().with_topics(topics.iter().map(|t| s(t)).collect());
    let mut buf = BytesMut::new();
    buf.put_i16(0);
    sub.encode(&mut buf, 0).expect("encode subscription");
    buf.freeze()
}

fn join_request(group: &str, member_id: &str, topics: &[&str]) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member_id))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![
            JoinGroupRequestProtocol::default().with_name(s("range")).with_metadata(subscription(topics)),
            JoinGroupRequestProtocol::default()
                .with_name(s("roundrobin"))
                .with_metadata(subscription(topics)),
        ])
}

/// JoinGroup v4+ first join: MEMBER_ID_REQUIRED with the member id to rejoin with.
async fn member_id_for(c: &mut Client, group: &str, version: i16) -> String {
    let resp = c.call(&join_request(group, "", &["t"]), version).await;
    assert_eq!(resp.error_code, MEMBER_ID_REQUIRED, "v{version}: first join of {group}");
    assert!(!resp.member_id.is_empty(), "v{version}: MEMBER_ID_REQUIRED carries a member id");
    assert_eq!(resp.generation_id, -1, "v{version}");
    resp.member_id.to_string()
}

/// Sends a join on its own task (a join waits for the other members), handing the client back.
fn spawn_join(mut c: Client, req: JoinGroupRequest, version: i16) -> JoinHandle<(Client, JoinGroupResponse)> {
    tokio::spawn(async move {
        let resp = c.call(&req, version).await;
        (c, resp)
    })
}

fn sync_request(
    group: &str,
    generation: i32,
    member: &str,
    assignments: &[(&str, &[u8])],
) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(Bytes::copy_from_slice(a))
                })
                .collect(),
        )
}

fn spawn_sync(mut c: Client, req: SyncGroupRequest, version: i16) -> JoinHandle<(Client, SyncGroupResponse)> {
    tokio::spawn(async move {
        let resp = c.call(&req, version).await;
        (c, resp)
    })
}

/// Awaits a spawned request, failing the test after 10 s.
async fn done<T>(h: JoinHandle<T>, what: &str) -> T {
    tokio::time::timeout(Duration::from_secs(10), h)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 10 s"))
        .unwrap_or_else(|e| panic!("{what}: task failed: {e}"))
}

async fn heartbeat(c: &mut Client, group: &str, generation: i32, member: &str, version: i16) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id(generation)
        .with_member_id(s(member));
    c.call(&req, version).await.error_code
}

async fn describe(c: &mut Client, group: &str, version: i16) -> DescribedGroup {
    let resp = c.call(&DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]), version).await;
    assert_eq!(resp.groups.len(), 1);
    let g = resp.groups.into_iter().next().unwrap();
    assert_eq!(g.group_id.as_str(), group);
    g
}

async fn state_of(c: &mut Client, group: &str) -> String {
    let g = describe(c, group, 5).await;
    assert_eq!(g.error_code, NONE, "describe {group}");
    g.group_state.to_string()
}

/// A stable group of `n` members on their own connections: (client, member id) with the leader
/// first, at generation 1, each member assigned `assignment-<i>`.
async fn stable_group(broker: &TestBroker, group: &str, n: usize) -> Vec<(Client, String)> {
    let mut members = Vec::new();
    for _ in 0..n {
        let mut c = broker.client().await;
        let id = member_id_for(&mut c, group, 6).await;
        members.push((c, id));
    }
    // Every id handed out is pending, so the join completes only when all have rejoined.
    let joins: Vec<_> =
        members.into_iter().map(|(c, id)| spawn_join(c, join_request(group, &id, &["t"]), 6)).collect();
    let mut joined = Vec::new();
    for j in joins {
        let (c, resp) = done(j, "rejoin").await;
        assert_eq!((resp.error_code, resp.generation_id), (NONE, 1), "{group}: {resp:?}");
        joined.push((c, resp));
    }
    let leader = joined[0].1.leader.to_string();
    joined.sort_by_key(|(_, r)| r.member_id.as_str() != leader);
    let leader_resp = &joined[0].1;
    assert_eq!(leader_resp.members.len(), n, "the leader gets every member");
    let ids: Vec<String> = joined.iter().map(|(_, r)| r.member_id.to_string()).collect();
    let assignments: Vec<(String, Vec<u8>)> =
        ids.iter().enumerate().map(|(i, id)| (id.clone(), format!("assignment-{i}").into_bytes())).collect();
    let mut syncs = Vec::new();
    for (i, (c, _)) in joined.into_iter().enumerate() {
        let a: Vec<(&str, &[u8])> = if i == 0 {
            assignments.iter().map(|(m, a)| (m.as_str(), a.as_slice())).collect()
        } else {
            Vec::new()
        };
        syncs.push(spawn_sync(c, sync_request(group, 1, &ids[i], &a), 5));
    }
    let mut out = Vec::new();
    for (i, h) in syncs.into_iter().enumerate() {
        let (c, resp) = done(h, "sync").await;
        assert_eq!(resp.error_code, NONE, "{group}: sync of member {i}");
        assert_eq!(resp.assignment.as_ref(), assignments[i].1.as_slice());
        out.push((c, ids[i].clone()));
    }
    out
}

#[tokio::test]
async fn find_coordinator_names_this_broker_at_every_version() {
    let broker = start().await;
    let mut c = broker.client().await;
    let md = metadata_all(&mut c).await;
    assert_eq!(md.brokers.len(), 1);
    let me = &md.brokers[0];
    assert_eq!(me.port, i32::from(broker.addr().port()));
    for version in 0..=3 {
        let resp = c.call(&FindCoordinatorRequest::default().with_key(s("any-group")), version).await;
        assert_eq!(resp.error_code, NONE, "v{version}: {:?}", resp.error_message);
        assert_eq!((resp.node_id, &resp.host, resp.port), (me.node_id, &me.host, me.port), "v{version}");
    }
    for version in 4..=6 {
        let req = FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g1"), s("g2"), s("g3")]);
        let resp = c.call(&req, version).await;
        let keys: Vec<&str> = resp.coordinators.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(keys, vec!["g1", "g2", "g3"], "v{version}: one answer per key");
        for k in &resp.coordinators {
            assert_eq!(k.error_code, NONE, "v{version}: {:?}", k.error_message);
            assert_eq!((k.node_id, &k.host, k.port), (me.node_id, &me.host, me.port), "v{version}");
        }
    }
    broker.stop().await;
}

#[tokio::test]
async fn first_join_needs_a_member_id_then_the_member_leads_generation_one() {
    let broker = start().await;
    let mut c = broker.client().await;
    for version in 4..=9i16 {
        let group = format!("solo-v{version}");
        let id = member_id_for(&mut c, &group, version).await;
        let resp = c.call(&join_request(&group, &id, &["t"]), version).await;
        assert_eq!(resp.error_code, NONE, "v{version}");
        assert_eq!(resp.generation_id, 1, "v{version}");
        assert_eq!(resp.member_id.as_str(), id, "v{version}");
        assert_eq!(resp.leader.as_str(), id, "v{version}: the only member leads");
        assert_eq!(resp.protocol_name.as_deref(), Some("range"), "v{version}: the first common protocol");
        if version >= 7 {
            assert_eq!(resp.protocol_type.as_deref(), Some("consumer"), "v{version}");
        }
        let members: Vec<(&str, &Bytes)> =
            resp.members.iter().map(|m| (m.member_id.as_str(), &m.metadata)).collect();
        assert_eq!(
            members,
            vec![(id.as_str(), &subscription(&["t"]))],
            "v{version}: the leader gets the members"
        );
        assert_eq!(state_of(&mut c, &group).await, "CompletingRebalance", "v{version}");

        let sync_version = version - 4; // 0..=5
        let assignment = format!("for-{id}");
        let resp = c.call(&sync_request(&group, 1, &id, &[(&id, assignment.as_bytes())]), sync_version).await;
        assert_eq!(resp.error_code, NONE, "SyncGroup v{sync_version}");
        assert_eq!(resp.assignment.as_ref(), assignment.as_bytes(), "SyncGroup v{sync_version}");
        if sync_version >= 5 {
            assert_eq!(resp.protocol_type.as_deref(), Some("consumer"));
            assert_eq!(resp.protocol_name.as_deref(), Some("range"));
        }
        assert_eq!(state_of(&mut c, &group).await, "Stable", "v{version}");

        for hb in 0..=4 {
            assert_eq!(heartbeat(&mut c, &group, 1, &id, hb).await, NONE, "Heartbeat v{hb}");
        }
        assert_eq!(heartbeat(&mut c, &group, 2, &id, 4).await, ILLEGAL_GENERATION, "wrong generation");
        assert_eq!(heartbeat(&mut c, &group, 0, &id, 4).await, ILLEGAL_GENERATION, "wrong generation");
        assert_eq!(heartbeat(&mut c, &group, 1, "nobody", 4).await, UNKNOWN_MEMBER_ID, "unknown member");
        assert_eq!(heartbeat(&mut c, "no-such-group", 1, &id, 4).await, UNKNOWN_MEMBER_ID, "unknown group");
        let resp = c.call(&sync_request(&group, 7, &id, &[]), sync_version).await;
        assert_eq!(resp.error_code, ILLEGAL_GENERATION, "SyncGroup v{sync_version} wrong generation");
        let resp = c.call(&sync_request(&group, 1, "nobody", &[]), sync_version).await;
        assert_eq!(resp.error_code, UNKNOWN_MEMBER_ID, "SyncGroup v{sync_version} unknown member");
        // A stable member's sync (e.g. a retry) gets its assignment again.
        let resp = c.call(&sync_request(&group, 1, &id, &[]), sync_version).await;
        assert_eq!((resp.error_code, resp.assignment.as_ref()), (NONE, assignment.as_bytes()));
    }

    // Before v4 a first join is accepted straight away with a new member id.
    for version in 0..=3i16 {
        let group = format!("old-v{version}");
        let resp = c.call(&join_request(&group, "", &["t"]), version).await;
        assert_eq!(resp.error_code, NONE, "v{version}");
        assert!(!resp.member_id.is_empty(), "v{version}");
        assert_eq!((resp.generation_id, &resp.leader), (1, &resp.member_id), "v{version}");
        assert_eq!(resp.members.len(), 1, "v{version}");
    }
    broker.stop().await;
}

#[tokio::test]
async fn a_second_member_rebalances_the_group_and_the_follower_waits_for_the_leaders_sync() {
    let broker = start().await;
    let group = "pair";
    let mut a = broker.client().await;
    let a_id = member_id_for(&mut a, group, 9).await;
    let resp = a.call(&join_request(group, &a_id, &["t"]), 9).await;
    assert_eq!((resp.error_code, resp.generation_id), (NONE, 1));
    let resp = a.call(&sync_request(group, 1, &a_id, &[(&a_id, b"a-gen1")]), 5).await;
    assert_eq!(resp.error_code, NONE);
    assert_eq!(state_of(&mut a, group).await, "Stable");

    // B asks for a member id: A is not disturbed yet.
    let mut b = broker.client().await;
    let b_id = member_id_for(&mut b, group, 9).await;
    assert_ne!(a_id, b_id);
    assert_eq!(heartbeat(&mut a, group, 1, &a_id, 4).await, NONE);

    // B's rejoin starts a rebalance and waits for A.
    let b_join = spawn_join(b, join_request(group, &b_id, &["t"]), 9);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!b_join.is_finished(), "B's join must wait for A to rejoin");
    assert_eq!(state_of(&mut a, group).await, "PreparingRebalance");
    assert_eq!(
        heartbeat(&mut a, group, 1, &a_id, 4).await,
        REBALANCE_IN_PROGRESS,
        "A learns of the rebalance"
    );

    // A rejoins: both get generation 2; A (the old leader) leads and gets both members.
    let resp_a = a.call(&join_request(group, &a_id, &["t"]), 9).await;
    let (b, resp_b) = done(b_join, "B's join").await;
    let mut b = b;
    assert_eq!(resp_b.error_code, NONE, "the second member must not be refused: {resp_b:?}");
    assert_eq!(resp_a.error_code, NONE);
    assert_eq!((resp_a.generation_id, resp_b.generation_id), (2, 2));
    assert_eq!((resp_a.leader.as_str(), resp_b.leader.as_str()), (a_id.as_str(), a_id.as_str()));
    let mut listed: Vec<&str> = resp_a.members.iter().map(|m| m.member_id.as_str()).collect();
    listed.sort_unstable();
    let mut both = vec![a_id.as_str(), b_id.as_str()];
    both.sort_unstable();
    assert_eq!(listed, both, "the leader gets both members");
    assert!(resp_b.members.is_empty(), "a follower gets no member list");
    assert_eq!(state_of(&mut a, group).await, "CompletingRebalance");

    // Generation 1 is over; committing in CompletingRebalance is REBALANCE_IN_PROGRESS.
    assert_eq!(heartbeat(&mut a, group, 1, &a_id, 4).await, ILLEGAL_GENERATION);
    assert_eq!(heartbeat(&mut b, group, 2, &b_id, 4).await, NONE, "heartbeats are fine while completing");
    create_topic(&mut a, "t", 2).await;
    let codes = commit(&mut a, group, 2, &a_id, &[("t", 0, 5, "m")], 8).await;
    assert_eq!(codes, vec![("t".to_string(), 0, REBALANCE_IN_PROGRESS)]);

    // The follower's sync waits for the leader's.
    let b_sync = spawn_sync(b, sync_request(group, 2, &b_id, &[]), 5);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!b_sync.is_finished(), "the follower's SyncGroup must wait for the leader");
    let resp = a.call(&sync_request(group, 2, &a_id, &[(&a_id, b"a-gen2"), (&b_id, b"b-gen2")]), 5).await;
    assert_eq!((resp.error_code, resp.assignment.as_ref()), (NONE, b"a-gen2".as_slice()));
    let (mut b, resp) = done(b_sync, "B's sync").await;
    assert_eq!((resp.error_code, resp.assignment.as_ref()), (NONE, b"b-gen2".as_slice()));

    let d = describe(&mut b, group, 5).await;
    assert_eq!(
        (d.group_state.as_str(), d.protocol_type.as_str(), d.protocol_data.as_str()),
        ("Stable", "consumer", "range")
    );
    let mut members: Vec<(String, Vec<u8>, Bytes)> = d
        .members
        .iter()
        .map(|m| (m.member_id.to_string(), m.member_assignment.to_vec(), m.member_metadata.clone()))
        .collect();
    members.sort();
    let mut expected = vec![
        (a_id.clone(), b"a-gen2".to_vec(), subscription(&["t"])),
        (b_id.clone(), b"b-gen2".to_vec(), subscription(&["t"])),
    ];
    expected.sort();
    assert_eq!(members, expected);
    for m in &d.members {
        assert_eq!(m.client_id.as_str(), "strom-tests");
        assert!(!m.client_host.is_empty());
    }

    // Members of a stable group commit with their generation; others are refused.
    assert_eq!(commit(&mut b, group, 2, &b_id, &[("t", 1, 7, "")], 8).await[0].2, NONE);
    assert_eq!(commit(&mut b, group, 1, &b_id, &[("t", 1, 8, "")], 8).await[0].2, ILLEGAL_GENERATION);
    assert_eq!(commit(&mut b, group, 2, "ghost", &[("t", 1, 8, "")], 8).await[0].2, UNKNOWN_MEMBER_ID);
    assert_eq!(commit(&mut b, group, -1, "", &[("t", 1, 8, "")], 8).await[0].2, UNKNOWN_MEMBER_ID);
    assert_eq!(fetch_offsets(&mut b, group, Some(&[("t", &[1])]), 7).await[0].2, 7);
    broker.stop().await;
}

#[tokio::test]
async fn join_group_refuses_bad_requests_with_kafkas_errors() {
    let broker = start().await;
    let mut c = broker.client().await;
    for version in [0i16, 3, 4, 9] {
        let group = format!("bad-v{version}");
        let mut req = join_request(&group, "", &["t"]);
        req.session_timeout_ms = 5999;
        assert_eq!(c.call(&req, version).await.error_code, INVALID_SESSION_TIMEOUT, "v{version}");
        req.session_timeout_ms = 1_800_001;
        assert_eq!(c.call(&req, version).await.error_code, INVALID_SESSION_TIMEOUT, "v{version}");
        let req = join_request(&group, "", &["t"]).with_protocols(vec![]);
        assert_eq!(
            c.call(&req, version).await.error_code,
            INCONSISTENT_GROUP_PROTOCOL,
            "v{version}: no protocols"
        );
        let req = join_request(&group, "", &["t"]).with_protocol_type(s(""));
        assert_eq!(
            c.call(&req, version).await.error_code,
            INCONSISTENT_GROUP_PROTOCOL,
            "v{version}: no type"
        );
        let req = join_request("", "", &["t"]);
        assert_eq!(c.call(&req, version).await.error_code, INVALID_GROUP_ID, "v{version}: empty group id");
        let resp = c.call(&join_request("never-created", "made-up", &["t"]), version).await;
        assert_eq!(resp.error_code, UNKNOWN_MEMBER_ID, "v{version}: member id for an unknown group");
    }

    // A group with members: another protocol type, or no shared protocol, is inconsistent; an
    // unknown member id is unknown.
    let _members = stable_group(&broker, "busy", 1).await;
    let other_type = join_request("busy", "", &["t"]).with_protocol_type(s("connect"));
    assert_eq!(c.call(&other_type, 9).await.error_code, INCONSISTENT_GROUP_PROTOCOL);
    let other_protocol =
        join_request("busy", "", &["t"]).with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("sticky"))
            .with_metadata(Bytes::new())]);
    assert_eq!(c.call(&other_protocol, 3).await.error_code, INCONSISTENT_GROUP_PROTOCOL);
    assert_eq!(c.call(&join_request("busy", "made-up", &["t"]), 9).await.error_code, UNKNOWN_MEMBER_ID);
    broker.stop().await;
}

#[tokio::test]
async fn leave_group_removes_members_one_at_a_time_or_in_a_batch() {
    let broker = start().await;
    let mut c = broker.client().await;

    // v0–v2: one member per request.
    for version in 0..=2i16 {
        let group = format!("leave-v{version}");
        let members = stable_group(&broker, &group, 1).await;
        let id = &members[0].1;
        let req = LeaveGroupRequest::default().with_group_id(GroupId(s(&group))).with_member_id(s(id));
        assert_eq!(c.call(&req, version).await.error_code, NONE, "v{version}");
        assert_eq!(c.call(&req, version).await.error_code, UNKNOWN_MEMBER_ID, "v{version}: left already");
        assert_eq!(state_of(&mut c, &group).await, "Empty", "v{version}");
    }

    // v3+: a batch; an unknown member gets its own UNKNOWN_MEMBER_ID, the others leave.
    for version in 3..=5i16 {
        let group = format!("batch-v{version}");
        let members = stable_group(&broker, &group, 3).await;
        let leaving = [members[0].1.as_str(), "ghost", members[2].1.as_str()];
        let identities = |ids: &[&str]| -> Vec<MemberIdentity> {
            ids.iter()
                .map(|m| {
                    let i = MemberIdentity::default().with_member_id(s(m));
                    if version >= 5 {
                        i.with_reason(Some(s("test")))
                    } else {
                        i
                    }
                })
                .collect()
        };
        let req =
            LeaveGroupRequest::default().with_group_id(GroupId(s(&group))).with_members(identities(&leaving));
        let resp = c.call(&req, version).await;
        assert_eq!(resp.error_code, NONE, "v{version}: top level");
        let got: Vec<(&str, i16)> =
            resp.members.iter().map(|m| (m.member_id.as_str(), m.error_code)).collect();
        assert_eq!(
            got,
            vec![(leaving[0], NONE), ("ghost", UNKNOWN_MEMBER_ID), (leaving[2], NONE)],
            "v{version}: one answer per member, in order"
        );
        // The one left is still a member (it must rejoin); the group has one member.
        let d = describe(&mut c, &group, 5).await;
        let left: Vec<&str> = d.members.iter().map(|m| m.member_id.as_str()).collect();
        assert_eq!(left, vec![members[1].1.as_str()], "v{version}");
        assert_eq!(d.group_state.as_str(), "PreparingRebalance", "v{version}");

        // An unknown group: every member is unknown.
        let req = LeaveGroupRequest::default()
            .with_group_id(GroupId(s("no-such-group")))
            .with_members(identities(&["x", "y"]));
        let resp = c.call(&req, version).await;
        let codes: Vec<i16> = resp.members.iter().map(|m| m.error_code).collect();
        assert_eq!(codes, vec![UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER_ID], "v{version}");
    }
    broker.stop().await;
}

/// OffsetCommit of (topic, partition, offset, metadata) rows; returns (topic, partition, error).
async fn commit(
    c: &mut Client,
    group: &str,
    generation: i32,
    member: &str,
    offsets: &[(&str, i32, i64, &str)],
    version: i16,
) -> Vec<(String, i32, i16)> {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (t, p, o, m) in offsets {
        let part = OffsetCommitRequestPartition::default()
            .with_partition_index(*p)
            .with_committed_offset(*o)
            .with_committed_leader_epoch(if version >= 6 { 0 } else { -1 })
            .with_committed_metadata(Some(s(m)));
        match topics.iter_mut().find(|x| x.name.as_str() == *t) {
            Some(x) => x.partitions.push(part),
            None => {
                topics.push(OffsetCommitRequestTopic::default().with_name(tn(t)).with_partitions(vec![part]))
            }
        }
    }
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(topics);
    let resp = c.call(&req, version).await;
    let mut rows: Vec<(String, i32, i16)> = resp
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), p.partition_index, p.error_code)))
        .collect();
    rows.sort();
    rows
}

/// (topic, partition, offset, leader epoch, metadata, error), sorted by topic and partition.
type Fetched = Vec<(String, i32, i64, i32, String, i16)>;

/// Partitions to fetch: (topic, partitions), or `None` for everything committed.
type Wanted<'a> = Option<&'a [(&'a str, &'a [i32])]>;

/// OffsetFetch of one group: the listed partitions, or everything committed (`None`).
async fn fetch_offsets(c: &mut Client, group: &str, topics: Wanted<'_>, version: i16) -> Fetched {
    let mut all = fetch_groups(c, &[(group, topics)], version).await;
    assert_eq!(all.len(), 1);
    all.pop().unwrap().1
}

/// OffsetFetch of several groups: v8+ in one request, below v8 one request per group.
async fn fetch_groups(c: &mut Client, groups: &[(&str, Wanted<'_>)], version: i16) -> Vec<(String, Fetched)> {
    let mut out = Vec::new();
    if version >= 8 {
        let req = OffsetFetchRequest::default().with_groups(
            groups
                .iter()
                .map(|(g, topics)| {
                    OffsetFetchRequestGroup::default().with_group_id(GroupId(s(g))).with_topics(topics.map(
                        |ts| {
                            ts.iter()
                                .map(|(t, ps)| {
                                    OffsetFetchRequestTopics::default()
                                        .with_name(tn(t))
                                        .with_partition_indexes(ps.to_vec())
                                })
                                .collect()
                        },
                    ))
                })
                .collect(),
        );
        let resp = c.call(&req, version).await;
        assert_eq!(resp.groups.len(), groups.len(), "v{version}: one answer per group");
        for (g, (asked, _)) in resp.groups.iter().zip(groups) {
            assert_eq!(g.group_id.as_str(), *asked, "v{version}");
            assert_eq!(g.error_code, NONE, "v{version}: group {asked}");
            let mut rows: Fetched = g
                .topics
                .iter()
                .flat_map(|t| {
                    t.partitions.iter().map(move |p| {
                        let meta =
                            p.metadata.as_ref().map(|m| m.to_string()).unwrap_or_else(|| "<null>".into());
                        (
                            t.name.to_string(),
                            p.partition_index,
                            p.committed_offset,
                            p.committed_leader_epoch,
                            meta,
                            p.error_code,
                        )
                    })
                })
                .collect();
            rows.sort();
            out.push((asked.to_string(), rows));
        }
        return out;
    }
    for (g, topics) in groups {
        let req = OffsetFetchRequest::default().with_group_id(GroupId(s(g))).with_topics(topics.map(|ts| {
            ts.iter()
                .map(|(t, ps)| {
                    OffsetFetchRequestTopic::default().with_name(tn(t)).with_partition_indexes(ps.to_vec())
                })
                .collect()
        }));
        let resp = c.call(&req, version).await;
        assert_eq!(resp.error_code, NONE, "v{version}: group {g}");
        let mut rows: Fetched = resp
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions.iter().map(move |p| {
                    let meta = p.metadata.as_ref().map(|m| m.to_string()).unwrap_or_else(|| "<null>".into());
                    (
                        t.name.to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        meta,
                        p.error_code,
                    )
                })
            })
            .collect();
        rows.sort();
        out.push((g.to_string(), rows));
    }
    out
}

fn row(t: &str, p: i32, offset: i64, epoch: i32, meta: &str) -> (String, i32, i64, i32, String, i16) {
    (t.to_string(), p, offset, epoch, meta.to_string(), NONE)
}

#[tokio::test]
async fn committed_offsets_round_trip_through_offset_fetch_in_both_shapes() {
    let broker = start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "ot", 3).await;
    create_topic(&mut c, "other", 1).await;

    for version in 2..=9i16 {
        // A "simple" group: generation -1, no member id, no rebalance protocol.
        let group = format!("simple-v{version}");
        let meta = format!("meta \u{1F600} v{version}");
        let codes = commit(
            &mut c,
            &group,
            -1,
            "",
            &[("ot", 0, 10 + i64::from(version), &meta), ("ot", 2, 99, "")],
            version,
        )
        .await;
        assert_eq!(codes, vec![("ot".into(), 0, NONE), ("ot".into(), 2, NONE)], "OffsetCommit v{version}");
        // A later commit overwrites.
        let codes =
            commit(&mut c, &group, -1, "", &[("ot", 2, 100, "second"), ("other", 0, 1, "o")], version).await;
        assert!(codes.iter().all(|(_, _, e)| *e == NONE), "OffsetCommit v{version}: {codes:?}");
    }

    for fetch_version in 1..=9i16 {
        for commit_version in 2..=9i16 {
            let group = format!("simple-v{commit_version}");
            let epoch = if commit_version >= 6 && fetch_version >= 5 { 0 } else { -1 };
            let meta = format!("meta \u{1F600} v{commit_version}");
            // Named partitions, including one never committed (-1, empty metadata).
            let rows = fetch_offsets(&mut c, &group, Some(&[("ot", &[0, 1, 2])]), fetch_version).await;
            assert_eq!(
                rows,
                vec![
                    row("ot", 0, 10 + i64::from(commit_version), epoch, &meta),
                    row("ot", 1, -1, -1, ""),
                    row("ot", 2, 100, epoch, "second"),
                ],
                "OffsetFetch v{fetch_version} of a v{commit_version} commit"
            );
            // Every committed partition (topics null), from v2 on.
            if fetch_version >= 2 {
                let rows = fetch_offsets(&mut c, &group, None, fetch_version).await;
                let got: Vec<(&str, i32, i64)> = rows.iter().map(|r| (r.0.as_str(), r.1, r.2)).collect();
                assert_eq!(
                    got,
                    vec![("ot", 0, 10 + i64::from(commit_version)), ("ot", 2, 100), ("other", 0, 1)],
                    "OffsetFetch v{fetch_version} of all partitions"
                );
            }
        }
    }

    // v8+: several groups in one request, each with its own answer; an unknown group has nothing.
    for version in 8..=9 {
        let answers = fetch_groups(
            &mut c,
            &[
                ("simple-v2", Some(&[("ot", &[0])])),
                ("simple-v9", None),
                ("nobody-here", Some(&[("ot", &[0])])),
            ],
            version,
        )
        .await;
        assert_eq!(answers[0].1, vec![row("ot", 0, 12, -1, "meta \u{1F600} v2")], "v{version}");
        assert_eq!(answers[1].1.len(), 3, "v{version}: all of simple-v9");
        assert_eq!(answers[2].1, vec![row("ot", 0, -1, -1, "")], "v{version}: unknown group");
    }
    let nothing = fetch_offsets(&mut c, "nobody-here", None, 7).await;
    assert!(nothing.is_empty(), "an unknown group has no offsets: {nothing:?}");
    broker.stop().await;
}

#[tokio::test]
async fn offset_commit_errors_are_per_partition() {
    let broker = start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "ce", 2).await;
    let big = "x".repeat(4097);
    let max = "y".repeat(4096);
    for version in 2..=9i16 {
        let group = format!("errors-v{version}");
        let codes = commit(
            &mut c,
            &group,
            -1,
            "",
            &[("ce", 0, 1, &big), ("ce", 1, 2, &max), ("ce", 5, 3, ""), ("no-such-topic", 0, 4, "")],
            version,
        )
        .await;
        assert_eq!(
            codes,
            vec![
                ("ce".into(), 0, OFFSET_METADATA_TOO_LARGE),
                ("ce".into(), 1, NONE),
                ("ce".into(), 5, UNKNOWN_TOPIC_OR_PARTITION),
                ("no-such-topic".into(), 0, UNKNOWN_TOPIC_OR_PARTITION),
            ],
            "OffsetCommit v{version}"
        );
        let rows = fetch_offsets(&mut c, &group, Some(&[("ce", &[0, 1])]), 7).await;
        assert_eq!((rows[0].2, rows[1].2), (-1, 2), "v{version}: only the valid commit is stored");
        assert_eq!(rows[1].4, max, "v{version}: 4096 bytes of metadata are kept");
    }
    // A generation for a group that does not exist (below v9, Kafka's ILLEGAL_GENERATION).
    for version in 2..=8i16 {
        let codes = commit(&mut c, "never-joined", 1, "m", &[("ce", 0, 1, "")], version).await;
        assert_eq!(codes[0].2, ILLEGAL_GENERATION, "v{version}");
    }
    broker.stop().await;
}

#[tokio::test]
async fn committed_offsets_and_groups_survive_a_restart() {
    let mut broker = start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "durable", 2).await;
    assert_eq!(commit(&mut c, "simple", -1, "", &[("durable", 0, 42, "forty-two")], 8).await[0].2, NONE);
    let members = stable_group(&broker, "managed", 1).await;
    let (mut m, id) = members.into_iter().next().unwrap();
    assert_eq!(commit(&mut m, "managed", 1, &id, &[("durable", 1, 7, "seven")], 8).await[0].2, NONE);
    drop(m);

    broker.restart().await;
    let mut c = broker.client().await;
    assert_eq!(fetch_offsets(&mut c, "simple", None, 8).await, vec![row("durable", 0, 42, 0, "forty-two")]);
    assert_eq!(
        fetch_offsets(&mut c, "managed", Some(&[("durable", &[0, 1])]), 5).await,
        vec![row("durable", 0, -1, -1, ""), row("durable", 1, 7, 0, "seven")]
    );
    // As in Kafka, the managed group comes back as it was last Stable: its member, protocol type and
    // generation (the member expires later if it does not come back).
    let d = describe(&mut c, "managed", 5).await;
    assert_eq!(
        (d.error_code, d.group_state.as_str(), d.protocol_type.as_str()),
        (NONE, "Stable", "consumer")
    );
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id.as_str(), id.as_str());
    let mut listed: Vec<String> = c
        .call(&ListGroupsRequest::default(), 3)
        .await
        .groups
        .iter()
        .map(|g| g.group_id.to_string())
        .collect();
    listed.sort();
    assert_eq!(listed, vec!["managed".to_string(), "simple".to_string()]);
    // Its old member may carry on; once it leaves (generation 2, Empty), a new member starts generation 3.
    assert_eq!(heartbeat(&mut c, "managed", 1, &id, 4).await, NONE);
    let leave = LeaveGroupRequest::default().with_group_id(GroupId(s("managed"))).with_member_id(s(&id));
    assert_eq!(c.call(&leave, 1).await.error_code, NONE);
    let new_id = member_id_for(&mut c, "managed", 9).await;
    let resp = c.call(&join_request("managed", &new_id, &["t"]), 9).await;
    assert_eq!((resp.error_code, resp.generation_id), (NONE, 3));
    broker.stop().await;
}

#[tokio::test]
async fn describe_and_list_groups_report_states_and_members() {
    let broker = start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "lt", 1).await;
    let _stable = stable_group(&broker, "g-stable", 2).await;
    // A group whose leader joined but has not synced.
    let mut p = broker.client().await;
    let pid = member_id_for(&mut p, "g-completing", 9).await;
    assert_eq!(p.call(&join_request("g-completing", &pid, &["t"]), 9).await.error_code, NONE);
    // A simple group (offsets only).
    assert_eq!(commit(&mut c, "g-empty", -1, "", &[("lt", 0, 1, "")], 8).await[0].2, NONE);

    for version in 0..=6i16 {
        let resp = c
            .call(
                &DescribeGroupsRequest::default().with_groups(vec![
                    GroupId(s("g-stable")),
                    GroupId(s("g-completing")),
                    GroupId(s("g-empty")),
                    GroupId(s("g-missing")),
                ]),
                version,
            )
            .await;
        let states: Vec<(&str, &str, i16)> =
            resp.groups.iter().map(|g| (g.group_id.as_str(), g.group_state.as_str(), g.error_code)).collect();
        let missing = if version >= 6 {
            ("g-missing", "Dead", GROUP_ID_NOT_FOUND)
        } else {
            ("g-missing", "Dead", NONE)
        };
        assert_eq!(
            states,
            vec![
                ("g-stable", "Stable", NONE),
                ("g-completing", "CompletingRebalance", NONE),
                ("g-empty", "Empty", NONE),
                missing
            ],
            "DescribeGroups v{version}"
        );
        let stable = &resp.groups[0];
        assert_eq!((stable.protocol_type.as_str(), stable.protocol_data.as_str()), ("consumer", "range"));
        assert_eq!(stable.members.len(), 2, "v{version}");
        assert_eq!(resp.groups[1].members.len(), 1, "v{version}");
        assert!(resp.groups[3].members.is_empty());
    }

    let list = |states: &[&str], version: i16| {
        ListGroupsRequest::default().with_states_filter(if version >= 4 {
            states.iter().map(|x| s(x)).collect()
        } else {
            vec![]
        })
    };
    for version in 0..=5i16 {
        let resp = c.call(&list(&[], version), version).await;
        assert_eq!(resp.error_code, NONE, "v{version}");
        let mut got: Vec<(String, String, String)> = resp
            .groups
            .iter()
            .map(|g| (g.group_id.to_string(), g.protocol_type.to_string(), g.group_state.to_string()))
            .collect();
        got.sort();
        let state = |st: &str| if version >= 4 { st.to_string() } else { String::new() };
        assert_eq!(
            got,
            vec![
                ("g-completing".into(), "consumer".into(), state("CompletingRebalance")),
                ("g-empty".into(), "".into(), state("Empty")),
                ("g-stable".into(), "consumer".into(), state("Stable")),
            ],
            "ListGroups v{version}"
        );
        if version >= 4 {
            let resp = c.call(&list(&["Stable", "Empty"], version), version).await;
            let mut ids: Vec<&str> = resp.groups.iter().map(|g| g.group_id.as_str()).collect();
            ids.sort_unstable();
            assert_eq!(ids, vec!["g-empty", "g-stable"], "ListGroups v{version} filtered by state");
            let resp = c.call(&list(&["PreparingRebalance"], version), version).await;
            assert!(resp.groups.is_empty(), "v{version}");
        }
        if version >= 5 {
            for g in &resp.groups {
                assert_eq!(g.group_type.as_str(), "classic");
            }
            let req = ListGroupsRequest::default().with_types_filter(vec![s("consumer")]);
            assert!(c.call(&req, 5).await.groups.is_empty(), "no KIP-848 groups");
            let req = ListGroupsRequest::default().with_types_filter(vec![s("classic")]);
            assert_eq!(c.call(&req, 5).await.groups.len(), 3);
        }
    }
    broker.stop().await;
}

#[tokio::test]
async fn delete_groups_only_deletes_empty_groups() {
    let broker = start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "dg", 1).await;
    let members = stable_group(&broker, "active", 1).await;
    for version in 0..=2i16 {
        let empty = format!("idle-{version}");
        assert_eq!(commit(&mut c, &empty, -1, "", &[("dg", 0, 3, "")], 8).await[0].2, NONE);
        let req = DeleteGroupsRequest::default().with_groups_names(vec![
            GroupId(s(&empty)),
            GroupId(s("active")),
            GroupId(s("unknown")),
        ]);
        let resp = c.call(&req, version).await;
        let got: Vec<(&str, i16)> =
            resp.results.iter().map(|r| (r.group_id.as_str(), r.error_code)).collect();
        assert_eq!(
            got,
            vec![(empty.as_str(), NONE), ("active", NON_EMPTY_GROUP), ("unknown", GROUP_ID_NOT_FOUND)],
            "DeleteGroups v{version}"
        );
        // The deleted group's offsets went with it.
        assert_eq!(
            fetch_offsets(&mut c, &empty, Some(&[("dg", &[0])]), 8).await,
            vec![row("dg", 0, -1, -1, "")]
        );
        assert_eq!(describe(&mut c, &empty, 6).await.error_code, GROUP_ID_NOT_FOUND);
    }
    // Once its last member leaves, the group is empty and can be deleted.
    let (mut m, id) = members.into_iter().next().unwrap();
    let leave = LeaveGroupRequest::default().with_group_id(GroupId(s("active"))).with_member_id(s(&id));
    assert_eq!(m.call(&leave, 2).await.error_code, NONE);
    let resp = c.call(&DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("active"))]), 2).await;
    assert_eq!(resp.results[0].error_code, NONE);
    broker.stop().await;
}

async fn offset_delete(
    c: &mut Client,
    group: &str,
    topics: &[(&str, &[i32])],
) -> (i16, Vec<(String, i32, i16)>) {
    let req = OffsetDeleteRequest::default().with_group_id(GroupId(s(group))).with_topics(
        topics
            .iter()
            .map(|(t, ps)| {
                OffsetDeleteRequestTopic::default().with_name(tn(t)).with_partitions(
                    ps.iter()
                        .map(|p| OffsetDeleteRequestPartition::default().with_partition_index(*p))
                        .collect(),
                )
            })
            .collect(),
    );
    let resp = c.call(&req, 0).await;
    let rows = resp
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), p.partition_index, p.error_code)))
        .collect();
    (resp.error_code, rows)
}

#[tokio::test]
async fn offset_delete_removes_offsets_except_for_topics_an_active_group_consumes() {
    let broker = start().await;
    let mut c = broker.client().await;
    create_topic(&mut c, "t", 2).await; // stable_group's members subscribe to "t"
    create_topic(&mut c, "u", 1).await;
    let commits = [("t", 0, 1, ""), ("t", 1, 2, ""), ("u", 0, 3, "")];

    // An empty (simple) group: anything may go.
    assert!(commit(&mut c, "plain", -1, "", &commits, 8).await.iter().all(|r| r.2 == NONE));
    let (top, rows) = offset_delete(&mut c, "plain", &[("t", &[0]), ("u", &[0]), ("missing", &[0])]).await;
    assert_eq!(top, NONE);
    assert_eq!(
        rows,
        vec![("t".into(), 0, NONE), ("u".into(), 0, NONE), ("missing".into(), 0, UNKNOWN_TOPIC_OR_PARTITION)]
    );
    let got: Vec<(String, i32, i64)> =
        fetch_offsets(&mut c, "plain", None, 8).await.into_iter().map(|r| (r.0, r.1, r.2)).collect();
    assert_eq!(got, vec![("t".into(), 1, 2)]);

    // An active consumer group keeps the offsets of topics its members subscribe to.
    let members = stable_group(&broker, "consuming", 1).await;
    let (mut m, id) = members.into_iter().next().unwrap();
    assert!(commit(&mut m, "consuming", 1, &id, &commits, 8).await.iter().all(|r| r.2 == NONE));
    let (top, rows) = offset_delete(&mut c, "consuming", &[("t", &[0, 1]), ("u", &[0])]).await;
    assert_eq!(top, NONE);
    assert_eq!(
        rows,
        vec![
            ("t".into(), 0, GROUP_SUBSCRIBED_TO_TOPIC),
            ("t".into(), 1, GROUP_SUBSCRIBED_TO_TOPIC),
            ("u".into(), 0, NONE)
        ]
    );
    let got: Vec<(String, i32, i64)> =
        fetch_offsets(&mut c, "consuming", None, 8).await.into_iter().map(|r| (r.0, r.1, r.2)).collect();
    assert_eq!(got, vec![("t".into(), 0, 1), ("t".into(), 1, 2)]);

    // An unknown group.
    let (top, _) = offset_delete(&mut c, "nobody", &[("t", &[0])]).await;
    assert_eq!(top, GROUP_ID_NOT_FOUND);
    broker.stop().await;
}

#[tokio::test]
async fn a_member_that_stops_heartbeating_is_removed_after_its_session_timeout() {
    let broker = start().await;
    let group = "expiry";
    let short = |c: &str| {
        let mut r = join_request(group, c, &["t"]);
        r.session_timeout_ms = 6000; // the broker's minimum
        r
    };
    let mut a = broker.client().await;
    let mut b = broker.client().await;
    let a_id = member_id_for(&mut a, group, 9).await;
    let b_id = member_id_for(&mut b, group, 9).await;
    let ja = spawn_join(a, short(&a_id), 9);
    let jb = spawn_join(b, short(&b_id), 9);
    let (mut a, ra) = done(ja, "A's join").await;
    let (b, rb) = done(jb, "B's join").await;
    assert_eq!((ra.generation_id, rb.generation_id), (1, 1));
    // Member ids are not tied to connections: A's connection syncs for the leader, B's for the
    // follower. After that only A's id is heard from.
    let leader = ra.leader.to_string();
    let follower = if leader == a_id { b_id.clone() } else { a_id.clone() };
    let f_sync = spawn_sync(b, sync_request(group, 1, &follower, &[]), 5);
    let resp = a.call(&sync_request(group, 1, &leader, &[(&a_id, b"a"), (&b_id, b"b")]), 5).await;
    assert_eq!(resp.error_code, NONE);
    let (_silent, resp) = done(f_sync, "follower sync").await;
    assert_eq!(resp.error_code, NONE);

    // A heartbeats every 500 ms; B never does. Within B's 6 s session (plus slack) A is told
    // to rejoin, and rejoining alone gives generation 2 without B.
    let started = std::time::Instant::now();
    let mut code = NONE;
    while started.elapsed() < Duration::from_secs(9) {
        code = heartbeat(&mut a, group, 1, &a_id, 4).await;
        if code != NONE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let elapsed = started.elapsed();
    assert_eq!(code, REBALANCE_IN_PROGRESS, "after {elapsed:?}");
    assert!(elapsed >= Duration::from_secs(4), "B expired after only {elapsed:?} of its 6 s session");
    let resp = a.call(&short(&a_id), 9).await;
    assert_eq!((resp.error_code, resp.generation_id, resp.leader.as_str()), (NONE, 2, a_id.as_str()));
    let ids: Vec<&str> = resp.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(ids, vec![a_id.as_str()], "B was removed");
    assert_eq!(heartbeat(&mut a, group, 2, &b_id, 4).await, UNKNOWN_MEMBER_ID);
    broker.stop().await;
}

#[tokio::test]
async fn a_session_ends_at_its_deadline_not_at_the_next_scan() {
    // Kafka's heartbeat timers fire at the deadline: a static member that stops without LeaveGroup
    // leaves the group empty (and deletable) right when session.timeout.ms has passed.
    let broker = TestBroker::start_with(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("group.min.session.timeout.ms", "1000"),
    ])
    .await;
    let mut c = broker.client().await;
    let group = "deadline";
    let mut req = join_request(group, "", &["t"]);
    req.session_timeout_ms = 1000;
    req.group_instance_id = Some(s("instance-1"));
    let joined = c.call(&req, 9).await;
    assert_eq!((joined.error_code, joined.generation_id), (NONE, 1));
    let member = joined.member_id.to_string();
    let mut sync = sync_request(group, 1, &member, &[(&member, b"a")]);
    sync.group_instance_id = Some(s("instance-1"));
    assert_eq!(c.call(&sync, 5).await.error_code, NONE);
    let heard = std::time::Instant::now();
    let delete = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(group))]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(c.call(&delete, 2).await.results[0].error_code, NON_EMPTY_GROUP, "inside the session");
    tokio::time::sleep(Duration::from_millis(1001).saturating_sub(heard.elapsed())).await;
    assert_eq!(c.call(&delete, 2).await.results[0].error_code, NONE, "right after the deadline");
    broker.stop().await;
}
