"""scripts/bench's compaction row (imported by scripts/bench; not run on its own).

One step per strom and Kafka round: `examples/produce_load --keys` writes COMPACT_KEYS keys over and over (1 KiB
records, 128 per batch, uncompressed, acks=1, 4 connections) into a 1-partition topic with cleanup.policy=compact
and 64 MiB segments, while the broker's log cleaner (backoff 1 s on both, see CLEANER_BACKOFF_MS) cleans the
sealed segments as they come, with every other cleaner setting at Kafka's default (128 MiB offset map,
min.cleanable.dirty.ratio 0.5). Then the step waits until the cleaner has been idle for QUIET_S.

Recorded per broker:
  compact_produce   MB/s the producer achieved while the cleaner ran (produce_load's own figure)
  compact_clean     MiB/s of log the cleaner processed: sum of bytes read by its cleans / sum of their durations,
                    from each broker's own per-clean log line (Kafka: the LogCleaner$CleanerThread stats line
                    "N MB of log processed in S seconds", logged at info; strom: "cleaned log ... bytes_read ms")
  compact_rss       peak resident memory of the broker during the step, MiB
  compact_size      the partition's size on disk after the step, MB (how far each compacted)
"""

import os
import re
import time

COMPACT_TOPIC = "compact-p1"
COMPACT_KEYS = 50_000
SEGMENT_BYTES = 64 << 20
CLEANER_BACKOFF_MS = 250
QUIET_S = 4
KAFKA_CLEANER_LOGGER = "org.apache.kafka.storage.internals.log.LogCleaner$CleanerThread"
STROM_ENV = {"STROM_LOG_CLEANER_BACKOFF_MS": str(CLEANER_BACKOFF_MS)}
KAFKA_ARGS = ["--override", "log.cleaner.backoff.ms=%d" % CLEANER_BACKOFF_MS, "--logger", KAFKA_CLEANER_LOGGER + "=info"]

METRICS = [
    ("compact_produce", "Produce to a compacted topic while the cleaner runs (produce_load, 1 partition)", "MB/s",
     "higher", "throughput"),
    ("compact_clean", "Log cleaner: log processed per second of cleaning", "MiB/s", "higher", "throughput"),
    ("compact_rss", "Peak memory during the compaction step", "MiB", "lower", "resources"),
    ("compact_size", "Compacted partition on disk after the compaction step", "MB", "lower", "resources"),
]

_KAFKA_CLEAN = re.compile(r"cleaned log %s-0 \(dirty section = \[\d+, \d+\]\)\s+([\d,.]+) MB of log processed in "
                          r"([\d,.]+) seconds" % re.escape(COMPACT_TOPIC))
_STROM_CLEAN = re.compile(r"cleaned log.*topic=%s partition=0 .*bytes_read=(\d+) .*ms=(\d+)" % re.escape(COMPACT_TOPIC))


def cleans(broker_name, text):
    """(bytes read, seconds) of each clean of the compaction topic found in a broker's log text."""
    if broker_name == "kafka":
        return [(float(mb.replace(",", "")) * 1048576, float(s.replace(",", ""))) for mb, s in _KAFKA_CLEAN.findall(text)]
    plain = re.sub(r"\x1b\[[0-9;]*m", "", text)
    # strom also logs a pass that found its range empty (bytes_read=0); Kafka logs only real cleans.
    return [(int(b), int(ms) / 1000.0) for b, ms in _STROM_CLEAN.findall(plain) if int(b) > 0]


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def partition_dir_size(datadir):
    """Bytes of the compaction topic's partition directory (strom and Kafka both name it TOPIC-0)."""
    total = 0
    for root, dirs, files in os.walk(datadir):
        if os.path.basename(root) == COMPACT_TOPIC + "-0":
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files if not f.endswith(".deleted"))
    return total


def compaction_step(bench, broker, boot, pid, log, datadir, sampler_cls, run, StepError):
    """The step itself; `bench` is scripts/bench's Bench (rec, say, client, load_bin)."""
    nbytes = bench.m["compact_bytes"]
    spec = "%s:1:cleanup.policy=compact,segment.bytes=%d" % (COMPACT_TOPIC, SEGMENT_BYTES)
    run(bench.client("create-topics", boot, spec), log, 120)
    broker_log = broker.log
    before = len(cleans(broker.name, _read(broker_log)))
    sampler = sampler_cls(pid)
    sampler.start()
    cmd = ["taskset", "-c", str(bench.client_cpu), bench.load_bin, "--bootstrap", boot, "--topic", COMPACT_TOPIC,
           "--partitions", "1", "--codec", "none", "--bytes", str(nbytes), "--acks", "1", "--connections", "4",
           "--keys", str(COMPACT_KEYS)]
    bench.note_cmd("compact", cmd)
    try:
        text = run(cmd, log, 900)
        m = re.findall(r"produced \d+ records \((\d+) bytes uncompressed, \d+ bytes on the wire\) in \d+ ms: "
                       r"\d+ records/s, ([\d.]+) MB/s", text)
        if not m:
            raise StepError("no produce_load summary line in output: %r" % text[-400:], cmd, log)
        # The cleaner catches up: done once no new clean was logged for QUIET_S (at most 120 s).
        seen, last_change, deadline = -1, time.time(), time.time() + 120
        while time.time() < deadline:
            n = len(cleans(broker.name, _read(broker_log)))
            if n != seen:
                seen, last_change = n, time.time()
            elif time.time() - last_change >= QUIET_S:
                break
            time.sleep(0.5)
    finally:
        peak = sampler.stop()
    done = cleans(broker.name, _read(broker_log))[before:]
    if not done:
        raise StepError("the broker logged no clean of %s (log %s)" % (COMPACT_TOPIC, broker_log), cmd, log)
    read, secs = sum(b for b, _ in done), sum(s for _, s in done)
    clean_mib_s = read / 1048576 / secs if secs > 0 else float("nan")
    size_mb = partition_dir_size(datadir) / 1e6
    bench.rec("compact_produce", broker.name, float(m[-1][1]))
    bench.rec("compact_clean", broker.name, clean_mib_s)
    bench.rec("compact_rss", broker.name, peak)
    bench.rec("compact_size", broker.name, size_mb)
    bench.say("   %-16s produce %.1f MB/s; %d cleans, %.0f MiB in %.2f s: %.1f MiB/s; peak RSS %.1f MiB; %.1f MB left"
              % ("compaction", float(m[-1][1]), len(done), read / 1048576, secs, clean_mib_s, peak, size_mb))


def method_text(bench):
    return ("- **Compaction**: `examples/produce_load --keys %d` writes %s bytes of 1 KiB records (128 per "
            "uncompressed batch, the %d keys in turn, so every key is overwritten again and again; acks=1, 4 "
            "connections) to a 1-partition topic with cleanup.policy=compact and segment.bytes=%d MiB, while the "
            "broker's log cleaner cleans the sealed segments; both brokers run with log.cleaner.backoff.ms=%d (strom "
            "through STROM_LOG_CLEANER_BACKOFF_MS, Kafka through server.properties) and every other cleaner setting "
            "at Kafka's default (offset map 128 MiB, min.cleanable.dirty.ratio 0.5, one cleaner thread). After the "
            "producer, the step waits until the cleaner has logged no clean for %d s. *Cleaner* = log bytes read by "
            "the cleans of that topic / their summed duration, from each broker's own line per clean (Kafka's "
            "`LogCleaner$CleanerThread` stats: \"N MB of log processed in S seconds\", logged at info for this run; "
            "strom's `cleaned log` line, bytes_read and ms); *produce* is produce_load's figure; *peak memory* the "
            "maximum VmRSS sampled 5 times a second during the step; *on disk* the partition directory's size "
            "afterwards." % (COMPACT_KEYS, f"{bench.m['compact_bytes']:,}", COMPACT_KEYS, SEGMENT_BYTES >> 20,
                             CLEANER_BACKOFF_MS, QUIET_S))


def run_criterion(run, say, env, rundir, root, target, errors):
    """`cargo bench --bench log_cleaner` (benches/log_cleaner.rs); returns its JSON summary, or None on failure."""
    import json
    say("cargo bench --bench log_cleaner ...")
    try:
        text = run(["cargo", "bench", "--bench", "log_cleaner"], os.path.join(rundir, "criterion.log"), 900, env=env,
                   cwd=root)
        with open(os.path.join(target, "criterion", "strom-cleaner.json")) as f:
            summary = json.load(f)
        for line in text.splitlines():
            if line.startswith("cleaner"):
                say("   " + line)
        return summary
    except errors as e:
        say("log cleaner benchmark failed: %s" % str(e)[:400])
        return None


def criterion_section(summary):
    """The report's section on benches/log_cleaner.rs."""
    if not summary:
        return ["Not run in this invocation (`--no-criterion`, or it failed: see the run log).", ""]
    lines = [
        "`%scargo bench --bench log_cleaner`: strom's cleaner alone (`PartitionLog::clean`, no broker), on a "
        "%.0f MiB log of 1 KiB records in batches of 64, keys drawn at random from %s, 16 MiB segments, cleaned "
        "fully with Kafka's default offset-map budget (128 MiB, allocated in full here). MiB/s = log bytes read "
        "by the clean / its duration, the same measure as Kafka's \"MB of log processed\"; the compaction rows "
        "above put both brokers' cleaners side by side." % (
            "STROM_BENCH_QUICK=1 " if summary.get("quick") else "", summary["data_bytes"] / 1048576,
            f"{summary['keys']:,}"),
        "",
        "| batches | log read per clean | records kept / read | written | offset map | **MiB/s** |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in summary["codecs"]:
        lines.append("| %s | %.1f MiB | %s / %s | %.1f MiB | %.0f MiB | **%.1f** |" % (
            r["codec"], r["bytes_read"] / 1048576, f"{r['records_kept']:,}", f"{r['records_read']:,}",
            r["bytes_written"] / 1048576, r["map_bytes"] / 1048576, r["mib_per_s"]))
    return lines + [""]
