//! Child processes for crash tests.

use std::path::PathBuf;

/// An example binary of this crate (a child process a crash test kills): `cargo build --examples` puts
/// it next to the tests (scripts/test does that); otherwise it is built here, once per test binary, in
/// a target directory of its own so no build lock is shared.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let target = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let built = target.join("examples").join(name);
    if built.exists() {
        return built;
    }
    let own_target = target.join(format!("{}-build", name.replace('_', "-")));
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--example", name, "--target-dir"])
        .arg(&own_target)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo");
    assert!(status.success(), "building examples/{name} failed");
    own_target.join("debug").join("examples").join(name)
}
