//! One broker per data directory: a second strom on the directory of a running one refuses to start,
//! in one line naming the directory and the PID holding it, and the running one keeps serving. Once
//! the first has stopped, the directory can be opened again.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use strom::broker::Broker;

/// The strom binary on `listen` and `data_dir`, run in `cwd` (no config file there) with `RUST_LOG`
/// `log`, its stderr piped.
fn strom(listen: &str, data_dir: &str, cwd: &std::path::Path, log: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strom"));
    c.args(["--listen", listen, "--data-dir", data_dir])
        .current_dir(cwd)
        .env("RUST_LOG", log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

#[tokio::test]
async fn a_second_broker_on_the_same_data_directory_refuses_to_start() {
    let mut first = TestBroker::start().await;
    let mut c = first.client().await;
    create_topic(&mut c, "locked", 1).await;
    let dir = first.data_dir().display().to_string();
    let pid = std::process::id().to_string();

    // In this process (a second Broker value on the same directory).
    let err = match Broker::start(test_config(first.data_dir(), &[])).await {
        Ok(_) => panic!("a second broker started on {dir}"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains(&dir) && err.contains(&format!("pid {pid}")), "{err}");
    assert!(!err.contains('\n'), "one line: {err}");

    // As another process: the strom binary exits with the same line on stderr.
    let cwd = tempfile::tempdir().expect("tempdir");
    let mut child = strom("127.0.0.1:0", &dir, cwd.path(), "info").spawn().expect("spawn strom");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for strom") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("a second strom kept running on {dir}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert!(!status.success(), "exit status {status}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains(&dir) && lines[0].contains(&format!("pid {pid}")), "{stderr}");
    println!("second strom: {}", lines[0]);

    // The first broker is untouched and keeps serving.
    let p = produce(&mut c, "locked", 0, record_batch(&["still mine"]), 9).await;
    assert_eq!(p.error_code, 0);

    // A stop releases the lock: the same directory opens again.
    drop(c);
    first.restart().await;
    let mut c = first.client().await;
    assert_eq!(log_end(&mut c, "locked", 0).await, 1);
    drop(c);
    first.stop().await;
}

/// A start that fails after the data directory was created (here: the port is taken) leaves no new
/// directory behind, as Kafka creates nothing when it refuses to start; a new empty directory is not
/// reported as logs to recover.
#[tokio::test]
async fn a_failed_start_leaves_no_new_directory_and_an_empty_one_is_not_recovered() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("new").join("data");
    let cwd = tempfile::tempdir().expect("tempdir");
    let run = |listen: String| {
        strom(&listen, &dir.display().to_string(), cwd.path(), "info").spawn().expect("spawn strom")
    };
    let out = run(format!("127.0.0.1:{port}")).wait_with_output().expect("strom exits");
    assert!(!out.status.success());
    assert!(!tmp.path().join("new").exists(), "no directory left: {}", String::from_utf8_lossy(&out.stderr));

    // A new directory: started, then stopped; its log has no recovery line.
    drop(taken);
    let mut child = run("127.0.0.1:0".into());
    let mut log = Vec::new();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stderr.take().expect("stderr")));
    for line in lines.by_ref() {
        let line = line.expect("log line");
        let started = line.contains("strom started");
        log.push(line);
        if started {
            break;
        }
    }
    rustix::process::kill_process(rustix::process::Pid::from_child(&child), rustix::process::Signal::TERM)
        .expect("SIGTERM");
    log.extend(lines.map_while(Result::ok));
    child.wait().expect("strom exits");
    let log = log.join("\n");
    assert!(log.contains("strom started"), "{log}");
    assert!(!log.contains("no clean-shutdown marker"), "{log}");
}

/// A data directory path that is a regular file is refused in one line that says so and names the
/// file (it said "File exists" from mkdir before), and the file is left as it was.
#[test]
fn a_data_dir_that_is_a_file_is_refused_in_one_line_naming_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("data");
    std::fs::write(&file, b"not a directory").expect("write");
    let out =
        strom("127.0.0.1:0", &file.display().to_string(), tmp.path(), "warn").output().expect("strom exits");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains(&format!("{} is a file, not a directory", file.display())), "{stderr}");
    assert_eq!(std::fs::read(&file).expect("read"), b"not a directory");
}

/// `--help` names where the rest of the configuration comes from: the config file, `STROM_<KEY>`
/// variables and `RUST_LOG`.
#[test]
fn help_names_the_config_file_the_environment_and_rust_log() {
    let out = Command::new(env!("CARGO_BIN_EXE_strom")).arg("--help").output().expect("strom --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in ["config/strom.yaml", "STROM_<KEY>", "STROM_NUM_PARTITIONS", "RUST_LOG", "log.level"] {
        assert!(help.contains(needle), "--help lacks {needle}: {help}");
    }
}
