//! This process's memory as Linux reports it (the broker under test runs in it).

/// Resident set size of this process (the broker runs in it), in kB.
pub fn rss_kb() -> u64 {
    proc_status_kb("VmRSS:")
}

/// Peak resident set size since start or the last [`reset_peak_rss`], in kB.
pub fn peak_rss_kb() -> u64 {
    proc_status_kb("VmHWM:")
}

/// Resets the peak RSS counter (Linux `clear_refs` 5); returns false where not permitted.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn proc_status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} not in /proc/self/status"))
}
