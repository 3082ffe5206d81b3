"""One consumer-group member process for the Python-based clients (confluent-kafka, kafka-python, kcat, and Kafka's
ConsoleConsumer for kafka-cli), driven by
drivers/groups.py. The member programs of the other clients (java/.../Member.java, franz/main.go --member,
kafkajs/main.js --member) speak the same line protocol:

    member.py CLIENT --bootstrap H:P --group G --topic T [--session-timeout-ms 6000] [--heartbeat-ms 1000]
              [--assignor NAME] [--commit-metadata STR] [--call-timeout S]

stdout, one line each:
    READY                        subscribed
    ASSIGNED 0,1,2 | ASSIGNED -  the member's current assignment of T, whenever it changes
    RECORD <partition> <offset> <value>   a consumed record (its offset is committed right after the batch)
    COMMITTED <p>:<offset>:<metadata> ...  (with --commit-metadata) committed offsets read back after a commit
    ERROR <message>              a client error (the orchestrator fails the scenario)
    COMMIT-FAILED <message>      a commit refused because the group moved on (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION,
                                 REBALANCE_IN_PROGRESS: Java's CommitFailedException); the member rejoins and gets
                                 the uncommitted records again (at least once). Counted, not fatal.
    CLOSED                       after a clean close (LeaveGroup)
stdin: a line `close` (or EOF) closes the consumer cleanly and exits. SIGKILL abandons the group without leaving.
Offsets are committed synchronously after every non-empty batch, before the next poll: a revoked partition has
everything its member consumed committed.
"""

import argparse
import os
import sys
import threading
import time

_out_lock = threading.Lock()


def out(*a):
    with _out_lock:
        sys.stdout.write(" ".join(str(x) for x in a) + "\n")
        sys.stdout.flush()


def parts_line(ps):
    return ",".join(str(p) for p in sorted(ps)) if ps else "-"


def stdin_watcher():
    ev = threading.Event()

    def run():
        for line in sys.stdin:
            if line.strip() == "close":
                break
        ev.set()
    threading.Thread(target=run, daemon=True).start()
    return ev


def confluent_member(a, stop):
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    global REBALANCE_CODES
    REBALANCE_CODES = (KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION, KafkaError.REBALANCE_IN_PROGRESS,
                       KafkaError._ASSIGNMENT_LOST, KafkaError.FENCED_INSTANCE_ID)
    ms = int(a.call_timeout * 1000)
    conf = {"bootstrap.servers": a.bootstrap, "group.id": a.group, "enable.auto.commit": False,
            "auto.offset.reset": "earliest", "session.timeout.ms": a.session_timeout_ms,
            "heartbeat.interval.ms": a.heartbeat_ms, "socket.timeout.ms": ms, "fetch.wait.max.ms": 200,
            "client.id": "strom-compat-member"}
    if a.assignor:
        conf["partition.assignment.strategy"] = a.assignor
    c = Consumer(conf)
    c.subscribe([a.topic])
    out("READY")
    last = None
    while not stop.is_set():
        msgs = c.consume(num_messages=500, timeout=0.2)
        cur = {tp.partition for tp in c.assignment() if tp.topic == a.topic}
        if cur != last:
            out("ASSIGNED", parts_line(cur))
            last = cur
        nxt = {}
        for m in msgs:
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                if m.error().code() in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN) or m.error().retriable():
                    sys.stderr.write("transient consumer error (librdkafka retries): %s\n" % m.error())
                    continue
                out("ERROR", "consume: %s" % m.error())
                continue
            out("RECORD", m.partition(), m.offset(), m.value().decode())
            nxt[m.partition()] = m.offset() + 1
        if nxt:
            tps = [TopicPartition(a.topic, p, o, metadata=a.commit_metadata) if a.commit_metadata else
                   TopicPartition(a.topic, p, o) for p, o in sorted(nxt.items())]
            try:
                c.commit(offsets=tps, asynchronous=False)
            except Exception as e:  # noqa: BLE001
                err = e.args[0] if e.args and hasattr(e.args[0], "code") else None
                if err is not None and err.code() in REBALANCE_CODES:
                    out("COMMIT-FAILED", "commit: %s" % e)  # the member rejoins; the records come again
                else:
                    out("ERROR", "commit: %s" % e)
                continue
            if a.commit_metadata:
                got = c.committed([TopicPartition(a.topic, p) for p in sorted(nxt)], timeout=a.call_timeout)
                out("COMMITTED", *["%d:%d:%s" % (tp.partition, tp.offset, tp.metadata) for tp in got])
    c.close()
    out("CLOSED")


def kafka_python_member(a, stop):
    from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
    from kafka.coordinator.assignors.range import RangePartitionAssignor
    from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor
    from kafka.coordinator.assignors.sticky.sticky_assignor import StickyPartitionAssignor
    assignors = {"range": RangePartitionAssignor, "roundrobin": RoundRobinPartitionAssignor,
                 "sticky": StickyPartitionAssignor}
    ms = int(a.call_timeout * 1000)
    kw = {}
    if a.assignor:
        kw["partition_assignment_strategy"] = [assignors[a.assignor]]
    c = KafkaConsumer(bootstrap_servers=a.bootstrap, group_id=a.group, enable_auto_commit=False,
                      auto_offset_reset="earliest", session_timeout_ms=a.session_timeout_ms,
                      heartbeat_interval_ms=a.heartbeat_ms, request_timeout_ms=ms, bootstrap_timeout_ms=ms,
                      fetch_max_wait_ms=200, client_id="strom-compat-member", **kw)
    c.subscribe([a.topic])
    out("READY")
    last = None
    while not stop.is_set():
        batch = c.poll(timeout_ms=200, max_records=500)
        cur = {tp.partition for tp in c.assignment() if tp.topic == a.topic}
        if cur != last:
            out("ASSIGNED", parts_line(cur))
            last = cur
        nxt = {}
        for tp, msgs in batch.items():
            for m in msgs:
                out("RECORD", m.partition, m.offset, m.value.decode())
                nxt[m.partition] = m.offset + 1
        if nxt:
            offs = {TopicPartition(a.topic, p): OffsetAndMetadata(o, a.commit_metadata or "", -1)
                    for p, o in nxt.items()}
            try:
                c.commit(offs)
            except Exception as e:  # noqa: BLE001
                from kafka.errors import CommitFailedError
                out("COMMIT-FAILED" if isinstance(e, CommitFailedError) else "ERROR",
                    "commit: %s: %s" % (type(e).__name__, e))
                continue
            if a.commit_metadata:
                got = []
                try:
                    for p in sorted(nxt):
                        om = c.committed(TopicPartition(a.topic, p), metadata=True)
                        got.append("%d:%s:%s" % (p, om.offset if om else None, om.metadata if om else None))
                except Exception as e:  # noqa: BLE001
                    # The broker may be restarting (the scenario restarts it): kafka-python raises a connection
                    # error here instead of retrying. The commit itself succeeded; the next batch checks again.
                    out("RETRY", "committed: %s: %s" % (type(e).__name__, e))
                    continue
                out("COMMITTED", *got)
    c.close()
    out("CLOSED")


def kcat_member(a, stop):
    """`kcat -G group topic`: the balanced consumer (auto-commit every 200 ms). Its rebalance notices on stderr
    ("% Group ... rebalanced ... assigned: t [0], t [1]") give the assignment; SIGTERM makes it close cleanly."""
    import json
    import re
    import subprocess
    cmd = ["kcat", "-b", a.bootstrap, "-G", a.group, a.topic, "-J", "-u",
           "-X", "session.timeout.ms=%d" % a.session_timeout_ms, "-X", "heartbeat.interval.ms=%d" % a.heartbeat_ms,
           "-X", "enable.auto.commit=true", "-X", "auto.commit.interval.ms=200", "-X", "fetch.wait.max.ms=200",
           "-X", "auto.offset.reset=earliest"]
    if a.assignor:
        cmd += ["-X", "partition.assignment.strategy=" + a.assignor]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    cur = set()

    def read_err():
        nonlocal cur
        for raw in p.stderr:
            line = raw.decode(errors="replace").rstrip()
            sys.stderr.write("[kcat] " + line + "\n")
            m = re.search(r"rebalanced .*?: (assigned|revoked): (.*)$", line)
            if m:
                ps = {int(x) for x in re.findall(re.escape(a.topic) + r" \[(\d+)\]", m.group(2))}
                cur = ps if m.group(1) == "assigned" else set()
                out("ASSIGNED", parts_line(cur))
            elif "ERROR" in line or "%3|" in line:
                out("ERROR", "kcat: " + line[:300])

    def read_out():
        for raw in p.stdout:
            m = json.loads(raw)
            out("RECORD", m["partition"], m["offset"], m["payload"])
    run_child_member(p, "kcat", read_out, read_err, a, stop)


def run_child_member(p, name, read_out, read_err, a, stop):
    """Runs a member that is a child process: its output is read by `read_out`/`read_err` on threads, READY is
    reported, and on `stop` the child gets SIGTERM (its own clean leave) and CLOSED once it has exited."""
    import signal
    import subprocess
    te = threading.Thread(target=read_err, daemon=True)
    to = threading.Thread(target=read_out, daemon=True)
    te.start()
    to.start()
    out("READY")
    while not stop.is_set() and p.poll() is None:
        stop.wait(0.2)
    if p.poll() is not None:
        out("ERROR", "%s exited %s" % (name, p.returncode))
        return
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(a.call_timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out("ERROR", "%s did not exit within %ss of SIGTERM" % (name, a.call_timeout))
        return
    to.join(5)
    te.join(5)
    out("CLOSED")


def kafka_cli_member(a, stop):
    """Kafka's ConsoleConsumer with --group (auto-commit every 200 ms, commit on close); SIGTERM runs its shutdown
    hook (commit, LeaveGroup). It prints no assignment: only the records (the group scenarios that need ASSIGNED
    are not run with this member)."""
    import re
    import subprocess
    import tempfile
    fd, log4j = tempfile.mkstemp(suffix=".properties", prefix="strom-member-log4j2-")
    os.write(fd, b"status = error\nappender.err.type = Console\nappender.err.name = STDERR\n"
                 b"appender.err.target = SYSTEM_ERR\nappender.err.layout.type = PatternLayout\n"
                 b"appender.err.layout.pattern = %p %m%n\nrootLogger.level = error\n"
                 b"rootLogger.appenderRef.err.ref = STDERR\n")
    os.close(fd)
    cmd = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Dlog4j2.configurationFile=" + log4j,
           "-cp", os.environ["STROM_KAFKA_LIBS"] + "/*", "org.apache.kafka.tools.consumer.ConsoleConsumer",
           "--bootstrap-server", a.bootstrap, "--topic", a.topic, "--group", a.group,
           "--consumer-property", "auto.offset.reset=earliest",
           "--consumer-property", "session.timeout.ms=%d" % a.session_timeout_ms,
           "--consumer-property", "heartbeat.interval.ms=%d" % a.heartbeat_ms,
           "--consumer-property", "auto.commit.interval.ms=200",
           "--consumer-property", "fetch.max.wait.ms=200",
           "--consumer-property", "request.timeout.ms=%d" % int(a.call_timeout * 1000),
           "--property", "print.partition=true", "--property", "print.offset=true"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)

    def read_err():
        for raw in p.stderr:
            line = raw.decode(errors="replace").rstrip()
            sys.stderr.write("[console-consumer] " + line + "\n")

    def read_out():
        for raw in p.stdout:
            m = re.match(r"Partition:(\d+)\tOffset:(\d+)\t(.*)$", raw.decode(errors="replace").rstrip("\n"))
            if m:
                out("RECORD", m.group(1), m.group(2), m.group(3))
            else:
                sys.stderr.write("[console-consumer stdout] %r\n" % raw)
    run_child_member(p, "ConsoleConsumer", read_out, read_err, a, stop)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("client", choices=["confluent-kafka", "kafka-python", "kcat", "kafka-cli"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--session-timeout-ms", type=int, default=6000)
    ap.add_argument("--heartbeat-ms", type=int, default=1000)
    ap.add_argument("--assignor")
    ap.add_argument("--commit-metadata")
    ap.add_argument("--call-timeout", type=float, default=30.0)
    a = ap.parse_args()
    stop = stdin_watcher()
    fn = {"confluent-kafka": confluent_member, "kafka-python": kafka_python_member, "kcat": kcat_member,
          "kafka-cli": kafka_cli_member}[a.client]
    try:
        fn(a, stop)
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        out("ERROR", "%s: %s" % (type(e).__name__, " ".join(str(e).split())))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
