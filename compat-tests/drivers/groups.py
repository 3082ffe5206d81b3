"""Consumer-group scenarios, run for any client through its member program (see drivers/member.py for the line
protocol). compat-tests/run starts this driver for the group scenarios of a client with

    STROM_GROUP_CLIENT=<client>  STROM_MEMBER_CMD=<json argv of the client's member program>
    STROM_MEMBER_VARIANTS=<json list of extra-argument lists, default [[]]; e.g. one per Java assignor>

Every member is a separate process of the client under test (so a member can be SIGKILLed: it stops heartbeating
without a LeaveGroup); this orchestrator produces the records, creates the topics and reads the group's committed
offsets with confluent-kafka (librdkafka) and checks what the members report. Variants run concurrently, each in its
own group and topic.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import common
from common import check, check_eq, scenario, log

from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

CLIENT = os.environ.get("STROM_GROUP_CLIENT", "?")
SESSION_MS = 6000  # the broker's group.min.session.timeout.ms; keeps the abandoned-member wait short
HEARTBEAT_MS = 1000


def member_cmd():
    return json.loads(os.environ["STROM_MEMBER_CMD"])


def variants():
    return json.loads(os.environ.get("STROM_MEMBER_VARIANTS") or "[[]]")




class Member:
    """One member process; a reader thread keeps its reported state."""

    def __init__(self, ctx, name, group, topic, extra=()):
        self.name = name
        cmd = member_cmd() + ["--bootstrap", ctx.bootstrap, "--group", group, "--topic", topic,
                              "--session-timeout-ms", str(SESSION_MS), "--heartbeat-ms", str(HEARTBEAT_MS),
                              "--call-timeout", str(ctx.call_timeout)] + list(extra)
        log("[%s] $ %s" % (name, " ".join(cmd)))
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=sys.stderr,
                                     start_new_session=True)
        self.lock = threading.Lock()
        self.ready = False
        self.assigned = None  # set of partitions, None before the first ASSIGNED
        self.records = []  # (partition, offset, value)
        self.committed = {}  # partition -> (offset, metadata) as read back by the member
        self.errors = []
        self.commit_failures = []
        self.closed = False
        self.dead = False
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip("\n")
            if not line.startswith("RECORD"):
                log("[%s] %s" % (self.name, line))
            w = line.split(" ")
            with self.lock:
                if w[0] == "READY":
                    self.ready = True
                elif w[0] == "ASSIGNED":
                    self.assigned = set() if w[1] == "-" else {int(x) for x in w[1].split(",")}
                elif w[0] == "RECORD":
                    self.records.append((int(w[1]), int(w[2]), w[3]))
                elif w[0] == "COMMITTED":
                    for item in w[1:]:
                        p, o, m = item.split(":", 2)
                        self.committed[int(p)] = (int(o) if o.lstrip("-").isdigit() else o, m)
                elif w[0] == "ERROR":
                    self.errors.append(line[6:])
                elif w[0] == "COMMIT-FAILED":
                    self.commit_failures.append(line[14:])
                elif w[0] == "CLOSED":
                    self.closed = True
        with self.lock:
            self.dead = True

    def state(self):
        with self.lock:
            return self.assigned, list(self.records), list(self.errors), self.dead

    def check_alive(self):
        with self.lock:
            check(not self.errors, "member %s reported errors: %s", self.name, "; ".join(self.errors[:3]))
            check(not self.dead, "member %s exited unexpectedly (exit %s)", self.name, self.proc.poll())

    def close(self, timeout):
        """Clean close: the member leaves the group."""
        if common.close_via_stdin(self.proc, timeout) is None:
            self.kill()
            raise AssertionError("member %s did not close within %.0fs" % (self.name, timeout))
        self.t.join(5)
        with self.lock:
            check(self.closed, "member %s exited (%s) without a clean close; errors: %s", self.name,
                  self.proc.returncode, self.errors[:3])
            check(not self.errors, "member %s reported errors: %s", self.name, "; ".join(self.errors[:3]))

    def kill(self):
        """SIGKILL: no LeaveGroup, no more heartbeats."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


class Group:
    """A group of members of one variant, with its topic and bookkeeping."""

    def __init__(self, ctx, label, extra, partitions):
        self.ctx = ctx
        self.label = label
        self.extra = list(extra)
        self.topic = ctx.topic(label)
        self.group = ctx.topic(label + "-group")
        self.partitions = partitions
        self.members = []
        self.kadmin = None
        self.produced = []  # values
        self.admin = AdminClient({"bootstrap.servers": ctx.bootstrap, "socket.timeout.ms": int(ctx.call_timeout * 1000)})
        import concurrent.futures
        for f in self.admin.create_topics([NewTopic(self.topic, num_partitions=partitions, replication_factor=1)],
                                          operation_timeout=ctx.call_timeout,
                                          request_timeout=ctx.call_timeout).values():
            try:
                f.result(timeout=ctx.call_timeout)
            except concurrent.futures.TimeoutError:
                raise AssertionError("create topic %s: no answer within %.0fs" % (self.topic, ctx.call_timeout))

    def start(self, name, extra=()):
        m = Member(self.ctx, "%s/%s" % (self.label, name), self.group, self.topic, self.extra + list(extra))
        self.members.append(m)
        return m

    def live(self):
        return [m for m in self.members if m.proc.poll() is None]

    def stop_all(self):
        for m in self.members:
            m.kill()

    def produce(self, tag, n):
        """n records, record i to partition i % partitions, value '<tag>-<i>'; waits for every acknowledgement."""
        p = Producer({"bootstrap.servers": self.ctx.bootstrap, "acks": "all", "linger.ms": 5,
                      "message.timeout.ms": int(self.ctx.call_timeout * 1000)})
        errs = []
        vals = ["%s-%d" % (tag, i) for i in range(n)]
        for i, v in enumerate(vals):
            p.produce(self.topic, value=v.encode(), partition=i % self.partitions,
                      on_delivery=lambda err, msg: errs.append(err) if err else None)
        left = p.flush(self.ctx.call_timeout + 5)
        check(left == 0 and not errs, "%s: produce %s: %d undelivered, errors %s", self.label, tag, left, errs[:2])
        self.produced += vals
        return vals

    def end_offsets(self):
        from confluent_kafka import Consumer
        c = Consumer({"bootstrap.servers": self.ctx.bootstrap, "group.id": self.group + "-probe"})
        try:
            return {p: c.get_watermark_offsets(TopicPartition(self.topic, p), timeout=self.ctx.call_timeout,
                                               cached=False)[1] for p in range(self.partitions)}
        finally:
            c.close()

    def committed(self):
        """The group's committed offsets as the broker answers OffsetFetch: {partition: (offset, metadata)}.
        Read with kafka-python's admin client (confluent-kafka's Python binding reads the metadata string past its
        end)."""
        if self.kadmin is None:
            from kafka.admin import KafkaAdminClient
            ms = int(self.ctx.call_timeout * 1000)
            self.kadmin = KafkaAdminClient(bootstrap_servers=self.ctx.bootstrap, request_timeout_ms=ms,
                                           bootstrap_timeout_ms=ms, client_id="strom-compat-groups")
        from kafka import TopicPartition as KTP
        try:
            res = self.kadmin.list_group_offsets({self.group: [KTP(self.topic, p)
                                                               for p in range(self.partitions)]})[self.group]
        except Exception:
            self.kadmin.close()
            self.kadmin = None
            raise
        return {tp.partition: (om.offset, om.metadata) for tp, om in res.items()}

    def consumed(self):
        vals = []
        for m in self.members:
            vals += [r[2] for r in m.state()[1]]
        return vals

    def wait(self, what, probe, timeout):
        """Polls probe() (truthy = done) while checking that the live members are healthy."""
        deadline = time.monotonic() + timeout
        last = None
        while True:
            for m in self.live():
                m.check_alive()
            try:
                v = probe()
                if v:
                    return v
                last = v
            except Exception as e:  # noqa: BLE001 - e.g. the admin client reconnecting after a broker restart
                last = "%s: %s" % (type(e).__name__, e)
            if time.monotonic() > deadline:
                raise AssertionError("%s: %s not reached within %.0fs (last: %s)" % (self.label, what, timeout, last))
            time.sleep(0.1)

    def wait_split(self, members, what, timeout):
        """Until the members' assignments are non-empty, disjoint and cover every partition; returns them."""
        def probe():
            asg = [m.state()[0] for m in members]
            if any(a is None or not a for a in asg):
                return False
            union = set().union(*asg)
            if sum(len(a) for a in asg) != len(union) or union != set(range(self.partitions)):
                return False
            return asg
        try:
            return self.wait(what, probe, timeout)
        except AssertionError as e:
            raise AssertionError("%s; assignments: %s" % (e, self._asg(members)))

    def _asg(self, members):
        return ", ".join("%s=%s" % (m.name.split("/")[-1], sorted(m.state()[0]) if m.state()[0] is not None else None)
                         for m in members)

    def wait_consumed_and_committed(self, what, timeout):
        """Until every produced record was consumed (at least once) and the committed offsets equal the end
        offsets."""
        want = set(self.produced)

        def probe():
            got = set(self.consumed())
            missing = want - got
            if missing:
                return False
            ends = self.end_offsets()
            com = self.committed()
            return all(com.get(p, (None,))[0] == ends[p] for p in ends) or None
        try:
            self.wait(what, probe, timeout)
        except AssertionError as e:
            got = set(self.consumed())
            raise AssertionError("%s; %d of %d produced records consumed, committed %s, end offsets %s" % (
                e, len(want & got), len(want), self._safe(self.committed), self._safe(self.end_offsets)))

    @staticmethod
    def _safe(fn):
        try:
            return fn()
        except Exception as e:  # noqa: BLE001
            return "? (%s)" % e

    def check_exactly_once(self):
        got = self.consumed()
        dup = sorted({v for v in got if got.count(v) > 1})[:5] if len(got) != len(set(got)) else []
        check(not dup, "%s: records consumed more than once (with commits after every batch): %s", self.label, dup)
        missing = sorted(set(self.produced) - set(got))[:5]
        check(not missing, "%s: records never consumed: %s", self.label, missing)
        check_eq(len(got), len(self.produced), "%s: records consumed" % self.label)


def run_variants(ctx, fn):
    """Runs fn(ctx, label, extra) for every variant concurrently; fails with the first failure."""
    vs = variants()
    errs = {}

    def one(i, extra):
        label = "v%d" % i if len(vs) > 1 else "g"
        name = " ".join(extra) or "default"
        try:
            fn(ctx, label, extra)
        except BaseException as e:  # noqa: BLE001
            import traceback
            log(traceback.format_exc())
            errs[i] = "[%s] %s" % (name, e if isinstance(e, AssertionError) else "%s: %s" % (type(e).__name__, e))
    ts = [threading.Thread(target=one, args=(i, v), daemon=True) for i, v in enumerate(vs)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errs, "%s", "; ".join(errs[i] for i in sorted(errs)))


@scenario("consumer-group-rebalance")
def rebalance(ctx):
    run_variants(ctx, _rebalance)


def _rebalance(ctx, label, extra):
    P = 6
    g = Group(ctx, label, extra, P)
    T = ctx.call_timeout
    try:
        # Two members split the six partitions, then a third joins.
        m1, m2 = g.start("m1"), g.start("m2")
        g.wait_split([m1, m2], "two members sharing %d partitions" % P, T + 15)
        g.produce("b1", 60)
        g.wait_consumed_and_committed("batch 1 consumed by two members and committed", T)
        m3 = g.start("m3")
        asg = g.wait_split([m1, m2, m3], "three members sharing %d partitions" % P, T + 15)
        log("[%s] three-way split: %s" % (label, asg))
        g.produce("b2", 60)
        g.wait_consumed_and_committed("batch 2 consumed by three members and committed", T)
        # A member that closes (LeaveGroup) hands its partitions over promptly, well before the session timeout.
        t0 = time.monotonic()
        m1.close(T)
        g.wait_split([m2, m3], "m2+m3 own every partition after m1 closed", T)
        took = time.monotonic() - t0
        log("[%s] partitions moved %.1fs after m1 closed" % (label, took))
        check(took < SESSION_MS / 1000.0, "%s: partitions of the closed member moved after %.1fs, not before the "
              "session timeout (%.0fs): LeaveGroup not acted upon?", label, took, SESSION_MS / 1000.0)
        g.produce("b3", 60)
        g.wait_consumed_and_committed("batch 3 consumed by two members and committed", T)
        # A member that stops heartbeating without leaving (SIGKILL) loses its partitions after the session timeout.
        gone = set(m2.state()[0])
        t0 = time.monotonic()
        m2.kill()
        g.produce("b4", 60)  # the killed member's share waits for the new owner
        g.wait_split([m3], "m3 owns every partition after m2 was killed", SESSION_MS / 1000.0 + T)
        took = time.monotonic() - t0
        log("[%s] partitions %s of the killed member moved after %.1fs" % (label, sorted(gone), took))
        check(took >= (SESSION_MS - HEARTBEAT_MS) / 1000.0 - 1.5,
              "%s: partitions of the killed member moved after %.1fs, before the session timeout (%.0fs)", label,
              took, SESSION_MS / 1000.0)
        g.wait_consumed_and_committed("batch 4 consumed by the last member and committed", T)
        m3.close(T)
        g.check_exactly_once()
    finally:
        g.stop_all()


# confluent-kafka's Python binding sends a TopicPartition's metadata string with its terminating NUL byte (real Kafka
# stores and returns it so); its own committed() drops it again.
WIRE_METADATA_SUFFIX = {"confluent-kafka": "\x00"}


def check_committed(g, meta, what):
    ends = g.end_offsets()
    com = g.committed()
    if meta is None:  # a client that commits no metadata: offsets only
        com = {p: (o, None) for p, (o, _) in com.items()}
    else:
        meta += WIRE_METADATA_SUFFIX.get(CLIENT, "")
    check_eq(com, {p: (ends[p], meta) for p in range(g.partitions)}, "%s: %s" % (g.label, what))


@scenario("committed-offsets")
def committed_offsets(ctx):
    _committed(ctx, "g", variants()[0])  # one variant: the broker restarts are not shareable


def _committed(ctx, label, extra):
    P = 3
    g = Group(ctx, label, extra, P)
    T = ctx.call_timeout
    # kcat and the console consumer commit no metadata. No spaces: the member line protocol splits on them.
    meta = None if CLIENT in ("kcat", "kafka-cli") else "compat-meta:%s|v=1" % ctx.run_id
    mx = ["--commit-metadata", meta] if meta else []
    try:
        b1 = g.produce("b1", 30)
        m1 = g.start("m1", mx)
        g.wait_consumed_and_committed("batch 1 consumed and committed", T)
        check_committed(g, meta, "committed (offset, metadata) per partition (OffsetFetch)")
        ends = g.end_offsets()
        if meta:
            # The member's own read-back (committed()) has the metadata it committed.
            g.wait("member's committed() read-back", lambda: m1.committed == {p: (ends[p], meta) for p in range(P)}, T)
        m1.close(T)
        # A new member of the same group resumes from the committed offsets: batch 2 only.
        b2 = g.produce("b2", 30)
        m2 = g.start("m2", mx)
        g.wait_consumed_and_committed("batch 2 consumed by a new member", T)
        again = sorted(set(b1) & {r[2] for r in m2.state()[1]})[:5]
        check(not again, "%s: the new member re-consumed committed records %s", label, again)
        # Broker restarts under a live member: it resumes from the committed offsets, nothing is skipped. kcat exits
        # when all brokers are down ("terminating"): it is closed before and started again after each restart.
        for k, mode in [(3, "term"), (4, "kill")]:
            if CLIENT == "kcat":
                m2.close(T)
            ctx.restart_broker(mode)
            if CLIENT == "kcat":
                m2 = g.start("m2-after-%s" % mode, mx)
            g.produce("b%d" % k, 30)
            g.wait_consumed_and_committed("batch %d consumed after a SIG%s restart" % (k, mode.upper()), T + 30)
        check_committed(g, meta, "committed (offset, metadata) after two restarts")
        m2.close(T)
        # Once more with a fresh member after the restarts: only the new batch.
        b5 = g.produce("b5", 30)
        m3 = g.start("m3", mx)
        g.wait_consumed_and_committed("batch 5 consumed by a member started after the restarts", T)
        m3.close(T)
        got3 = sorted(r[2] for r in m3.state()[1])
        check_eq(got3, sorted(b5), "%s: records consumed by the member started after the restarts" % label)
        missing = sorted(set(g.produced) - set(g.consumed()))[:5]
        check(not missing, "%s: records never consumed: %s", label, missing)
    finally:
        g.stop_all()


if __name__ == "__main__":
    common.main(CLIENT)
