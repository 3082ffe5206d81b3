//! Group coordinator APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit, OffsetFetch, DescribeGroups, ListGroups, DeleteGroups, OffsetDelete.
//! Wire types are translated here; the state machine lives in `crate::group`.

use bytes::Bytes;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;

use super::{ApiContext, RequestInfo};
use crate::cluster::Snapshot;
use crate::coordinator_log::topic::partition_for;
use crate::group::membership::{JoinRequest, SyncRequest};
use crate::group::offsets::CommitRequest;
use crate::group::GroupError;

fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// FindCoordinator key types: groups and transactions are coordinated here.
const KEY_GROUP: i8 = 0;
const KEY_TRANSACTION: i8 = 1;
const KEY_SHARE: i8 = 2;

/// Creates `__consumer_offsets` unless it exists, before anything a group writes (Kafka creates it
/// on the first FindCoordinator for a group). A failure is logged; the write then fails with it.
pub(crate) async fn ensure_offsets_topic(ctx: &ApiContext) -> bool {
    match ctx.offsets_log.ensure_topic().await {
        Ok(_) => true,
        Err(e) => {
            tracing::error!(error = %e, "creating {} failed", crate::group::store::OFFSETS_TOPIC);
            false
        }
    }
}

/// Whether this broker coordinates `key` in the internal `topic` whose partition count should be the
/// config `configured`. As Kafka's coordinators, only keys of partitions that exist are coordinated:
/// a hand-created `__consumer_offsets` (or `__transaction_state`) with fewer partitions leaves the
/// others' keys uncoordinated (FindCoordinator: COORDINATOR_NOT_AVAILABLE, then NOT_COORDINATOR).
pub(crate) fn coordinates(ctx: &ApiContext, topic: &str, configured: &str, key: &str) -> bool {
    let partitions = i32::try_from(ctx.cluster.config.number(configured)).unwrap_or(i32::MAX);
    ctx.cluster.snapshot().get(topic).is_none_or(|t| partition_for(key, partitions) < t.partitions)
}

/// [`coordinates`] for a group.
fn coordinates_group(ctx: &ApiContext, group: &str) -> bool {
    coordinates(ctx, crate::group::store::OFFSETS_TOPIC, "offsets.topic.num.partitions", group)
}

/// [`coordinates`] for a transactional id.
pub(crate) fn coordinates_txn(ctx: &ApiContext, id: &str) -> bool {
    use crate::txn::topic_log::TRANSACTION_STATE_TOPIC;
    coordinates(ctx, TRANSACTION_STATE_TOPIC, "transaction.state.log.num.partitions", id)
}

pub async fn find_coordinator(
    ctx: &ApiContext,
    req: FindCoordinatorRequest,
    version: i16,
    listener: usize,
) -> FindCoordinatorResponse {
    // Through a listener opened at run time (not registered) no coordinator can be named: Kafka 4.4
    // answers COORDINATOR_NOT_AVAILABLE.
    let endpoint = ctx.cluster.config.registered(listener);
    let (host, port) = endpoint.unwrap_or(("", 0));
    let node = ctx.cluster.node_id();
    // Share groups (key type 2) are not served yet; any other type is malformed (Kafka:
    // INVALID_REQUEST with its default message). The group coordinator's topic is created on the
    // first FindCoordinator for a group.
    let error = match req.key_type {
        KEY_GROUP if !ensure_offsets_topic(ctx).await => Some(ResponseError::CoordinatorNotAvailable),
        KEY_GROUP | KEY_TRANSACTION => None,
        KEY_SHARE => Some(ResponseError::CoordinatorNotAvailable),
        _ => Some(ResponseError::InvalidRequest),
    }
    .or(endpoint.is_none().then_some(ResponseError::CoordinatorNotAvailable));
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|k| {
                let c = Coordinator::default().with_key(k.clone());
                match error.or_else(|| key_error(ctx, req.key_type, k)) {
                    Some(e) => {
                        let c = c.with_error_code(e.code()).with_node_id(BrokerId(-1)).with_port(-1);
                        match e {
                            ResponseError::InvalidRequest => {
                                c.with_error_message(crate::error::default_message(e).map(text))
                            }
                            _ => c,
                        }
                    }
                    None => c
                        .with_node_id(BrokerId(node))
                        .with_host(text(host.to_string()))
                        .with_port(i32::from(port)),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match error.or_else(|| key_error(ctx, req.key_type, &req.key)) {
        Some(e) => FindCoordinatorResponse::default()
            .with_error_code(e.code())
            .with_node_id(BrokerId(-1))
            .with_port(-1)
            .with_error_message(crate::error::default_message(e).filter(|_| version >= 1).map(text)),
        None => FindCoordinatorResponse::default()
            .with_node_id(BrokerId(node))
            .with_host(text(host.to_string()))
            .with_port(i32::from(port))
            // Kafka fills the message with `Errors.NONE.message()`, which is "NONE".
            .with_error_message((version >= 1).then(|| text("NONE"))),
    }
}

/// COORDINATOR_NOT_AVAILABLE for a key whose partition of the coordinator's topic does not exist.
fn key_error(ctx: &ApiContext, key_type: i8, key: &str) -> Option<ResponseError> {
    let served = match key_type {
        KEY_GROUP => coordinates_group(ctx, key),
        _ => coordinates_txn(ctx, key),
    };
    (!served).then_some(ResponseError::CoordinatorNotAvailable)
}

pub async fn join_group(
    ctx: &ApiContext,
    req: JoinGroupRequest,
    version: i16,
    info: &RequestInfo,
) -> JoinGroupResponse {
    ensure_offsets_topic(ctx).await;
    let join = JoinRequest {
        group_id: req.group_id.to_string(),
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: info.client_id.clone().unwrap_or_default(),
        client_host: info.client_host.clone(),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: Kafka uses the session timeout.
        rebalance_timeout_ms: if version >= 1 { req.rebalance_timeout_ms } else { req.session_timeout_ms },
        protocol_type: req.protocol_type.to_string(),
        protocols: req.protocols.iter().map(|p| (p.name.to_string(), p.metadata.clone())).collect(),
        require_known_member_id: version >= 4,
    };
    let resp = JoinGroupResponse::default();
    let joined = if coordinates_group(ctx, &join.group_id) {
        ctx.groups.join(join).await
    } else {
        Err(GroupError::NotCoordinator)
    };
    match joined {
        Ok(r) => {
            let members = r
                .members
                .into_iter()
                .map(|(id, instance, metadata)| {
                    JoinGroupResponseMember::default()
                        .with_member_id(text(id))
                        .with_group_instance_id(instance.map(text))
                        .with_metadata(metadata)
                })
                .collect();
            resp.with_generation_id(r.generation)
                .with_protocol_type(Some(text(r.protocol_type)))
                .with_protocol_name(Some(text(r.protocol)))
                .with_leader(text(r.leader))
                .with_member_id(text(r.member_id))
                .with_members(members)
        }
        Err(e) => {
            let member_id = match &e {
                GroupError::MemberIdRequired(id) => text(id.clone()),
                _ => req.member_id.clone(),
            };
            // Below v7 the protocol name is not nullable.
            let protocol_name = if version >= 7 { None } else { Some(StrBytes::new()) };
            resp.with_error_code(e.code())
                .with_generation_id(-1)
                .with_member_id(member_id)
                .with_protocol_type(None)
                .with_protocol_name(protocol_name)
        }
    }
}

pub async fn sync_group(ctx: &ApiContext, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    // From v5 the protocol type and name are mandatory: Kafka's KafkaApis answers
    // INCONSISTENT_GROUP_PROTOCOL before looking at the group.
    if version >= 5 && (req.protocol_type.is_none() || req.protocol_name.is_none()) {
        return SyncGroupResponse::default()
            .with_error_code(ResponseError::InconsistentGroupProtocol.code())
            .with_assignment(Bytes::new());
    }
    ensure_offsets_topic(ctx).await;
    if !coordinates_group(ctx, &req.group_id) {
        let code = ResponseError::NotCoordinator.code();
        return SyncGroupResponse::default().with_error_code(code).with_assignment(Bytes::new());
    }
    let sync = SyncRequest {
        group_id: req.group_id.to_string(),
        generation: req.generation_id,
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        protocol_type: req.protocol_type.as_ref().map(|s| s.to_string()),
        protocol: req.protocol_name.as_ref().map(|s| s.to_string()),
        assignments: req
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    match ctx.groups.sync(sync).await {
        Ok(r) => SyncGroupResponse::default()
            .with_protocol_type(Some(text(r.protocol_type)))
            .with_protocol_name(Some(text(r.protocol)))
            .with_assignment(r.assignment),
        Err(e) => SyncGroupResponse::default().with_error_code(e.code()).with_assignment(Bytes::new()),
    }
}

pub async fn heartbeat(ctx: &ApiContext, req: HeartbeatRequest, _version: i16) -> HeartbeatResponse {
    if !coordinates_group(ctx, &req.group_id) {
        return HeartbeatResponse::default().with_error_code(ResponseError::NotCoordinator.code());
    }
    let instance = req.group_instance_id.as_ref().map(|s| s.as_str());
    let r = ctx.groups.heartbeat(&req.group_id, req.generation_id, &req.member_id, instance);
    HeartbeatResponse::default().with_error_code(r.err().map_or(0, |e| e.code()))
}

pub async fn leave_group(ctx: &ApiContext, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    ensure_offsets_topic(ctx).await;
    // Kafka answers an uncoordinated group with the top-level error only (no members).
    if !coordinates_group(ctx, &req.group_id) {
        return LeaveGroupResponse::default().with_error_code(ResponseError::NotCoordinator.code());
    }
    let leaving: Vec<(String, Option<String>)> = if version >= 3 {
        req.members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|s| s.to_string())))
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let results = ctx.groups.leave(&req.group_id, &leaving);
    if version < 3 {
        let code = results.first().and_then(|r| r.as_ref().err()).map_or(0, |e| e.code());
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let members = leaving
        .iter()
        .zip(&results)
        .map(|((id, instance), r)| {
            MemberResponse::default()
                .with_member_id(text(id.clone()))
                .with_group_instance_id(instance.clone().map(text))
                .with_error_code(r.as_ref().err().map_or(0, |e| e.code()))
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

/// Error codes for the partitions a request names, topic by topic: UNKNOWN_TOPIC_OR_PARTITION where
/// the partition does not exist, else the next of `outcomes` (one per existing partition, in order).
fn partition_codes<'a>(
    snap: &Snapshot,
    topics: impl Iterator<Item = (&'a str, Vec<i32>)>,
    outcomes: Vec<Result<(), GroupError>>,
) -> Vec<Vec<(i32, i16)>> {
    let mut outcomes = outcomes.into_iter();
    topics
        .map(|(topic, partitions)| {
            partitions
                .into_iter()
                .map(|p| {
                    let code = if exists(snap, topic, p) {
                        outcomes.next().and_then(|r| r.err()).map_or(0, |e| e.code())
                    } else {
                        ResponseError::UnknownTopicOrPartition.code()
                    };
                    (p, code)
                })
                .collect()
        })
        .collect()
}

/// Whether `topic` has partition `partition`.
fn exists(snap: &Snapshot, topic: &str, partition: i32) -> bool {
    snap.get(topic).is_some_and(|t| (0..t.partitions).contains(&partition))
}

/// The topic a request names: by id from v10 on (KIP-848; `None` when no topic has that id,
/// answered UNKNOWN_TOPIC_ID as Kafka 4.4's `KafkaApis` does), by name below.
fn named_topic(snap: &Snapshot, by_id: bool, name: &str, id: uuid::Uuid) -> Option<String> {
    if by_id {
        snap.get_by_id(id).map(|t| t.name.clone())
    } else {
        Some(name.to_string())
    }
}

pub async fn offset_commit(ctx: &ApiContext, req: OffsetCommitRequest, version: i16) -> OffsetCommitResponse {
    ensure_offsets_topic(ctx).await;
    let snap = ctx.cluster.snapshot();
    let names: Vec<Option<String>> =
        req.topics.iter().map(|t| named_topic(&snap, version >= 10, &t.name, t.topic_id)).collect();
    let known = req
        .topics
        .iter()
        .zip(&names)
        .filter_map(|(t, n)| n.as_ref().map(|n| (t, n)))
        .flat_map(|(t, n)| t.partitions.iter().map(move |p| (n, p)))
        .filter(|(n, p)| exists(&snap, n, p.partition_index))
        .map(|(n, p)| {
            let metadata = p.committed_metadata.as_ref().map(|m| m.to_string());
            (n.clone(), p.partition_index, p.committed_offset, p.committed_leader_epoch, metadata)
        })
        .collect();
    let commit = CommitRequest {
        group_id: req.group_id.to_string(),
        generation: req.generation_id_or_member_epoch,
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        offsets: known,
        unknown_group_is_not_found: version >= 9,
    };
    // An uncoordinated group's existing partitions are NOT_COORDINATOR (Kafka 4.4: the
    // coordinator runtime has no such `__consumer_offsets` partition); nothing is written.
    let results = if coordinates_group(ctx, &commit.group_id) {
        ctx.groups.commit(&commit, crate::log::now_ms())
    } else {
        commit.offsets.iter().map(|_| Err(GroupError::NotCoordinator)).collect()
    };
    let named =
        req.topics.iter().zip(&names).map(|(t, n)| {
            (n.as_deref().unwrap_or(""), t.partitions.iter().map(|p| p.partition_index).collect())
        });
    let unknown_id = ResponseError::UnknownTopicId.code();
    let codes = partition_codes(&snap, named, results).into_iter().zip(req.topics.iter().zip(&names)).map(
        |(codes, (t, n))| {
            let codes = match n {
                Some(_) => codes,
                None => codes.into_iter().map(|(p, _)| (p, unknown_id)).collect(),
            };
            ((t.name.clone(), t.topic_id), codes)
        },
    );
    let topics = unknown_first(codes)
        .into_iter()
        .map(|((name, id), codes)| {
            let partitions = codes
                .into_iter()
                .map(|(p, code)| {
                    OffsetCommitResponsePartition::default().with_partition_index(p).with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default().with_name(name).with_topic_id(id).with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// The order Kafka's OffsetCommit answer has (`KafkaApis.handleOffsetCommitRequest` fills its
/// response builder with the unknown topics and partitions first, then merges the coordinator's
/// results into it): per topic in request order, the UNKNOWN_TOPIC_OR_PARTITION (v10: or
/// UNKNOWN_TOPIC_ID) partitions, then
/// every other partition appended to its topic's entry (or a new entry at the end).
fn unknown_first<T: Clone + PartialEq>(
    topics: impl Iterator<Item = (T, Vec<(i32, i16)>)>,
) -> Vec<(T, Vec<(i32, i16)>)> {
    let unknown = [ResponseError::UnknownTopicOrPartition.code(), ResponseError::UnknownTopicId.code()];
    let mut out: Vec<(T, Vec<(i32, i16)>)> = Vec::new();
    let mut later = Vec::new();
    for (name, codes) in topics {
        let (errors, others): (Vec<_>, Vec<_>) = codes.into_iter().partition(|(_, c)| unknown.contains(c));
        if errors.is_empty() {
            later.push((name, others));
        } else {
            out.push((name.clone(), errors));
            if !others.is_empty() {
                later.push((name, others));
            }
        }
    }
    for (name, others) in later {
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, partitions)) => partitions.extend(others),
            None => out.push((name, others)),
        }
    }
    out
}

/// (partition, offset, leader epoch, metadata, error code) of one fetched partition.
type FetchedRow = (i32, i64, i32, String, i16);

/// The row of a partition with no committed offset to show, answered with `code`.
fn no_offset(partition: i32, code: i16) -> FetchedRow {
    (partition, -1, -1, String::new(), code)
}

/// (topic, rows) for one group.
type FetchedTopics = Vec<(String, Vec<FetchedRow>)>;

/// One group's committed offsets. With `require_stable` (OffsetFetch v7+, KIP-447), a partition
/// with an offset pending in an ongoing transaction is UNSTABLE_OFFSET_COMMIT with offset -1, as
/// Kafka answers it.
fn fetch_group(
    ctx: &ApiContext,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> FetchedTopics {
    let list: Option<Vec<(String, i32)>> = wanted
        .map(|ts| ts.into_iter().flat_map(|(t, ps)| ps.into_iter().map(move |p| (t.clone(), p))).collect());
    let fetched = ctx.groups.fetch_offsets(group, list.as_deref());
    let mut out: FetchedTopics = Vec::new();
    for ((topic, partition), value) in fetched {
        let row = match value {
            _ if require_stable && ctx.groups.has_pending_txn_offset(group, &topic, partition) => {
                no_offset(partition, ResponseError::UnstableOffsetCommit.code())
            }
            Some(o) => (partition, o.offset, o.leader_epoch, o.metadata, 0),
            None => no_offset(partition, 0),
        };
        match out.iter_mut().find(|(t, _)| *t == topic) {
            Some((_, rows)) => rows.push(row),
            None => out.push((topic, vec![row])),
        }
    }
    out
}

pub async fn offset_fetch(ctx: &ApiContext, req: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let snap = ctx.cluster.snapshot();
        let by_id = version >= 10;
        let groups = req
            .groups
            .iter()
            .map(|g| {
                if !coordinates_group(ctx, &g.group_id) {
                    return OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id.clone())
                        .with_error_code(ResponseError::NotCoordinator.code());
                }
                // v10 names topics by id: an unknown id is answered UNKNOWN_TOPIC_ID with no
                // offset, after the known topics (Kafka 4.4 `KafkaApis.handleOffsetFetchRequest`).
                let mut unknown_ids = Vec::new();
                let wanted = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .filter_map(|t| match named_topic(&snap, by_id, &t.name, t.topic_id) {
                            Some(name) => Some((name, t.partition_indexes.clone())),
                            None => {
                                unknown_ids.push((t.topic_id, t.partition_indexes.clone()));
                                None
                            }
                        })
                        .collect()
                });
                let unknown_id = ResponseError::UnknownTopicId.code();
                let unknown = unknown_ids.into_iter().map(|(id, ps)| {
                    let rows = ps.into_iter().map(|p| no_offset(p, unknown_id)).collect();
                    (String::new(), id, rows)
                });
                let topics = fetch_group(ctx, &g.group_id, wanted, req.require_stable)
                    .into_iter()
                    .map(|(topic, rows)| {
                        let id = if by_id {
                            snap.get(&topic).map_or(uuid::Uuid::nil(), |t| t.id)
                        } else {
                            uuid::Uuid::nil()
                        };
                        (topic, id, rows)
                    })
                    .chain(unknown)
                    .map(|(topic, id, rows): (String, uuid::Uuid, Vec<FetchedRow>)| {
                        let partitions = rows
                            .into_iter()
                            .map(|(p, offset, epoch, meta, code)| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_error_code(code)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(Some(text(meta)))
                            })
                            .collect();
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(text(topic)))
                            .with_topic_id(id)
                            .with_partitions(partitions)
                    })
                    .collect();
                OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone()).with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted: Option<Vec<(String, Vec<i32>)>> = req
        .topics
        .as_ref()
        .map(|ts| ts.iter().map(|t| (t.name.to_string(), t.partition_indexes.clone())).collect());
    // An uncoordinated group (Kafka 4.4): NOT_COORDINATOR at the top from v2, and below it on each
    // requested partition with no offset.
    let fetched = if coordinates_group(ctx, &req.group_id) {
        fetch_group(ctx, &req.group_id, wanted, version >= 7 && req.require_stable)
    } else if version >= 2 {
        return OffsetFetchResponse::default().with_error_code(ResponseError::NotCoordinator.code());
    } else {
        let code = ResponseError::NotCoordinator.code();
        let rows = |ps: Vec<i32>| ps.into_iter().map(|p| no_offset(p, code)).collect();
        wanted.unwrap_or_default().into_iter().map(|(t, ps)| (t, rows(ps))).collect()
    };
    let topics = fetched
        .into_iter()
        .map(|(topic, rows)| {
            let partitions = rows
                .into_iter()
                .map(|(p, offset, epoch, meta, code)| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        .with_error_code(code)
                        .with_committed_offset(offset)
                        .with_committed_leader_epoch(epoch)
                        .with_metadata(Some(text(meta)))
                })
                .collect();
            OffsetFetchResponseTopic::default().with_name(TopicName(text(topic))).with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

pub async fn describe_groups(
    ctx: &ApiContext,
    req: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let groups = req
        .groups
        .iter()
        .map(|id| {
            if !coordinates_group(ctx, id) {
                // Kafka 4.4's error entry: no state and no authorized operations.
                let code = ResponseError::NotCoordinator.code();
                return DescribedGroup::default().with_group_id(id.clone()).with_error_code(code);
            }
            let base = DescribedGroup::default().with_group_id(id.clone());
            let base = if version >= 3 && req.include_authorized_operations {
                // READ, DESCRIBE, DELETE: what a group supports with authorization disabled.
                base.with_authorized_operations((1 << 3) | (1 << 8) | (1 << 6))
            } else {
                base
            };
            match ctx.groups.describe(id) {
                Some(d) => {
                    let members = d
                        .members
                        .into_iter()
                        .map(|(mid, instance, client_id, host, meta, assignment)| {
                            DescribedGroupMember::default()
                                .with_member_id(text(mid))
                                .with_group_instance_id(instance.map(text))
                                .with_client_id(text(client_id))
                                .with_client_host(text(host))
                                .with_member_metadata(meta)
                                .with_member_assignment(assignment)
                        })
                        .collect();
                    base.with_group_state(text(d.state.name()))
                        .with_protocol_type(text(d.protocol_type))
                        .with_protocol_data(text(d.protocol))
                        .with_members(members)
                }
                // Kafka 4.x: v6 reports an unknown group as GROUP_ID_NOT_FOUND; older versions as Dead.
                None if version >= 6 => base
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(text(format!("Group {} not found.", id.as_str()))))
                    .with_group_state(text("Dead")),
                None => base.with_group_state(text("Dead")),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

pub async fn list_groups(ctx: &ApiContext, req: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_ascii_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_ascii_lowercase()).collect();
    // Every group here is a classic group.
    let classic_wanted = types.is_empty() || types.iter().any(|t| t == "classic");
    let groups = ctx
        .groups
        .list()
        .into_iter()
        .filter(|g| states.is_empty() || states.contains(&g.state.name().to_ascii_lowercase()))
        .filter(|_| classic_wanted)
        .map(|g| {
            let listed = ListedGroup::default()
                .with_group_id(GroupId(text(g.group_id)))
                .with_protocol_type(text(g.protocol_type));
            let listed = if version >= 4 { listed.with_group_state(text(g.state.name())) } else { listed };
            if version >= 5 {
                listed.with_group_type(text("classic"))
            } else {
                listed
            }
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub async fn delete_groups(
    ctx: &ApiContext,
    req: DeleteGroupsRequest,
    _version: i16,
) -> DeleteGroupsResponse {
    ensure_offsets_topic(ctx).await;
    // Uncoordinated groups are NOT_COORDINATOR and left alone (Kafka 4.4).
    let served: Vec<bool> = req.groups_names.iter().map(|g| coordinates_group(ctx, g)).collect();
    let ids: Vec<String> =
        req.groups_names.iter().zip(&served).filter(|(_, s)| **s).map(|(g, _)| g.to_string()).collect();
    let mut deleted = ctx.groups.delete_groups(&ids).into_iter();
    let results = served
        .iter()
        .map(|s| if *s { deleted.next().unwrap_or(Ok(())) } else { Err(GroupError::NotCoordinator) })
        .zip(&req.groups_names)
        .map(|(r, id)| {
            DeletableGroupResult::default()
                .with_group_id(id.clone())
                .with_error_code(r.err().map_or(0, |e| e.code()))
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}

/// Topics named in a consumer-protocol subscription (JoinGroup metadata of protocol type "consumer").
fn subscribed_topics(metadata: &[u8]) -> Vec<String> {
    let mut buf = Bytes::copy_from_slice(metadata);
    if buf.len() < 2 {
        return Vec::new();
    }
    let version = i16::from_be_bytes([buf[0], buf[1]]);
    let _ = bytes::Buf::get_i16(&mut buf);
    ConsumerProtocolSubscription::decode(&mut buf, version.clamp(0, 3))
        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
        .unwrap_or_default()
}

pub async fn offset_delete(
    ctx: &ApiContext,
    req: OffsetDeleteRequest,
    _version: i16,
) -> OffsetDeleteResponse {
    ensure_offsets_topic(ctx).await;
    if !coordinates_group(ctx, &req.group_id) {
        return OffsetDeleteResponse::default().with_error_code(ResponseError::NotCoordinator.code());
    }
    let snap = ctx.cluster.snapshot();
    let partitions: Vec<(String, i32)> = req
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.to_string(), p.partition_index)))
        .filter(|(t, p)| exists(&snap, t, *p))
        .collect();
    match ctx.groups.delete_offsets(&req.group_id, &partitions, subscribed_topics) {
        Err(e) => OffsetDeleteResponse::default().with_error_code(e.code()),
        Ok(results) => {
            let named = req
                .topics
                .iter()
                .map(|t| (t.name.as_str(), t.partitions.iter().map(|p| p.partition_index).collect()));
            let topics = partition_codes(&snap, named, results)
                .into_iter()
                .zip(&req.topics)
                .map(|(codes, t)| {
                    let partitions = codes
                        .into_iter()
                        .map(|(p, code)| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(code)
                        })
                        .collect();
                    OffsetDeleteResponseTopic::default().with_name(t.name.clone()).with_partitions(partitions)
                })
                .collect();
            OffsetDeleteResponse::default().with_topics(topics)
        }
    }
}
