//! A benchmark CEILING, not a broker: the thinnest Kafka-speaking sink, used only by `scripts/bench` to
//! show what loopback TCP plus plain file writes/reads allow, with Kafka framing. Never use it in
//! compatibility tests: it validates nothing, keeps its index in memory only and forgets everything on
//! restart.
//!
//! ```text
//! ceiling_broker --listen 127.0.0.1:PORT --data-dir DIR [--partitions N] [--pread]
//! ```
//!
//! What it does, and nothing more:
//! - one node (itself); every topic asked for in Metadata exists (created with N partitions, default 1),
//!   CreateTopics creates topics with the partition count asked for;
//! - Produce (acks 0/1/-1): each partition's `records` bytes go to one plain file per partition with a
//!   single vectored write. No CRC, no validation beyond walking the batch lengths. The only change to
//!   the bytes is the one a log must make so consumers can read them back: each batch's 8-byte
//!   baseOffset is replaced by the assigned offset (lastOffsetDelta, at byte 23 of the batch header,
//!   gives the record count). An in-memory `Vec<(base offset, file position)>` per partition is the index;
//! - Fetch: whole batches, one read per partition, sent without a further copy (vectored write); long
//!   polling on any append; no fetch sessions (session id 0). A read of 64 KiB or more is a populated
//!   memory mapping of the page cache (the bytes are copied once, page cache to socket); shorter ones,
//!   and all of them with `--pread`, are one `pread` into a fresh buffer (copied twice). The mapping is
//!   the thinnest read a broker can do in user space, and the one strom itself uses, so the ceiling
//!   stays a ceiling;
//! - ListOffsets (earliest = 0, anything else = log end), OffsetForLeaderEpoch (log end) and
//!   FindCoordinator (itself), which librdkafka's consumer asks for even with `assign()`.
//!
//! Versions are strom's own table (`strom::api::versions`) for these APIs, so clients negotiate the same
//! versions as against strom. tokio, one task per connection, requests answered in order. File I/O is
//! done inline on the async worker (page-cache writes and reads; no fsync), as strom does.

use std::collections::HashMap;
use std::fs::File;
use std::io::{IoSlice, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, CreateTopicsRequest, CreateTopicsResponse,
    FetchRequest, FetchResponse, FindCoordinatorRequest, FindCoordinatorResponse, ListOffsetsRequest,
    ListOffsetsResponse, MetadataRequest, MetadataResponse, OffsetForLeaderEpochRequest,
    OffsetForLeaderEpochResponse, ProduceRequest, ProduceResponse, RequestHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use kafka_protocol::ResponseError;
use parking_lot::{Mutex, RwLock};
use strom::api::{encode_response, encode_response_chunks, versions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use uuid::Uuid;

/// The APIs answered; their version ranges are strom's.
const APIS: &[ApiKey] = &[
    ApiKey::ApiVersions,
    ApiKey::Metadata,
    ApiKey::CreateTopics,
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::FindCoordinator,
];
/// Largest request accepted (Kafka's socket.request.max.bytes default).
const MAX_REQUEST: usize = 100 * 1024 * 1024;
/// Bytes of a record batch header (magic v2) up to and including the record count.
const BATCH_HEADER: usize = 61;
const NODE: i32 = 1;
/// Reads at least this long are page-cache mappings (unless `--pread`): below it, two system calls and
/// a TLB flush cost more than copying a few pages.
const MAP_MIN: usize = 64 * 1024;

/// One partition: a plain file and where each batch starts in it.
struct Partition {
    file: File,
    log: Mutex<Index>,
}

struct Index {
    /// The offset the next batch gets.
    next_offset: i64,
    /// Bytes in the file.
    end: u64,
    /// (base offset, file position) of every batch, in order.
    batches: Vec<(i64, u64)>,
}

struct Topic {
    name: String,
    id: Uuid,
    partitions: Vec<Partition>,
}

struct Broker {
    dir: PathBuf,
    /// Serve every read with pread (no mappings).
    pread_only: bool,
    host: String,
    port: i32,
    default_partitions: i32,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    /// Bumped after every append: wakes long-polling fetches.
    appended: watch::Sender<u64>,
}

impl Broker {
    fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics.read().get(name).cloned()
    }

    fn topic_by_id(&self, id: Uuid) -> Option<Arc<Topic>> {
        self.topics.read().values().find(|t| t.id == id).cloned()
    }

    /// Creates `name` with `count` partitions (files truncated). `Err` if it exists or is invalid.
    fn create(&self, name: &str, count: i32) -> Result<Arc<Topic>, ResponseError> {
        let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if name.is_empty() || name.len() > 249 || name == "." || name == ".." || !name.chars().all(legal) {
            return Err(ResponseError::InvalidTopicException);
        }
        if !(1..=10_000).contains(&count) {
            return Err(ResponseError::InvalidPartitions);
        }
        let mut topics = self.topics.write();
        if topics.contains_key(name) {
            return Err(ResponseError::TopicAlreadyExists);
        }
        let mut partitions = Vec::with_capacity(count as usize);
        for p in 0..count {
            let path = self.dir.join(format!("{name}-{p}.log"));
            let opened = File::options().read(true).write(true).create(true).truncate(true).open(&path);
            let file = opened.map_err(|e| {
                eprintln!("ceiling_broker: {}: {e}", path.display());
                ResponseError::KafkaStorageError
            })?;
            let log = Mutex::new(Index { next_offset: 0, end: 0, batches: Vec::new() });
            partitions.push(Partition { file, log });
        }
        let topic = Arc::new(Topic { name: name.to_string(), id: Uuid::new_v4(), partitions });
        topics.insert(name.to_string(), topic.clone());
        Ok(topic)
    }

    /// The topic, created with the default partition count if it does not exist yet.
    fn topic_or_create(&self, name: &str) -> Result<Arc<Topic>, ResponseError> {
        match self.topic(name) {
            Some(t) => Ok(t),
            None => match self.create(name, self.default_partitions) {
                Err(ResponseError::TopicAlreadyExists) => {
                    self.topic(name).ok_or(ResponseError::UnknownServerError)
                }
                other => other,
            },
        }
    }
}

fn be_i32(b: &[u8], at: usize) -> Option<i32> {
    Some(i32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

impl Partition {
    /// Appends the batches in `records` with one vectored write; returns the first assigned offset.
    fn append(&self, records: &[u8]) -> Result<i64, ResponseError> {
        let mut log = self.log.lock();
        // Walk the batch lengths: (start, end) of each batch and its assigned base offset.
        let mut batches: Vec<(usize, usize, [u8; 8])> = Vec::new();
        let (mut pos, mut next) = (0usize, log.next_offset);
        while pos < records.len() {
            let (Some(len), Some(delta)) = (be_i32(records, pos + 8), be_i32(records, pos + 23)) else {
                return Err(ResponseError::CorruptMessage);
            };
            let end = pos + 12 + usize::try_from(len).map_err(|_| ResponseError::CorruptMessage)?;
            if end < pos + BATCH_HEADER || end > records.len() || delta < 0 {
                return Err(ResponseError::CorruptMessage);
            }
            batches.push((pos, end, next.to_be_bytes()));
            next += i64::from(delta) + 1;
            pos = end;
        }
        if batches.is_empty() {
            return Err(ResponseError::InvalidRecord);
        }
        // The patched baseOffset, then the rest of the batch as received: two slices per batch.
        let mut slices: Vec<IoSlice<'_>> = Vec::with_capacity(batches.len() * 2);
        for (start, end, base) in &batches {
            slices.push(IoSlice::new(base));
            slices.push(IoSlice::new(&records[start + 8..*end]));
        }
        let mut rest = &mut slices[..];
        while !rest.is_empty() {
            let n = (&self.file).write_vectored(&rest[..rest.len().min(1024)]).map_err(|e| {
                eprintln!("ceiling_broker: write: {e}");
                ResponseError::KafkaStorageError
            })?;
            if n == 0 {
                return Err(ResponseError::KafkaStorageError);
            }
            IoSlice::advance_slices(&mut rest, n);
        }
        let first = log.next_offset;
        let at = log.end;
        log.batches
            .extend(batches.iter().map(|(start, _, base)| (i64::from_be_bytes(*base), at + *start as u64)));
        log.end += pos as u64;
        log.next_offset = next;
        Ok(first)
    }

    /// Whole batches from `offset`, at most `max` bytes (at least one batch if `min_one`), and the
    /// log end offset.
    fn read(&self, offset: i64, max: usize, min_one: bool, map: bool) -> Result<(Bytes, i64), ResponseError> {
        let (start, end, log_end) = {
            let log = self.log.lock();
            if offset < 0 || offset > log.next_offset {
                return Err(ResponseError::OffsetOutOfRange);
            }
            if offset == log.next_offset {
                return Ok((Bytes::new(), log.next_offset));
            }
            // The batch holding `offset`: the last one whose base offset is <= offset.
            let i = log.batches.partition_point(|(base, _)| *base <= offset).saturating_sub(1);
            let start = log.batches.get(i).ok_or(ResponseError::OffsetOutOfRange)?.1;
            let limit = start.saturating_add(max as u64);
            let end = if log.end <= limit {
                log.end
            } else {
                // The last batch boundary within the limit; else the first batch alone if min_one.
                let k = log.batches.partition_point(|(_, p)| *p <= limit);
                if k > i + 1 {
                    log.batches[k - 1].1
                } else if min_one {
                    log.batches.get(i + 1).map_or(log.end, |b| b.1)
                } else {
                    start
                }
            };
            (start, end, log.next_offset)
        };
        let len = (end - start) as usize;
        if map && len >= MAP_MIN {
            // SAFETY: [start, end) was written before `end` was published under the lock, and the
            // ceiling never rewrites or truncates a file after creating it: the mapped bytes never change.
            let mapped =
                unsafe { memmap2::MmapOptions::new().offset(start).len(len).populate().map(&self.file) };
            match mapped {
                Ok(m) => return Ok((Bytes::from_owner(m), log_end)),
                Err(e) => eprintln!("ceiling_broker: mmap failed, reading instead: {e}"),
            }
        }
        // pread straight into the buffer's uninitialised capacity (no zeroing).
        let mut buf: Vec<u8> = Vec::with_capacity(len);
        while buf.len() < len {
            let at = start + buf.len() as u64;
            let spare = rustix::buffer::spare_capacity(&mut buf);
            let n = rustix::io::pread(&self.file, spare, at).map_err(|e| {
                eprintln!("ceiling_broker: read: {e}");
                ResponseError::KafkaStorageError
            })?;
            if n == 0 {
                return Err(ResponseError::KafkaStorageError);
            }
        }
        buf.truncate(len);
        Ok((Bytes::from(buf), log_end))
    }

    fn log_end(&self) -> i64 {
        self.log.lock().next_offset
    }
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn api_versions(version: i16, supported: bool) -> ApiVersionsResponse {
    let keys = APIS
        .iter()
        .filter_map(|k| versions::served_range(*k).map(|(lo, hi)| (k, lo, hi)))
        .map(|(k, lo, hi)| {
            ApiVersion::default().with_api_key(*k as i16).with_min_version(lo).with_max_version(hi)
        })
        .collect();
    let resp = ApiVersionsResponse::default().with_api_keys(keys);
    if supported || version == 0 {
        resp
    } else {
        resp.with_error_code(ResponseError::UnsupportedVersion.code())
    }
}

fn describe(t: &Topic, version: i16) -> MetadataResponseTopic {
    let partitions = (0..t.partitions.len() as i32)
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(BrokerId(NODE))
                .with_leader_epoch(if version >= 7 { 0 } else { -1 })
                .with_replica_nodes(vec![BrokerId(NODE)])
                .with_isr_nodes(vec![BrokerId(NODE)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(text(&t.name))))
        .with_topic_id(t.id)
        .with_partitions(partitions)
}

fn metadata(b: &Broker, req: MetadataRequest, version: i16) -> MetadataResponse {
    let all = match &req.topics {
        None => true,
        Some(list) => version == 0 && list.is_empty(),
    };
    let topics = if all {
        b.topics.read().values().map(|t| describe(t, version)).collect()
    } else {
        let mut out = Vec::new();
        for t in req.topics.iter().flatten() {
            let found = match &t.name {
                Some(name) => b.topic_or_create(name),
                None => b.topic_by_id(t.topic_id).ok_or(ResponseError::UnknownTopicId),
            };
            out.push(match found {
                Ok(topic) => describe(&topic, version),
                Err(e) => MetadataResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_topic_id(t.topic_id)
                    .with_error_code(e.code()),
            });
        }
        out
    };
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(NODE))
        .with_host(text(&b.host))
        .with_port(b.port);
    MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_cluster_id(Some(text("strom-ceiling")))
        .with_controller_id(BrokerId(NODE))
        .with_topics(topics)
}

fn create_topics(b: &Broker, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let count = if t.num_partitions == -1 { b.default_partitions } else { t.num_partitions };
            let base = CreatableTopicResult::default().with_name(t.name.clone());
            let made = if req.validate_only { Ok(None) } else { b.create(t.name.as_str(), count).map(Some) };
            match made {
                Ok(topic) => base
                    .with_topic_id(topic.map_or(Uuid::nil(), |t| t.id))
                    .with_num_partitions(count)
                    .with_replication_factor(1),
                Err(e) => base.with_error_code(e.code()),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

fn produce(b: &Broker, req: ProduceRequest, version: i16) -> Option<ProduceResponse> {
    let mut appended = false;
    let responses = req
        .topic_data
        .iter()
        .map(|t| {
            let topic = if version >= 13 { b.topic_by_id(t.topic_id) } else { b.topic(&t.name) };
            let partitions = t
                .partition_data
                .iter()
                .map(|p| {
                    let partition =
                        topic.as_ref().and_then(|t| t.partitions.get(usize::try_from(p.index).ok()?));
                    let r = PartitionProduceResponse::default().with_index(p.index);
                    let result = match (partition, &p.records) {
                        (None, _) => Err(ResponseError::UnknownTopicOrPartition),
                        (Some(_), None) => Err(ResponseError::InvalidRecord),
                        (Some(part), Some(records)) => part.append(records),
                    };
                    match result {
                        Ok(base) => {
                            appended = true;
                            r.with_base_offset(base).with_log_start_offset(if version >= 5 { 0 } else { -1 })
                        }
                        Err(e) => r.with_error_code(e.code()).with_base_offset(-1),
                    }
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(t.name.clone())
                .with_topic_id(t.topic_id)
                .with_partition_responses(partitions)
        })
        .collect();
    if appended {
        b.appended.send_modify(|n| *n = n.wrapping_add(1));
    }
    (req.acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

/// One pass over the fetched partitions: the response, the bytes it carries, whether any errored.
fn fetch_pass(b: &Broker, req: &FetchRequest, version: i16) -> (FetchResponse, usize, bool) {
    let mut budget = req.max_bytes.max(0) as usize;
    let (mut total, mut error, mut min_one) = (0usize, false, true);
    let mut responses = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let topic = if version >= 13 { b.topic_by_id(t.topic_id) } else { b.topic(&t.topic) };
        let mut partitions = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let data = PartitionData::default()
                .with_partition_index(p.partition)
                .with_aborted_transactions((req.isolation_level == 1).then(Vec::new))
                // librdkafka needs `Some`, even when empty.
                .with_records(Some(Bytes::new()));
            let partition = topic.as_ref().and_then(|t| t.partitions.get(usize::try_from(p.partition).ok()?));
            let Some(partition) = partition else {
                error = true;
                let code = if version >= 13 {
                    ResponseError::UnknownTopicId
                } else {
                    ResponseError::UnknownTopicOrPartition
                };
                partitions.push(data.with_error_code(code.code()));
                continue;
            };
            let limit = (p.partition_max_bytes.max(0) as usize).min(budget);
            let data = match partition.read(p.fetch_offset, limit, min_one, !b.pread_only) {
                Ok((records, end)) => {
                    if !records.is_empty() {
                        min_one = false;
                        budget = budget.saturating_sub(records.len());
                        total += records.len();
                    }
                    data.with_high_watermark(end).with_last_stable_offset(end).with_records(Some(records))
                }
                Err(e) => {
                    error = true;
                    let end = partition.log_end();
                    data.with_error_code(e.code()).with_high_watermark(end).with_last_stable_offset(end)
                }
            };
            partitions.push(if version >= 5 { data.with_log_start_offset(0) } else { data });
        }
        let entry = FetchableTopicResponse::default().with_partitions(partitions);
        responses.push(if version >= 13 {
            entry.with_topic_id(t.topic_id)
        } else {
            entry.with_topic(t.topic.clone())
        });
    }
    (FetchResponse::default().with_responses(responses), total, error)
}

/// Fetch with long polling: answers once `min_bytes` are there, on an error, or at `max_wait_ms`.
async fn fetch(b: &Broker, req: &FetchRequest, version: i16) -> FetchResponse {
    let mut appends = b.appended.subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    loop {
        appends.borrow_and_update();
        let (resp, bytes, error) = fetch_pass(b, req, version);
        if bytes >= req.min_bytes.max(0) as usize || error || tokio::time::Instant::now() >= deadline {
            return resp;
        }
        if tokio::time::timeout_at(deadline, appends.changed()).await.is_err() {
            return fetch_pass(b, req, version).0;
        }
    }
}

fn list_offsets(b: &Broker, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = b.topic(&t.name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                    let partition = topic
                        .as_ref()
                        .and_then(|t| t.partitions.get(usize::try_from(p.partition_index).ok()?));
                    match partition {
                        None => r.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                        Some(part) => {
                            // -2 earliest, -4 earliest local: 0. Anything else: the log end.
                            let offset = if matches!(p.timestamp, -2 | -4) { 0 } else { part.log_end() };
                            let r = r.with_timestamp(-1).with_offset(offset);
                            if version >= 4 {
                                r.with_leader_epoch(0)
                            } else {
                                r
                            }
                        }
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default().with_name(t.name.clone()).with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

fn offset_for_leader_epoch(b: &Broker, req: OffsetForLeaderEpochRequest) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let topic = b.topic(&t.topic);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = EpochEndOffset::default().with_partition(p.partition);
                    match topic.as_ref().and_then(|t| t.partitions.get(usize::try_from(p.partition).ok()?)) {
                        None => r.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                        Some(part) => r.with_leader_epoch(0).with_end_offset(part.log_end()),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default().with_topic(t.topic.clone()).with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

fn find_coordinator(b: &Broker, req: FindCoordinatorRequest, version: i16) -> FindCoordinatorResponse {
    let resp = FindCoordinatorResponse::default();
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .map(|k| {
                Coordinator::default()
                    .with_key(k.clone())
                    .with_node_id(BrokerId(NODE))
                    .with_host(text(&b.host))
                    .with_port(b.port)
            })
            .collect();
        resp.with_coordinators(coordinators)
    } else {
        resp.with_node_id(BrokerId(NODE)).with_host(text(&b.host)).with_port(b.port)
    }
}

/// Decodes one request frame, answers it: `Ok(None)` sends nothing (acks=0), `Err` closes the connection.
async fn handle(b: &Broker, mut frame: Bytes) -> Result<Option<Vec<Bytes>>, String> {
    let Some(key_version) = be_i32(&frame, 0) else {
        return Err("request shorter than its header".into());
    };
    let (key, version) = ((key_version >> 16) as i16, key_version as i16);
    let key = ApiKey::try_from(key).map_err(|_| format!("unknown api key {key}"))?;
    let served = APIS.contains(&key) && versions::is_served(key, version);
    if key == ApiKey::ApiVersions && !served {
        // Unknown ApiVersions version: a v0 answer with UNSUPPORTED_VERSION and our ranges.
        let corr = be_i32(&frame, 4).unwrap_or(0);
        return encode_response(key, 0, corr, &api_versions(version, false)).map(|f| Some(vec![f]));
    }
    if !served {
        return Err(format!("{key:?} v{version} is not served by the ceiling"));
    }
    let header =
        RequestHeader::decode(&mut frame, key.request_header_version(version)).map_err(|e| e.to_string())?;
    let corr = header.correlation_id;
    macro_rules! decode {
        ($t:ty) => {
            <$t>::decode(&mut frame, version).map_err(|e| format!("malformed {key:?} v{version}: {e}"))?
        };
    }
    let one = |r: Result<Bytes, String>| r.map(|f| Some(vec![f]));
    match key {
        ApiKey::ApiVersions => {
            let _ = decode!(ApiVersionsRequest);
            one(encode_response(key, version, corr, &api_versions(version, true)))
        }
        ApiKey::Metadata => {
            one(encode_response(key, version, corr, &metadata(b, decode!(MetadataRequest), version)))
        }
        ApiKey::CreateTopics => {
            one(encode_response(key, version, corr, &create_topics(b, decode!(CreateTopicsRequest))))
        }
        ApiKey::Produce => match produce(b, decode!(ProduceRequest), version) {
            Some(resp) => one(encode_response(key, version, corr, &resp)),
            None => Ok(None),
        },
        ApiKey::Fetch => {
            let req = decode!(FetchRequest);
            let resp = fetch(b, &req, version).await;
            let records = resp
                .responses
                .iter()
                .flat_map(|t| t.partitions.iter().filter_map(|p| p.records.clone()))
                .collect();
            // The record buffers are referenced, not copied, into the response.
            encode_response_chunks(key, version, corr, &resp, records).map(Some)
        }
        ApiKey::ListOffsets => {
            one(encode_response(key, version, corr, &list_offsets(b, decode!(ListOffsetsRequest), version)))
        }
        ApiKey::OffsetForLeaderEpoch => one(encode_response(
            key,
            version,
            corr,
            &offset_for_leader_epoch(b, decode!(OffsetForLeaderEpochRequest)),
        )),
        ApiKey::FindCoordinator => one(encode_response(
            key,
            version,
            corr,
            &find_coordinator(b, decode!(FindCoordinatorRequest), version),
        )),
        other => Err(format!("{other:?} has no handler")),
    }
}

/// Reads one size-prefixed frame into a buffer of exactly its size. `Ok(None)` at a clean end of stream.
async fn read_frame(stream: &mut TcpStream) -> std::io::Result<Option<Bytes>> {
    let mut size = [0u8; 4];
    match stream.read_exact(&mut size).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = usize::try_from(i32::from_be_bytes(size))
        .ok()
        .filter(|n| *n <= MAX_REQUEST)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad request size"))?;
    let mut buf = BytesMut::with_capacity(len);
    while buf.len() < len {
        let want = len - buf.len();
        if stream.read_buf(&mut (&mut buf).limit(want)).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(Some(buf.freeze()))
}

/// Writes a response made of chunks with vectored writes.
async fn write_chunks(stream: &mut TcpStream, chunks: &[Bytes]) -> std::io::Result<()> {
    if let [one] = chunks {
        return stream.write_all(one).await;
    }
    let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|c| IoSlice::new(c)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = stream.write_vectored(&rest[..rest.len().min(1024)]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

/// Logs why a connection ends, unless the peer simply went away.
fn closing(e: &std::io::Error) {
    use std::io::ErrorKind::{BrokenPipe, ConnectionReset, UnexpectedEof};
    if !matches!(e.kind(), BrokenPipe | ConnectionReset | UnexpectedEof) {
        eprintln!("ceiling_broker: closing connection: {e}");
    }
}

async fn serve(b: Arc<Broker>, mut stream: TcpStream) {
    loop {
        let frame = match read_frame(&mut stream).await {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => return closing(&e),
        };
        match handle(&b, frame).await {
            Ok(None) => {}
            Ok(Some(chunks)) => {
                if let Err(e) = write_chunks(&mut stream, &chunks).await {
                    return closing(&e);
                }
            }
            Err(reason) => {
                eprintln!("ceiling_broker: closing connection: {reason}");
                return;
            }
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: ceiling_broker --listen HOST:PORT --data-dir DIR [--partitions N] [--pread]");
    std::process::exit(2);
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let (mut listen, mut dir, mut partitions, mut pread_only) = (None, None, 1i32, false);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--pread" {
            pread_only = true;
            continue;
        }
        let value = args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--listen" => listen = Some(value),
            "--data-dir" => dir = Some(PathBuf::from(value)),
            "--partitions" => partitions = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    let (Some(listen), Some(dir)) = (listen, dir) else { usage() };
    std::fs::create_dir_all(&dir)?;
    let listener = TcpListener::bind(&listen).await?;
    let addr = listener.local_addr()?;
    let broker = Arc::new(Broker {
        dir,
        pread_only,
        host: addr.ip().to_string(),
        port: i32::from(addr.port()),
        default_partitions: partitions,
        topics: RwLock::new(HashMap::new()),
        appended: watch::channel(0).0,
    });
    eprintln!("ceiling_broker: listening on {addr} (a benchmark ceiling, not a broker)");
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("ceiling_broker: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(broker.clone(), stream));
    }
}
