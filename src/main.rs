//! `strom`: parse the command line, load the configuration, run the broker.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use strom::config::{CliOverrides, Config};

/// A Kafka-wire-compatible broker. With no arguments: reads config/strom.yaml if present, listens on
/// 127.0.0.1:9092 and keeps data under ./data.
#[derive(Parser, Debug)]
#[command(name = "strom", version, after_help = AFTER_HELP)]
struct Cli {
    /// Configuration file, YAML or Java properties (`.properties`, as Kafka's server.properties); Kafka key
    /// names. Default: config/strom.yaml when present.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (Kafka's `listeners`: HOST:PORT, or NAME://HOST:PORT,…).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Address given to clients (Kafka's `advertised.listeners`). Default: the listen address.
    #[arg(long, value_name = "HOST:PORT")]
    advertised: Option<String>,
    /// Directory for metadata and partition data (Kafka's `log.dirs`).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// This broker's id (Kafka's `node.id`).
    #[arg(long, value_name = "N")]
    node_id: Option<i32>,
}

/// Where the rest of the configuration comes from, shown under `--help`.
const AFTER_HELP: &str = "\
Configuration: every setting is a Kafka broker key (num.partitions, log.retention.ms, ...). config/strom.yaml
lists each one, commented, with its default; the README's Configuration section is the reference. Sources, later
ones winning: the config file, STROM_<KEY> environment variables (num.partitions -> STROM_NUM_PARTITIONS), the
flags above. RUST_LOG sets the log filter (e.g. RUST_LOG=debug or RUST_LOG=strom::group=debug); without it the
key log.level applies (default info).";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = CliOverrides {
        config: cli.config,
        listen: cli.listen,
        advertised: cli.advertised,
        data_dir: cli.data_dir,
        node_id: cli.node_id,
    };
    let config = match Config::load(&overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("strom: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log_level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("strom: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(strom::broker::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, printed whatever the log filter (a tracing line would repeat it).
            eprintln!("strom: {e}");
            ExitCode::FAILURE
        }
    }
}
