//! The protocol layer: decodes a request frame with kafka-protocol, gates it on the version table,
//! dispatches it to the handler of its API family and encodes the response frame.
//!
//! What Kafka does with bad requests, we do: an unknown API, an unserved version (other than
//! ApiVersions) or an undecodable request closes that connection with one log line; every other
//! connection keeps being served.

#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod acls;
pub mod chunked;
pub mod cluster;
pub mod configs;
pub mod describe_topic_partitions;
pub mod features;
pub mod fetch;
pub mod fetch_session;
pub mod groups;
pub mod log_dirs;
pub mod metadata;
pub mod offsets;
pub mod partitions;
pub mod produce;
pub mod producer_id;
pub mod quorum;
pub mod reassignments;
pub mod topics;
pub mod txn;
pub mod txn_markers;
pub mod versions;

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, DescribeTransactionsRequest, EndTxnRequest,
    ListTransactionsRequest, TxnOffsetCommitRequest, WriteTxnMarkersRequest,
};
use kafka_protocol::messages::{
    AlterConfigsRequest, ApiKey, ApiVersionsRequest, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteGroupsRequest, DeleteRecordsRequest, DeleteTopicsRequest, DescribeClusterRequest,
    DescribeConfigsRequest, DescribeGroupsRequest, FetchRequest, FindCoordinatorRequest, HeartbeatRequest,
    IncrementalAlterConfigsRequest, InitProducerIdRequest, JoinGroupRequest, LeaveGroupRequest,
    ListGroupsRequest, ListOffsetsRequest, MetadataRequest, OffsetCommitRequest, OffsetDeleteRequest,
    OffsetFetchRequest, OffsetForLeaderEpochRequest, ProduceRequest, RequestHeader, ResponseHeader,
    SyncGroupRequest,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterReplicaLogDirsRequest, DescribeLogDirsRequest,
    DescribeQuorumRequest, DescribeTopicPartitionsRequest, ElectLeadersRequest, ListConfigResourcesRequest,
    ListPartitionReassignmentsRequest, UpdateFeaturesRequest,
};
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::cluster::Cluster;

/// Everything a handler may reach: the components that own the broker's state.
pub struct ApiContext {
    pub cluster: Arc<Cluster>,
    pub groups: Arc<crate::group::GroupCoordinator>,
    pub fetch_sessions: fetch_session::FetchSessions,
    pub producer_ids: Arc<crate::txn::ProducerIdManager>,
    pub txn: Arc<crate::txn::TransactionCoordinator>,
    /// The group coordinator's log, `__consumer_offsets`: created by FindCoordinator and before
    /// group writes, from async handlers (the coordinator itself cannot wait for it).
    pub offsets_log: Arc<crate::group::store::TopicGroupLog>,
}

/// What the connection should do after a request.
#[derive(Debug)]
pub enum Reply {
    /// Write this frame (size prefix included).
    Frame(Bytes),
    /// Write these chunks, in order, as one frame (size prefix included in the first).
    Chunks(Vec<Bytes>),
    /// Send nothing (e.g. produce with acks=0) and read the next request.
    Nothing,
    /// Close the connection; the reason is logged once.
    Close(String),
}

/// Header fields of the request being handled, for logs and tracing.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<String>,
    /// The peer's address, as Kafka reports a member's client host (`/127.0.0.1`).
    pub client_host: String,
    /// Index in `Config::listeners` of the listener the connection came through: clients are given
    /// that listener's advertised address, as Kafka answers with the request's listener.
    pub listener: usize,
}

/// Reads api key, version and correlation id without decoding the rest.
pub fn peek_info(frame: &[u8]) -> Option<RequestInfo> {
    let key = i16::from_be_bytes([*frame.first()?, *frame.get(1)?]);
    let version = i16::from_be_bytes([*frame.get(2)?, *frame.get(3)?]);
    let corr = i32::from_be_bytes([*frame.get(4)?, *frame.get(5)?, *frame.get(6)?, *frame.get(7)?]);
    Some(RequestInfo { api_key: key, api_version: version, correlation_id: corr, ..RequestInfo::default() })
}

/// Encodes a response frame: size, header of the right version, body.
pub fn encode_response<R: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<Bytes, String> {
    let header_version = key.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    header.encode(&mut buf, header_version).map_err(|e| format!("encoding response header: {e}"))?;
    body.encode(&mut buf, version).map_err(|e| format!("encoding {key:?} v{version} response: {e}"))?;
    let size = i32::try_from(buf.len() - 4).map_err(|_| "response too large".to_string())?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// Encodes a response frame as chunks, keeping `shared` record sets by reference (see [`chunked`]).
pub fn encode_response_chunks<R: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
    shared: Vec<Bytes>,
) -> Result<Vec<Bytes>, String> {
    let header_version = key.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header.compute_size(header_version).and_then(|h| Ok(h + body.compute_size(version)?));
    let size = size.map_err(|e| format!("sizing {key:?} v{version} response: {e}"))?;
    let size = i32::try_from(size).map_err(|_| "response too large".to_string())?;
    let mut buf = chunked::ChunkedBuf::new(shared);
    buf.put_i32(size);
    header.encode(&mut buf, header_version).map_err(|e| format!("encoding response header: {e}"))?;
    body.encode(&mut buf, version).map_err(|e| format!("encoding {key:?} v{version} response: {e}"))?;
    Ok(buf.into_chunks())
}

fn decode_body<T: Decodable>(buf: &mut Bytes, key: ApiKey, version: i16) -> Result<T, Reply> {
    T::decode(buf, version).map_err(|e| Reply::Close(format!("malformed {key:?} v{version} request: {e}")))
}

fn frame_or_close(r: Result<Bytes, String>) -> Reply {
    match r {
        Ok(b) => Reply::Frame(b),
        Err(e) => {
            tracing::error!(error = %e, "response could not be encoded");
            Reply::Close(e)
        }
    }
}

/// Handles one request frame (without its size prefix). `info` receives the header fields.
pub async fn handle_frame(ctx: &ApiContext, frame: Bytes, info: &mut RequestInfo) -> Reply {
    let Some(peeked) = peek_info(&frame) else {
        return Reply::Close(format!("request of {} bytes is shorter than a request header", frame.len()));
    };
    info.api_key = peeked.api_key;
    info.api_version = peeked.api_version;
    info.correlation_id = peeked.correlation_id;
    let Ok(key) = ApiKey::try_from(info.api_key) else {
        return Reply::Close(format!("unknown api key {}", info.api_key));
    };
    let version = info.api_version;
    if !versions::is_served(key, version) {
        if key == ApiKey::ApiVersions {
            // Kafka answers a too-new ApiVersions with a v0 response listing what it does serve.
            return frame_or_close(encode_response(
                key,
                0,
                info.correlation_id,
                &versions::unsupported_version_response(),
            ));
        }
        return Reply::Close(format!("unsupported version {version} of {key:?}"));
    }
    let mut buf = frame;
    let header = match RequestHeader::decode(&mut buf, key.request_header_version(version)) {
        Ok(h) => h,
        Err(e) => return Reply::Close(format!("malformed request header: {e}")),
    };
    info.client_id = header.client_id.as_ref().map(|s| s.to_string());
    match dispatch(ctx, key, version, header.correlation_id, &mut buf, info).await {
        Ok(reply) => reply,
        Err(reply) => reply,
    }
}

/// Decodes the body of `key` and calls its handler; one arm per API in [`versions::SUPPORTED`].
async fn dispatch(
    ctx: &ApiContext,
    key: ApiKey,
    version: i16,
    corr: i32,
    buf: &mut Bytes,
    info: &RequestInfo,
) -> Result<Reply, Reply> {
    macro_rules! call {
        ($req:ty, $handler:path) => {{
            let req: $req = decode_body(buf, key, version)?;
            let resp = $handler(ctx, req, version).await;
            Ok(frame_or_close(encode_response(key, version, corr, &resp)))
        }};
        // A handler that also takes one value of the request's context (e.g. its listener).
        ($req:ty, $handler:path, $extra:expr) => {{
            let req: $req = decode_body(buf, key, version)?;
            let resp = $handler(ctx, req, version, $extra).await;
            Ok(frame_or_close(encode_response(key, version, corr, &resp)))
        }};
        // A handler of the request alone that may find it malformed: Err closes the connection.
        (fallible $req:ty, $handler:path) => {{
            let req: $req = decode_body(buf, key, version)?;
            let resp = $handler(&req).map_err(Reply::Close)?;
            Ok(frame_or_close(encode_response(key, version, corr, &resp)))
        }};
    }
    match key {
        ApiKey::ApiVersions => {
            let req: ApiVersionsRequest = decode_body(buf, key, version)?;
            Ok(frame_or_close(encode_response(
                key,
                version,
                corr,
                &versions::handle(&req, version, &ctx.cluster),
            )))
        }
        ApiKey::Metadata => call!(MetadataRequest, metadata::handle, info.listener),
        ApiKey::CreateTopics => call!(CreateTopicsRequest, topics::create_topics),
        ApiKey::DeleteTopics => call!(DeleteTopicsRequest, topics::delete_topics),
        ApiKey::CreatePartitions => call!(CreatePartitionsRequest, topics::create_partitions),
        ApiKey::DescribeConfigs => call!(DescribeConfigsRequest, configs::describe_configs),
        ApiKey::AlterConfigs => call!(AlterConfigsRequest, configs::alter_configs),
        ApiKey::IncrementalAlterConfigs => {
            call!(IncrementalAlterConfigsRequest, configs::incremental_alter_configs)
        }
        ApiKey::DescribeCluster => call!(DescribeClusterRequest, cluster::describe_cluster, info.listener),
        ApiKey::Fetch => {
            let req: FetchRequest = decode_body(buf, key, version)?;
            let resp = fetch::handle(ctx, req, version).await;
            let records = resp
                .responses
                .iter()
                .flat_map(|t| t.partitions.iter().filter_map(|p| p.records.clone()))
                .collect();
            match encode_response_chunks(key, version, corr, &resp, records) {
                Ok(chunks) => Ok(Reply::Chunks(chunks)),
                Err(e) => Ok(frame_or_close(Err(e))),
            }
        }
        ApiKey::FindCoordinator => call!(FindCoordinatorRequest, groups::find_coordinator, info.listener),
        ApiKey::JoinGroup => {
            let req: JoinGroupRequest = decode_body(buf, key, version)?;
            let resp = groups::join_group(ctx, req, version, info).await;
            Ok(frame_or_close(encode_response(key, version, corr, &resp)))
        }
        ApiKey::SyncGroup => call!(SyncGroupRequest, groups::sync_group),
        ApiKey::Heartbeat => call!(HeartbeatRequest, groups::heartbeat),
        ApiKey::LeaveGroup => call!(LeaveGroupRequest, groups::leave_group),
        ApiKey::OffsetCommit => call!(OffsetCommitRequest, groups::offset_commit),
        ApiKey::OffsetFetch => call!(OffsetFetchRequest, groups::offset_fetch),
        ApiKey::DescribeGroups => call!(DescribeGroupsRequest, groups::describe_groups),
        ApiKey::ListGroups => call!(ListGroupsRequest, groups::list_groups),
        ApiKey::DeleteGroups => call!(DeleteGroupsRequest, groups::delete_groups),
        ApiKey::OffsetDelete => call!(OffsetDeleteRequest, groups::offset_delete),
        ApiKey::ListOffsets => call!(ListOffsetsRequest, offsets::list_offsets),
        ApiKey::DeleteRecords => call!(DeleteRecordsRequest, offsets::delete_records),
        ApiKey::OffsetForLeaderEpoch => call!(OffsetForLeaderEpochRequest, offsets::offset_for_leader_epoch),
        ApiKey::InitProducerId => call!(InitProducerIdRequest, producer_id::init_producer_id),
        ApiKey::AddPartitionsToTxn => call!(AddPartitionsToTxnRequest, txn::add_partitions_to_txn),
        ApiKey::AddOffsetsToTxn => call!(AddOffsetsToTxnRequest, txn::add_offsets_to_txn),
        ApiKey::EndTxn => call!(EndTxnRequest, txn::end_txn),
        ApiKey::TxnOffsetCommit => call!(TxnOffsetCommitRequest, txn::txn_offset_commit),
        ApiKey::WriteTxnMarkers => call!(WriteTxnMarkersRequest, txn_markers::write_txn_markers),
        ApiKey::DescribeTransactions => call!(DescribeTransactionsRequest, txn::describe_transactions),
        ApiKey::ListTransactions => call!(ListTransactionsRequest, txn::list_transactions),
        ApiKey::DescribeProducers => {
            call!(kafka_protocol::messages::DescribeProducersRequest, txn::describe_producers)
        }
        ApiKey::DescribeLogDirs => call!(DescribeLogDirsRequest, log_dirs::describe_log_dirs),
        ApiKey::AlterReplicaLogDirs => call!(AlterReplicaLogDirsRequest, log_dirs::alter_replica_log_dirs),
        ApiKey::ElectLeaders => call!(ElectLeadersRequest, reassignments::elect_leaders),
        ApiKey::AlterPartitionReassignments => {
            call!(AlterPartitionReassignmentsRequest, reassignments::alter_partition_reassignments)
        }
        ApiKey::ListPartitionReassignments => {
            call!(ListPartitionReassignmentsRequest, reassignments::list_partition_reassignments)
        }
        ApiKey::DescribeQuorum => call!(DescribeQuorumRequest, quorum::describe_quorum),
        ApiKey::DescribeTopicPartitions => {
            call!(DescribeTopicPartitionsRequest, describe_topic_partitions::describe_topic_partitions)
        }
        ApiKey::UpdateFeatures => call!(UpdateFeaturesRequest, features::update_features),
        ApiKey::ListConfigResources => call!(ListConfigResourcesRequest, configs::list_config_resources),
        ApiKey::DescribeAcls => call!(fallible DescribeAclsRequest, acls::describe_acls),
        ApiKey::CreateAcls => call!(fallible CreateAclsRequest, acls::create_acls),
        ApiKey::DeleteAcls => call!(fallible DeleteAclsRequest, acls::delete_acls),
        ApiKey::Produce => {
            let req: ProduceRequest = decode_body(buf, key, version)?;
            match produce::handle(ctx, req, version).await {
                Some(resp) => Ok(frame_or_close(encode_response(key, version, corr, &resp))),
                None => Ok(Reply::Nothing),
            }
        }
        other => Err(Reply::Close(format!("{other:?} is in the version table but has no handler"))),
    }
}

/// The items a request names more than once (Kafka refuses each of them with INVALID_REQUEST).
pub(crate) fn repeated<T: Eq + std::hash::Hash + Clone>(
    items: impl Iterator<Item = T>,
) -> std::collections::HashSet<T> {
    let mut seen = std::collections::HashSet::new();
    let mut twice = std::collections::HashSet::new();
    for item in items {
        if !seen.insert(item.clone()) {
            twice.insert(item);
        }
    }
    twice
}

/// Authorized-operation bitfields reported when a client asks and no authorizer is configured
/// (every operation the resource type supports, as Kafka reports with authorization disabled).
pub mod authorized_ops {
    /// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
    pub const TOPIC: i32 =
        (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
    /// CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE,
    /// CREATE_TOKENS, DESCRIBE_TOKENS.
    pub const CLUSTER: i32 =
        (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 13) | (1 << 14);
}
