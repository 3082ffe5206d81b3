//! DescribeLogDirs (v1–v4) and AlterReplicaLogDirs (v1–v2): strom keeps every partition in its one
//! data directory, Kafka's single `log.dirs` entry.
//!
//! As Kafka's `ReplicaManager.describeLogDirs`: the log dir by its absolute path, each partition with
//! its size (bytes of its segments), offset lag 0 (the high watermark is the log end offset on a single
//! replica: Kafka's `max(hw − leo, 0)`) and `is_future_key` false (a future replica only exists while a
//! replica moves between dirs); v4 adds the filesystem's total and usable bytes. Partitions asked for
//! that do not exist are left out, as topics left with no partition are.
//!
//! As Kafka's `ReplicaManager.alterReplicaLogDirs`: a destination that is not a configured log dir is
//! LOG_DIR_NOT_FOUND (checked first); a partition this broker does not host is
//! UNKNOWN_TOPIC_OR_PARTITION; moving a partition to the dir it is already in succeeds and does
//! nothing. The request's partitions form a map, so a partition named twice is answered once, for
//! the last dir given.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{
    AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse, DescribeLogDirsRequest, DescribeLogDirsResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::ApiContext;
use crate::log::file_io::disk_space;

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// Answers DescribeLogDirs: the one log dir with the partitions asked for (all when `topics` is null).
pub async fn describe_log_dirs(
    ctx: &ApiContext,
    req: DescribeLogDirsRequest,
    version: i16,
) -> DescribeLogDirsResponse {
    let logs = &ctx.cluster.logs;
    let wanted: Option<BTreeMap<&str, Vec<i32>>> =
        req.topics.as_ref().map(|ts| ts.iter().map(|t| (t.topic.0.as_str(), t.partitions.clone())).collect());
    let mut topics: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for (tp, size) in logs.partition_sizes() {
        let asked = wanted
            .as_ref()
            .is_none_or(|w| w.get(tp.topic.as_str()).is_some_and(|ps| ps.contains(&tp.partition)));
        if asked {
            topics.entry(tp.topic).or_default().push(
                DescribeLogDirsPartition::default()
                    .with_partition_index(tp.partition)
                    .with_partition_size(i64::try_from(size).unwrap_or(i64::MAX))
                    .with_offset_lag(0)
                    .with_is_future_key(false),
            );
        }
    }
    let dir = logs.log_dir();
    let mut result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.to_string_lossy().into_owned()))
        .with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    DescribeLogDirsTopic::default().with_name(topic_name(&name)).with_partitions(partitions)
                })
                .collect(),
        );
    if version >= 4 {
        let space = tokio::task::spawn_blocking(move || disk_space(&dir)).await;
        match space {
            Ok(Ok((total, usable))) => {
                result.total_bytes = i64::try_from(total).unwrap_or(i64::MAX);
                result.usable_bytes = i64::try_from(usable).unwrap_or(i64::MAX);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "reading the log dir's filesystem size failed"),
            Err(e) => tracing::warn!(error = %e, "reading the log dir's filesystem size failed"),
        }
    }
    DescribeLogDirsResponse::default().with_results(vec![result])
}

/// Answers AlterReplicaLogDirs: see the module comment; nothing ever moves.
pub async fn alter_replica_log_dirs(
    ctx: &ApiContext,
    req: AlterReplicaLogDirsRequest,
    _version: i16,
) -> AlterReplicaLogDirsResponse {
    let log_dir = ctx.cluster.logs.log_dir();
    let log_dir = log_dir.to_string_lossy();
    // Kafka's request is a map partition → dir: the last dir named for a partition wins.
    let mut dirs: IndexMap<(TopicName, i32), &StrBytes> = IndexMap::new();
    for dir in &req.dirs {
        for t in &dir.topics {
            for p in &t.partitions {
                dirs.insert((t.name.clone(), *p), &dir.path);
            }
        }
    }
    let snapshot = ctx.cluster.snapshot();
    let mut results: IndexMap<TopicName, Vec<AlterReplicaLogDirPartitionResult>> = IndexMap::new();
    for ((topic, partition), path) in dirs {
        let error = if path.as_str() != log_dir {
            ResponseError::LogDirNotFound.code()
        } else if !snapshot.has_partition(&topic, partition) {
            ResponseError::UnknownTopicOrPartition.code()
        } else {
            0
        };
        results.entry(topic).or_default().push(
            AlterReplicaLogDirPartitionResult::default()
                .with_partition_index(partition)
                .with_error_code(error),
        );
    }
    AlterReplicaLogDirsResponse::default().with_results(
        results
            .into_iter()
            .map(|(topic, partitions)| {
                AlterReplicaLogDirTopicResult::default().with_topic_name(topic).with_partitions(partitions)
            })
            .collect(),
    )
}
