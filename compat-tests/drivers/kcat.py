"""kcat (librdkafka CLI, Debian package) driver. See common.py for the driver protocol.

kcat cannot create or delete topics; topic-admin uses the confluent-kafka AdminClient for those steps and checks
what `kcat -L` reports at each point.
"""

import json
import subprocess
import time

import common
from common import CODECS, check, check_eq, eventually, rec_key, rec_value, scenario, verify_records

CLIENT = "kcat"


def kcat_L(ctx, topic=None):
    cmd = ["kcat", "-b", ctx.bootstrap, "-L", "-J", "-m", str(int(ctx.call_timeout))]
    if topic:
        cmd += ["-t", topic]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=ctx.call_timeout + 10)
    check(r.returncode == 0, "%s exited %d: %s", " ".join(cmd[3:]), r.returncode, r.stderr.strip()[-300:])
    return json.loads(r.stdout)


def topics_of(md):
    return {t["topic"]: t for t in md["topics"]}


@scenario("metadata")
def metadata(ctx):
    md = kcat_L(ctx)
    check_eq(len(md["brokers"]), 1, "broker count")
    b = md["brokers"][0]
    check_eq(b["name"], "%s:%d" % (ctx.host, ctx.port), "broker name")
    check_eq(md["controllerid"], b["id"], "controller id")
    check_eq(md["originating_broker"]["id"], b["id"], "originating broker id")


@scenario("topic-admin")
def topic_admin(ctx):
    from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
    a = AdminClient({"bootstrap.servers": ctx.bootstrap})
    T = ctx.call_timeout
    bid = kcat_L(ctx)["brokers"][0]["id"]
    t = ctx.topic("p3")
    for f in a.create_topics([NewTopic(t, num_partitions=3, replication_factor=1)], operation_timeout=T).values():
        f.result(timeout=T)

    def listed():
        tm = topics_of(kcat_L(ctx)).get(t)
        return tm if tm and len(tm["partitions"]) == 3 else None
    tm = eventually(listed, T, what="kcat -L lists the new topic with 3 partitions")
    check("error" not in tm, "topic error: %r", tm.get("error"))
    for p in sorted(tm["partitions"], key=lambda p: p["partition"]):
        check_eq((p["leader"], [r["id"] for r in p["replicas"]], [r["id"] for r in p["isrs"]]), (bid, [bid], [bid]),
                 "leader/replicas/isrs of partition %d" % p["partition"])
    for f in a.create_partitions([NewPartitions(t, 5)], operation_timeout=T).values():
        f.result(timeout=T)
    eventually(lambda: len(topics_of(kcat_L(ctx)).get(t, {}).get("partitions", [])) == 5, T,
               what="kcat -L shows 5 partitions")
    for f in a.delete_topics([t], operation_timeout=T).values():
        f.result(timeout=T)
    # Only the all-topics listing: `kcat -L -t NAME` would auto-create the topic again.
    eventually(lambda: t not in topics_of(kcat_L(ctx)), T, what="kcat -L no longer lists the deleted topic")


@scenario("auto-create")
def auto_create(ctx):
    t = ctx.topic("auto")
    check(t not in topics_of(kcat_L(ctx)), "topic exists before the test")
    # kcat -L -t NAME sends a Metadata request for NAME that allows auto-creation; Kafka creates it (the first
    # answer may still say the topic is unknown), so ask until it is there.

    def created():
        tm = topics_of(kcat_L(ctx, t)).get(t)
        return tm if tm and "error" not in tm and tm["partitions"] else None
    tm = eventually(created, ctx.call_timeout, what="auto-created topic in kcat -L -t")
    check_eq(len(tm["partitions"]), 1, "partitions of auto-created topic (num.partitions=1)")


# ---------------------------------------------------------------------------------------------------------------
# Producing and consuming with kcat -P / -C (the legacy simple consumer: no group). kcat cannot set a record's
# timestamp nor per-record headers: every record of one `kcat -P` run gets the same -H headers and the producer's
# CreateTime, which is checked against the wall clock around the run instead.

N = 10000


def create_topic(ctx, name, partitions):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": ctx.bootstrap})
    for f in a.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)],
                             operation_timeout=ctx.call_timeout, request_timeout=ctx.call_timeout).values():
        f.result(timeout=ctx.call_timeout)


def kcat(ctx, args, stdin=None, what="kcat"):
    cmd = ["kcat", "-b", ctx.bootstrap, "-m", str(int(ctx.call_timeout))] + args
    r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=ctx.call_timeout + 30)
    ctx.log("$", " ".join(cmd[3:]), "-> exit", r.returncode, "|", r.stderr.decode(errors="replace").strip()[-300:])
    check(r.returncode == 0, "%s (%s) exited %d: %s", what, " ".join(cmd[5:]), r.returncode,
          r.stderr.decode(errors="replace").strip()[-300:])
    return r.stdout


def kcat_produce(ctx, topic, recs, headers, conf=()):
    """Produces recs (all to partition recs[0][0]) with one `kcat -P` run; returns the wall-clock window."""
    lines = b"".join((r[2] or b"") + b"\t" + r[3] + b"\n" for r in recs)
    args = ["-P", "-t", topic, "-p", str(recs[0][0]), "-K", "\\t", "-Z"]
    for k, v in headers:
        args += ["-H", "%s=%s" % (k, v.decode())]
    # librdkafka without idempotence may reorder retried batches unless one request is in flight.
    for c in ("max.in.flight.requests.per.connection=1",) + tuple(conf):
        args += ["-X", c]
    t0 = int(time.time() * 1000)
    kcat(ctx, args, stdin=lines, what="kcat -P")
    return t0, int(time.time() * 1000)


def kcat_consume(ctx, topic, partition, offset="beginning"):
    """kcat -C -e from offset to the end of the partition; returns (partition, offset, key, value, headers, ts)."""
    out = kcat(ctx, ["-C", "-t", topic, "-p", str(partition), "-o", str(offset), "-e", "-J", "-q"], what="kcat -C")
    got = []
    for line in out.decode().splitlines():
        m = json.loads(line)
        check_eq(m["tstype"], "create", "timestamp type at offset %d" % m["offset"])
        h = m.get("headers") or []
        got.append((m["partition"], m["offset"], None if m["key"] is None else m["key"].encode(),
                    None if m["payload"] is None else m["payload"].encode(),
                    [(h[i], h[i + 1].encode()) for i in range(0, len(h), 2)], m["ts"]))
    return got


def kcat_records(tag, first, n, partition=0):
    return [(partition, i, rec_key(i), rec_value(tag, i), [("src", b"kcat"), ("tag", tag.encode())], None)
            for i in range(first, first + n)]


def check_times(got, window, what):
    lo, hi = window
    ts = [r[5] for r in got]
    bad = [t for t in ts if not lo - 1000 <= t <= hi + 1000]
    check(not bad, "%s: %d CreateTime timestamps outside the produce window [%d, %d], first %r", what, len(bad), lo,
          hi, bad[:1])
    check(ts == sorted(ts), "%s: CreateTime timestamps not monotonic within the partition", what)


def query_offset(ctx, topic, partition, ts):
    """kcat -Q: ListOffsets for a timestamp (-1 latest, -2 earliest); returns the offset kcat prints."""
    out = json.loads(kcat(ctx, ["-Q", "-J", "-t", "%s:%d:%d" % (topic, partition, ts)], what="kcat -Q"))
    return out[topic][str(partition)]["offset"]


@scenario("produce-consume")
def produce_consume(ctx):
    for codec in CODECS:
        t = ctx.topic(codec)
        create_topic(ctx, t, 1)
        recs = kcat_records(codec, 0, N)
        window = kcat_produce(ctx, t, recs, recs[0][4], conf=["compression.codec=%s" % codec, "acks=all"])
        got = kcat_consume(ctx, t, 0)
        verify_records(got, recs, "%s round trip" % codec)
        check_times(got, window, codec)


@scenario("acks0")
def acks0(ctx):
    t = ctx.topic("acks0")
    create_topic(ctx, t, 1)
    recs = kcat_records("acks0", 0, N)
    window = kcat_produce(ctx, t, recs, recs[0][4], conf=["acks=0"])
    got = []

    def all_readable():
        got[:] = kcat_consume(ctx, t, 0)
        return len(got) >= N
    eventually(all_readable, ctx.call_timeout, what="all acks=0 records readable")
    verify_records(got, recs, "acks=0 round trip")
    check_times(got, window, "acks=0")


@scenario("offsets-by-timestamp")
def offsets_by_timestamp(ctx):
    t = ctx.topic("ts")
    create_topic(ctx, t, 1)
    # Five kcat runs of ten records, a little apart: the batches' timestamps differ, records within one may not.
    recs = []
    for run in range(5):
        chunk = kcat_records("ts", run * 10, 10)
        kcat_produce(ctx, t, chunk, chunk[0][4])
        recs += chunk
        time.sleep(0.05)
    got = kcat_consume(ctx, t, 0)
    verify_records(got, recs, "read back")
    ts = [r[5] for r in got]
    check(ts[-1] > ts[0], "all records have the same timestamp %d; cannot test lookups", ts[0])

    def first_at_or_after(x):
        return next((i for i, v in enumerate(ts) if v >= x), -1)
    targets = sorted({ts[0] - 1000, ts[0], ts[0] + 1, ts[10], ts[25], ts[25] + 1, ts[-1], ts[-1] + 1,
                      ts[-1] + 10 ** 9})
    for x in targets:
        # kcat prints -1 (OFFSET_END) when no record is at or after the timestamp.
        check_eq(query_offset(ctx, t, 0, x), first_at_or_after(x), "kcat -Q timestamp %d (first ts %d)" % (x, ts[0]))
    check_eq(query_offset(ctx, t, 0, -2), 0, "kcat -Q earliest (-2)")
    check_eq(query_offset(ctx, t, 0, -1), len(recs), "kcat -Q latest (-1)")
    # Consuming from a timestamp (-o s@ts) starts at the first record at or after it.
    x = ts[25] + 1
    off = first_at_or_after(x)
    verify_records(kcat_consume(ctx, t, 0, "s@%d" % x), got[off:], "kcat -C -o s@<ts[25]+1>")
    verify_records(kcat_consume(ctx, t, 0, 37), got[37:], "kcat -C -o 37")


@scenario("log-compaction")
def log_compaction(ctx):
    from confluent_kafka.admin import AdminClient, NewTopic
    a = AdminClient({"bootstrap.servers": ctx.bootstrap})

    def make(t, configs):
        # kcat cannot create topics (see topic-admin): the confluent-kafka AdminClient does.
        for f in a.create_topics([NewTopic(t, num_partitions=1, replication_factor=1, config=configs)],
                                 operation_timeout=ctx.call_timeout, request_timeout=ctx.call_timeout).values():
            f.result(timeout=ctx.call_timeout)

    def produce(t, kvs):
        # -Z: an empty value is sent as null, i.e. a tombstone.
        lines = b"".join(k + b"\t" + (v or b"") + b"\n" for k, v in kvs)
        kcat(ctx, ["-P", "-t", t, "-p", "0", "-K", "\\t", "-Z", "-X", "max.in.flight.requests.per.connection=1"],
             stdin=lines, what="kcat -P")

    def read_all(t):
        return [(r[1], r[2], r[3]) for r in kcat_consume(ctx, t, 0)]

    common.log_compaction(ctx, make, produce, read_all)


@scenario("restart-durability")
def restart_durability(ctx):
    # One `kcat -P` process per phase (a CLI has no producer that outlives a restart).
    t = ctx.topic("durable")
    create_topic(ctx, t, 1)
    n = 3000
    recs = kcat_records("durable", 0, n)
    kcat_produce(ctx, t, recs, recs[0][4], conf=["acks=all", "compression.codec=lz4"])
    for k, mode in [(1, "term"), (2, "kill")]:
        ctx.restart_broker(mode)
        eventually(lambda: t in topics_of(kcat_L(ctx)), ctx.call_timeout, what="topic listed after restart")
        chunk = kcat_records("durable", k * n, n)
        kcat_produce(ctx, t, chunk, chunk[0][4], conf=["acks=all", "compression.codec=lz4"])
        recs += chunk
    verify_records(kcat_consume(ctx, t, 0), recs, "after two restarts")
    check_eq(query_offset(ctx, t, 0, -1), len(recs), "latest offset after two restarts")


if __name__ == "__main__":
    common.main(CLIENT)
