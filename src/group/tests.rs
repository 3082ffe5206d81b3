//! State-machine tests with a paused clock and an in-memory log.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::membership::{JoinRequest, SyncRequest};
use super::model::GroupState;
use super::offsets::CommitRequest;
use super::store::MemoryGroupLog;
use super::*;

fn coordinator(initial_delay_ms: i64) -> Arc<GroupCoordinator> {
    coordinator_on(Arc::new(MemoryGroupLog::default()), initial_delay_ms)
}

fn coordinator_on(log: Arc<MemoryGroupLog>, initial_delay_ms: i64) -> Arc<GroupCoordinator> {
    let config =
        CoordinatorConfig { initial_rebalance_delay_ms: initial_delay_ms, ..CoordinatorConfig::default() };
    Arc::new(GroupCoordinator::open(log, config, 0).unwrap())
}

fn join_req(member_id: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        group_id: "g".into(),
        member_id: member_id.into(),
        instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        protocol_type: "consumer".into(),
        protocols: protocols.iter().map(|p| (p.to_string(), Bytes::from(format!("meta-{p}")))).collect(),
        require_known_member_id: true,
    }
}

/// First join of a v4+ client: MEMBER_ID_REQUIRED, then the real join (spawned: it may wait).
async fn new_member(
    c: &Arc<GroupCoordinator>,
) -> (String, tokio::task::JoinHandle<Result<model::JoinResult, GroupError>>) {
    let id = match c.join(join_req("", &["range"])).await {
        Err(GroupError::MemberIdRequired(id)) => id,
        other => panic!("expected MEMBER_ID_REQUIRED, got {other:?}"),
    };
    let c2 = c.clone();
    let req = join_req(&id, &["range"]);
    (id, tokio::spawn(async move { c2.join(req).await }))
}

fn sync_req(member: &str, generation: i32, assignments: Vec<(String, Bytes)>) -> SyncRequest {
    SyncRequest {
        group_id: "g".into(),
        generation,
        member_id: member.into(),
        instance_id: None,
        protocol_type: Some("consumer".into()),
        protocol: Some("range".into()),
        assignments,
    }
}

fn state(c: &GroupCoordinator) -> GroupState {
    c.describe("g").unwrap().state
}

async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn single_member_joins_syncs_and_heartbeats() {
    let c = coordinator(0);
    let (id, join) = new_member(&c).await;
    let r = join.await.unwrap().unwrap();
    assert_eq!((r.generation, r.leader.as_str(), r.protocol.as_str()), (1, id.as_str(), "range"));
    assert_eq!(r.members.len(), 1, "the leader gets the member list");
    assert_eq!(state(&c), GroupState::CompletingRebalance);
    let s = c.sync(sync_req(&id, 1, vec![(id.clone(), Bytes::from_static(b"A"))])).await.unwrap();
    assert_eq!(s.assignment, Bytes::from_static(b"A"));
    assert_eq!(state(&c), GroupState::Stable);
    assert_eq!(c.heartbeat("g", 1, &id, None), Ok(()));
    assert_eq!(c.heartbeat("g", 0, &id, None), Err(GroupError::IllegalGeneration));
    assert_eq!(c.heartbeat("g", 1, "nobody", None), Err(GroupError::UnknownMemberId));
}

#[tokio::test(start_paused = true)]
async fn a_second_member_triggers_a_rebalance_and_both_get_the_new_generation() {
    let c = coordinator(0);
    let (a, ja) = new_member(&c).await;
    ja.await.unwrap().unwrap();
    c.sync(sync_req(&a, 1, vec![(a.clone(), Bytes::from_static(b"all"))])).await.unwrap();

    let (b, jb) = new_member(&c).await;
    settle().await;
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert_eq!(c.heartbeat("g", 1, &a, None), Err(GroupError::RebalanceInProgress));
    // A rejoins; now everyone has joined and the generation completes.
    let c2 = c.clone();
    let rejoin = join_req(&a, &["range"]);
    let ra = tokio::spawn(async move { c2.join(rejoin).await });
    let (ra, rb) = (ra.await.unwrap().unwrap(), jb.await.unwrap().unwrap());
    assert_eq!((ra.generation, rb.generation), (2, 2));
    assert_eq!(ra.leader, a);
    assert_eq!((ra.members.len(), rb.members.len()), (2, 0));
    // The follower's sync waits for the leader's.
    let c3 = c.clone();
    let b2 = b.clone();
    let follower = tokio::spawn(async move { c3.sync(sync_req(&b2, 2, vec![])).await });
    settle().await;
    let leader = c
        .sync(sync_req(
            &a,
            2,
            vec![(a.clone(), Bytes::from_static(b"p0")), (b.clone(), Bytes::from_static(b"p1"))],
        ))
        .await
        .unwrap();
    assert_eq!(leader.assignment, Bytes::from_static(b"p0"));
    assert_eq!(follower.await.unwrap().unwrap().assignment, Bytes::from_static(b"p1"));
    assert_eq!(state(&c), GroupState::Stable);
}

#[tokio::test(start_paused = true)]
async fn a_silent_member_is_expired_after_its_session_timeout() {
    let c = coordinator(0);
    let (a, ja) = new_member(&c).await;
    ja.await.unwrap().unwrap();
    c.sync(sync_req(&a, 1, vec![])).await.unwrap();
    tokio::time::advance(Duration::from_millis(9_000)).await;
    c.tick(Instant::now(), 9_000);
    assert_eq!(state(&c), GroupState::Stable);
    tokio::time::advance(Duration::from_millis(1_500)).await;
    c.tick(Instant::now(), 10_500);
    assert_eq!(state(&c), GroupState::Empty, "the only member expired, the group is empty");
    assert_eq!(c.heartbeat("g", 1, &a, None), Err(GroupError::UnknownMemberId));
}

#[tokio::test(start_paused = true)]
async fn leaving_triggers_an_immediate_rebalance_for_the_others() {
    let c = coordinator(0);
    let (a, ja) = new_member(&c).await;
    let (b, jb) = new_member(&c).await;
    let (ra, _rb) = (ja.await.unwrap().unwrap(), jb.await.unwrap().unwrap());
    let c2 = c.clone();
    let b2 = b.clone();
    let follower = tokio::spawn(async move { c2.sync(sync_req(&b2, ra.generation, vec![])).await });
    settle().await;
    c.sync(sync_req(&a, ra.generation, vec![])).await.unwrap();
    follower.await.unwrap().unwrap();
    assert_eq!(c.leave("g", &[(b.clone(), None)]), vec![Ok(())]);
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    assert_eq!(c.leave("g", &[(b, None)]), vec![Err(GroupError::UnknownMemberId)]);
    let r = c.join(join_req(&a, &["range"])).await.unwrap();
    assert_eq!(r.generation, ra.generation + 1);
}

#[tokio::test(start_paused = true)]
async fn initial_rebalance_delay_waits_for_more_members() {
    let c = coordinator(3000);
    let (_a, ja) = new_member(&c).await;
    let (_b, jb) = new_member(&c).await;
    settle().await;
    c.tick(Instant::now(), 0);
    assert!(!ja.is_finished(), "the first join waits for the initial delay");
    tokio::time::advance(Duration::from_millis(3_100)).await;
    c.tick(Instant::now(), 3_100);
    let (ra, rb) = (ja.await.unwrap().unwrap(), jb.await.unwrap().unwrap());
    assert_eq!((ra.generation, rb.generation), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn protocol_errors_match_kafka() {
    let c = coordinator(0);
    let (a, ja) = new_member(&c).await;
    ja.await.unwrap().unwrap();
    let mut other = join_req("", &["roundrobin"]);
    other.require_known_member_id = false;
    assert_eq!(c.join(other).await.unwrap_err(), GroupError::InconsistentGroupProtocol);
    let mut empty = join_req("", &[]);
    empty.protocols.clear();
    assert_eq!(c.join(empty).await.unwrap_err(), GroupError::InconsistentGroupProtocol);
    let mut short = join_req("", &["range"]);
    short.session_timeout_ms = 10;
    assert_eq!(c.join(short).await.unwrap_err(), GroupError::InvalidSessionTimeout);
    assert_eq!(c.join(join_req("ghost", &["range"])).await.unwrap_err(), GroupError::UnknownMemberId);
    assert_eq!(c.sync(sync_req(&a, 7, vec![])).await.unwrap_err(), GroupError::IllegalGeneration);
}

#[tokio::test(start_paused = true)]
async fn static_member_rejoining_fences_its_old_id() {
    let c = coordinator(0);
    let mut req = join_req("", &["range"]);
    req.instance_id = Some("inst-1".into());
    let first = c.join(req.clone()).await.unwrap();
    c.sync(sync_req(&first.member_id, first.generation, vec![])).await.unwrap();
    let c2 = c.clone();
    let second = tokio::spawn(async move { c2.join(req).await });
    let second = second.await.unwrap().unwrap();
    assert_ne!(second.member_id, first.member_id);
    assert_eq!(
        c.heartbeat("g", second.generation, &first.member_id, Some("inst-1")),
        Err(GroupError::FencedInstanceId)
    );
}

#[tokio::test(start_paused = true)]
async fn a_restarted_static_member_gets_its_assignment_back_without_a_rebalance() {
    let c = coordinator(0);
    let join_static =
        |instance: &str| JoinRequest { instance_id: Some(instance.into()), ..join_req("", &["range"]) };
    // "a" forms the group alone; "b" joins and "a" rejoins: generation 2, "a" leads.
    let first = c.join(join_static("a")).await.unwrap();
    c.sync(sync_req(&first.member_id, first.generation, vec![])).await.unwrap();
    let cb = c.clone();
    let jb = tokio::spawn(async move { cb.join(join_static("b")).await });
    settle().await;
    let ca = c.clone();
    let rejoin = JoinRequest { member_id: first.member_id.clone(), ..join_static("a") };
    let ja = tokio::spawn(async move { ca.join(rejoin).await });
    let (leader, follower) = (ja.await.unwrap().unwrap(), jb.await.unwrap().unwrap());
    assert_eq!((leader.generation, leader.leader.as_str()), (2, first.member_id.as_str()));
    let assignments = vec![
        (leader.member_id.clone(), Bytes::from_static(b"L")),
        (follower.member_id.clone(), Bytes::from_static(b"F")),
    ];
    let c2 = c.clone();
    let fsync = sync_req(&follower.member_id, follower.generation, vec![]);
    let fsync = tokio::spawn(async move { c2.sync(fsync).await });
    settle().await;
    c.sync(sync_req(&leader.member_id, leader.generation, assignments)).await.unwrap();
    fsync.await.unwrap().unwrap();
    assert_eq!(state(&c), GroupState::Stable);
    // Both restart (no LeaveGroup) and rejoin with their instance ids: same generation, no rebalance,
    // the leader as it was (Kafka 4.4), the old ids fenced, the assignments kept.
    for (old, assignment) in [(&follower, "F"), (&leader, "L")] {
        let members = c.describe("g").unwrap().members;
        let instance = members.iter().find(|m| m.0 == old.member_id).and_then(|m| m.1.clone()).unwrap();
        // At once: a rebalance would park this join (and fail the test at the timeout).
        let rejoined = tokio::time::timeout(Duration::from_secs(1), c.join(join_static(&instance))).await;
        let rejoined = rejoined.expect("answered without a rebalance").unwrap();
        assert_eq!(
            (rejoined.generation, rejoined.leader.as_str(), rejoined.members.len()),
            (old.generation, leader.member_id.as_str(), 0)
        );
        assert_ne!(rejoined.member_id, old.member_id);
        assert_eq!(state(&c), GroupState::Stable, "no rebalance");
        assert_eq!(
            c.heartbeat("g", old.generation, &old.member_id, Some(&instance)),
            Err(GroupError::FencedInstanceId)
        );
        let synced = c.sync(sync_req(&rejoined.member_id, rejoined.generation, vec![])).await.unwrap();
        assert_eq!(synced.assignment, Bytes::from(assignment));
    }
}

#[tokio::test(start_paused = true)]
async fn offsets_commit_fetch_and_survive_a_restart() {
    let log = Arc::new(MemoryGroupLog::default());
    let c = coordinator_on(log.clone(), 0);
    let commit = CommitRequest {
        group_id: "simple".into(),
        generation: -1,
        member_id: String::new(),
        instance_id: None,
        offsets: vec![("t".into(), 0, 42, 0, Some("meta".into())), ("t".into(), 1, 7, -1, None)],
        unknown_group_is_not_found: false,
    };
    assert_eq!(c.commit(&commit, 1000), vec![Ok(()), Ok(())]);
    let big =
        CommitRequest { offsets: vec![("t".into(), 2, 1, -1, Some("x".repeat(5000)))], ..commit.clone() };
    assert_eq!(c.commit(&big, 1000), vec![Err(GroupError::OffsetMetadataTooLarge)]);
    drop(c);
    let c = coordinator_on(log, 0);
    let got = c.fetch_offsets("simple", Some(&[("t".into(), 0), ("t".into(), 5)]));
    assert_eq!(got[0].1.as_ref().map(|o| (o.offset, o.metadata.as_str())), Some((42, "meta")));
    assert!(got[1].1.is_none());
    assert_eq!(c.fetch_offsets("simple", None).len(), 2);
    // Commits from members of another generation are refused.
    let stale = CommitRequest { group_id: "nope".into(), generation: 3, member_id: "m".into(), ..commit };
    assert_eq!(c.commit(&stale, 1000)[0], Err(GroupError::IllegalGeneration));
}

#[tokio::test(start_paused = true)]
async fn empty_groups_expire_with_their_offsets_and_can_be_deleted() {
    let c = coordinator(0);
    let commit = CommitRequest {
        group_id: "old".into(),
        generation: -1,
        member_id: String::new(),
        instance_id: None,
        offsets: vec![("t".into(), 0, 1, -1, None)],
        unknown_group_is_not_found: false,
    };
    c.commit(&commit, 0);
    c.commit(&CommitRequest { group_id: "keep".into(), ..commit.clone() }, 0);
    assert_eq!(
        c.delete_groups(&["keep".into(), "missing".into()]),
        vec![Ok(()), Err(GroupError::GroupIdNotFound)]
    );
    let retention = CoordinatorConfig::default().offsets_retention_ms;
    c.tick(Instant::now(), retention - 1);
    assert!(c.describe("old").is_some());
    c.tick(Instant::now(), retention + 1);
    assert!(c.describe("old").is_none(), "offsets of an empty group expire after offsets.retention.minutes");
}

#[tokio::test(start_paused = true)]
async fn a_stable_group_survives_a_coordinator_restart() {
    let log = Arc::new(MemoryGroupLog::default());
    let c = coordinator_on(log.clone(), 0);
    let (a, ja) = new_member(&c).await;
    let r = ja.await.unwrap().unwrap();
    c.sync(sync_req(&a, r.generation, vec![(a.clone(), Bytes::from_static(b"A"))])).await.unwrap();
    drop(c);
    let c = coordinator_on(log, 0);
    assert_eq!(state(&c), GroupState::Stable);
    assert_eq!(c.heartbeat("g", r.generation, &a, None), Ok(()), "the member carries on after the restart");
    let s = c.sync(sync_req(&a, r.generation, vec![])).await.unwrap();
    assert_eq!(s.assignment, Bytes::from_static(b"A"));
    // A member that does not come back expires after its session timeout.
    tokio::time::advance(Duration::from_millis(10_500)).await;
    c.tick(Instant::now(), 10_500);
    assert_eq!(state(&c), GroupState::Empty);
}

fn txn_commit(group: &str, producer_id: i64, offset: i64) -> super::txn_offsets::TxnCommitRequest {
    super::txn_offsets::TxnCommitRequest {
        group_id: group.into(),
        producer_id,
        producer_epoch: 0,
        generation: -1,
        member_id: String::new(),
        instance_id: None,
        offsets: vec![("t".into(), 0, offset, -1, None)],
    }
}

fn committed(c: &GroupCoordinator, group: &str) -> Option<i64> {
    c.fetch_offsets(group, Some(&[("t".into(), 0)]))[0].1.as_ref().map(|o| o.offset)
}

#[tokio::test(start_paused = true)]
async fn transactional_offsets_are_visible_only_after_commit() {
    let log = Arc::new(MemoryGroupLog::default());
    let c = coordinator_on(log.clone(), 0);
    assert_eq!(c.txn_commit(&txn_commit("g", 7, 10), 0), vec![Ok(())]);
    assert_eq!(c.txn_commit(&txn_commit("g", 8, 99), 0), vec![Ok(())]);
    assert_eq!(committed(&c, "g"), None, "pending offsets are not visible");
    assert!(c.has_pending_txn_offset("g", "t", 0));
    // Producer 8 aborts: its offset is dropped; producer 7 commits: its offset becomes visible.
    c.complete_txn(8, 0, None, false).unwrap();
    assert_eq!(committed(&c, "g"), None);
    c.complete_txn(7, 0, None, true).unwrap();
    assert_eq!(committed(&c, "g"), Some(10));
    assert!(!c.has_pending_txn_offset("g", "t", 0));
    // A second marker for the same producer changes nothing.
    c.complete_txn(7, 0, None, false).unwrap();
    assert_eq!(committed(&c, "g"), Some(10));
    // Pending offsets survive a restart (replayed and compacted), then commit.
    assert_eq!(c.txn_commit(&txn_commit("g", 7, 20), 0), vec![Ok(())]);
    drop(c);
    let c = coordinator_on(log.clone(), 0);
    assert_eq!(committed(&c, "g"), Some(10));
    assert!(c.has_pending_txn_offset("g", "t", 0));
    drop(c);
    let c = coordinator_on(log, 0);
    c.complete_txn(7, 0, None, true).unwrap();
    assert_eq!(committed(&c, "g"), Some(20));
}

#[tokio::test(start_paused = true)]
async fn transactional_offset_commits_check_the_member_as_kafka_does() {
    let c = coordinator(0);
    // An unknown group with a generation: ILLEGAL_GENERATION; without one, a simple group is made.
    let with_gen = super::txn_offsets::TxnCommitRequest {
        generation: 1,
        member_id: "m".into(),
        ..txn_commit("x", 1, 1)
    };
    assert_eq!(c.txn_commit(&with_gen, 0), vec![Err(GroupError::IllegalGeneration)]);
    assert_eq!(c.txn_commit(&txn_commit("x", 1, 1), 0), vec![Ok(())]);
    // A live group: the member and generation must be current.
    let (a, ja) = new_member(&c).await;
    let r = ja.await.unwrap().unwrap();
    let member = |gen: i32, id: &str| super::txn_offsets::TxnCommitRequest {
        generation: gen,
        member_id: id.into(),
        ..txn_commit("g", 2, 5)
    };
    assert_eq!(c.txn_commit(&member(r.generation, "other"), 0), vec![Err(GroupError::UnknownMemberId)]);
    assert_eq!(c.txn_commit(&member(r.generation + 1, &a), 0), vec![Err(GroupError::IllegalGeneration)]);
    assert_eq!(c.txn_commit(&member(r.generation, &a), 0), vec![Ok(())]);
    // No member information at all is accepted for transactional commits.
    assert_eq!(c.txn_commit(&txn_commit("g", 3, 6), 0), vec![Ok(())]);
}

/// A member that died (no heartbeat, no rejoin) while a rebalance is pending is removed after its
/// session timeout, as Kafka does, so the rebalance completes long before the rebalance timeout
/// (Kafka Streams restarted after a SIGKILL waits on exactly this).
#[tokio::test(start_paused = true)]
async fn a_dead_member_expires_during_a_pending_rebalance() {
    let c = coordinator(0);
    let (a, ja) = new_member(&c).await;
    ja.await.unwrap().unwrap();
    c.sync(sync_req(&a, 1, vec![(a.clone(), Bytes::from_static(b"all"))])).await.unwrap();
    // A new member joins; the old one never heartbeats or rejoins again.
    let (b, jb) = new_member(&c).await;
    settle().await;
    assert_eq!(state(&c), GroupState::PreparingRebalance);
    // Past a's 10 s session timeout, far before the 30 s rebalance timeout.
    tokio::time::advance(Duration::from_millis(10_500)).await;
    c.tick(Instant::now(), 10_500);
    let rb = tokio::time::timeout(Duration::from_secs(1), jb).await.expect("join answered").unwrap().unwrap();
    assert_eq!((rb.generation, rb.leader.as_str(), rb.members.len()), (2, b.as_str(), 1));
    assert!(c.describe("g").unwrap().members.iter().all(|m| m.0 != a), "the dead member is gone");
}

#[tokio::test(start_paused = true)]
async fn a_transactions_commit_keeps_an_offset_recorded_after_its_own() {
    let log = Arc::new(MemoryGroupLog::default());
    let c = coordinator_on(log.clone(), 0);
    let plain = CommitRequest {
        group_id: "g".into(),
        generation: -1,
        member_id: String::new(),
        instance_id: None,
        offsets: vec![("t".into(), 0, 7, -1, None)],
        unknown_group_is_not_found: false,
    };
    assert_eq!(c.txn_commit(&txn_commit("g", 1, 5), 0), vec![Ok(())]);
    assert_eq!(c.commit(&plain, 0), vec![Ok(())]);
    assert_eq!(c.txn_commit(&txn_commit("g", 2, 9), 0), vec![Ok(())]);
    assert_eq!(c.txn_commit(&txn_commit("g", 3, 11), 0), vec![Ok(())]);
    assert_eq!(c.txn_commit(&txn_commit("g", 4, 12), 0), vec![Ok(())]);
    // The order survives the group log's compaction and a restart.
    c.compact().unwrap();
    drop(c);
    let c = coordinator_on(log, 0);
    assert_eq!(committed(&c, "g"), Some(7));
    c.complete_txn(1, 0, None, true).unwrap();
    assert_eq!(committed(&c, "g"), Some(7), "the plain commit was recorded after producer 1's offset");
    c.complete_txn(2, 0, None, true).unwrap();
    assert_eq!(committed(&c, "g"), Some(9), "producer 2's offset was recorded after the plain commit");
    c.complete_txn(4, 0, None, true).unwrap();
    c.complete_txn(3, 0, None, true).unwrap();
    assert_eq!(committed(&c, "g"), Some(12), "the later record wins whatever order the commits come in");
}
