//! The classic group state machine: JoinGroup, SyncGroup, Heartbeat, LeaveGroup and the timers,
//! following Kafka's GroupCoordinator.
//!
//! - Empty --join--> PreparingRebalance (after `group.initial.rebalance.delay.ms` for a new group,
//!   extended as more members arrive, up to the rebalance timeout).
//! - PreparingRebalance --all known members rejoined, or the rebalance timeout--> CompletingRebalance
//!   (members that did not rejoin are removed; the generation is bumped; the leader gets the members).
//! - CompletingRebalance --leader's SyncGroup--> Stable (everyone gets its assignment).
//! - Stable / CompletingRebalance --join with new metadata, leave, session expiry--> PreparingRebalance.
//! - no members left after a rebalance --> Empty.
//!
//! A member id handed out with MEMBER_ID_REQUIRED is "pending": the rebalance waits for it (until its
//! session timeout), so a second member joining during a rebalance is never told UNKNOWN_MEMBER_ID.

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::model::{Group, GroupState, JoinResult, Member};
use super::{GroupCoordinator, GroupError};

/// A JoinGroup request in domain terms.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub group_id: String,
    /// Empty for a first join.
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a first join gets MEMBER_ID_REQUIRED with its new id.
    pub require_known_member_id: bool,
}

/// A SyncGroup request in domain terms.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub group_id: String,
    pub generation: i32,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    /// Only from the leader: member id → assignment.
    pub assignments: Vec<(String, Bytes)>,
}

/// What SyncGroup returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncResult {
    pub protocol_type: String,
    pub protocol: String,
    pub assignment: Bytes,
}

enum Step<T> {
    Done(Result<T, GroupError>),
    Wait(oneshot::Receiver<Result<T, GroupError>>),
}

async fn finish<T>(step: Step<T>) -> Result<T, GroupError> {
    match step {
        Step::Done(r) => r,
        // A dropped sender means the member was removed or replaced while waiting.
        Step::Wait(rx) => rx.await.unwrap_or(Err(GroupError::UnknownMemberId)),
    }
}

fn new_member_id(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4())
}

fn ms(n: i64) -> Duration {
    Duration::from_millis(n.max(0) as u64)
}

impl GroupCoordinator {
    pub async fn join(&self, req: JoinRequest) -> Result<JoinResult, GroupError> {
        let step = self.join_locked(req, Instant::now(), crate::log::now_ms());
        finish(step).await
    }

    fn join_locked(&self, req: JoinRequest, now: Instant, now_ms: i64) -> Step<JoinResult> {
        if req.group_id.is_empty() {
            return Step::Done(Err(GroupError::InvalidGroupId));
        }
        if req.session_timeout_ms < self.config.min_session_timeout_ms
            || req.session_timeout_ms > self.config.max_session_timeout_ms
        {
            return Step::Done(Err(GroupError::InvalidSessionTimeout));
        }
        if req.protocol_type.is_empty() || req.protocols.is_empty() {
            return Step::Done(Err(GroupError::InconsistentGroupProtocol));
        }
        let mut groups = self.groups.lock();
        if !groups.contains_key(&req.group_id) {
            if !req.member_id.is_empty() {
                return Step::Done(Err(GroupError::UnknownMemberId));
            }
            groups.insert(req.group_id.clone(), Group::new(&req.group_id, now_ms));
        }
        let Some(group) = groups.get_mut(&req.group_id) else {
            return Step::Done(Err(GroupError::CoordinatorNotAvailable));
        };
        if group.state == GroupState::Dead {
            return Step::Done(Err(GroupError::CoordinatorNotAvailable));
        }
        if !group.supports(&req.protocol_type, &req.protocols) {
            return Step::Done(Err(GroupError::InconsistentGroupProtocol));
        }
        let (tx, rx) = oneshot::channel();
        let outcome = if req.member_id.is_empty() {
            self.join_unknown_member(group, &req, tx, now)
        } else {
            self.join_known_member(group, &req, tx, now)
        };
        match outcome {
            Err(e) => Step::Done(Err(e)),
            Ok(Some(immediate)) => Step::Done(Ok(immediate)),
            Ok(None) => {
                self.check_join_complete(group, now, now_ms);
                Step::Wait(rx)
            }
        }
    }

    fn join_unknown_member(
        &self,
        group: &mut Group,
        req: &JoinRequest,
        tx: oneshot::Sender<Result<JoinResult, GroupError>>,
        now: Instant,
    ) -> Result<Option<JoinResult>, GroupError> {
        if let Some(instance) = &req.instance_id {
            if let Some(old_id) = group.static_members.get(instance).cloned() {
                if group.members.contains_key(&old_id) {
                    return self.replace_static_member(group, instance, &old_id, req, tx, now);
                }
            }
            // A new static member.
            let id = new_member_id(instance);
            group.static_members.insert(instance.clone(), id.clone());
            self.add_member(group, id, req, tx, now);
            self.prepare_rebalance_if_needed(group, now);
            return Ok(None);
        }
        let id = new_member_id(if req.client_id.is_empty() { "member" } else { &req.client_id });
        if req.require_known_member_id {
            let expiry = now + ms(i64::from(req.session_timeout_ms));
            group.pending.insert(id.clone(), expiry);
            return Err(GroupError::MemberIdRequired(id));
        }
        self.add_member(group, id, req, tx, now);
        self.prepare_rebalance_if_needed(group, now);
        Ok(None)
    }

    /// A known static member rejoining with no member id (it restarted): a new member id replaces
    /// and fences the old one, keeping its assignment (Kafka's `GroupMetadataManager.
    /// updateStaticMemberThenRebalanceOrCompleteJoin`). A Stable group whose protocol stays the same
    /// does not rebalance: the metadata is stored and the member gets the current generation at once,
    /// with the leader as it was (so a rejoining leader does not assign); otherwise, and while the
    /// generation is being completed, the group rebalances.
    fn replace_static_member(
        &self,
        group: &mut Group,
        instance: &str,
        old_id: &str,
        req: &JoinRequest,
        tx: oneshot::Sender<Result<JoinResult, GroupError>>,
        now: Instant,
    ) -> Result<Option<JoinResult>, GroupError> {
        let Some(mut member) = group.members.remove(old_id) else {
            return Err(GroupError::UnknownMemberId);
        };
        let current_leader = group.leader.clone().unwrap_or_default();
        let id = new_member_id(instance);
        // The old member's waiting calls learn it was fenced.
        if let Some(old) = member.awaiting_join.take() {
            let _ = old.send(Err(GroupError::FencedInstanceId));
        }
        if let Some(old) = member.awaiting_sync.take() {
            let _ = old.send(Err(GroupError::FencedInstanceId));
        }
        let undo = (
            member.protocols.clone(),
            member.session_timeout_ms,
            member.rebalance_timeout_ms,
            group.leader.clone(),
        );
        member.id = id.clone();
        member.protocols = req.protocols.clone();
        member.session_timeout_ms = req.session_timeout_ms;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.last_seen = now;
        if group.leader.as_deref() == Some(old_id) {
            group.leader = Some(id.clone());
        }
        group.static_members.insert(instance.to_string(), id.clone());
        group.members.insert(id.clone(), member);
        let stays = group.state == GroupState::Stable && group.select_protocol() == group.protocol;
        if stays {
            let record = group.metadata_record();
            if let Err(e) = self.persist(&[record]) {
                // Put the old member back as it was.
                if let Some(mut m) = group.members.remove(&id) {
                    (m.protocols, m.session_timeout_ms, m.rebalance_timeout_ms) = (undo.0, undo.1, undo.2);
                    m.id = old_id.to_string();
                    group.members.insert(old_id.to_string(), m);
                }
                group.leader = undo.3;
                group.static_members.insert(instance.to_string(), old_id.to_string());
                return Err(e);
            }
            return Ok(Some(JoinResult {
                generation: group.generation,
                protocol_type: group.protocol_type.clone().unwrap_or_default(),
                protocol: group.protocol.clone().unwrap_or_default(),
                leader: current_leader,
                member_id: id,
                members: Vec::new(),
            }));
        }
        if let Some(m) = group.members.get_mut(&id) {
            m.awaiting_join = Some(tx);
        }
        if group.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(group, now, false);
        }
        Ok(None)
    }

    fn join_known_member(
        &self,
        group: &mut Group,
        req: &JoinRequest,
        tx: oneshot::Sender<Result<JoinResult, GroupError>>,
        now: Instant,
    ) -> Result<Option<JoinResult>, GroupError> {
        if let Some(instance) = &req.instance_id {
            if group.static_members.get(instance).is_some_and(|id| *id != req.member_id) {
                return Err(GroupError::FencedInstanceId);
            }
        }
        if group.pending.remove(&req.member_id).is_some() {
            self.add_member(group, req.member_id.clone(), req, tx, now);
            self.prepare_rebalance_if_needed(group, now);
            return Ok(None);
        }
        let state = group.state;
        let is_leader = group.leader.as_deref() == Some(req.member_id.as_str());
        let (generation, protocol_type, protocol, leader) = (
            group.generation,
            group.protocol_type.clone().unwrap_or_default(),
            group.protocol.clone().unwrap_or_default(),
            group.leader.clone().unwrap_or_default(),
        );
        let Some(member) = group.members.get_mut(&req.member_id) else {
            return Err(GroupError::UnknownMemberId);
        };
        member.last_seen = now;
        let unchanged = member.protocols == req.protocols;
        member.session_timeout_ms = req.session_timeout_ms;
        member.rebalance_timeout_ms = req.rebalance_timeout_ms;
        member.protocols = req.protocols.clone();
        let immediate = |members| JoinResult {
            generation,
            protocol_type: protocol_type.clone(),
            protocol: protocol.clone(),
            leader: leader.clone(),
            member_id: req.member_id.clone(),
            members,
        };
        match state {
            GroupState::PreparingRebalance => {
                member.awaiting_join = Some(tx);
                Ok(None)
            }
            // A follower re-sending an unchanged join while the generation is being completed or is
            // stable just gets the current generation back.
            GroupState::CompletingRebalance if unchanged => {
                let members = if is_leader { leader_members(group) } else { Vec::new() };
                Ok(Some(immediate(members)))
            }
            GroupState::Stable if unchanged && !is_leader => Ok(Some(immediate(Vec::new()))),
            _ => {
                member.awaiting_join = Some(tx);
                self.prepare_rebalance(group, now, false);
                Ok(None)
            }
        }
    }

    fn add_member(
        &self,
        group: &mut Group,
        id: String,
        req: &JoinRequest,
        tx: oneshot::Sender<Result<JoinResult, GroupError>>,
        now: Instant,
    ) {
        if group.protocol_type.is_none() || group.members.is_empty() {
            group.protocol_type = Some(req.protocol_type.clone());
        }
        group.new_member_ids.insert(id.clone());
        group.members.insert(
            id.clone(),
            Member {
                id,
                instance_id: req.instance_id.clone(),
                client_id: req.client_id.clone(),
                client_host: req.client_host.clone(),
                session_timeout_ms: req.session_timeout_ms,
                rebalance_timeout_ms: req.rebalance_timeout_ms,
                protocols: req.protocols.clone(),
                assignment: Bytes::new(),
                awaiting_join: Some(tx),
                awaiting_sync: None,
                last_seen: now,
            },
        );
        if group.state == GroupState::PreparingRebalance && group.initial_delay_until.is_some() {
            // Kafka's initial delayed join: each new member extends the wait, up to the rebalance timeout.
            let delay = ms(self.config.initial_rebalance_delay_ms);
            let cap = group.rebalance_started.map(|s| s + ms(i64::from(max_rebalance_timeout(group))));
            let extended = now + delay;
            group.initial_delay_until = Some(cap.map_or(extended, |c| extended.min(c)));
        }
    }

    fn prepare_rebalance_if_needed(&self, group: &mut Group, now: Instant) {
        match group.state {
            GroupState::Empty => self.prepare_rebalance(group, now, true),
            GroupState::Stable | GroupState::CompletingRebalance => self.prepare_rebalance(group, now, false),
            GroupState::PreparingRebalance | GroupState::Dead => {}
        }
    }

    /// Enters PreparingRebalance. Members waiting for a sync are told REBALANCE_IN_PROGRESS.
    pub(crate) fn prepare_rebalance(&self, group: &mut Group, now: Instant, initial: bool) {
        if group.state == GroupState::CompletingRebalance {
            for m in group.members.values_mut() {
                if let Some(tx) = m.awaiting_sync.take() {
                    let _ = tx.send(Err(GroupError::RebalanceInProgress));
                }
                m.assignment = Bytes::new();
            }
        }
        let delay = self.config.initial_rebalance_delay_ms;
        group.state = GroupState::PreparingRebalance;
        group.rebalance_started = Some(now);
        group.initial_delay_until = (initial && delay > 0).then(|| now + ms(delay));
        group.rebalance_deadline = Some(now + ms(i64::from(max_rebalance_timeout(group))));
        tracing::debug!(group = %group.id, initial, "preparing rebalance");
    }

    /// Completes the join phase if everyone has rejoined, or if the rebalance timed out.
    pub(crate) fn check_join_complete(&self, group: &mut Group, now: Instant, now_ms: i64) {
        if group.state != GroupState::PreparingRebalance {
            return;
        }
        if group.initial_delay_until.is_some_and(|t| now < t) {
            return;
        }
        let all_joined =
            group.pending.is_empty() && group.members.values().all(|m| m.awaiting_join.is_some());
        let timed_out = group.rebalance_deadline.is_some_and(|d| now >= d);
        if all_joined || timed_out {
            self.complete_join(group, now, now_ms);
        }
    }

    fn complete_join(&self, group: &mut Group, now: Instant, now_ms: i64) {
        let gone: Vec<String> =
            group.members.values().filter(|m| m.awaiting_join.is_none()).map(|m| m.id.clone()).collect();
        for id in gone {
            remove_member(group, &id);
        }
        group.pending.clear();
        group.new_member_ids.clear();
        group.rebalance_deadline = None;
        group.initial_delay_until = None;
        group.rebalance_started = None;
        group.generation += 1;
        if group.members.is_empty() {
            group.state = GroupState::Empty;
            group.protocol = None;
            group.leader = None;
            group.empty_since_ms = Some(now_ms);
            let record = group.metadata_record();
            let _ = self.persist(&[record]);
            tracing::debug!(group = %group.id, generation = group.generation, "group is empty");
            return;
        }
        group.protocol = group.select_protocol();
        if group.leader.as_ref().is_none_or(|l| !group.members.contains_key(l)) {
            group.leader = group.members.keys().next().cloned();
        }
        group.state = GroupState::CompletingRebalance;
        group.empty_since_ms = None;
        let all = leader_members(group);
        let (generation, protocol_type, protocol, leader) = (
            group.generation,
            group.protocol_type.clone().unwrap_or_default(),
            group.protocol.clone().unwrap_or_default(),
            group.leader.clone().unwrap_or_default(),
        );
        for m in group.members.values_mut() {
            m.last_seen = now;
            if let Some(tx) = m.awaiting_join.take() {
                let members = if m.id == leader { all.clone() } else { Vec::new() };
                let _ = tx.send(Ok(JoinResult {
                    generation,
                    protocol_type: protocol_type.clone(),
                    protocol: protocol.clone(),
                    leader: leader.clone(),
                    member_id: m.id.clone(),
                    members,
                }));
            }
        }
        tracing::debug!(group = %group.id, generation, members = group.members.len(), "join phase complete");
    }

    pub async fn sync(&self, req: SyncRequest) -> Result<SyncResult, GroupError> {
        let step = self.sync_locked(req, Instant::now());
        let assignment = finish(step).await?;
        Ok(assignment)
    }

    fn sync_locked(&self, req: SyncRequest, now: Instant) -> Step<SyncResult> {
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(&req.group_id) else {
            return Step::Done(Err(GroupError::UnknownMemberId));
        };
        if let Err(e) = validate_member(group, &req.member_id, req.instance_id.as_deref()) {
            return Step::Done(Err(e));
        }
        if req.generation != group.generation {
            return Step::Done(Err(GroupError::IllegalGeneration));
        }
        let type_mismatch =
            req.protocol_type.as_ref().is_some_and(|t| Some(t) != group.protocol_type.as_ref());
        let protocol_mismatch = req.protocol.as_ref().is_some_and(|p| Some(p) != group.protocol.as_ref());
        if type_mismatch || protocol_mismatch {
            return Step::Done(Err(GroupError::InconsistentGroupProtocol));
        }
        let protocol_type = group.protocol_type.clone().unwrap_or_default();
        let protocol = group.protocol.clone().unwrap_or_default();
        let result = |assignment| SyncResult {
            protocol_type: protocol_type.clone(),
            protocol: protocol.clone(),
            assignment,
        };
        match group.state {
            GroupState::Empty | GroupState::Dead => Step::Done(Err(GroupError::UnknownMemberId)),
            GroupState::PreparingRebalance => Step::Done(Err(GroupError::RebalanceInProgress)),
            GroupState::Stable => {
                let assignment = group.members.get_mut(&req.member_id).map(|m| {
                    m.last_seen = now;
                    m.assignment.clone()
                });
                Step::Done(Ok(result(assignment.unwrap_or_default())))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = group.members.get_mut(&req.member_id) {
                    m.last_seen = now;
                    m.awaiting_sync = Some(tx);
                }
                if group.leader.as_deref() == Some(req.member_id.as_str()) {
                    for m in group.members.values_mut() {
                        m.assignment = req
                            .assignments
                            .iter()
                            .find(|(id, _)| *id == m.id)
                            .map(|(_, a)| a.clone())
                            .unwrap_or_default();
                    }
                    let record = group.metadata_record();
                    if let Err(e) = self.persist(&[record]) {
                        return Step::Done(Err(e));
                    }
                    group.state = GroupState::Stable;
                    for m in group.members.values_mut() {
                        if let Some(tx) = m.awaiting_sync.take() {
                            let _ = tx.send(Ok(result(m.assignment.clone())));
                        }
                    }
                    tracing::debug!(group = %group.id, generation = group.generation, "group is stable");
                }
                Step::Wait(rx)
            }
        }
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        let now = Instant::now();
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else { return Err(GroupError::UnknownMemberId) };
        validate_member(group, member_id, instance_id)?;
        if generation != group.generation {
            return Err(GroupError::IllegalGeneration);
        }
        if let Some(m) = group.members.get_mut(member_id) {
            m.last_seen = now;
        }
        match group.state {
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
            GroupState::PreparingRebalance => Err(GroupError::RebalanceInProgress),
            GroupState::CompletingRebalance | GroupState::Stable => Ok(()),
        }
    }

    /// Removes members (LeaveGroup). One result per (member id, instance id), in order.
    pub fn leave(&self, group_id: &str, leaving: &[(String, Option<String>)]) -> Vec<Result<(), GroupError>> {
        let (now, now_ms) = (Instant::now(), crate::log::now_ms());
        let mut groups = self.groups.lock();
        let Some(group) = groups.get_mut(group_id) else {
            return leaving.iter().map(|_| Err(GroupError::UnknownMemberId)).collect();
        };
        let mut results = Vec::with_capacity(leaving.len());
        let mut removed = false;
        for (member_id, instance_id) in leaving {
            let id = match (member_id.as_str(), instance_id) {
                ("", Some(i)) => group.static_members.get(i).cloned(),
                (m, Some(i)) if group.static_members.get(i).is_some_and(|id| id != m) => {
                    results.push(Err(GroupError::FencedInstanceId));
                    continue;
                }
                (m, _) => Some(m.to_string()),
            };
            match id.filter(|id| group.members.contains_key(id) || group.pending.contains_key(id)) {
                Some(id) => {
                    group.pending.remove(&id);
                    remove_member(group, &id);
                    removed = true;
                    results.push(Ok(()));
                }
                None => results.push(Err(GroupError::UnknownMemberId)),
            }
        }
        if removed {
            self.after_member_removed(group, now, now_ms);
        }
        results
    }

    fn after_member_removed(&self, group: &mut Group, now: Instant, now_ms: i64) {
        match group.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.prepare_rebalance(group, now, false);
                self.check_join_complete(group, now, now_ms);
            }
            GroupState::PreparingRebalance => self.check_join_complete(group, now, now_ms),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Runs the group timers due at `now` (sessions, pending members, rebalances) and expires
    /// offsets past their retention at `now_ms` (ms since the epoch). Returns when the next timer
    /// falls due, so the background task sleeps until then and sessions expire at their deadline,
    /// as Kafka's timers make them.
    pub fn tick(&self, now: Instant, now_ms: i64) -> Option<Instant> {
        let mut groups = self.groups.lock();
        let next = self.run_timers(&mut groups, now, now_ms);
        self.expire_offsets(&mut groups, now_ms);
        next
    }

    /// The group timers due at `now`: pending members, member sessions, rebalance completion.
    /// Returns the earliest timer still to come ([`Group::next_deadline`]).
    pub(crate) fn run_timers(
        &self,
        groups: &mut std::collections::HashMap<String, Group>,
        now: Instant,
        now_ms: i64,
    ) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for group in groups.values_mut() {
            group.pending.retain(|_, expiry| *expiry > now);
            match group.state {
                GroupState::PreparingRebalance | GroupState::CompletingRebalance | GroupState::Stable => {
                    // Kafka's heartbeat expiry runs in every live state: a member parked in JoinGroup or
                    // SyncGroup is kept alive; any other member (one that died and will not rejoin) is
                    // removed once its session timeout passes, which also lets a pending rebalance
                    // complete without waiting for the rebalance timeout.
                    let expired: Vec<String> = group
                        .members
                        .values()
                        .filter(|m| m.awaiting_join.is_none() && m.awaiting_sync.is_none())
                        .filter(|m| m.session_deadline() <= now)
                        .map(|m| m.id.clone())
                        .collect();
                    if expired.is_empty() {
                        if group.state == GroupState::PreparingRebalance {
                            self.check_join_complete(group, now, now_ms);
                        }
                    } else {
                        for id in &expired {
                            tracing::info!(group = %group.id, member = %id, "member session expired");
                            remove_member(group, id);
                        }
                        self.after_member_removed(group, now, now_ms);
                    }
                }
                GroupState::Empty | GroupState::Dead => {}
            }
            next = match (next, group.next_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        next
    }
}

/// Checks that `member_id` is a member, and not a fenced static instance.
fn validate_member(group: &Group, member_id: &str, instance_id: Option<&str>) -> Result<(), GroupError> {
    if let Some(i) = instance_id {
        if group.static_members.get(i).is_some_and(|id| id != member_id) {
            return Err(GroupError::FencedInstanceId);
        }
    }
    if !group.members.contains_key(member_id) {
        return Err(GroupError::UnknownMemberId);
    }
    Ok(())
}

fn remove_member(group: &mut Group, id: &str) {
    if let Some(m) = group.members.remove(id) {
        if let Some(i) = &m.instance_id {
            if group.static_members.get(i).is_some_and(|mid| mid == id) {
                group.static_members.remove(i);
            }
        }
        if let Some(tx) = m.awaiting_join {
            let _ = tx.send(Err(GroupError::UnknownMemberId));
        }
        if let Some(tx) = m.awaiting_sync {
            let _ = tx.send(Err(GroupError::UnknownMemberId));
        }
    }
    group.new_member_ids.remove(id);
}

fn max_rebalance_timeout(group: &Group) -> i32 {
    group.members.values().map(|m| m.rebalance_timeout_ms).max().unwrap_or(0).max(0)
}

/// The member list the leader receives: id, instance id, metadata for the chosen protocol.
fn leader_members(group: &Group) -> Vec<(String, Option<String>, Bytes)> {
    let protocol = group.protocol.clone().unwrap_or_default();
    group.members.values().map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata_for(&protocol))).collect()
}
