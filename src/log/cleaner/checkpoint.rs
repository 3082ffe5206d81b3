//! `cleaner-offset-checkpoint` in the data directory: per partition, the offset below which the
//! log is clean (Kafka's `OffsetCheckpointFile` format, read and written as Kafka does):
//!
//! ```text
//! 0                      version
//! 2                      number of entries
//! topic 0 1234           topic, partition, first dirty offset (space separated)
//! other-topic 3 0
//! ```
//!
//! Written whole to `cleaner-offset-checkpoint.tmp`, fsynced, renamed over the file and the
//! directory fsynced, so a crash leaves the old or the new file. A missing or unreadable file means
//! every compacted log is treated as dirty from its start: cleaning again is harmless.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;

use crate::durable_file;
use crate::log::TopicPartition;

/// The file's name inside the data directory.
pub const FILE_NAME: &str = "cleaner-offset-checkpoint";

/// Reads the checkpoint; an absent or malformed file gives an empty map (with a warning).
pub fn read(data_dir: &Path) -> BTreeMap<TopicPartition, i64> {
    let path = data_dir.join(FILE_NAME);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return BTreeMap::new(),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "ignoring unreadable cleaner checkpoint");
            return BTreeMap::new();
        }
    };
    parse(&text).unwrap_or_else(|| {
        tracing::warn!(path = %path.display(), "ignoring malformed cleaner checkpoint");
        BTreeMap::new()
    })
}

fn parse(text: &str) -> Option<BTreeMap<TopicPartition, i64>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut out = BTreeMap::new();
    for line in lines.by_ref().take(count) {
        let mut parts = line.split(' ');
        let (topic, partition, offset) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        out.insert(TopicPartition::new(topic, partition.parse().ok()?), offset.parse().ok()?);
    }
    (out.len() == count).then_some(out)
}

/// Writes the checkpoint atomically and durably.
pub fn write(data_dir: &Path, entries: &BTreeMap<TopicPartition, i64>) -> io::Result<()> {
    let mut body = format!("0\n{}\n", entries.len());
    for (tp, offset) in entries {
        body.push_str(&format!("{} {} {offset}\n", tp.topic, tp.partition));
    }
    let path = data_dir.join(FILE_NAME);
    let tmp = data_dir.join(format!("{FILE_NAME}.tmp"));
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(body.as_bytes())?;
        durable_file::fsync(&f)?;
    }
    fs::rename(&tmp, &path)?;
    durable_file::sync_dir(data_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_kafkas_format() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = BTreeMap::new();
        m.insert(TopicPartition::new("a", 0), 12);
        m.insert(TopicPartition::new("b-c", 3), 0);
        write(dir.path(), &m).unwrap();
        let text = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(text, "0\n2\na 0 12\nb-c 3 0\n");
        assert_eq!(read(dir.path()), m);
        fs::write(dir.path().join(FILE_NAME), "0\n3\na 0 12\n").unwrap();
        assert!(read(dir.path()).is_empty(), "a short file is not trusted");
    }
}
