//! Shared helpers for the protocol-level integration tests: an in-process broker on port 0 with a
//! fresh data directory, and a minimal Kafka client over real TCP that encodes requests and decodes
//! responses with kafka-protocol itself.
//!
//! Every read has a timeout, so a broker that stops answering fails the test instead of hanging it.

#![allow(dead_code)]

pub mod configs;
pub mod differential;
pub mod example;
pub mod fetch;
mod memory;
#[allow(unused_imports)] // each test crate uses some
pub use differential::{broker_or_reference, create_fast_compacted, fetch_request_p0};
#[allow(unused_imports)] // not every test uses them
pub use memory::{peak_rss_kb, reset_peak_rss, rss_kb};
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use strom::broker::Broker;
use strom::config::{CliOverrides, Config};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any single read from the broker may take before the test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A broker configuration for tests: listens on 127.0.0.1:0, data under `data_dir`, plus `extra`
/// broker keys (as a config file would give them, e.g. `("socket.request.max.bytes", "1024")`).
pub fn test_config(data_dir: &Path, extra: &[(&str, &str)]) -> Config {
    let file: BTreeMap<String, String> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let cli = CliOverrides {
        listen: Some("127.0.0.1:0".into()),
        data_dir: Some(data_dir.to_path_buf()),
        ..Default::default()
    };
    Config::build(&file, &[], &cli, "test").expect("test configuration is valid")
}

/// A broker running in this process, with its own temporary data directory.
pub struct TestBroker {
    broker: Option<Broker>,
    dir: PathBuf,
    /// The temporary directory `dir` is, when the broker made its own (removed on drop).
    _tmp: Option<tempfile::TempDir>,
    extra: Vec<(String, String)>,
}

impl TestBroker {
    pub async fn start() -> TestBroker {
        Self::start_with(&[]).await
    }

    pub async fn start_with(extra: &[(&str, &str)]) -> TestBroker {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut b = Self::new(tmp.path(), extra);
        b._tmp = Some(tmp);
        b.boot().await;
        b
    }

    /// A broker on a data directory the caller owns (e.g. on a filesystem of its own).
    pub async fn start_in(data_dir: &Path, extra: &[(&str, &str)]) -> TestBroker {
        let mut b = Self::new(data_dir, extra);
        b.boot().await;
        b
    }

    fn new(data_dir: &Path, extra: &[(&str, &str)]) -> TestBroker {
        let extra = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        TestBroker { broker: None, dir: data_dir.to_path_buf(), _tmp: None, extra }
    }

    async fn boot(&mut self) {
        let extra: Vec<(&str, &str)> = self.extra.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let config = test_config(&self.dir, &extra);
        self.broker = Some(Broker::start(config).await.expect("broker starts"));
    }

    pub fn broker(&self) -> &Broker {
        self.broker.as_ref().expect("broker is running")
    }

    pub fn addr(&self) -> SocketAddr {
        self.broker().local_addr
    }

    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// `<data>/<topic>-<partition>`
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir().join(format!("{topic}-{partition}"))
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr()).await.expect("connect to broker")
    }

    /// Graceful shutdown, then a new broker on the same data directory (on a new port).
    pub async fn restart(&mut self) {
        if let Some(b) = self.broker.take() {
            tokio::time::timeout(Duration::from_secs(30), b.shutdown()).await.expect("shutdown finishes");
        }
        self.boot().await;
    }

    pub async fn stop(mut self) {
        if let Some(b) = self.broker.take() {
            tokio::time::timeout(Duration::from_secs(30), b.shutdown()).await.expect("shutdown finishes");
        }
    }
}

/// Encodes a request (header of the right version + body) without the size prefix.
pub fn encode_request_payload<R: Request>(
    req: &R,
    version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
) -> BytesMut {
    let key = ApiKey::try_from(R::KEY).expect("known api key");
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(client_id.map(|c| StrBytes::from_string(c.to_string())));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .unwrap_or_else(|e| panic!("encoding {key:?} v{version} request header: {e}"));
    req.encode(&mut buf, version).unwrap_or_else(|e| panic!("encoding {key:?} v{version} request: {e}"));
    buf
}

/// Prefixes `payload` with its 4-byte big-endian size.
pub fn framed(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A complete request frame (size prefix included).
pub fn encode_request<R: Request>(req: &R, version: i16, correlation_id: i32) -> Vec<u8> {
    framed(&encode_request_payload(req, version, correlation_id, Some("strom-tests")))
}

/// Decodes a response frame (without size prefix) of API `R` at `version`; panics unless the
/// header and body decode and every byte is consumed.
pub fn decode_response<R: Request>(frame: Bytes, version: i16) -> (ResponseHeader, R::Response) {
    let key = ApiKey::try_from(R::KEY).expect("known api key");
    decode_response_as::<R::Response>(key, frame, version)
}

/// Like [`decode_response`] for a response type given directly.
pub fn decode_response_as<T: Decodable>(key: ApiKey, mut frame: Bytes, version: i16) -> (ResponseHeader, T) {
    let header = ResponseHeader::decode(&mut frame, key.response_header_version(version))
        .unwrap_or_else(|e| panic!("decoding {key:?} v{version} response header: {e}"));
    let body = T::decode(&mut frame, version)
        .unwrap_or_else(|e| panic!("decoding {key:?} v{version} response: {e}"));
    assert_eq!(frame.remaining(), 0, "{key:?} v{version} response has {} trailing bytes", frame.remaining());
    (header, body)
}

/// A raw Kafka connection.
pub struct Client {
    stream: TcpStream,
    buf: BytesMut,
    next_correlation_id: i32,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Client { stream, buf: BytesMut::with_capacity(8192), next_correlation_id: 1 })
    }

    /// The broker's address this client is connected to.
    pub fn peer(&self) -> SocketAddr {
        self.stream.peer_addr().unwrap_or_else(|e| panic!("peer address: {e}"))
    }

    pub fn next_correlation_id(&mut self) -> i32 {
        let c = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        c
    }

    /// Writes raw bytes (frames are the caller's business).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await?;
        self.stream.flush().await
    }

    /// Half-closes the connection: the broker sees the end of the stream.
    pub async fn shutdown_write(&mut self) -> io::Result<()> {
        self.stream.shutdown().await
    }

    /// Sends `req` at `version`; returns the correlation id used.
    pub async fn send<R: Request>(&mut self, req: &R, version: i16) -> i32 {
        let corr = self.next_correlation_id();
        let frame = encode_request(req, version, corr);
        self.write_raw(&frame).await.expect("write request");
        corr
    }

    /// Reads one size-framed response payload; `Ok(None)` when the broker closed the connection
    /// cleanly between frames. Times out after [`IO_TIMEOUT`].
    pub async fn read_frame(&mut self) -> io::Result<Option<Bytes>> {
        read_frame_from(&mut self.stream, &mut self.buf).await
    }

    /// Writes `bytes` while reading `n` response frames concurrently (so a long pipeline cannot
    /// dead-lock on full socket buffers); stops reading early if the broker closes.
    pub async fn pipeline(&mut self, bytes: &[u8], n: usize) -> (io::Result<()>, Vec<Bytes>, io::Result<()>) {
        let (mut r, mut w) = self.stream.split();
        let buf = &mut self.buf;
        let write = async {
            w.write_all(bytes).await?;
            w.flush().await
        };
        let read = async {
            let mut frames = Vec::with_capacity(n);
            while frames.len() < n {
                match read_frame_from(&mut r, buf).await {
                    Ok(Some(f)) => frames.push(f),
                    Ok(None) => return (frames, Ok(())),
                    Err(e) => return (frames, Err(e)),
                }
            }
            (frames, Ok(()))
        };
        let (wr, (frames, rr)) = tokio::join!(write, read);
        (wr, frames, rr)
    }

    /// Reads and decodes the next response as `R`'s response at `version`.
    pub async fn recv<R: Request>(&mut self, version: i16) -> (ResponseHeader, R::Response) {
        let key = ApiKey::try_from(R::KEY).expect("known api key");
        let frame = match self.read_frame().await {
            Ok(Some(f)) => f,
            Ok(None) => {
                panic!("broker closed the connection instead of answering {key:?} v{version}")
            }
            Err(e) => panic!("reading the {key:?} v{version} response: {e}"),
        };
        decode_response::<R>(frame, version)
    }

    /// Sends `req` and returns its decoded response, checking the correlation id.
    pub async fn call<R: Request>(&mut self, req: &R, version: i16) -> R::Response {
        let corr = self.send(req, version).await;
        let (header, body) = self.recv::<R>(version).await;
        assert_eq!(
            header.correlation_id,
            corr,
            "correlation id of {:?} v{version}",
            ApiKey::try_from(R::KEY)
        );
        body
    }

    /// Waits until the broker closes the connection; panics if it sends a frame instead.
    /// A reset counts as closed.
    pub async fn expect_closed(&mut self, what: &str) {
        match self.read_frame().await {
            Ok(None) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {
                panic!("{what}: connection still open: {e}")
            }
            Err(_) => {}
            Ok(Some(f)) => {
                panic!("{what}: expected the connection to be closed, got a {}-byte response", f.len())
            }
        }
    }
}

/// Reads one size-framed payload from `r`, keeping leftovers in `buf`; `Ok(None)` on a clean close
/// between frames. Times out after [`IO_TIMEOUT`].
pub async fn read_frame_from<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
) -> io::Result<Option<Bytes>> {
    let read = async {
        loop {
            if buf.len() >= 4 {
                let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                let size = usize::try_from(size)
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "negative response size"))?;
                if buf.len() >= size + 4 {
                    buf.advance(4);
                    return Ok(Some(buf.split_to(size).freeze()));
                }
            }
            buf.reserve(8192);
            if r.read_buf(buf).await? == 0 {
                return if buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed inside a response"))
                };
            }
        }
    };
    match tokio::time::timeout(IO_TIMEOUT, read).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no response from broker in time")),
    }
}

/// Calls `$m!` with `(ApiKey variant, request type, response type)` for every API kafka-protocol
/// 0.18 knows, so generic helpers cover whatever the broker's version table grows to serve.
macro_rules! every_api {
    ($m:ident) => {
        $m! {
            (Produce, ProduceRequest, ProduceResponse),
            (Fetch, FetchRequest, FetchResponse),
            (ListOffsets, ListOffsetsRequest, ListOffsetsResponse),
            (Metadata, MetadataRequest, MetadataResponse),
            (OffsetCommit, OffsetCommitRequest, OffsetCommitResponse),
            (OffsetFetch, OffsetFetchRequest, OffsetFetchResponse),
            (FindCoordinator, FindCoordinatorRequest, FindCoordinatorResponse),
            (JoinGroup, JoinGroupRequest, JoinGroupResponse),
            (Heartbeat, HeartbeatRequest, HeartbeatResponse),
            (LeaveGroup, LeaveGroupRequest, LeaveGroupResponse),
            (SyncGroup, SyncGroupRequest, SyncGroupResponse),
            (DescribeGroups, DescribeGroupsRequest, DescribeGroupsResponse),
            (ListGroups, ListGroupsRequest, ListGroupsResponse),
            (SaslHandshake, SaslHandshakeRequest, SaslHandshakeResponse),
            (ApiVersions, ApiVersionsRequest, ApiVersionsResponse),
            (CreateTopics, CreateTopicsRequest, CreateTopicsResponse),
            (DeleteTopics, DeleteTopicsRequest, DeleteTopicsResponse),
            (DeleteRecords, DeleteRecordsRequest, DeleteRecordsResponse),
            (InitProducerId, InitProducerIdRequest, InitProducerIdResponse),
            (OffsetForLeaderEpoch, OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse),
            (AddPartitionsToTxn, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse),
            (AddOffsetsToTxn, AddOffsetsToTxnRequest, AddOffsetsToTxnResponse),
            (EndTxn, EndTxnRequest, EndTxnResponse),
            (WriteTxnMarkers, WriteTxnMarkersRequest, WriteTxnMarkersResponse),
            (TxnOffsetCommit, TxnOffsetCommitRequest, TxnOffsetCommitResponse),
            (DescribeAcls, DescribeAclsRequest, DescribeAclsResponse),
            (CreateAcls, CreateAclsRequest, CreateAclsResponse),
            (DeleteAcls, DeleteAclsRequest, DeleteAclsResponse),
            (DescribeConfigs, DescribeConfigsRequest, DescribeConfigsResponse),
            (AlterConfigs, AlterConfigsRequest, AlterConfigsResponse),
            (AlterReplicaLogDirs, AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse),
            (DescribeLogDirs, DescribeLogDirsRequest, DescribeLogDirsResponse),
            (SaslAuthenticate, SaslAuthenticateRequest, SaslAuthenticateResponse),
            (CreatePartitions, CreatePartitionsRequest, CreatePartitionsResponse),
            (CreateDelegationToken, CreateDelegationTokenRequest, CreateDelegationTokenResponse),
            (RenewDelegationToken, RenewDelegationTokenRequest, RenewDelegationTokenResponse),
            (ExpireDelegationToken, ExpireDelegationTokenRequest, ExpireDelegationTokenResponse),
            (DescribeDelegationToken, DescribeDelegationTokenRequest, DescribeDelegationTokenResponse),
            (DeleteGroups, DeleteGroupsRequest, DeleteGroupsResponse),
            (ElectLeaders, ElectLeadersRequest, ElectLeadersResponse),
            (IncrementalAlterConfigs, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse),
            (AlterPartitionReassignments, AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse),
            (ListPartitionReassignments, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse),
            (OffsetDelete, OffsetDeleteRequest, OffsetDeleteResponse),
            (DescribeClientQuotas, DescribeClientQuotasRequest, DescribeClientQuotasResponse),
            (AlterClientQuotas, AlterClientQuotasRequest, AlterClientQuotasResponse),
            (DescribeUserScramCredentials, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse),
            (AlterUserScramCredentials, AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse),
            (Vote, VoteRequest, VoteResponse),
            (BeginQuorumEpoch, BeginQuorumEpochRequest, BeginQuorumEpochResponse),
            (EndQuorumEpoch, EndQuorumEpochRequest, EndQuorumEpochResponse),
            (DescribeQuorum, DescribeQuorumRequest, DescribeQuorumResponse),
            (AlterPartition, AlterPartitionRequest, AlterPartitionResponse),
            (UpdateFeatures, UpdateFeaturesRequest, UpdateFeaturesResponse),
            (Envelope, EnvelopeRequest, EnvelopeResponse),
            (FetchSnapshot, FetchSnapshotRequest, FetchSnapshotResponse),
            (DescribeCluster, DescribeClusterRequest, DescribeClusterResponse),
            (DescribeProducers, DescribeProducersRequest, DescribeProducersResponse),
            (BrokerRegistration, BrokerRegistrationRequest, BrokerRegistrationResponse),
            (BrokerHeartbeat, BrokerHeartbeatRequest, BrokerHeartbeatResponse),
            (UnregisterBroker, UnregisterBrokerRequest, UnregisterBrokerResponse),
            (DescribeTransactions, DescribeTransactionsRequest, DescribeTransactionsResponse),
            (ListTransactions, ListTransactionsRequest, ListTransactionsResponse),
            (AllocateProducerIds, AllocateProducerIdsRequest, AllocateProducerIdsResponse),
            (ConsumerGroupHeartbeat, ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse),
            (ConsumerGroupDescribe, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse),
            (ControllerRegistration, ControllerRegistrationRequest, ControllerRegistrationResponse),
            (GetTelemetrySubscriptions, GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse),
            (PushTelemetry, PushTelemetryRequest, PushTelemetryResponse),
            (AssignReplicasToDirs, AssignReplicasToDirsRequest, AssignReplicasToDirsResponse),
            (ListConfigResources, ListConfigResourcesRequest, ListConfigResourcesResponse),
            (DescribeTopicPartitions, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse),
            (ShareGroupHeartbeat, ShareGroupHeartbeatRequest, ShareGroupHeartbeatResponse),
            (ShareGroupDescribe, ShareGroupDescribeRequest, ShareGroupDescribeResponse),
            (ShareFetch, ShareFetchRequest, ShareFetchResponse),
            (ShareAcknowledge, ShareAcknowledgeRequest, ShareAcknowledgeResponse),
            (AddRaftVoter, AddRaftVoterRequest, AddRaftVoterResponse),
            (RemoveRaftVoter, RemoveRaftVoterRequest, RemoveRaftVoterResponse),
            (UpdateRaftVoter, UpdateRaftVoterRequest, UpdateRaftVoterResponse),
            (InitializeShareGroupState, InitializeShareGroupStateRequest, InitializeShareGroupStateResponse),
            (ReadShareGroupState, ReadShareGroupStateRequest, ReadShareGroupStateResponse),
            (WriteShareGroupState, WriteShareGroupStateRequest, WriteShareGroupStateResponse),
            (DeleteShareGroupState, DeleteShareGroupStateRequest, DeleteShareGroupStateResponse),
            (ReadShareGroupStateSummary, ReadShareGroupStateSummaryRequest, ReadShareGroupStateSummaryResponse),
            (DescribeShareGroupOffsets, DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse),
            (AlterShareGroupOffsets, AlterShareGroupOffsetsRequest, AlterShareGroupOffsetsResponse),
            (DeleteShareGroupOffsets, DeleteShareGroupOffsetsRequest, DeleteShareGroupOffsetsResponse),
        }
    };
}

/// Encodes the minimal valid request of `key` at `version` (a complete frame): `Default::default()`
/// plus what a valid request needs (ApiVersions v3+ needs client software fields; Produce needs
/// acks != 0 or it is never answered).
pub fn minimal_request(key: ApiKey, version: i16, correlation_id: i32) -> Vec<u8> {
    match key {
        ApiKey::ApiVersions if version >= 3 => encode_request(
            &ApiVersionsRequest::default()
                .with_client_software_name(s("strom-tests"))
                .with_client_software_version(s("1")),
            version,
            correlation_id,
        ),
        ApiKey::Produce => encode_request(
            &ProduceRequest::default().with_acks(-1).with_timeout_ms(1000),
            version,
            correlation_id,
        ),
        // A filter of UNKNOWN (0) codes is malformed (Kafka closes the connection): clients send ANY (1).
        ApiKey::DescribeAcls => encode_request(
            &DescribeAclsRequest::default()
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
            version,
            correlation_id,
        ),
        _ => {
            macro_rules! arms {
                ($(($k:ident, $req:ty, $resp:ty)),* $(,)?) => {
                    match key {
                        $(ApiKey::$k => encode_request(&<$req>::default(), version, correlation_id),)*
                    }
                };
            }
            every_api!(arms)
        }
    }
}

/// Decodes a response frame (without size) of any API at `version`, strictly: header, body, and
/// no trailing bytes. Returns the header.
pub fn decode_any_response(key: ApiKey, version: i16, frame: Bytes) -> Result<ResponseHeader, String> {
    let mut f = frame;
    let header = ResponseHeader::decode(&mut f, key.response_header_version(version))
        .map_err(|e| format!("{key:?} v{version} response header: {e}"))?;
    macro_rules! arms {
        ($(($k:ident, $req:ty, $resp:ty)),* $(,)?) => {
            match key {
                $(ApiKey::$k => <$resp>::decode(&mut f, version).map(|_| ()),)*
            }
        };
    }
    every_api!(arms).map_err(|e| format!("{key:?} v{version} response body: {e}"))?;
    if !f.is_empty() {
        return Err(format!("{key:?} v{version} response has {} trailing bytes", f.len()));
    }
    Ok(header)
}

/// Decodes a request body of any API at `version` (what the broker's dispatcher does).
pub fn decode_any_request(key: ApiKey, version: i16, body: &mut Bytes) -> Result<(), String> {
    macro_rules! arms {
        ($(($k:ident, $req:ty, $resp:ty)),* $(,)?) => {
            match key {
                $(ApiKey::$k => <$req>::decode(body, version).map(|_| ()),)*
            }
        };
    }
    every_api!(arms).map_err(|e| e.to_string())
}

pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

pub fn tn(v: &str) -> TopicName {
    TopicName(s(v))
}

/// A CreateTopics entry: `partitions` partitions, replication factor -1, these config overrides.
pub fn new_topic(name: &str, partitions: i32, configs: &[(&str, &str)]) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(tn(name))
        .with_num_partitions(partitions)
        .with_replication_factor(-1)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| CreatableTopicConfig::default().with_name(s(k)).with_value(Some(s(v))))
                .collect(),
        )
}

/// Creates one topic with CreateTopics v7 and returns its result (whatever the error code).
pub async fn create_topic_result(c: &mut Client, topic: CreatableTopic) -> CreatableTopicResult {
    let resp = c.call(&CreateTopicsRequest::default().with_topics(vec![topic]), 7).await;
    assert_eq!(resp.topics.len(), 1, "one result per topic");
    resp.topics.into_iter().next().unwrap()
}

/// Creates a topic and asserts success; returns its id.
pub async fn create_topic(c: &mut Client, name: &str, partitions: i32) -> uuid::Uuid {
    let r = create_topic_result(c, new_topic(name, partitions, &[])).await;
    assert_eq!(r.error_code, 0, "creating {name}: {:?}", r.error_message);
    assert_eq!(r.name.0.as_str(), name);
    r.topic_id
}

/// Metadata (v12) for these topic names, without auto-creation.
pub async fn metadata_for(c: &mut Client, names: &[&str]) -> MetadataResponse {
    let req = MetadataRequest::default()
        .with_topics(Some(
            names.iter().map(|n| MetadataRequestTopic::default().with_name(Some(tn(n)))).collect(),
        ))
        .with_allow_auto_topic_creation(false);
    c.call(&req, 12).await
}

/// Metadata (v12) for all topics.
pub async fn metadata_all(c: &mut Client) -> MetadataResponse {
    c.call(&MetadataRequest::default().with_topics(None), 12).await
}

/// Puts a Kafka i16-length string.
pub fn put_string(buf: &mut BytesMut, v: Option<&str>) {
    match v {
        None => buf.put_i16(-1),
        Some(v) => {
            buf.put_i16(v.len() as i16);
            buf.put_slice(v.as_bytes());
        }
    }
}

/// Puts an unsigned varint (Kafka's compact lengths and tagged-field counts).
pub fn put_uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// A hand-made request header: v1 (client id) or v2 (client id + empty tagged fields).
pub fn raw_header(api_key: i16, version: i16, correlation_id: i32, header_version: i16) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i16(api_key);
    b.put_i16(version);
    b.put_i32(correlation_id);
    if header_version >= 1 {
        put_string(&mut b, Some("raw"));
    }
    if header_version >= 2 {
        b.put_u8(0);
    }
    b
}

// ---------------------------------------------------------------------------------------------
// Record batches and partition-level helpers (produce/fetch, groups and config tests).
// ---------------------------------------------------------------------------------------------

/// Broker wall-clock time in ms (what CreateTime timestamps are checked against).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_millis()
        as i64
}

/// Who wrote a batch: no producer id (plain), or an idempotent producer's id, epoch and first sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
}

impl Producer {
    pub const NONE: Producer = Producer { id: -1, epoch: -1, base_sequence: -1 };

    pub fn idempotent(id: i64, epoch: i16, base_sequence: i32) -> Producer {
        Producer { id, epoch, base_sequence }
    }
}

/// Exactly one magic-v2 record batch, encoded by kafka-protocol's `RecordBatchEncoder`: one record per
/// value (key `k<i>`), with these timestamps (or the current time), written by `producer`.
/// (The encoder starts a new batch whenever `offset - sequence` changes, so sequences follow offsets.)
pub fn record_batch_with(
    values: &[&[u8]],
    timestamps: Option<&[i64]>,
    producer: Producer,
    compression: kafka_protocol::records::Compression,
) -> Bytes {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    assert!(!values.is_empty(), "a batch needs at least one record");
    let now = now_ms();
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: producer.id,
            producer_epoch: producer.epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: producer.base_sequence.wrapping_add(i as i32),
            timestamp: timestamps.map_or(now, |t| t[i]),
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::copy_from_slice(v)),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression })
        .expect("encode record batch");
    let out = buf.freeze();
    let parsed = parse_batches(&out);
    assert_eq!(parsed.len(), 1, "the encoder produced {} batches", parsed.len());
    out
}

/// A plain (non-idempotent, uncompressed) batch of these string values, timestamped now.
pub fn record_batch(values: &[&str]) -> Bytes {
    let v: Vec<&[u8]> = values.iter().map(|s| s.as_bytes()).collect();
    record_batch_with(&v, None, Producer::NONE, kafka_protocol::records::Compression::None)
}

/// A transactional batch (attribute bit 4) of these string values from producer `pid` at `epoch`,
/// its first record at sequence `seq`, timestamped now.
pub fn txn_batch(values: &[&str], pid: i64, epoch: i16, seq: i32) -> Bytes {
    let v: Vec<&[u8]> = values.iter().map(|s| s.as_bytes()).collect();
    let b = record_batch_with(
        &v,
        None,
        Producer::idempotent(pid, epoch, seq),
        kafka_protocol::records::Compression::None,
    );
    let mut b = b.to_vec();
    let attrs = i16::from_be_bytes([b[21], b[22]]) | 0x10;
    b[21..23].copy_from_slice(&attrs.to_be_bytes());
    restamp_crc(&mut b);
    Bytes::from(b)
}

/// Recomputes a batch's CRC32C (bytes 21..) after a test edited fields it covers.
pub fn restamp_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// The header fields of one batch in a fetched record set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub record_count: i32,
    /// Whole size including baseOffset and batchLength.
    pub size: usize,
    pub attributes: i16,
    pub max_timestamp: i64,
    pub producer_id: i64,
}

/// Splits a record set into its batches; panics unless it is made of whole magic-v2 batches with a
/// valid CRC32C (a fetch must never return a split or damaged batch).
pub fn parse_batches(records: &[u8]) -> Vec<BatchInfo> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < records.len() {
        let b = &records[pos..];
        assert!(b.len() >= 61, "a partial batch header at byte {pos} of {}", records.len());
        let i32_at = |at: usize| i32::from_be_bytes(b[at..at + 4].try_into().unwrap());
        let i64_at = |at: usize| i64::from_be_bytes(b[at..at + 8].try_into().unwrap());
        let size = 12 + i32_at(8) as usize;
        assert!(size <= b.len(), "a partial batch at byte {pos}: {size} bytes claimed, {} left", b.len());
        assert_eq!(b[16], 2, "magic of the batch at byte {pos}");
        let crc = u32::from_be_bytes(b[17..21].try_into().unwrap());
        assert_eq!(crc32c::crc32c(&b[21..size]), crc, "CRC32C of the batch at byte {pos}");
        let base_offset = i64_at(0);
        out.push(BatchInfo {
            base_offset,
            last_offset: base_offset + i64::from(i32_at(23)),
            record_count: i32_at(57),
            size,
            attributes: i16::from_be_bytes([b[21], b[22]]),
            max_timestamp: i64_at(35),
            producer_id: i64_at(43),
        });
        pos += size;
    }
    out
}

/// Every record of a record set as (offset, value), decoded by kafka-protocol.
pub fn record_values(records: &Bytes) -> Vec<(i64, String)> {
    let mut buf = records.clone();
    kafka_protocol::records::RecordBatchDecoder::decode_all(&mut buf)
        .expect("decode fetched records")
        .into_iter()
        .flat_map(|set| set.records)
        .map(|r| {
            let v = r.value.map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default();
            (r.offset, v)
        })
        .collect()
}

/// A Produce request of one batch to one partition of a topic named `topic`.
pub fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    ProduceRequest::default().with_acks(acks).with_timeout_ms(5000).with_topic_data(vec![
        TopicProduceData::default().with_name(tn(topic)).with_partition_data(vec![
            PartitionProduceData::default().with_index(partition).with_records(Some(records)),
        ]),
    ])
}

/// Produces `records` to one partition (acks=-1) and returns that partition's answer.
pub async fn produce(
    c: &mut Client,
    topic: &str,
    partition: i32,
    records: Bytes,
    version: i16,
) -> kafka_protocol::messages::produce_response::PartitionProduceResponse {
    let resp = c.call(&produce_request(topic, partition, records, -1), version).await;
    assert_eq!(resp.responses.len(), 1, "one topic answered");
    let t = resp.responses.into_iter().next().unwrap();
    assert_eq!(t.partition_responses.len(), 1, "one partition answered");
    let p = t.partition_responses.into_iter().next().unwrap();
    assert_eq!(p.index, partition);
    p
}

/// ListOffsets for one partition at `version`.
pub async fn list_offset(
    c: &mut Client,
    topic: &str,
    partition: i32,
    timestamp: i64,
    version: i16,
) -> kafka_protocol::messages::list_offsets_response::ListOffsetsPartitionResponse {
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    let req = ListOffsetsRequest::default().with_replica_id(BrokerId(-1)).with_topics(vec![
        ListOffsetsTopic::default().with_name(tn(topic)).with_partitions(vec![
            ListOffsetsPartition::default().with_partition_index(partition).with_timestamp(timestamp),
        ]),
    ]);
    let resp = c.call(&req, version).await;
    assert_eq!(resp.topics.len(), 1);
    assert_eq!(resp.topics[0].name.as_str(), topic);
    assert_eq!(resp.topics[0].partitions.len(), 1);
    resp.topics.into_iter().next().unwrap().partitions.into_iter().next().unwrap()
}

/// The log end offset (ListOffsets latest, v7) of a partition; panics on an error.
pub async fn log_end(c: &mut Client, topic: &str, partition: i32) -> i64 {
    let p = list_offset(c, topic, partition, -1, 7).await;
    assert_eq!(p.error_code, 0, "ListOffsets latest of {topic}-{partition}");
    p.offset
}

/// The log start offset (ListOffsets earliest, v7) of a partition; panics on an error.
pub async fn log_start(c: &mut Client, topic: &str, partition: i32) -> i64 {
    let p = list_offset(c, topic, partition, -2, 7).await;
    assert_eq!(p.error_code, 0, "ListOffsets earliest of {topic}-{partition}");
    p.offset
}
