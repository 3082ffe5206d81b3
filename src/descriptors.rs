//! File descriptors: the soft `RLIMIT_NOFILE` is raised to the hard limit at start, and the limit is
//! split between client connections and the log.
//!
//! Every client connection holds one descriptor. The log holds up to its file cache's capacity, and
//! the broker a few more (standard streams, the runtime, the listener, the group log, short-lived
//! opens for checkpoints and directory fsyncs). Connections are capped at the limit minus a reserve
//! for all of that, so a crowd of clients cannot starve the log: without the cap a segment roll fails
//! with `EMFILE`. Should the log still run short (an explicit `max.connections` above the budget, or a
//! system-wide `ENFILE`), its writes fail with a retriable error and succeed again once descriptors are
//! free (see [`crate::log::partition`]).

use crate::log::file_cache;

/// Descriptors kept for everything but the log's file cache and client connections.
const SPARE: usize = 64;
/// Smallest file cache the log gets, however low the limit.
const MIN_LOG_FILES: usize = 16;
/// Taken as the limit when there is none (`RLIM_INFINITY`).
const UNLIMITED: u64 = 1 << 20;

/// How the descriptor limit is shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The soft `RLIMIT_NOFILE` the broker runs with (descriptors).
    pub limit: u64,
    /// Files the log keeps open at once (its file cache's capacity).
    pub log_files: usize,
    /// Descriptors not given to client connections: `log_files` plus a spare for the broker's own.
    pub reserve: usize,
    /// Client connections at once when `max.connections` is not set: `limit - reserve`, at least 1.
    pub max_connections: usize,
}

impl Budget {
    /// Shares out `limit` descriptors: a quarter for the log's files (16 to 4,096), a spare of 64 for
    /// the broker's own, the rest for connections.
    pub fn for_limit(limit: u64) -> Budget {
        let n = usize::try_from(limit).unwrap_or(usize::MAX);
        let log_files = (n / 4).clamp(MIN_LOG_FILES, file_cache::DEFAULT_CAPACITY);
        let reserve = log_files + SPARE;
        Budget { limit, log_files, reserve, max_connections: n.saturating_sub(reserve).max(1) }
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit (logging both) and returns the soft limit in
/// effect afterwards. If raising fails, the broker runs with the limit it was given.
pub fn raise_limit() -> u64 {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let before = getrlimit(Resource::Nofile);
    let soft = before.current.unwrap_or(UNLIMITED);
    // No hard limit: Linux still caps descriptors at fs.nr_open (1,048,576 by default).
    let hard = before.maximum.unwrap_or(UNLIMITED);
    if soft >= hard {
        tracing::info!(soft, hard, "open-file limit (RLIMIT_NOFILE)");
        return soft;
    }
    match setrlimit(Resource::Nofile, Rlimit { current: Some(hard), maximum: before.maximum }) {
        Ok(()) => {
            tracing::info!(
                soft_before = soft,
                hard,
                soft = hard,
                "raised the open-file limit (RLIMIT_NOFILE)"
            );
            hard
        }
        Err(e) => {
            tracing::warn!(soft, hard, error = %e, "cannot raise the open-file limit (RLIMIT_NOFILE)");
            soft
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_keeps_a_reserve_and_connections_get_the_rest() {
        let b = Budget::for_limit(256);
        assert_eq!((b.log_files, b.reserve, b.max_connections), (64, 128, 128));
        let b = Budget::for_limit(1024);
        assert_eq!((b.log_files, b.reserve, b.max_connections), (256, 320, 704));
        let b = Budget::for_limit(1 << 20);
        assert_eq!((b.log_files, b.max_connections), (file_cache::DEFAULT_CAPACITY, (1 << 20) - 4096 - 64));
        // Absurdly low limits still give the log its minimum and allow one connection.
        let b = Budget::for_limit(20);
        assert_eq!((b.log_files, b.max_connections), (MIN_LOG_FILES, 1));
    }

    #[test]
    fn raising_never_lowers_the_limit() {
        let before =
            rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(UNLIMITED);
        assert!(raise_limit() >= before);
    }
}
