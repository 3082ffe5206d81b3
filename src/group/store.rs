//! The group coordinator's log: the internal topic `__consumer_offsets` (Kafka's record format,
//! [`super::log_format`]; the mechanics are the shared [`TopicRecordLog`]'s), or an in-memory log
//! in tests.
//!
//! Data directories written before `__consumer_offsets` existed hold the log in
//! `<data>/__strom_groups/` (a [`FileRecordLog`]); [`migrate`] moves it into the topic at start-up.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::model::GroupRecord;
use super::{log_format, CoordinatorConfig, GroupCoordinator};
use crate::cluster::Cluster;
use crate::coordinator_log::topic::{Entry, Marker, Place, TopicCodec, TopicRecordLog};
use crate::coordinator_log::{FileRecordLog, MemoryRecordLog};

pub use crate::coordinator_log::RecordLog;

/// The internal topic's name.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// The directory of the group log of data directories written before `__consumer_offsets`.
pub const GROUP_LOG_DIR: &str = "__strom_groups";

/// Where the group coordinator persists its records.
pub type GroupLog = dyn RecordLog<GroupRecord>;
/// The file-backed group log of older data directories (`<data>/`[`GROUP_LOG_DIR`]).
pub type FileGroupLog = FileRecordLog<GroupRecord>;
/// An in-memory group log (tests).
pub type MemoryGroupLog = MemoryRecordLog<GroupRecord>;
/// The group log in `__consumer_offsets`.
pub type TopicGroupLog = TopicRecordLog<GroupCodec>;

/// [`GroupRecord`]s as records of `__consumer_offsets`.
pub struct GroupCodec;

impl TopicCodec for GroupCodec {
    type Record = GroupRecord;

    fn topic(&self) -> &'static str {
        OFFSETS_TOPIC
    }

    /// Kafka's `GroupCoordinatorService.groupMetadataTopicConfigs`: compacted, the producer's
    /// compression, 100 MiB segments (`offsets.topic.segment.bytes`).
    fn configs(&self) -> Vec<(String, Option<String>)> {
        vec![
            ("cleanup.policy".into(), Some("compact".into())),
            ("compression.type".into(), Some("producer".into())),
            ("segment.bytes".into(), Some("104857600".into())),
        ]
    }

    fn encode(&self, r: &GroupRecord, now_ms: i64) -> Option<Entry> {
        match r {
            GroupRecord::TxnEnd { producer_id, producer_epoch, commit, partition } => {
                Some(Entry::Marker(Marker {
                    partition: (*partition)?,
                    producer_id: *producer_id,
                    producer_epoch: *producer_epoch,
                    commit: *commit,
                }))
            }
            GroupRecord::Offset { group, .. } | GroupRecord::Metadata { group, .. } => {
                let (key, value) = log_format::encode(r, now_ms)?;
                Some(Entry::Data { place: Place::Key(group.clone()), key, value, producer: None })
            }
            GroupRecord::TxnOffset { group, producer_id, producer_epoch, .. } => {
                let (key, value) = log_format::encode(r, now_ms)?;
                let producer = Some((*producer_id, *producer_epoch));
                Some(Entry::Data { place: Place::Key(group.clone()), key, value, producer })
            }
        }
    }

    fn decode(
        &self,
        key: &Bytes,
        value: Option<&Bytes>,
        producer: Option<(i64, i16)>,
    ) -> Option<GroupRecord> {
        log_format::decode(key, value, producer)
    }

    fn decode_marker(&self, m: Marker) -> Option<GroupRecord> {
        let (producer_id, producer_epoch, commit) = (m.producer_id, m.producer_epoch, m.commit);
        Some(GroupRecord::TxnEnd { producer_id, producer_epoch, commit, partition: Some(m.partition) })
    }
}

/// The group log over `cluster`'s `__consumer_offsets` with `partitions` partitions.
pub fn open(cluster: Arc<Cluster>, partitions: i32, runtime: tokio::runtime::Handle) -> TopicGroupLog {
    TopicRecordLog::new(cluster, GroupCodec, partitions, runtime)
}

/// Moves the state in `<data>/`[`GROUP_LOG_DIR`], if there is one, into `log` (Kafka's format in
/// `__consumer_offsets`): replays it, appends its live records to the topic, syncs them, and only
/// then removes the directory (and syncs its parent). A crash before the removal runs it again at
/// the next start: appending the same live records twice changes nothing on replay (the last record
/// of a key wins). Returns the number of records moved. Blocking.
pub fn migrate(data_dir: &Path, log: &TopicGroupLog, config: &CoordinatorConfig) -> std::io::Result<usize> {
    let dir = data_dir.join(GROUP_LOG_DIR);
    if !dir.is_dir() {
        return Ok(0);
    }
    let old = Arc::new(FileGroupLog::open(&dir)?);
    let live = GroupCoordinator::open(old, config.clone(), crate::log::now_ms())?.live_records();
    log.append(&live)?;
    log.sync()?;
    std::fs::remove_dir_all(&dir)?;
    std::fs::File::open(data_dir)?.sync_all()?;
    tracing::info!(records = live.len(), from = %dir.display(), "group log moved into {OFFSETS_TOPIC}");
    Ok(live.len())
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;
    use std::io::Write;

    use crate::coordinator_log::RecordLog;
    use crate::group::model::{CommittedOffset, GroupRecord};
    use crate::group::store::{FileGroupLog, GROUP_LOG_DIR};

    fn commit(offset: i64) -> GroupRecord {
        GroupRecord::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            value: Some(CommittedOffset { offset, leader_epoch: -1, metadata: String::new(), commit_ms: 0 }),
        }
    }

    #[test]
    fn replays_snapshot_then_wal_and_truncates_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let log = FileGroupLog::open(&dir.path().join(GROUP_LOG_DIR)).unwrap();
            log.append(&[commit(1), commit(2)]).unwrap();
            log.compact(&[commit(2)]).unwrap();
            log.append(&[commit(3)]).unwrap();
        }
        // A torn frame at the end.
        let wal = dir.path().join("__strom_groups/wal");
        let mut f = OpenOptions::new().append(true).open(&wal).unwrap();
        f.write_all(&[0, 0, 0, 50, 1, 2, 3]).unwrap();
        let log = FileGroupLog::open(&dir.path().join(GROUP_LOG_DIR)).unwrap();
        let records = log.replay().unwrap();
        assert_eq!(records, vec![commit(2), commit(3)]);
        log.append(&[commit(4)]).unwrap();
        assert_eq!(
            FileGroupLog::open(&dir.path().join(GROUP_LOG_DIR)).unwrap().replay().unwrap(),
            vec![commit(2), commit(3), commit(4)]
        );
    }
}
