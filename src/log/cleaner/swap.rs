//! Swapping a cleaned segment in for the segments it replaces, atomically across a crash (Kafka's
//! `.cleaned` → `.swap` → rename protocol, `UnifiedLog.replaceSegments` and `LogLoader`'s recovery).
//!
//! Files of one swap, for a group of old segments whose first base offset is `B` (20 digits):
//!
//! - `B.log.cleaned`, `B.txnindex.cleaned`: written and fsynced by the cleaner; never read.
//! - `B.swap-bases`: the base offsets of the old segments being replaced, written durably (CRC'd,
//!   [`crate::durable_file::write_atomic`]) before any rename.
//! - `B.txnindex.swap`, then `B.log.swap`: the renamed cleaned files. The rename of `B.log.swap` is
//!   the commit point: from then on the new segment replaces the old ones.
//!
//! Then the old segments' files are deleted, `B.txnindex.swap` and `B.log.swap` are renamed to their
//! final names (the `.log` last), and `B.swap-bases` is removed. The new segment's `.index` and
//! `.timeindex` are rebuilt by reading it (CRC32C of every batch checked).
//!
//! A crash can leave: `.cleaned` files (no commit: deleted at open, the old segments stay); a
//! `B.log.swap` (committed: recovery deletes the old segments named in `B.swap-bases`, renames the
//! swap files and rebuilds the indexes); a `B.swap-bases` without `B.log.swap` (the swap finished:
//! removed). Either the old segments or the new one are read afterwards, never a mix.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::durable_file;
use crate::log::file_cache::FileCache;
use crate::log::segment::{file_stem, Segment};
use crate::log::txn_index::{self, TxnIndex};

const CLEANED: &str = ".cleaned";
const SWAP: &str = ".swap";
const BASES: &str = "swap-bases";

/// Paths of the new segment at `base` in `dir`: its `.log` and `.txnindex`.
fn final_paths(dir: &Path, base: i64) -> (PathBuf, PathBuf) {
    let stem = file_stem(base);
    (dir.join(format!("{stem}.log")), TxnIndex::path_for(dir, &stem))
}

fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn bases_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{}.{BASES}", file_stem(base)))
}

/// Where the cleaner writes the new segment's `.log` and `.txnindex` for the group starting at `base`.
pub fn cleaned_paths(dir: &Path, base: i64) -> (PathBuf, PathBuf) {
    let (log, txn) = final_paths(dir, base);
    (with_suffix(&log, CLEANED), with_suffix(&txn, CLEANED))
}

fn remove_if_present(p: &Path) -> io::Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn rename_if_present(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Discards the cleaned files of an abandoned clean of the group at `base`.
pub fn discard(dir: &Path, base: i64) {
    let (log, txn) = cleaned_paths(dir, base);
    let _ = remove_if_present(&log);
    let _ = remove_if_present(&txn);
}

/// Commits the cleaned files of the group at `base` (already fsynced) in place of the segments
/// `old_bases` (which include `base`). On return the new segment's `.log` and `.txnindex` are in
/// place (indexes not yet rebuilt). An error before the commit point leaves the old segments; one
/// after it is finished by [`recover`] at the next open.
pub fn commit(dir: &Path, files: &FileCache, base: i64, old_bases: &[i64]) -> io::Result<()> {
    let (cleaned_log, cleaned_txn) = cleaned_paths(dir, base);
    let (log, txn) = final_paths(dir, base);
    let (swap_log, swap_txn) = (with_suffix(&log, SWAP), with_suffix(&txn, SWAP));
    durable_file::write_atomic(&bases_path(dir, base), &old_bases.to_vec())?;
    rename_if_present(&cleaned_txn, &swap_txn)?;
    fs::rename(&cleaned_log, &swap_log)?;
    durable_file::sync_dir(dir)?;
    finish(dir, files, base, old_bases)
}

/// The steps after the commit point: delete the old segments, rename the swap files, forget the marker.
fn finish(dir: &Path, files: &FileCache, base: i64, old_bases: &[i64]) -> io::Result<()> {
    let (log, txn) = final_paths(dir, base);
    for b in old_bases {
        Segment::delete_files(dir, *b, files)?;
    }
    rename_if_present(&with_suffix(&txn, SWAP), &txn)?;
    fs::rename(with_suffix(&log, SWAP), &log)?;
    durable_file::sync_dir(dir)?;
    remove_if_present(&bases_path(dir, base))
}

/// Completes or rolls back swaps a crash interrupted (called before the segments are listed).
/// Returns the base offsets of segments swapped in here (their indexes must be rebuilt).
pub fn recover(dir: &Path, files: &FileCache) -> io::Result<Vec<i64>> {
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    names.sort();
    let mut swapped = Vec::new();
    for name in &names {
        let Some(base) = name.strip_suffix(".log.swap").and_then(parse_stem) else {
            continue;
        };
        match durable_file::read_checked::<Vec<i64>>(&bases_path(dir, base)) {
            Ok(Some(old)) => {
                tracing::info!(dir = %dir.display(), base, "completing a cleaned-segment swap");
                finish(dir, files, base, &old)?;
                swapped.push(base);
            }
            other => {
                // Cannot happen (the list is durable before the rename): keep the old segments.
                tracing::error!(dir = %dir.display(), base, result = ?other.map(|_| ()),
                    "swap file without its list of replaced segments; discarding the swap");
                remove_if_present(&dir.join(name))?;
            }
        }
    }
    for name in &names {
        let path = dir.join(name);
        let txn_swap = name.strip_suffix(&format!(".{}{SWAP}", txn_index::SUFFIX));
        if name.ends_with(CLEANED) || txn_swap.is_some() {
            remove_if_present(&path)?;
        } else if let Some(base) = name.strip_suffix(&format!(".{BASES}")).and_then(parse_stem) {
            if !swapped.contains(&base) {
                remove_if_present(&path)?;
            }
        }
    }
    Ok(swapped)
}

fn parse_stem(stem: &str) -> Option<i64> {
    (stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit())).then(|| stem.parse().ok()).flatten()
}
