"""The Kafka Streams scenarios (streams-eos, streams-restore), shown in the java column. compat-tests/run starts this
driver with

    STROM_STREAMS_APP=<json argv of the Streams application: java -cp ... strom.streams.CountApp>

The application (compat-tests/streams, kafka-streams of the reference Kafka version) is a separate JVM, so it can be
SIGKILLed like a crashed process and started again on the same state dir, or started again on a wiped one. This driver
creates the topics, produces the input and reads the output (read_committed) and the changelog with confluent-kafka.

streams-eos checks what Kafka's own run gives: per word, the counts 1, 2, ..., n in order, nothing duplicated or
missing. streams-restore checks that a count store restores from its compacted changelog (see streams_restore).
"""

import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import common
from common import check, check_eq, scenario, log

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

N = 3000  # input records
VOCAB = 50  # words w0..w49; 7 is prime to 50, so each word gets N / 50 records
PARTITIONS = 3  # record i goes to input partition i % 3: a word is on every partition, hence the repartition
PHASE_TIMEOUT = 60.0  # one app run reaching its kill point (includes a rebalance after the previous kill)



def word(i, vocab=VOCAB):
    return "w%d" % (i * 7 % vocab)


def expected_counts(n=N, vocab=VOCAB):
    """word -> how many of input records 0..n-1 carry it."""
    want = {}
    for i in range(n):
        want[word(i, vocab)] = want.get(word(i, vocab), 0) + 1
    return want


def app_argv(ctx, app_id, src, dst, state_dir, *extra):
    return json.loads(os.environ["STROM_STREAMS_APP"]) + [
        "--bootstrap", ctx.bootstrap, "--app-id", app_id, "--input", src, "--output", dst,
        "--state-dir", state_dir] + list(extra)


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
        self.restore_starts = {}  # (topic, partition) -> (start offset, end offset) of a changelog restore
        self.restored = {}  # (topic, partition) -> records its restore listener reported restored
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
            elif line.startswith("RESTORE-START "):
                _, _, t, p, start, end = line.split()
                self.restore_starts[(t, int(p))] = (int(start), int(end))
            elif line.startswith("RESTORED "):
                _, _, t, p, n = line.split()
                self.restored[(t, int(p))] = int(n)

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

    def run_until(self, out, done, what, waiting_for):
        """Reads the output until done() holds (at most PHASE_TIMEOUT), failing if the app exits meanwhile."""
        deadline = time.monotonic() + PHASE_TIMEOUT
        while not done():
            self.check_alive()
            check(time.monotonic() < deadline, "%s: %d committed output records after %.0fs, waiting for %s (app "
                  "state %s, last lines: %s)", what, len(out.records), PHASE_TIMEOUT, waiting_for, self.state,
                  " | ".join(self.lines[-3:]))
            out.poll(0.3)

    def close_clean(self, out):
        """Closes the app (must exit 0), then reads the output's tail."""
        out.poll(1.0)
        check_eq(self.close(40), 0, "exit status of the Streams application after a clean close (%s)" % self.name)
        out.poll(1.0)


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


def produce_input(ctx, topic, first=0, n=N, vocab=VOCAB, timestamp=None):
    """Input records first..first+n-1 (key word(i), value i) to partition i % PARTITIONS; timestamp(i) gives a
    record's timestamp in ms (default: the producer's clock)."""
    # Small batches, so that the app's small fetches interleave input and repartition records (see CountApp).
    p = Producer({"bootstrap.servers": ctx.bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5,
                  "batch.num.messages": 20})
    errors = []

    def cb(err, _msg):
        if err is not None:
            errors.append(err)
    for i in range(first, first + n):
        ts = {} if timestamp is None else {"timestamp": timestamp(i)}
        p.produce(topic, key=word(i, vocab).encode(), value=str(i).encode(), partition=i % PARTITIONS,
                  on_delivery=cb, **ts)
        if i % 500 == 0:
            p.poll(0)
    left = p.flush(ctx.call_timeout)
    check(left == 0 and not errors, "input not acknowledged: %d pending, errors %s", left, errors[:3])
    log("produced input records %d..%d to %s" % (first, first + n - 1, topic))


@scenario("streams-eos")
def streams_eos(ctx):
    app_id = ctx.topic("app")  # also the prefix of the application's internal topics and its group id
    src, dst = ctx.topic("input"), ctx.topic("output")
    admin = create_topics(ctx, [src, dst])
    produce_input(ctx, src)
    want = expected_counts()
    state_dir = tempfile.mkdtemp(prefix="strom-streams-%s-" % ctx.run_id)
    argv = app_argv(ctx, app_id, src, dst, state_dir)
    out = Output(ctx, dst)
    app = None
    try:
        # Three runs of the same instance (same state dir): SIGKILL at 1/3 and 2/3 of the output, then to the end.
        for run, kill_at in ((1, N // 3), (2, 2 * N // 3), (3, None)):
            app = App("app-run%d" % run, argv)
            if kill_at is None:
                app.run_until(out, lambda: out.complete(want), "run 3", "every word's final count")
            else:
                # Killed mid-way through its input: at the output mark, or once this run has seen 1,000 input
                # records (the committed output can become visible in a burst, once a stuck transaction is aborted).
                app.run_until(out, lambda: len(out.records) >= kill_at or app.processed >= N // 3, "run %d" % run,
                              "%d records" % kill_at)
                app.kill()
                # A kill after the last commit would exercise no recovery: the run must have been mid-way.
                check(app.processed < N and not out.complete(want), "run %d had already processed all input "
                      "(%d records seen, %d committed output records) when killed", run, app.processed, len(out.records))
                log("run %d killed at %d committed output records" % (run, len(out.records)))
        # Done once every word's committed count reached its input count; a short tail catches anything extra.
        app.close_clean(out)
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
    check_eq(len(out.records), sum(want.values()), "committed output records")


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


# --- streams-restore --------------------------------------------------------------------------------------------

RESTORE_VOCAB = 20  # words w0..w19 (7 is prime to 20): 50 count updates per word in phase 1
RESTORE_N1, RESTORE_N2 = 1000, 500  # input records before and after the state dir is wiped
RESTORE_TS_STEP = 20  # ms of event time between input records: phase 1 spans 20 s of record timestamps
# Given to Streams through its topic prefix (StreamsConfig.topicPrefix: every internal topic gets them). Kafka rolls a
# segment when an appended batch's timestamp is segment.ms past the segment's first batch's (LogSegment.shouldRoll).
# A changelog record carries its input record's timestamp, so at_least_once's changelog rolls every 10 ms of event
# time (a record every 20 ms: segments of a batch or so, however fast the app runs); in exactly_once_v2's, the
# transaction markers carry the coordinator's clock, so the first marker 10 ms after a segment began rolls it. With
# Streams' 100 ms commit interval under EOS, every commit's marker seals what came before it, however fast the app
# runs (with 500 ms a fast run left a whole partition in its active segment, which no cleaner touches).
CHANGELOG_CONFIGS = {"segment.ms": "10", "min.cleanable.dirty.ratio": "0.01"}
COMPACTION_WAIT = 30.0  # for the cleaner (log.cleaner.backoff.ms=500 on both brokers, see BROKER_OVERRIDES in run)


@scenario("streams-restore")
def streams_restore(ctx):
    """The count app, once with at_least_once and once with exactly_once_v2: RESTORE_N1 records counted, the app
    closed, its changelog compacted by the broker; the state dir wiped, RESTORE_N2 more records, the app started
    again: it restores the store from the compacted changelog and the counts continue."""
    # Both at once (separate topics and apps): most of a run is waiting for rebalances, commits and the cleaner.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(restore_run, ctx, g) for g in ("at_least_once", "exactly_once_v2")]
        for f in runs:
            f.result()




def restore_run(ctx, guarantee):
    tag = "alos" if guarantee == "at_least_once" else "eos"
    app_id = ctx.topic("app-" + tag)
    src, dst, changelog = ctx.topic("input-" + tag), ctx.topic("output-" + tag), app_id + "-counts-changelog"
    admin = create_topics(ctx, [src, dst])
    total = RESTORE_N1 + RESTORE_N2
    base = int(time.time() * 1000) - total * RESTORE_TS_STEP - 60000  # all in the past

    def ts(i):
        return base + i * RESTORE_TS_STEP
    want1, want = expected_counts(RESTORE_N1, RESTORE_VOCAB), expected_counts(total, RESTORE_VOCAB)
    produce_input(ctx, src, 0, RESTORE_N1, RESTORE_VOCAB, ts)
    state_dir = tempfile.mkdtemp(prefix="strom-streams-%s-" % ctx.run_id)
    topic_configs = [a for k, v in CHANGELOG_CONFIGS.items() for a in ("--config", "topic.%s=%s" % (k, v))]
    argv = app_argv(ctx, app_id, src, dst, state_dir, "--guarantee", guarantee, "--delay-ms", "0", *topic_configs)
    out = Output(ctx, dst)
    app = None
    t0 = time.monotonic()
    try:
        app = App(tag + "-run1", argv)
        app.run_until(out, lambda: out.complete(want1), tag + " run 1", "every word's phase-1 count")
        app.close_clean(out)
        seen1 = {w: len(c) for w, c in out.counts.items()}
        check_changelog_configs(ctx, admin, changelog)
        kept = wait_compacted(ctx, changelog, want1, RESTORE_N1)
        shutil.rmtree(state_dir)
        os.makedirs(state_dir)
        produce_input(ctx, src, RESTORE_N1, RESTORE_N2, RESTORE_VOCAB, ts)
        app = App(tag + "-run2", argv)
        app.run_until(out, lambda: out.complete(want), tag + " run 2", "every word's final count")
        app.close_clean(out)
        check_restored(app, changelog, kept, len(want1))
        if guarantee == "exactly_once_v2":
            verify(out, want)
        else:
            verify_continued(out, seen1, want1, want)
        log("%s: restore verified in %.1fs" % (guarantee, time.monotonic() - t0))
    finally:
        if app is not None and app.proc.poll() is None:
            app.kill()
        out.close()
        shutil.rmtree(state_dir, ignore_errors=True)


def check_changelog_configs(ctx, admin, topic):
    """Streams created the changelog compacted, with the topic-prefixed configs."""
    res = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([res], request_timeout=ctx.call_timeout)[res].result(timeout=ctx.call_timeout)
    got = {k: entries[k].value if k in entries else None for k in ["cleanup.policy"] + sorted(CHANGELOG_CONFIGS)}
    check_eq(got, dict(CHANGELOG_CONFIGS, **{"cleanup.policy": "compact"}), "DescribeConfigs of changelog " + topic)


def read_changelog(ctx, topic):
    """(partition, offset, word, count) of every committed record of the changelog from the beginning, up to each
    partition's end (librdkafka's partition EOF, which also steps over transaction markers)."""
    c = Consumer({"bootstrap.servers": ctx.bootstrap, "group.id": ctx.topic("changelog-reader"),
                  "enable.auto.commit": False, "isolation.level": "read_committed", "enable.partition.eof": True,
                  "socket.timeout.ms": int(ctx.call_timeout * 1000)})
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
        recs, at_end = [], set()
        deadline = time.monotonic() + ctx.call_timeout
        while len(at_end) < PARTITIONS:
            check(time.monotonic() < deadline, "changelog %s: end of partitions %s not reached within %.0fs",
                  topic, sorted(set(range(PARTITIONS)) - at_end), ctx.call_timeout)
            for m in c.consume(1000, timeout=0.5):
                if m.error() and m.error().code() == KafkaError._PARTITION_EOF:
                    at_end.add(m.partition())
                elif m.error():
                    raise AssertionError("changelog consumer: %s" % m.error())
                else:  # the count, a Long (8 bytes big-endian)
                    v = m.value()
                    recs.append((m.partition(), m.offset(), m.key().decode(), None if v is None else
                                 int.from_bytes(v[-8:], "big")))
        return recs
    finally:
        c.close()


def wait_compacted(ctx, topic, want, updates):
    """Waits (COMPACTION_WAIT) until the broker's cleaner compacted every changelog partition: it holds fewer records
    than count updates were written to it (a word's updates all go to one partition). The newest count per word must
    be the word's count throughout. Returns how many records the changelog then holds."""
    deadline = time.monotonic() + COMPACTION_WAIT
    while True:
        recs = read_changelog(ctx, topic)
        parts = {}
        for p, o, w, n in recs:  # each partition in offset order
            parts.setdefault(p, []).append((o, w, n))
        check_eq({w: n for p in sorted(parts) for _, w, n in parts[p]}, want,
                 "newest count per word in changelog %s (%d records)" % (topic, len(recs)))
        written = {p: sum(want[w] for w in {w for _, w, _ in rs}) for p, rs in parts.items()}
        dirty = {p: "%d of %d" % (len(parts[p]), written[p]) for p in sorted(parts) if len(parts[p]) >= written[p]}
        if not dirty:
            break
        check(time.monotonic() < deadline, "changelog %s not compacted within %.0fs: partitions %s still hold every "
              "update written to them", topic, COMPACTION_WAIT, dirty)
        time.sleep(1.0)
    check_eq(sum(written.values()), updates, "count updates in changelog %s" % topic)
    gaps = sum(1 for rs in parts.values() for a, b in zip(rs, rs[1:]) if b[0] > a[0] + 1)
    log("changelog %s compacted: %d records for %d updates (per partition %s), %d offset gaps" % (
        topic, len(recs), updates, {p: "%d of %d" % (len(parts[p]), written[p]) for p in sorted(parts)}, gaps))
    return len(recs)


def check_restored(app, changelog, kept, words):
    """The restarted app's restore listener restored every changelog partition, reading no more records than the
    compacted changelog held and at least one per word."""
    restored = {p: n for (t, p), n in app.restored.items() if t == changelog}
    check(sorted(restored) == list(range(PARTITIONS)), "restore listener reported changelog partitions %s, expected "
          "0..%d (restore starts %s)", sorted(restored), PARTITIONS - 1, app.restore_starts)
    total = sum(restored.values())
    check(words <= total <= kept, "restored %d records from %s: expected at least one per word (%d) and at most the "
          "%d records of the compacted changelog", total, changelog, words, kept)
    log("restored %d records from %s (per partition %s; start and end offsets %s)" % (
        total, changelog, restored, app.restore_starts))


def verify_continued(out, seen1, want1, want):
    """at_least_once after a clean close: per word, every count written after the restore is above the word's
    phase-1 count (the restored state, not zero) and the last one is the word's input count."""
    for w, n in want.items():
        got = out.counts.get(w, [])
        after = got[seen1.get(w, 0):]
        check(after and all(c > want1[w] for c in after) and got[-1] == n and max(got) == n, "word %s: counts after "
              "the restore %s, expected them above %d and ending at %d", w, _short(after), want1[w], n)


if __name__ == "__main__":
    common.main("java")
