"""Shared harness for the Python-based client drivers of the compatibility suite.

A driver is a program run as

    <driver> --bootstrap 127.0.0.1:P --run-id ID --scenarios a,b,c [--call-timeout 30] [--scenario-timeout 120]

that prints, for each requested scenario, exactly one line

    RESULT <scenario> PASS
    RESULT <scenario> FAIL <one-line reason>

Anything else it prints is diagnostics (kept in the run's log directory). compat-tests/run treats a scenario
without a RESULT line (crash, hang) as FAIL.

Python drivers register scenario functions with @scenario("name"); each gets a Ctx and fails by raising
(``check`` raises AssertionError with a readable message).
"""

import argparse
import select
import subprocess
import sys
import threading
import time
import traceback

_SCENARIOS = {}


_T0 = time.monotonic()
_log_lock = threading.Lock()


def log(*a):
    """One line on stderr (the driver's log), prefixed with seconds since the driver started; thread-safe."""
    with _log_lock:
        sys.stderr.write("%7.2f " % (time.monotonic() - _T0) + " ".join(str(x) for x in a) + "\n")
        sys.stderr.flush()


def free_port():
    """A loopback port free right now (for a process the driver starts)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def scenario(name):
    def deco(fn):
        _SCENARIOS[name] = fn
        return fn
    return deco


class Ctx:
    def __init__(self, args, scenario_name, client):
        self.bootstrap = args.bootstrap
        self.host, port = args.bootstrap.rsplit(":", 1)
        self.port = int(port)
        self.run_id = args.run_id
        self.call_timeout = args.call_timeout
        self.scenario = scenario_name
        self.client = client

    def topic(self, suffix=""):
        """A topic name unique to this run, client and scenario."""
        base = "%s-%s-%s" % (self.scenario, self.client, self.run_id)
        return base + ("-" + suffix if suffix else "")

    def log(self, *a):
        print("[%s %s]" % (self.client, self.scenario), *a, flush=True)

    def restart_broker(self, mode, timeout=240.0):
        """Asks compat-tests/run to restart the broker (mode 'term' = SIGTERM, 'kill' = SIGKILL) on the same data dir
        and port; returns once it answers again. Raises AssertionError if the harness could not restart it."""
        return restart_broker(mode, timeout)


def restart_broker(mode, timeout=240.0):
    """The driver side of the restart protocol (see compat-tests/run): `RESTART-BROKER <mode>` on stdout, then one
    line on stdin, `RESTARTED <host:port>` or `RESTART-FAILED <reason>`."""
    assert mode in ("term", "kill"), mode
    print("RESTART-BROKER %s" % mode, flush=True)
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        raise AssertionError("no answer to RESTART-BROKER %s within %.0fs" % (mode, timeout))
    line = sys.stdin.readline().strip()
    if not line.startswith("RESTARTED"):
        raise AssertionError("broker restart (%s) failed: %s" % (mode, line or "harness closed stdin"))
    return line.split(" ", 1)[1] if " " in line else None


def close_via_stdin(proc, timeout):
    """Asks a child driven over stdin (group members, the Streams app) to close cleanly with a `close` line;
    returns its exit code, or None if it did not exit within `timeout` seconds (the caller kills it)."""
    try:
        proc.stdin.write(b"close\n")
        proc.stdin.flush()
    except OSError:
        pass
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        return None


def check(cond, msg, *fmt):
    if not cond:
        raise AssertionError(msg % fmt if fmt else msg)


def check_eq(actual, expected, what):
    if actual != expected:
        raise AssertionError("%s: expected %r, got %r" % (what, expected, actual))


def eventually(fn, timeout=30.0, interval=0.2, what="condition"):
    """Polls fn() until it returns a truthy value (returned) or timeout (AssertionError with last state)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = fn()
            if v:
                return v
            last = v
        except AssertionError as e:
            last = e
        if time.monotonic() > deadline:
            raise AssertionError("%s not reached within %.0fs (last: %s)" % (what, timeout, last))
        time.sleep(interval)


def expect_error(fn, matches, what):
    """Runs fn, which must raise; matches(exc) -> bool decides whether it is the expected error.
    Returns the exception. Raises AssertionError otherwise."""
    try:
        r = fn()
    except AssertionError:
        raise
    except Exception as e:  # noqa: BLE001 - any client exception is data here
        if not matches(e):
            raise AssertionError("%s: unexpected error %s: %s" % (what, type(e).__name__, e))
        return e
    raise AssertionError("%s: expected an error, got success (%r)" % (what, r))


# ---------------------------------------------------------------------------------------------------------------
# Records of the produce/consume scenarios, the same in every Python driver (the Java, Go and JS drivers build the
# same shapes): record i goes to partition i % partitions and must come back at offset i // partitions.

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
# Records per codec in produce-consume for the library clients (confluent-kafka, java, franz-go, kafkajs,
# kafka-python); kcat and the console tools use fewer (see compat-tests/README.md).
CODEC_RECORDS = 100000
_FILLER = b"the quick brown fox jumps over the lazy dog; " * 4


def rec_key(i):
    return None if i % 10 == 0 else b"key-%d" % i


def rec_value(tag, i):
    return b"value-%s-%06d|" % (tag.encode(), i) + _FILLER[: 40 + i % 97]


def rec_headers(tag, i):
    return [] if i % 4 == 0 else [("idx", b"%d" % i), ("tag", tag.encode())]


def expected_records(tag, n, partitions=1, base_ts=None, headers=True, first=0):
    """Expected (partition, offset, key, value, headers, timestamp) of records first..first+n-1; timestamp None means
    'not checked here' (clients that cannot set one)."""
    out = []
    for i in range(first, first + n):
        out.append((i % partitions, i // partitions, rec_key(i), rec_value(tag, i),
                    rec_headers(tag, i) if headers else [], None if base_ts is None else base_ts + i))
    return out


def verify_records(got, expected, what):
    """got/expected: lists of (partition, offset, key, value, headers, timestamp) in consumption order. Per partition,
    the records must be exactly the expected ones, in order (hence consecutive offsets), nothing missing or extra."""
    def split(recs):
        by = {}
        for r in recs:
            by.setdefault(r[0], []).append(r)
        return by
    g, e = split(got), split(expected)
    check(sorted(g) == sorted(e) or not got, "%s: records on partitions %s, expected partitions %s", what,
          sorted(g), sorted(e))
    names = ("partition", "offset", "key", "value", "headers", "timestamp")
    for p in sorted(e):
        gp, ep = g.get(p, []), e[p]
        if gp == ep:
            continue  # fast path (one C-level comparison of the tuples); a timestamp None never equals a real one
        for j, (a, b) in enumerate(zip(gp, ep)):
            for k, name in enumerate(names):
                if b[k] is None and name == "timestamp":
                    continue
                if a[k] != b[k]:
                    raise AssertionError("%s: partition %d record #%d (offset %r): %s %s, expected %s" % (
                        what, p, j, a[1], name, _short(a[k]), _short(b[k])))
        check(len(gp) == len(ep), "%s: partition %d has %d records, expected %d", what, p, len(gp), len(ep))
    check(len(got) == len(expected), "%s: %d records, expected %d", what, len(got), len(expected))


# ---------------------------------------------------------------------------------------------------------------
# log-compaction: the same input in every driver (java/.../Scenarios.java, franz/main.go, kafkajs/main.js). The
# expected list is Apache Kafka 4.4.0's result: the newest record per key, the tombstone of k2 kept (inside
# delete.retention.ms), offsets preserved with gaps; s1 (the write that rolls the segment) stays in the active one.

COMPACTION_CONFIGS = {"cleanup.policy": "compact", "segment.ms": "100", "min.cleanable.dirty.ratio": "0.01",
                      "delete.retention.ms": "86400000"}
COMPACTION_WRITES = [(b"k1", b"a1"), (b"k2", b"b1"), (b"k3", b"c1"), (b"k1", b"a2"), (b"k2", None), (b"k4", b"d1"),
                     (b"k1", b"a3"), (b"k3", b"c2")]
COMPACTION_ROLL = (b"s1", b"x")
COMPACTION_EXPECTED = [(4, b"k2", None), (5, b"k4", b"d1"), (6, b"k1", b"a3"), (7, b"k3", b"c2"), (8, b"s1", b"x")]


def log_compaction(ctx, create, produce, read_all, wait=30.0):
    """The log-compaction scenario over a client's own calls: create(topic, configs) makes a one-partition topic,
    produce(topic, [(key, value)]) writes in order and waits for the acks, read_all(topic) returns (offset, key, value)
    of every record from the beginning up to the high watermark. Kafka rolls a segment only on an append, so one
    more write after segment.ms seals the first segment; then the cleaner (log.cleaner.backoff.ms is set low by
    compat-tests/run) must produce exactly COMPACTION_EXPECTED within `wait` seconds."""
    t = ctx.topic()
    create(t, COMPACTION_CONFIGS)
    time.sleep(0.5)
    produce(t, COMPACTION_WRITES)
    time.sleep(1.5)
    produce(t, [COMPACTION_ROLL])
    deadline, last = time.monotonic() + wait, None
    while True:
        last = [(o, k, v) for o, k, v in read_all(t)]
        if last == COMPACTION_EXPECTED:
            return
        if time.monotonic() > deadline:
            raise AssertionError("log not cleaned to the expected records within %.0fs: expected %r, last read %r" % (
                wait, COMPACTION_EXPECTED, last))
        time.sleep(1.0)


class Stopwatch:
    """Per-phase timings of a scenario, logged as one diagnostics line (kept in the client's log)."""

    def __init__(self, ctx, what):
        self.ctx, self.what, self.parts = ctx, what, []
        self.start = self.last = time.monotonic()

    def lap(self, name):
        now = time.monotonic()
        self.parts.append("%s %.1fs" % (name, now - self.last))
        self.last = now

    def done(self):
        self.ctx.log("%s: %s, total %.1fs" % (self.what, ", ".join(self.parts), time.monotonic() - self.start))


def _short(v):
    r = repr(v)
    return r if len(r) < 120 else r[:120] + "..."


def one_line(s):
    s = " ".join(str(s).split())
    return s if len(s) < 600 else s[:600] + "..."


def main(client):
    p = argparse.ArgumentParser()
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--run-id", required=True)
    p.add_argument("--scenarios", required=True)
    p.add_argument("--call-timeout", type=float, default=30.0)
    p.add_argument("--scenario-timeout", type=float, default=120.0)
    args = p.parse_args()
    for name in [s for s in args.scenarios.split(",") if s]:
        fn = _SCENARIOS.get(name)
        if fn is None:
            print("RESULT %s FAIL scenario not implemented by the %s driver" % (name, client), flush=True)
            continue
        box = {}

        def run():
            try:
                fn(Ctx(args, name, client))
                box["ok"] = True
            except BaseException as e:  # noqa: BLE001
                box["err"] = e
                box["tb"] = traceback.format_exc()

        t = threading.Thread(target=run, daemon=True)
        start = time.monotonic()
        t.start()
        t.join(args.scenario_timeout)
        took = time.monotonic() - start
        if t.is_alive():
            print("RESULT %s FAIL timed out after %.0fs" % (name, args.scenario_timeout), flush=True)
            # The stuck thread may hold client resources; the remaining scenarios still get their chance.
        elif box.get("ok"):
            print("RESULT %s PASS (%.1fs)" % (name, took), flush=True)
        else:
            e = box["err"]
            sys.stderr.write(box.get("tb", ""))
            reason = str(e) if isinstance(e, AssertionError) else "%s: %s" % (type(e).__name__, e)
            print("RESULT %s FAIL %s" % (name, one_line(reason)), flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    import os
    os._exit(0)  # do not wait for stuck client threads
