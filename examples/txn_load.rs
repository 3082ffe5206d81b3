//! A transaction load generator for `scripts/bench`: small transactions as fast as a broker ends them.
//!
//! ```text
//! txn_load --bootstrap 127.0.0.1:PORT --topic T [--partitions 16] [--txn-partitions 1] [--transactions 2000]
//!          [--connections 4] [--record-size 1024]
//! ```
//!
//! Each of `--connections` producers (one connection each, its own transactional id; FindCoordinator
//! and InitProducerId first, untimed) runs transactions
//! one after the other: AddPartitionsToTxn (v3) of `--txn-partitions` partitions (producer `c` uses
//! partitions `c*K .. c*K+K` modulo `--partitions`), one Produce (v9, acks=all) holding one
//! transactional batch of one record per partition, EndTxn (v3, commit). That is the request sequence
//! of a transactions-v1 client (librdkafka, or the Java client without `transaction.version` 2), with
//! the Java client's 20 ms retry of an AddPartitionsToTxn answered CONCURRENT_TRANSACTIONS. The
//! batches are built in advance; only their sequence numbers (and so CRC32C) change per transaction.
//!
//! Every answer must be a success (exit status 1 otherwise). The last line printed is
//! `committed N transactions of K partitions in T ms: R transactions/s`.

mod load;

use std::net::TcpStream;
use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, EndTxnRequest, EndTxnResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest, InitProducerIdResponse,
    ProduceRequest, ProduceResponse, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use strom::log::batch::testing::{batch_with, record};

struct Args {
    bootstrap: String,
    topic: String,
    partitions: i32,
    txn_partitions: i32,
    transactions: u64,
    connections: i32,
    record_size: usize,
}

fn usage(why: &str) -> ! {
    load::usage(
        &format!("txn_load: {why}"),
        "txn_load --bootstrap HOST:PORT --topic T [--partitions N] [--txn-partitions K] [--transactions N] \
         [--connections N] [--record-size N]",
    )
}

fn parse_args() -> Args {
    let mut a = Args {
        bootstrap: String::new(),
        topic: String::new(),
        partitions: 16,
        txn_partitions: 1,
        transactions: 2000,
        connections: 4,
        record_size: 1024,
    };
    for (flag, value) in load::flag_pairs(usage) {
        let num = |v: &str| load::number(&flag, v, usage);
        match flag.as_str() {
            "--bootstrap" => a.bootstrap = value,
            "--topic" => a.topic = value,
            "--partitions" => a.partitions = num(&value).clamp(1, 10_000) as i32,
            "--txn-partitions" => a.txn_partitions = num(&value).clamp(1, 10_000) as i32,
            "--transactions" => a.transactions = num(&value).max(1),
            "--connections" => a.connections = num(&value).clamp(1, 256) as i32,
            "--record-size" => a.record_size = num(&value).clamp(1, 1 << 20) as usize,
            _ => usage(&format!("unknown option {flag}")),
        }
    }
    if a.bootstrap.is_empty() || a.topic.is_empty() {
        usage("--bootstrap and --topic are required");
    }
    a.txn_partitions = a.txn_partitions.min(a.partitions);
    a
}

/// One transactional producer: its connection, id, producer id/epoch and per-partition sequences.
struct TxnProducer {
    sock: TcpStream,
    id: TransactionalId,
    producer_id: i64,
    epoch: i16,
    partitions: Vec<i32>,
    sequences: Vec<i32>,
    correlation: i32,
}

impl TxnProducer {
    fn start(a: &Args, c: i32) -> Result<TxnProducer, String> {
        let mut sock = TcpStream::connect(&a.bootstrap).map_err(|e| format!("connecting: {e}"))?;
        sock.set_nodelay(true).map_err(|e| e.to_string())?;
        let id = TransactionalId(StrBytes::from_string(format!("txn-load-{}-{c}", std::process::id())));
        let req = InitProducerIdRequest::default()
            .with_transactional_id(Some(id.clone()))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
        // FindCoordinator first: Kafka creates __transaction_state on the first lookup of a transactional
        // id, and answers InitProducerId NOT_COORDINATOR until then.
        let find = FindCoordinatorRequest::default()
            .with_key_type(1)
            .with_coordinator_keys(vec![StrBytes::from_string(id.to_string())]);
        for _ in 0..300 {
            let r: FindCoordinatorResponse = load::call(&mut sock, ApiKey::FindCoordinator, 4, 0, &find)?;
            if r.coordinators.first().is_some_and(|c| c.error_code == 0) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        // A fresh coordinator may still be loading: retry what Kafka calls retriable here.
        for _ in 0..300 {
            let r: InitProducerIdResponse = load::call(&mut sock, ApiKey::InitProducerId, 4, 0, &req)?;
            match r.error_code {
                0 => {
                    let partitions =
                        (0..a.txn_partitions).map(|k| (c * a.txn_partitions + k) % a.partitions).collect();
                    return Ok(TxnProducer {
                        sock,
                        id,
                        producer_id: r.producer_id.0,
                        epoch: r.producer_epoch,
                        partitions,
                        sequences: vec![0; a.txn_partitions as usize],
                        correlation: 1,
                    });
                }
                14 | 15 | 16 | 51 => std::thread::sleep(std::time::Duration::from_millis(100)),
                e => return Err(format!("InitProducerId answered error {e}")),
            }
        }
        Err("InitProducerId kept answering a retriable error for 30 s".into())
    }

    fn next_correlation(&mut self) -> i32 {
        self.correlation = self.correlation.wrapping_add(1);
        self.correlation
    }

    /// One whole transaction of one record per partition.
    fn transaction(&mut self, a: &Args, records: &[u8]) -> Result<(), String> {
        let topic = TopicName(StrBytes::from_string(a.topic.clone()));
        let add = AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(self.id.clone())
            .with_v3_and_below_producer_id(ProducerId(self.producer_id))
            .with_v3_and_below_producer_epoch(self.epoch)
            .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(topic.clone())
                .with_partitions(self.partitions.clone())]);
        // Kafka answers EndTxn before the markers are written and CONCURRENT_TRANSACTIONS until they are:
        // retry as the Java client does (TransactionManager: 20 ms for AddPartitionsToTxn).
        for attempt in 0.. {
            let corr = self.next_correlation();
            let r: AddPartitionsToTxnResponse =
                load::call(&mut self.sock, ApiKey::AddPartitionsToTxn, 3, corr, &add)?;
            let error = r
                .results_by_topic_v3_and_below
                .iter()
                .flat_map(|t| t.results_by_partition.iter())
                .map(|p| p.partition_error_code)
                .find(|e| *e != 0);
            match error {
                None => break,
                Some(51) if attempt < 1000 => std::thread::sleep(std::time::Duration::from_millis(20)),
                Some(e) => return Err(format!("AddPartitionsToTxn answered error {e}")),
            }
        }
        let data = self
            .partitions
            .iter()
            .zip(self.sequences.iter_mut())
            .map(|(p, seq)| {
                let b = transactional_batch(records, self.producer_id, self.epoch, *seq);
                *seq = seq.wrapping_add(1);
                PartitionProduceData::default().with_index(*p).with_records(Some(b))
            })
            .collect();
        let produce = ProduceRequest::default()
            .with_transactional_id(Some(self.id.clone()))
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default().with_name(topic).with_partition_data(data)]);
        let corr = self.next_correlation();
        let r: ProduceResponse = load::call(&mut self.sock, ApiKey::Produce, 9, corr, &produce)?;
        for t in &r.responses {
            if let Some(p) = t.partition_responses.iter().find(|p| p.error_code != 0) {
                return Err(format!("Produce answered error {} for partition {}", p.error_code, p.index));
            }
        }
        let end = EndTxnRequest::default()
            .with_transactional_id(self.id.clone())
            .with_producer_id(ProducerId(self.producer_id))
            .with_producer_epoch(self.epoch)
            .with_committed(true);
        let corr = self.next_correlation();
        let r: EndTxnResponse = load::call(&mut self.sock, ApiKey::EndTxn, 3, corr, &end)?;
        match r.error_code {
            0 => Ok(()),
            e => Err(format!("EndTxn answered error {e}")),
        }
    }
}

/// A transactional batch of the (already framed) `records` (one record) from this producer.
fn transactional_batch(records: &[u8], producer_id: i64, epoch: i16, sequence: i32) -> Bytes {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut b = batch_with(1, records, now);
    b[21..23].copy_from_slice(&0x10i16.to_be_bytes()); // attributes: transactional
    b[43..51].copy_from_slice(&producer_id.to_be_bytes());
    b[51..53].copy_from_slice(&epoch.to_be_bytes());
    b[53..57].copy_from_slice(&sequence.to_be_bytes());
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

fn main() {
    let a = parse_args();
    let value = vec![b'x'; a.record_size];
    let records = record(0, 0, None, Some(&value), &[]);
    let mut producers = Vec::new();
    for c in 0..a.connections {
        match TxnProducer::start(&a, c) {
            Ok(p) => producers.push(p),
            Err(e) => {
                eprintln!("txn_load: {e}");
                std::process::exit(1);
            }
        }
    }
    let per = a.transactions.div_ceil(a.connections as u64);
    let start = Instant::now();
    let results: Vec<Result<u64, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = producers
            .into_iter()
            .map(|mut p| {
                let (a, records) = (&a, &records);
                s.spawn(move || -> Result<u64, String> {
                    for _ in 0..per {
                        p.transaction(a, records)?;
                    }
                    Ok(per)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("producer thread panicked".into())))
            .collect()
    });
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    let mut done = 0;
    for r in results {
        match r {
            Ok(n) => done += n,
            Err(e) => {
                eprintln!("txn_load: {e}");
                std::process::exit(1);
            }
        }
    }
    println!(
        "committed {done} transactions of {} partitions in {ms:.0} ms: {:.1} transactions/s",
        a.txn_partitions,
        done as f64 / (ms / 1000.0)
    );
}
