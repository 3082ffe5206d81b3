"""The Kafka Connect scenarios (connect-distributed), shown in the java column. compat-tests/run starts this driver with

    STROM_CONNECT_WORKER=<json argv of the worker without its properties file: java -cp ... ConnectDistributed>
    STROM_CONNECT_LOGDIR=<the run's log dir: each worker's log goes to connect-<scenario>-worker<n>.log there>

The worker (compat-tests/connect: connect-runtime of the reference Kafka version, the FileStream connectors of
connect-file) is a JVM of its own, started, stopped with SIGTERM and started again by this driver, which drives it
through its REST API (urllib only) and checks the broker side with confluent-kafka's AdminClient.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import common
from common import check, check_eq, eventually, scenario, log, free_port

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, NewTopic

FIRST_LINES = 2000  # lines of the input file before the first worker starts
MORE_LINES = 1000  # lines appended while no worker runs
START_TIMEOUT = 60.0  # a worker's REST API answering / its connectors and tasks RUNNING
COPY_TIMEOUT = 45.0  # the output file catching up with the input
# Kafka's defaults for the internal topics' partition counts (DistributedConfig: offset.storage.partitions 25,
# status.storage.partitions 5; the config topic always has 1).
INTERNAL_PARTITIONS = {"configs": 1, "offsets": 25, "status": 5}




def line(i):
    return "line %05d of the connect-distributed input: %s\n" % (i, "x" * (i % 37))


class Worker:
    """One Connect worker process in distributed mode; its log goes to a file of the run's log dir."""

    def __init__(self, name, argv, props, logpath):
        self.name = name
        self.logpath = logpath
        log("[%s] $ %s %s (log: %s)" % (name, " ".join(argv[:1] + argv[-1:]), props, logpath))
        self.logf = open(logpath, "ab")
        # Same process group as this driver: compat-tests/run's final killpg takes a leftover JVM along.
        self.proc = subprocess.Popen(argv + [props], stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT)

    def check_alive(self):
        if self.proc.poll() is not None:
            raise AssertionError("%s exited with %s: %s" % (self.name, self.proc.returncode, self.tail()))

    def tail(self):
        try:
            with open(self.logpath, "rb") as f:
                lines = f.read()[-4000:].decode(errors="replace").splitlines()
            return " | ".join(x for x in lines if " ERROR " in x or " WARN " in x or "Exception" in x)[-600:]
        except OSError:
            return ""

    def term(self, timeout):
        """SIGTERM (the worker's shutdown hook stops its connectors and commits their offsets); returns the exit
        status, or None if it had to be SIGKILLed after `timeout` seconds."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
            code = None
        self.logf.close()
        log("[%s] stopped (exit %s)" % (self.name, code))
        return code


class Rest:
    """The worker's REST API (https://kafka.apache.org/documentation/#connect_rest) through urllib."""

    def __init__(self, port, timeout):
        self.base = "http://127.0.0.1:%d" % port
        self.timeout = timeout

    def call(self, method, path, body=None):
        """Returns (HTTP status, decoded JSON body or text); connection errors propagate as OSError."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")[:300]

    def ok(self, method, path, body=None, want=(200, 201, 204)):
        status, got = self.call(method, path, body)
        check(status in want, "%s %s: HTTP %s %s", method, path, status, got)
        return got


def wait_rest(worker, rest):
    def up():
        worker.check_alive()
        try:
            status, info = rest.call("GET", "/")
        except OSError:
            return None
        return info if status == 200 else None
    info = eventually(up, timeout=START_TIMEOUT, interval=0.3, what="%s's REST API" % worker.name)
    log("[%s] REST up: %s" % (worker.name, info))
    return info


def wait_running(worker, rest, names):
    """Waits until every named connector and its task 0 report RUNNING."""
    def running():
        worker.check_alive()
        st = {n: rest.call("GET", "/connectors/%s/status" % n) for n in names}
        states = {n: (s[1].get("connector", {}).get("state"), [t.get("state") for t in s[1].get("tasks", [])])
                  if s[0] == 200 and isinstance(s[1], dict) else s for n, s in st.items()}
        for n, (c, tasks) in ((n, v) for n, v in states.items() if isinstance(v, tuple) and len(v) == 2):
            if c == "FAILED" or "FAILED" in tasks:
                raise RuntimeError("connector %s failed: %s" % (n, st[n][1]))
        if all(v == ("RUNNING", ["RUNNING"]) for v in states.values()):
            return states
        raise AssertionError("states %s" % states)
    return eventually(running, timeout=START_TIMEOUT, interval=0.3, what="connectors %s RUNNING" % names)


def wait_copied(worker, src, dst):
    """Waits until the sink's output file is exactly the input file (checked again a moment later: nothing
    extra may follow)."""
    with open(src, "rb") as f:
        want = f.read()

    def same():
        worker.check_alive()
        try:
            with open(dst, "rb") as f:
                got = f.read()
        except FileNotFoundError:
            got = b""
        if got == want:
            return True
        check(want.startswith(got), "output is not a prefix of the input: %d bytes (%d lines), first difference at "
              "line %d", len(got), got.count(b"\n"), _first_diff(want, got))
        raise AssertionError("%d of %d lines copied" % (got.count(b"\n"), want.count(b"\n")))
    eventually(same, timeout=COPY_TIMEOUT, interval=0.2, what="output file equal to the input")
    time.sleep(1.5)  # more than 2 offset flush intervals: a duplicate would have been written by now
    with open(dst, "rb") as f:
        got = f.read()
    check(got == want, "output changed after it equalled the input: %d lines, expected %d (first difference at "
          "line %d)", got.count(b"\n"), want.count(b"\n"), _first_diff(want, got))


def _first_diff(a, b):
    la, lb = a.split(b"\n"), b.split(b"\n")
    return next((i + 1 for i, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))


def worker_properties(path, ctx, rest_port, topics, extra):
    props = {
        "bootstrap.servers": ctx.bootstrap,
        "group.id": ctx.topic("group"),
        "listeners": "http://127.0.0.1:%d" % rest_port,
        "rest.advertised.host.name": "127.0.0.1",
        "rest.advertised.port": str(rest_port),
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.storage.StringConverter",
        "config.storage.topic": topics["configs"],
        "offset.storage.topic": topics["offsets"],
        "status.storage.topic": topics["status"],
        "config.storage.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
        # Source offsets and sink commits every 500 ms instead of every minute, so a run takes seconds.
        "offset.flush.interval.ms": "500",
        # A worker that left without a clean leave would hold its connectors back for 5 minutes (Kafka's default).
        "scheduled.rebalance.max.delay.ms": "2000",
        # The connectors are on the classpath with META-INF/services manifests: no reflective scan of every jar.
        "plugin.discovery": "service_load",
    }
    props.update(extra)
    with open(path, "w") as f:
        f.writelines("%s=%s\n" % kv for kv in props.items())


def check_internal_topics(ctx, admin, topics):
    """The worker creates its internal topics compacted (Kafka's TopicAdmin: cleanup.policy=compact) with Kafka's
    default partition counts."""
    # The REST API answers before the herder has created all three (offsets, status, then configs).
    def created():
        md = admin.list_topics(timeout=ctx.call_timeout).topics
        missing = [t for t in topics.values() if t not in md]
        check(not missing, "missing %s (topics: %s)", missing, sorted(x for x in md if x.startswith(ctx.topic())))
        return md
    md = eventually(created, timeout=START_TIMEOUT, what="the worker's internal topics")
    for kind, t in topics.items():
        check_eq(len(md[t].partitions), INTERNAL_PARTITIONS[kind], "partitions of the %s topic %s" % (kind, t))
    fs = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, t) for t in topics.values()],
                                request_timeout=ctx.call_timeout)
    for res, f in fs.items():
        cfg = f.result(timeout=ctx.call_timeout)
        e = cfg["cleanup.policy"]
        check_eq((e.value, ConfigSource(e.source).name), ("compact", "DYNAMIC_TOPIC_CONFIG"),
                 "cleanup.policy of %s (set by the worker when it created the topic)" % res.name)
        log("%s: cleanup.policy=%s (%s)" % (res.name, e.value, ConfigSource(e.source).name))


def check_topic(ctx, topic, lines, transactional):
    """The data topic holds exactly one record per input line, in order (read_committed). Without transactions its
    end offset is the line count; with them it is larger (a commit marker after each transaction)."""
    c = Consumer({"bootstrap.servers": ctx.bootstrap, "group.id": ctx.topic("probe"), "enable.auto.commit": False,
                  "isolation.level": "read_committed"})
    try:
        tp = TopicPartition(topic, 0)
        end = c.get_watermark_offsets(tp, timeout=ctx.call_timeout)[1]
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        last = -1  # offset of the last record
        deadline = time.monotonic() + ctx.call_timeout
        while time.monotonic() < deadline:
            msgs = c.consume(1000, timeout=0.5)
            for m in msgs:
                check(m.error() is None, "reading %s: %s", topic, m.error())
                got.append(m.value().decode() + "\n")
                last = m.offset()
            if not msgs and c.position([tp])[0].offset >= end:
                break
    finally:
        c.close()
    want = [line(i) for i in range(lines)]
    check(got == want, "%s: %d records read_committed, expected the %d input lines in order (first difference at "
          "record %d)", topic, len(got), lines, next((i for i, (a, b) in enumerate(zip(got, want)) if a != b),
                                                    min(len(got), len(want))))
    if transactional:
        check(end > lines, "end offset of %s is %d for %d records: no transaction markers", topic, end, lines)
    else:
        check_eq(end, lines, "end offset of %s" % topic)
    return end, last


def check_sink_committed(ctx, admin, group, topic, last):
    """The sink task's consumer group (Connect names it connect-<connector>) has committed the offset after the last
    record it wrote: what the next worker resumes from."""
    def committed():
        f = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])],
                                              request_timeout=ctx.call_timeout)[group]
        off = f.result(timeout=ctx.call_timeout).topic_partitions[0].offset
        check(off == last + 1, "committed %s, expected %d", off, last + 1)
        return off
    return eventually(committed, timeout=10, what="sink group %s committed offset" % group)


def connector_configs(data_topic, src, dst, source_extra):
    return {
        "source": dict({"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
                        "tasks.max": "1", "file": src, "topic": data_topic}, **source_extra),
        "sink": {"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector", "tasks.max": "1",
                 "file": dst, "topics": data_topic},
    }


@scenario("connect-distributed")
def connect_distributed(ctx):
    run_pipeline(ctx, {}, {})


@scenario("connect-eos-source")
def connect_eos_source(ctx):
    # KIP-618: the source task writes its records and its offsets in one transaction per poll; the leader writes the
    # config topic transactionally; the internal topics are read read_committed. The connector must declare it.
    run_pipeline(ctx, {"exactly.once.source.support": "enabled"}, {"exactly.once.support": "required"})


def run_pipeline(ctx, extra_props, source_extra):
    """Both phases of a connect-* scenario: a fresh worker copies the input file through a topic, then (after a
    SIGTERM and more input) a new worker with the same config resumes from what the first one stored.
    extra_props go to the worker's properties, source_extra to the source connector's config."""
    transactional = extra_props.get("exactly.once.source.support") == "enabled"
    argv = json.loads(os.environ["STROM_CONNECT_WORKER"])
    logdir = os.environ.get("STROM_CONNECT_LOGDIR") or tempfile.gettempdir()
    work = tempfile.mkdtemp(prefix="strom-connect-%s-" % ctx.run_id)
    topics = {k: ctx.topic(k) for k in INTERNAL_PARTITIONS}
    data_topic = ctx.topic("data")
    src, dst = os.path.join(work, "input.txt"), os.path.join(work, "output.txt")
    props = os.path.join(work, "worker.properties")
    rest_port = free_port()
    worker_properties(props, ctx, rest_port, topics, extra_props)
    rest = Rest(rest_port, ctx.call_timeout)
    admin = AdminClient({"bootstrap.servers": ctx.bootstrap})
    for f in admin.create_topics([NewTopic(data_topic, 1, 1)], operation_timeout=ctx.call_timeout).values():
        f.result(timeout=ctx.call_timeout)
    with open(src, "w") as f:
        f.writelines(line(i) for i in range(FIRST_LINES))
    configs = connector_configs(data_topic, src, dst, source_extra)
    names = {"source": ctx.topic("file-source"), "sink": ctx.topic("file-sink")}
    worker = None
    try:
        # Phase 1: a fresh worker, its internal topics, both connectors created over REST, the file copied.
        t = time.monotonic()
        worker = Worker("worker1", argv, props, os.path.join(logdir, "connect-%s-worker1.log" % ctx.scenario))
        wait_rest(worker, rest)
        check_internal_topics(ctx, admin, topics)
        for kind in ("source", "sink"):
            got = rest.ok("POST", "/connectors", {"name": names[kind], "config": configs[kind]}, want=(201,))
            check_eq(got.get("name"), names[kind], "name in the answer to POST /connectors")
        wait_running(worker, rest, list(names.values()))
        wait_copied(worker, src, dst)
        end, last = check_topic(ctx, data_topic, FIRST_LINES, transactional)
        check_sink_committed(ctx, admin, "connect-" + names["sink"], data_topic, last)
        log("phase 1: %d lines copied in %.1fs (end offset %d)" % (FIRST_LINES, time.monotonic() - t, end))
        code = worker.term(30)
        check(code is not None, "worker1 did not exit within 30s of SIGTERM")

        # Phase 2: more input while no worker runs; a new worker with the same config finds the connectors in the
        # config topic and resumes the source from its offset topic and the sink from its group's commits.
        with open(src, "a") as f:
            f.writelines(line(i) for i in range(FIRST_LINES, FIRST_LINES + MORE_LINES))
        if os.environ.get("STROM_CONNECT_BREAK") == "offsets":
            # Deliberate-break check: worker2 gets an empty offsets topic, so the source starts over from line 0.
            worker_properties(props, ctx, rest_port, dict(topics, offsets=topics["offsets"] + "-broken"), extra_props)
        t = time.monotonic()
        worker = Worker("worker2", argv, props, os.path.join(logdir, "connect-%s-worker2.log" % ctx.scenario))
        wait_rest(worker, rest)

        def listed():
            worker.check_alive()
            got = rest.ok("GET", "/connectors")
            return sorted(got) == sorted(names.values()) and got
        log("worker2 lists %s" % eventually(listed, timeout=START_TIMEOUT, what="both connectors listed by worker2"))
        for kind in ("source", "sink"):
            got = rest.ok("GET", "/connectors/%s/config" % names[kind])
            check_eq(got, dict(configs[kind], name=names[kind]), "stored config of %s" % names[kind])
        wait_running(worker, rest, list(names.values()))
        wait_copied(worker, src, dst)
        end, last = check_topic(ctx, data_topic, FIRST_LINES + MORE_LINES, transactional)
        check_sink_committed(ctx, admin, "connect-" + names["sink"], data_topic, last)
        log("phase 2: %d more lines copied in %.1fs (end offset %d)" % (MORE_LINES, time.monotonic() - t, end))
        code = worker.term(30)
        check(code is not None, "worker2 did not exit within 30s of SIGTERM")
        worker = None
    finally:
        if worker is not None and worker.proc.poll() is None:
            worker.proc.kill()
            worker.proc.wait(30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    common.main("java")
