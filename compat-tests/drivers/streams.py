"""The Kafka Streams scenario (streams-eos), shown in the java column. compat-tests/run starts this driver with

    STROM_STREAMS_APP=<json argv of the Streams application: java -cp ... strom.streams.CountApp>

The application (compat-tests/streams, kafka-streams of the reference Kafka version) is a separate JVM, so it can be
SIGKILLed like a crashed process and started again on the same state dir. This driver creates the topics, produces
the input and reads the output (read_committed) with confluent-kafka, and checks what Kafka's own run gives: per word,
the counts 1, 2, ..., n in order, nothing duplicated or missing.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import common
from common import check, check_eq, scenario

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

N = 3000  # input records
VOCAB = 50  # words w0..w49; 7 is prime to 50, so each word gets N / 50 records
PARTITIONS = 3  # record i goes to input partition i % 3: a word is on every partition, hence the repartition
PHASE_TIMEOUT = 60.0  # one app run reaching its kill point (includes a rebalance after the previous kill)

_T0 = time.monotonic()


def log(*a):
    sys.stderr.write("%7.2f " % (time.monotonic() - _T0) + " ".join(str(x) for x in a) + "\n")
    sys.stderr.flush()


def word(i):
    return "w%d" % (i * 7 % VOCAB)


def expected_counts():
    want = {}
    for i in range(N):
        want[word(i)] = want.get(word(i), 0) + 1
    return want


class App:
    """One process of the Streams application; a reader thread logs its lines and keeps the last ones."""

    def __init__(self, name, argv):
        self.name = name
        log("[%s] $ %s" % (name, " ".join(argv)))
        # Same process group as this driver: compat-tests/run's final killpg takes a leftover JVM along.
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr)
        self.lines = []
        self.state = None
        self.processed = 0  # input records this process has seen (its PROCESSED lines, every 250)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            log("[%s] %s" % (self.name, line))
            self.lines = (self.lines + [line])[-20:]
            if line.startswith("STATE "):
                self.state = line.split()[1]
            elif line.startswith("PROCESSED "):
                self.processed = int(line.split()[1])

    def check_alive(self):
        if self.proc.poll() is not None:
            raise AssertionError("%s exited with %s (last lines: %s)" % (
                self.name, self.proc.returncode, " | ".join(self.lines[-5:])))

    def kill(self):
        self.proc.kill()  # SIGKILL: no close, no commit, no LeaveGroup; the open transaction stays open
        self.proc.wait(30)
        log("[%s] SIGKILLed (state was %s)" % (self.name, self.state))

    def close(self, timeout):
        """Asks for a clean close (stdin); returns the exit code (None if it had to be killed)."""
        code = common.close_via_stdin(self.proc, timeout)
        if code is None:
            self.proc.kill()
            self.proc.wait(30)
        return code


class Output:
    """Reads the output topic from the beginning with read_committed; what it has seen so far, per word."""

    def __init__(self, ctx, topic):
        self.c = Consumer({"bootstrap.servers": ctx.bootstrap, "group.id": ctx.topic("reader"),
                           "enable.auto.commit": False, "isolation.level": "read_committed",
                           "socket.timeout.ms": int(ctx.call_timeout * 1000)})
        self.c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        self.records = []  # (partition, offset, key, value) in consumption order
        self.counts = {}  # word -> the counts read, in order

    def poll(self, seconds):
        end = time.monotonic() + seconds
        got = 0
        while time.monotonic() < end:
            for m in self.c.consume(500, timeout=max(0.05, min(0.5, end - time.monotonic()))):
                if m.error():
                    raise AssertionError("read_committed consumer: %s" % m.error())
                k, v = m.key().decode(), m.value().decode()
                self.records.append((m.partition(), m.offset(), k, v))
                self.counts.setdefault(k, []).append(int(v))
                got += 1
        return got

    def complete(self, want):
        return all(self.counts.get(w) and max(self.counts[w]) >= n for w, n in want.items())

    def close(self):
        self.c.close()


def create_topics(ctx, topics):
    admin = AdminClient({"bootstrap.servers": ctx.bootstrap})
    fs = admin.create_topics([NewTopic(t, PARTITIONS, 1) for t in topics],
                             operation_timeout=ctx.call_timeout, request_timeout=ctx.call_timeout)
    for t, f in fs.items():
        f.result(timeout=ctx.call_timeout)
    return admin


def produce_input(ctx, topic):
    # Small batches, so that the app's small fetches interleave input and repartition records (see CountApp).
    p = Producer({"bootstrap.servers": ctx.bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5,
                  "batch.num.messages": 20})
    errors = []

    def cb(err, _msg):
        if err is not None:
            errors.append(err)
    for i in range(N):
        p.produce(topic, key=word(i).encode(), value=str(i).encode(), partition=i % PARTITIONS, on_delivery=cb)
        if i % 500 == 0:
            p.poll(0)
    left = p.flush(ctx.call_timeout)
    check(left == 0 and not errors, "input not acknowledged: %d pending, errors %s", left, errors[:3])


@scenario("streams-eos")
def streams_eos(ctx):
    app_cmd = json.loads(os.environ["STROM_STREAMS_APP"])
    app_id = ctx.topic("app")  # also the prefix of the application's internal topics and its group id
    src, dst = ctx.topic("input"), ctx.topic("output")
    admin = create_topics(ctx, [src, dst])
    produce_input(ctx, src)
    log("produced %d input records to %s" % (N, src))
    want = expected_counts()
    state_dir = tempfile.mkdtemp(prefix="strom-streams-%s-" % ctx.run_id)
    argv = app_cmd + ["--bootstrap", ctx.bootstrap, "--app-id", app_id, "--input", src, "--output", dst,
                      "--state-dir", state_dir]
    out = Output(ctx, dst)
    app = None
    try:
        # Three runs of the same instance (same state dir): SIGKILL at 1/3 and 2/3 of the output, then to the end.
        for run, kill_at in ((1, N // 3), (2, 2 * N // 3), (3, None)):
            app = App("app-run%d" % run, argv)
            deadline = time.monotonic() + PHASE_TIMEOUT
            # Killed mid-way through its input: at the output mark, or once this run has seen 1,000 input records
            # (the committed output can become visible in a burst, once a stuck transaction is aborted).
            while not ((len(out.records) >= kill_at or app.processed >= N // 3) if kill_at is not None
                       else out.complete(want)):
                app.check_alive()
                check(time.monotonic() < deadline, "run %d: %d committed output records after %.0fs, waiting for "
                      "%s (app state %s, last lines: %s)", run, len(out.records), PHASE_TIMEOUT,
                      kill_at or "every word's final count", app.state, " | ".join(app.lines[-3:]))
                out.poll(0.3)
            if kill_at is not None:
                app.kill()
                # A kill after the last commit would exercise no recovery: the run must have been mid-way.
                check(app.processed < N and not out.complete(want), "run %d had already processed all input "
                      "(%d records seen, %d committed output records) when killed", run, app.processed, len(out.records))
                log("run %d killed at %d committed output records" % (run, len(out.records)))
        # Done once every word's committed count reached its input count; a short tail catches anything extra.
        out.poll(2.0)
        code = app.close(40)
        check_eq(code, 0, "exit status of the Streams application after a clean close")
        out.poll(1.0)
        topics = admin.list_topics(timeout=ctx.call_timeout).topics
        for internal in (app_id + "-by-word-repartition", app_id + "-counts-changelog"):
            check(internal in topics, "internal topic %s missing (topics: %s)", internal,
                  sorted(t for t in topics if t.startswith(app_id)))
        verify(out, want)
        log_ends(ctx, out, dst)
        log("verified %d output records for %d words" % (len(out.records), len(want)))
    finally:
        if app is not None and app.proc.poll() is None:
            app.kill()
        out.close()
        shutil.rmtree(state_dir, ignore_errors=True)


def verify(out, want):
    for w in sorted(want, key=lambda s: int(s[1:])):
        got = out.counts.get(w, [])
        if got != list(range(1, want[w] + 1)):
            dup = sorted({c for c in got if got.count(c) > 1})
            gap = sorted(set(range(1, want[w] + 1)) - set(got))
            raise AssertionError("word %s: %d committed counts, last %s, expected exactly 1..%d (repeated %s, missing "
                                 "%s, beyond %d: %d): %s" % (w, len(got), got[-1] if got else None, want[w], dup[:10],
                                                             gap[:10], want[w], sum(c > want[w] for c in got),
                                                             _short(got)))
    extra = sorted(set(out.counts) - set(want))
    check(not extra, "output has words that were never input: %s", extra[:10])
    check_eq(len(out.records), N, "committed output records")


def log_ends(ctx, out, topic):
    """Diagnostics only: end offsets minus committed records = transaction markers + aborted records."""
    try:
        ends = sum(out.c.get_watermark_offsets(TopicPartition(topic, p), timeout=ctx.call_timeout)[1]
                   for p in range(PARTITIONS))
        log("output end offsets sum %d, committed records %d: %d markers or aborted records" % (
            ends, len(out.records), ends - len(out.records)))
    except KafkaException as e:
        log("end offsets: %s" % e)


def _short(v):
    r = repr(v)
    return r if len(r) < 300 else r[:300] + "..."


if __name__ == "__main__":
    common.main("java")
