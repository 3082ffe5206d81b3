"""The MirrorMaker 2 scenario (mirror-maker), shown in the java column. compat-tests/run starts this driver with

    STROM_MIRROR_MM2=<json argv: java -cp <compat-tests/connect classpath> org.apache.kafka.connect.mirror.MirrorMaker>
    STROM_MIRROR_WORKDIR=<dir>                   brokers' data, MirrorMaker configs and logs (in the run's log dir)
    STROM_COMPAT_AGAINST=strom|kafka|external   the kind of broker under test (the one at --bootstrap)
    STROM_COMPAT_STROM_BIN=<strom binary>       the binary run started (for a second strom)

MirrorMaker 2 runs as its own JVM in dedicated mode (one `src->dst` flow, DefaultReplicationPolicy: the topic T of
the source is mirrored to `src.T`). The second broker is started here, on a free loopback port:

  against kafka (or external): the broker under test -> a second Kafka
  against strom:               the broker under test -> a second strom, and a Kafka -> the broker under test

Each mirror: a source topic (3 partitions, cleanup.policy=compact, retention.ms set) gets 500/600/700 keyed records;
a group commits exactly those end offsets (no member ever joins); MirrorMaker starts; the target must get `src.T`
with 3 partitions, the source's configs and the group's offsets translated to 500/600/700 (checkpoints,
sync.group.offsets). Then 400 more records per partition and a retention.ms change on the source: the target must
follow (records, config), and once the group commits the new end offsets, so must its translated offsets. Finally
every record (partition, key, value, timestamp, headers) of the target equals the source's, as a multiset, and
MirrorMaker's log has no ERROR line (none against Kafka).

Why offsets at the end of the log: MirrorMaker translates a group offset g through the newest offset sync at or
before it, as sync.downstream + 1 when g is past the sync (OffsetSyncStore.translateDownstream), and it always
syncs the last mirrored record; a group at the log end thus translates exactly, one in the middle only to
somewhere at or before it. Checkpoints never move a target group backwards (MirrorCheckpointTask).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time

import common
from common import check, check_eq, scenario, log, free_port

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic,
                                   ResourceType)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KAFKA_REF = os.path.join(ROOT, "scripts", "kafka-reference")
PARTITIONS = 3
PHASE1 = [500, 600, 700]  # records per partition before MirrorMaker starts; the group commits these end offsets
PHASE2 = 400  # records per partition while it runs
CONFIGS = {"cleanup.policy": "compact", "retention.ms": "123456789"}
RETENTION_AFTER = "987654321"  # retention.ms altered on the source while mirroring
WAIT = 90.0  # MirrorMaker's start on a loaded 2-core machine (two plugin-free herder starts) plus the first sync
STEP_WAIT = 45.0  # each later step: a few of MirrorMaker's 1 s intervals




def wait_metadata(bootstrap, timeout, alive=lambda: True):
    deadline = time.monotonic() + timeout
    admin = AdminClient({"bootstrap.servers": bootstrap})
    while True:
        check(alive(), "broker at %s exited during startup", bootstrap)
        try:
            admin.list_topics(timeout=2)
            return
        except KafkaException as e:
            if time.monotonic() > deadline:
                raise AssertionError("broker at %s did not answer within %.0fs: %s" % (bootstrap, timeout, e))
            time.sleep(0.3)


class SecondStrom:
    """A second strom (the binary under test) on a free port, in this driver's process group (compat-tests/run's
    final killpg takes it along if this driver is killed)."""

    def __init__(self, binary, workdir, name):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir)
        self.bootstrap = "127.0.0.1:%d" % free_port()
        self.logf = open(os.path.join(workdir, name + ".log"), "ab")
        # strom refuses unknown STROM_* variables; the suite's own (STROM_MIRROR_*, STROM_BIN) are not broker keys.
        env = {k: v for k, v in os.environ.items() if not k.startswith("STROM_")}
        self.proc = subprocess.Popen([binary, "--listen", self.bootstrap, "--advertised", self.bootstrap,
                                      "--data-dir", os.path.join(self.dir, "data")], stdout=self.logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        log("[%s] strom starting at %s" % (name, self.bootstrap))
        wait_metadata(self.bootstrap, 60, lambda: self.proc.poll() is None)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self.logf.close()
        shutil.rmtree(os.path.join(self.dir, "data"), ignore_errors=True)


class SecondKafka:
    """A reference Kafka (scripts/kafka-reference) on a free port; its dir (kafka.log stays) is under the workdir,
    where compat-tests/run stops any broker left behind by a killed driver."""

    def __init__(self, workdir, name):
        self.dir = os.path.join(workdir, name)
        port = free_port()
        log("[%s] Kafka starting on port %d" % (name, port))
        r = subprocess.run([KAFKA_REF, "start", "--port", str(port), "--dir", self.dir], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=240)
        if r.returncode != 0:
            self.stop()
            raise AssertionError("scripts/kafka-reference start failed: %s" % common.one_line(r.stderr.decode()[-600:]))
        self.bootstrap = r.stdout.decode().strip()

    def stop(self):
        subprocess.run([KAFKA_REF, "stop", "--dir", self.dir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=120)
        shutil.rmtree(os.path.join(self.dir, "logs"), ignore_errors=True)


def mm2_properties(src, dst, topic, group):
    """MirrorMaker 2's dedicated-mode config: one flow src->dst, replication factor 1 for every topic it creates,
    every interval at 1 s (defaults: 10 s to 10 min)."""
    return "\n".join([
        "clusters = src, dst",
        "src.bootstrap.servers = " + src,
        "dst.bootstrap.servers = " + dst,
        "src->dst.enabled = true",
        "src->dst.topics = " + re.escape(topic),
        "src->dst.groups = " + re.escape(group),
        # Without this, a dst->src herder would run only to emit heartbeats into src.
        "dst->src.emit.heartbeats.enabled = false",
        "tasks.max = 1",
        "replication.factor = 1",
        "checkpoints.topic.replication.factor = 1",
        "heartbeats.topic.replication.factor = 1",
        "offset-syncs.topic.replication.factor = 1",
        "offset.storage.replication.factor = 1",
        "status.storage.replication.factor = 1",
        "config.storage.replication.factor = 1",
        "sync.group.offsets.enabled = true",
        "sync.group.offsets.interval.seconds = 1",
        "emit.checkpoints.interval.seconds = 1",
        "emit.heartbeats.interval.seconds = 1",
        "refresh.topics.interval.seconds = 1",
        "refresh.groups.interval.seconds = 1",
        "sync.topic.configs.enabled = true",
        "sync.topic.configs.interval.seconds = 1",
        # Worker settings of the src->dst herder take the target's prefix (MirrorMakerConfig.workerConfig): offsets
        # committed (and the last offset sync written) every second, instead of every minute.
        "dst.offset.flush.interval.ms = 1000",
        # Every plugin has a ServiceLoader manifest: skip the reflective classpath scan (about 10 s, twice).
        "plugin.discovery = service_load",
        "dst.plugin.discovery = service_load",
        "",
    ])


class MirrorMaker:
    def __init__(self, argv, workdir, name, props):
        path = os.path.join(workdir, name + "-mm2.properties")
        with open(path, "w") as f:
            f.write(props)
        self.log_path = os.path.join(workdir, name + "-mm2.log")
        self.logf = open(self.log_path, "ab")
        log("[%s] $ %s %s (log %s)" % (name, " ".join(argv[:1] + ["..."] + argv[-1:]), path, self.log_path))
        # Same process group as this driver: compat-tests/run's final killpg takes a leftover JVM along.
        self.proc = subprocess.Popen(argv + [path], stdout=self.logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)

    def check_alive(self):
        # Not an AssertionError: common.eventually would keep waiting for a dead process.
        if self.proc.poll() is not None:
            raise RuntimeError("MirrorMaker exited with %s: %s" % (self.proc.returncode, self.errors()))

    def errors(self):
        """The first ERROR lines of its log, for a failure message."""
        try:
            with open(self.log_path, errors="replace") as f:
                lines = [line.strip() for line in f if " ERROR " in line]
        except OSError:
            return ""
        return " | ".join(lines[:3])[:600]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(15)
        self.logf.close()


def record(i, partition):
    """Record i: key, value, timestamp (an hour ago + i ms), headers (none for every 4th)."""
    headers = [] if i % 4 == 0 else [("idx", b"%d" % i), ("p", b"%d" % partition)]
    return b"k-%06d" % i, b"v-%06d-" % i + b"x" * (i % 53), int(time.time() * 1000) - 3600000 + i, headers


def produce(bootstrap, topic, counts, first, call_timeout):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "linger.ms": 5})
    errors = []

    def cb(err, _msg):
        if err is not None:
            errors.append(err)
    i = first
    for part, n in enumerate(counts):
        for _ in range(n):
            k, v, ts, h = record(i, part)
            p.produce(topic, key=k, value=v, partition=part, timestamp=ts, headers=h, on_delivery=cb)
            i += 1
            if i % 500 == 0:
                p.poll(0)
    left = p.flush(call_timeout)
    check(left == 0 and not errors, "%s: records not acknowledged: %d pending, errors %s", topic, left, errors[:3])
    return i


def end_offsets(c, topic, timeout):
    return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1] for p in range(PARTITIONS)]


def committed(c, topic, timeout):
    return [tp.offset for tp in c.committed([TopicPartition(topic, p) for p in range(PARTITIONS)], timeout=timeout)]


def commit(c, topic, offsets, timeout):
    """Commits offsets for the consumer's group without joining it (a simple consumer's commit); retried while the
    coordinator is still loading (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS right after __consumer_offsets
    is created)."""
    def attempt():
        try:
            c.commit(offsets=[TopicPartition(topic, p, o) for p, o in enumerate(offsets)], asynchronous=False)
            return True
        except KafkaException as e:
            raise AssertionError("commit: %s" % e)
    common.eventually(attempt, timeout, 0.3, "group commit of %s" % offsets)
    check_eq(committed(c, topic, timeout), offsets, "offsets committed on the source")


def read_all(bootstrap, topic, ends, timeout, group):
    """Every record of topic up to ends, as a sorted list of (partition, key, value, timestamp, headers)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(PARTITIONS)])
        got, last = [], [-1] * PARTITIONS
        deadline = time.monotonic() + timeout
        while any(last[p] + 1 < ends[p] for p in range(PARTITIONS)):
            check(time.monotonic() < deadline, "%s: read %d records within %.0fs, positions %s, ends %s", topic,
                  len(got), timeout, last, ends)
            for m in c.consume(1000, timeout=0.5):
                check(m.error() is None, "%s: consume error %s", topic, m.error())
                last[m.partition()] = m.offset()
                got.append((m.partition(), m.key(), m.value(), m.timestamp()[1], tuple(m.headers() or ())))
        return sorted(got)
    finally:
        c.close()


def topic_configs(admin, topic, names, timeout):
    res = ConfigResource(ResourceType.TOPIC, topic)
    cfg = admin.describe_configs([res], request_timeout=timeout)[res].result(timeout=timeout)
    return {n: (cfg[n].value if n in cfg else None) for n in names}


def mirror_once(ctx, argv, name, src, dst, workdir):
    """One MirrorMaker 2 flow from the broker at src to the one at dst; raises AssertionError on a difference."""
    topic, group = ctx.topic(name), ctx.topic(name + "-group")
    remote = "src." + topic
    t = ctx.call_timeout
    sadmin, dadmin = AdminClient({"bootstrap.servers": src}), AdminClient({"bootstrap.servers": dst})
    for f in sadmin.create_topics([NewTopic(topic, PARTITIONS, 1, config=CONFIGS)], operation_timeout=t,
                                  request_timeout=t).values():
        f.result(timeout=t)
    n = produce(src, topic, PHASE1, 0, t)
    scons = Consumer({"bootstrap.servers": src, "group.id": group, "enable.auto.commit": False})
    dcons = Consumer({"bootstrap.servers": dst, "group.id": group, "enable.auto.commit": False})
    mm = None
    try:
        check_eq(end_offsets(scons, topic, t), PHASE1, "[%s] source end offsets" % name)
        commit(scons, topic, PHASE1, t)
        log("[%s] %d records in %s on %s, group %s committed %s" % (name, n, topic, src, group, PHASE1))
        mm = MirrorMaker(argv, workdir, name, mm2_properties(src, dst, topic, group))
        t1 = time.monotonic()

        def target_state():
            mm.check_alive()
            topics = dadmin.list_topics(timeout=t).topics
            if remote not in topics:
                return None
            return len(topics[remote].partitions), end_offsets(dcons, remote, t), committed(dcons, remote, t)

        def reached(want_ends, want_group):
            def probe():
                s = target_state()
                if s != (PARTITIONS, want_ends, want_group):
                    raise AssertionError("target %s: %s" % (remote, "missing" if s is None else
                                                            "partitions %d, end offsets %s, group offsets %s" % s))
                return True
            return probe

        common.eventually(reached(PHASE1, PHASE1), WAIT, 0.5, "[%s] %s mirrored with group %s translated" % (
            name, remote, group))
        log("[%s] %s: %s records, group offsets %s after %.1fs" % (name, remote, PHASE1, PHASE1,
                                                                   time.monotonic() - t1))
        got = topic_configs(dadmin, remote, CONFIGS, t)
        check_eq(got, CONFIGS, "[%s] configs of %s on the target" % (name, remote))
        # The target must follow new records and a config change; the group, not moved, stays where it was.
        n = produce(src, topic, [PHASE2] * PARTITIONS, n, t)
        alter = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[
            ConfigEntry("retention.ms", RETENTION_AFTER, incremental_operation=AlterConfigOpType.SET)])
        sadmin.incremental_alter_configs([alter], request_timeout=t)[alter].result(timeout=t)
        final = [p + PHASE2 for p in PHASE1]
        want_cfg = dict(CONFIGS, **{"retention.ms": RETENTION_AFTER})
        common.eventually(reached(final, PHASE1), STEP_WAIT, 0.5, "[%s] phase 2 records on %s" % (name, remote))
        common.eventually(lambda: topic_configs(dadmin, remote, want_cfg, t) == want_cfg, STEP_WAIT, 0.5,
                          "[%s] retention.ms=%s synced to %s" % (name, RETENTION_AFTER, remote))
        log("[%s] %s: %s records, retention.ms synced after %.1fs" % (name, remote, final, time.monotonic() - t1))
        commit(scons, topic, final, t)
        common.eventually(reached(final, final), STEP_WAIT, 0.5, "[%s] group %s translated to %s" % (
            name, group, final))
        log("[%s] group offsets %s translated after %.1fs" % (name, final, time.monotonic() - t1))
        want = read_all(src, topic, final, t, group + "-reader")
        got = read_all(dst, remote, final, t, group + "-reader")
        check_eq(len(got), len(want), "[%s] records on %s" % (name, remote))
        if got != want:
            diff = [(a, b) for a, b in zip(got, want) if a != b]
            raise AssertionError("[%s] %s differs from the source in %d records, first: target %r, source %r" % (
                name, remote, len(diff), diff[0][0], diff[0][1]))
        internal = dadmin.list_topics(timeout=t).topics
        for tp in ("src.checkpoints.internal", "heartbeats", "mm2-offsets.src.internal"):
            check(tp in internal, "[%s] MirrorMaker's topic %s missing on the target", name, tp)
        log("[%s] %d records identical (partition, key, value, timestamp, headers); %.1fs" % (
            name, len(got), time.monotonic() - t1))
        # Against Kafka it logs none (an unserved or differently answered API, e.g. DescribeAcls, shows as one).
        check(not mm.errors(), "[%s] MirrorMaker logged errors: %s", name, mm.errors())
    except AssertionError as e:
        errors = mm.errors() if mm else ""
        if errors and errors not in str(e):
            raise AssertionError("%s; MirrorMaker errors: %s" % (e, errors))
        raise
    finally:
        if mm is not None:
            mm.stop()
        scons.close()
        dcons.close()


@scenario("mirror-maker")
def mirror_maker(ctx):
    argv = json.loads(os.environ["STROM_MIRROR_MM2"])
    against = os.environ.get("STROM_COMPAT_AGAINST", "external")
    workdir = os.environ["STROM_MIRROR_WORKDIR"]
    os.makedirs(workdir, exist_ok=True)
    started, errors, threads = [], {}, []
    lock = threading.Lock()

    def run(name, make_src, make_dst):
        """Starts what the mirror needs (make_* return a bootstrap), then runs it; errors kept per mirror."""
        try:
            src, dst = make_src(), make_dst()
            mirror_once(ctx, argv, name, src, dst, workdir)
        except BaseException as e:  # noqa: BLE001
            errors[name] = e

    def second(kind, name):
        def make():
            b = SecondStrom(os.environ["STROM_COMPAT_STROM_BIN"], workdir, name) if kind == "strom" \
                else SecondKafka(workdir, name)
            with lock:
                started.append(b)
            return b.bootstrap
        return make

    under_test = lambda: ctx.bootstrap  # noqa: E731
    if against == "strom":
        flows = [("strom-to-strom", under_test, second("strom", "target-strom")),
                 ("kafka-to-strom", second("kafka", "source-kafka"), under_test)]
    else:
        flows = [("%s-to-kafka" % against, under_test, second("kafka", "target-kafka"))]
    try:
        # The mirrors run side by side (own topics and groups), so a scenario costs one MirrorMaker start.
        for f in flows:
            threads.append(threading.Thread(target=run, args=f, daemon=True))
            threads[-1].start()
        for th in threads:
            th.join()
    finally:
        for b in started:
            try:
                b.stop()
            except Exception as e:  # noqa: BLE001
                log("stopping %s: %s" % (b.bootstrap, e))
    if errors:
        raise AssertionError("; ".join("%s: %s" % (n, e if isinstance(e, AssertionError) else
                                                    "%s: %s" % (type(e).__name__, e)) for n, e in errors.items()))


if __name__ == "__main__":
    common.main("java")
