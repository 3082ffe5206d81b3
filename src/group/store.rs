//! The group coordinator's internal log: a [`crate::coordinator_log`] of [`GroupRecord`]s under
//! `<data>/__strom_groups/`.

use super::model::GroupRecord;
use crate::coordinator_log::{FileRecordLog, MemoryRecordLog};

pub use crate::coordinator_log::RecordLog;

/// The directory of the group log under the data directory.
pub const GROUP_LOG_DIR: &str = "__strom_groups";

/// Where the group coordinator persists its records.
pub type GroupLog = dyn RecordLog<GroupRecord>;
/// The file-backed group log (open it at `<data>/`[`GROUP_LOG_DIR`]).
pub type FileGroupLog = FileRecordLog<GroupRecord>;
/// An in-memory group log (tests).
pub type MemoryGroupLog = MemoryRecordLog<GroupRecord>;

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
