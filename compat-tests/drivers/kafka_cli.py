"""Kafka's own CLI tools (org.apache.kafka.tools.TopicCommand, later ConsumerGroupCommand, console producer and
consumer), run as `java -cp <kafka libs>/* CLASS ...` from the same jars as scripts/kafka-reference.
See common.py for the driver protocol. Needs STROM_KAFKA_LIBS (set by compat-tests/run)."""

import json
import os
import re
import subprocess
import tempfile
import time

import common
from common import CODECS, check, check_eq, eventually, rec_headers, rec_key, rec_value, scenario, verify_records

CLIENT = "kafka-cli"

_LOG4J = """status = error
appender.err.type = Console
appender.err.name = STDERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %m%n
rootLogger.level = error
rootLogger.appenderRef.err.ref = STDERR
"""
_log4j_file = None
_DEPRECATED = re.compile(r"^Option --\S+ is deprecated")


def tool(ctx, cls, *args, stdin=None):
    """Runs a Kafka CLI tool; returns (exit code, stdout, stderr)."""
    global _log4j_file
    if _log4j_file is None:
        fd, _log4j_file = tempfile.mkstemp(suffix=".properties", prefix="strom-cli-log4j2-")
        os.write(fd, _LOG4J.encode())
        os.close(fd)
    libs = os.environ["STROM_KAFKA_LIBS"]
    cmd = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto",
           "-Dlog4j2.configurationFile=" + _log4j_file, "-cp", libs + "/*", cls] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=ctx.call_timeout + 30, input=stdin,
                       stdin=None if stdin is not None else subprocess.DEVNULL)
    ctx.log("$", cls.rsplit(".", 1)[-1], *args, "-> exit", r.returncode, "|", r.stdout.strip()[:400],
            "|", r.stderr.strip()[:400])
    # Kafka 4.4's tools print option deprecation notices on stdout ("Option --consumer.config is deprecated
    # ... Use --command-config instead."); the options still work and 4.1 has no replacement for them.
    out = "".join(l for l in r.stdout.splitlines(keepends=True) if not _DEPRECATED.match(l))
    return r.returncode, out, r.stderr


def topics(ctx, *args):
    return tool(ctx, "org.apache.kafka.tools.TopicCommand", "--bootstrap-server", ctx.bootstrap,
                "--command-config", _client_props(ctx), *args)


_props = None


def _client_props(ctx):
    global _props
    if _props is None:
        fd, _props = tempfile.mkstemp(suffix=".properties", prefix="strom-cli-client-")
        ms = int(ctx.call_timeout * 1000)
        os.write(fd, ("request.timeout.ms=%d\ndefault.api.timeout.ms=%d\n" % (ms, ms)).encode())
        os.close(fd)
    return _props


def ok(ctx, *args):
    code, out, err = topics(ctx, *args)
    check(code == 0, "TopicCommand %s exited %d: %s", " ".join(args), code, (out + err).strip()[-400:])
    return out


def fails_with(ctx, exc_name, *args):
    """TopicCommand must exit non-zero, and its error output must name exc_name (exception class)."""
    code, out, err = topics(ctx, *args)
    check(code != 0, "TopicCommand %s: expected failure, exited 0: %s", " ".join(args), out.strip()[-300:])
    check(exc_name in out + err, "TopicCommand %s: expected %s, got: %s", " ".join(args), exc_name,
          (out + err).strip()[-400:])


def parse_describe(out):
    """Returns (header dict, [partition dicts]) of `TopicCommand --describe` for one topic."""
    header, parts = None, []
    for line in out.splitlines():
        fields = dict(re.findall(r"(\w+): ?([^\t]*)", line))
        if not fields:
            continue
        if "PartitionCount" in fields:
            header = fields
        elif "Partition" in fields:
            parts.append(fields)
    return header, parts


@scenario("topic-admin")
def topic_admin(ctx):
    t, tc = ctx.topic("p3"), ctx.topic("cfg")
    check_eq(ok(ctx, "--create", "--topic", t, "--partitions", "3", "--replication-factor", "1").strip(),
             "Created topic %s." % t, "create output")
    ok(ctx, "--create", "--topic", tc, "--partitions", "1", "--replication-factor", "1",
       "--config", "retention.ms=12345", "--config", "cleanup.policy=compact")
    listed = ok(ctx, "--list").split()
    check(t in listed and tc in listed, "--list lacks the new topics: %r", listed)

    header, parts = parse_describe(ok(ctx, "--describe", "--topic", t))
    check(header is not None, "no topic line in --describe")
    check_eq((header["Topic"], header["PartitionCount"], header["ReplicationFactor"]), (t, "3", "1"),
             "describe header (topic, partitions, RF)")
    check_eq(sorted(p["Partition"] for p in parts), ["0", "1", "2"], "described partitions")
    leaders = {p["Leader"] for p in parts}
    check_eq(len(leaders), 1, "one leader for all partitions")
    bid = leaders.pop()
    check(bid.isdigit(), "leader is not a broker id: %r", bid)
    for p in parts:
        check_eq((p["Replicas"], p["Isr"]), (bid, bid), "replicas/isr of partition %s" % p["Partition"])

    header, _ = parse_describe(ok(ctx, "--describe", "--topic", tc))
    cfgs = dict(kv.split("=", 1) for kv in header.get("Configs", "").split(",") if "=" in kv)
    check_eq((cfgs.get("retention.ms"), cfgs.get("cleanup.policy")), ("12345", "compact"),
             "non-default Configs in --describe (%s)" % header.get("Configs"))
    check("segment.bytes" not in cfgs, "default segment.bytes listed as a non-default config: %r", cfgs)

    ok(ctx, "--alter", "--topic", t, "--partitions", "5")
    header, parts = parse_describe(ok(ctx, "--describe", "--topic", t))
    check_eq((header["PartitionCount"], len(parts)), ("5", 5), "partitions after --alter --partitions 5")

    ok(ctx, "--delete", "--topic", t)
    ok(ctx, "--delete", "--topic", tc)
    eventually(lambda: not ({t, tc} & set(ok(ctx, "--list").split())), ctx.call_timeout,
               what="--list no longer shows deleted topics")
    fails_with(ctx, "does not exist", "--describe", "--topic", t)


@scenario("topic-errors")
def topic_errors(ctx):
    t = ctx.topic("x")
    ok(ctx, "--create", "--topic", t, "--partitions", "3", "--replication-factor", "1")
    fails_with(ctx, "TopicExistsException", "--create", "--topic", t, "--partitions", "3", "--replication-factor", "1")
    for bad in ["bad/name", "..", "a" * 250]:
        fails_with(ctx, "InvalidTopicException", "--create", "--topic", bad, "--partitions", "1",
                   "--replication-factor", "1")
    fails_with(ctx, "InvalidReplicationFactorException", "--create", "--topic", ctx.topic("rf3"), "--partitions", "1",
               "--replication-factor", "3")
    # TopicCommand itself refuses 0 partitions before asking the broker.
    fails_with(ctx, "The partitions must be greater than 0", "--create", "--topic", ctx.topic("p0"),
               "--partitions", "0", "--replication-factor", "1")
    fails_with(ctx, "InvalidPartitionsException", "--alter", "--topic", t, "--partitions", "2")
    # TopicCommand lists topics first and refuses unknown ones itself.
    fails_with(ctx, "does not exist as expected", "--delete", "--topic", ctx.topic("nope"))
    fails_with(ctx, "does not exist as expected", "--describe", "--topic", ctx.topic("nope"))
    fails_with(ctx, "InvalidConfigurationException", "--create", "--topic", ctx.topic("badcfg"), "--partitions", "1",
               "--replication-factor", "1", "--config", "no.such.config=1")
    leaked = [n for n in ok(ctx, "--list").split() if n.startswith(ctx.topic()) and n != t]
    check(not leaked, "failed creates left topics behind: %r", leaked)


# ---------------------------------------------------------------------------------------------------------------
# Console producer / consumer (org.apache.kafka.tools.ConsoleProducer, ...consumer.ConsoleConsumer with
# --partition/--offset: manual assignment) and GetOffsetShell. The console producer cannot choose a partition nor set
# timestamps: topics have one partition and CreateTime is checked against the wall clock around the producer run.

N = 2000  # per codec: every tool run is a JVM start, the records are few but real
NULL = "<NULL>"


def cli_records(tag, first, n):
    return [(0, i, rec_key(i), rec_value(tag, i), rec_headers(tag, i), None) for i in range(first, first + n)]


def console_produce(ctx, topic, recs, *opts):
    """One ConsoleProducer run: 'h1:v1,h2:v2<TAB>key<TAB>value' lines, <NULL> for a null key or value / no headers."""
    lines = []
    for _, _, key, value, headers, _ in recs:
        hs = ",".join("%s:%s" % (k, v.decode()) for k, v in headers) if headers else NULL
        lines.append("%s\t%s\t%s\n" % (hs, NULL if key is None else key.decode(),
                                          NULL if value is None else value.decode()))
    ms = int(ctx.call_timeout * 1000)
    t0 = int(time.time() * 1000)
    code, out, err = tool(ctx, "org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", ctx.bootstrap,
                          "--topic", topic, "--producer.config", _client_props(ctx), "--request-timeout-ms", str(ms),
                          "--producer-property", "delivery.timeout.ms=%d" % (ms + 1000),
                          "--property", "parse.key=true", "--property", "parse.headers=true",
                          "--property", "null.marker=" + NULL, *opts, stdin="".join(lines))
    check(code == 0 and "ERROR" not in err, "ConsoleProducer exited %d: %s", code, err.strip()[-400:])
    return t0, int(time.time() * 1000)


def console_consume(ctx, topic, offset="earliest", count=None):
    """ConsoleConsumer on partition 0 from offset until count records (--max-messages) or, without count, until 3 s
    pass without a new record; returns record tuples."""
    limit = ["--max-messages", str(count), "--timeout-ms", str(int(ctx.call_timeout * 1000))] if count else \
        ["--timeout-ms", "3000"]
    code, out, err = tool(ctx, "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", ctx.bootstrap,
                          "--topic", topic, "--partition", "0", "--offset", str(offset), *limit,
                          "--consumer.config", _client_props(ctx),
                          "--property", "print.timestamp=true", "--property", "print.partition=true",
                          "--property", "print.offset=true", "--property", "print.headers=true",
                          "--property", "print.key=true", "--property", "null.literal=" + NULL)
    check(code == 0, "ConsoleConsumer exited %d: %s", code, err.strip()[-400:])
    got = []
    for line in out.splitlines():
        f = line.split("\t")
        check(len(f) == 6, "unexpected ConsoleConsumer line %r", line[:200])
        tt, ts = f[0].split(":")
        check_eq(tt, "CreateTime", "timestamp type of %s" % f[2])
        headers = [] if f[3] == "NO_HEADERS" else [(h.split(":", 1)[0], h.split(":", 1)[1].encode())
                                                  for h in f[3].split(",")]
        got.append((int(f[1].split(":")[1]), int(f[2].split(":")[1]), None if f[4] == NULL else f[4].encode(),
                    None if f[5] == NULL else f[5].encode(), headers, int(ts)))
    m = re.search(r"Processed a total of (\d+) messages", err)
    check(m and int(m.group(1)) == len(got), "ConsoleConsumer printed %d records but reported %s", len(got),
          m.group(1) if m else "nothing")
    return got


def end_offsets(ctx, pattern):
    """GetOffsetShell --time -1 for every partition of the topics matching a regex: {"topic:partition": offset}."""
    code, out, err = tool(ctx, "org.apache.kafka.tools.GetOffsetShell", "--bootstrap-server", ctx.bootstrap,
                          "--command-config", _client_props(ctx), "--topic", pattern, "--time", "-1")
    check(code == 0, "GetOffsetShell --topic %s exited %d: %s", pattern, code, (out + err).strip()[-400:])
    return {line.rsplit(":", 1)[0]: int(line.rsplit(":", 1)[1]) for line in out.split()}


def get_offset(ctx, topic, t):
    """GetOffsetShell --time t (-1 latest, -2 earliest, -3 max timestamp); None when it prints no offset."""
    code, out, err = tool(ctx, "org.apache.kafka.tools.GetOffsetShell", "--bootstrap-server", ctx.bootstrap,
                          "--command-config", _client_props(ctx), "--topic", topic, "--partitions", "0",
                          "--time", str(t))
    check(code == 0, "GetOffsetShell --time %s exited %d: %s", t, code, (out + err).strip()[-400:])
    lines = out.split()
    if not lines:
        return None
    check_eq(len(lines), 1, "GetOffsetShell output lines")
    tp, off = lines[0].rsplit(":", 1)
    check_eq(tp, topic + ":0", "GetOffsetShell partition")
    return int(off)


def check_times(got, window, what):
    lo, hi = window
    bad = [r[5] for r in got if not lo - 1000 <= r[5] <= hi + 1000]
    check(not bad, "%s: %d CreateTime timestamps outside the producer run [%d, %d], first %r", what, len(bad), lo, hi,
          bad[:1])


def create_topic(ctx, name):
    ok(ctx, "--create", "--topic", name, "--partitions", "1", "--replication-factor", "1")


@scenario("produce-consume")
def produce_consume(ctx):
    for codec in CODECS:
        t = ctx.topic(codec)
        create_topic(ctx, t)
        recs = cli_records(codec, 0, N)
        window = console_produce(ctx, t, recs, "--compression-codec", codec, "--request-required-acks", "all")
        got = console_consume(ctx, t, count=N)
        verify_records(got, recs, "%s round trip" % codec)
        check_times(got, window, codec)
    # Nothing beyond the N records read (one GetOffsetShell for all five topics).
    check_eq(end_offsets(ctx, re.escape(ctx.topic()) + "-.*"), {"%s:0" % ctx.topic(c): N for c in CODECS},
             "end offsets of the codec topics")


@scenario("acks0")
def acks0(ctx):
    t = ctx.topic("acks0")
    create_topic(ctx, t)
    recs = cli_records("acks0", 0, N)
    window = console_produce(ctx, t, recs, "--request-required-acks", "0")
    got = []

    def all_readable():
        got[:] = console_consume(ctx, t, count=N)
        return len(got) >= N
    eventually(all_readable, ctx.call_timeout, what="all acks=0 records readable")
    verify_records(got, recs, "acks=0 round trip")
    check_times(got, window, "acks=0")
    check_eq(get_offset(ctx, t, -1), N, "end offset (nothing beyond the records read)")


@scenario("offsets-by-timestamp")
def offsets_by_timestamp(ctx):
    t = ctx.topic("ts")
    create_topic(ctx, t)
    recs = []
    for run in range(3):  # three producer runs (JVM starts): timestamps differ between the runs' batches
        chunk = cli_records("ts", run * 10, 10)
        console_produce(ctx, t, chunk)
        recs += chunk
    got = console_consume(ctx, t)
    verify_records(got, recs, "read back")
    ts = [r[5] for r in got]
    check(ts[-1] > ts[0], "all records have the same timestamp; cannot test lookups")

    def first_at_or_after(x):
        return next((i for i, v in enumerate(ts) if v >= x), None)
    for x in [ts[0] - 1000, ts[10], ts[10] + 1, ts[-1] + 1]:
        check_eq(get_offset(ctx, t, x), first_at_or_after(x), "GetOffsetShell --time %d (first ts %d)" % (x, ts[0]))
    check_eq(get_offset(ctx, t, -2), 0, "GetOffsetShell --time -2 (earliest)")
    check_eq(get_offset(ctx, t, -1), len(recs), "GetOffsetShell --time -1 (latest)")
    check_eq(get_offset(ctx, t, -3), ts.index(max(ts)), "GetOffsetShell --time -3 (max timestamp)")
    verify_records(console_consume(ctx, t, 15), got[15:], "ConsoleConsumer --offset 15")


@scenario("log-compaction")
def log_compaction(ctx):
    def make(t, configs):
        ok(ctx, "--create", "--topic", t, "--partitions", "1", "--replication-factor", "1",
           *[a for k, v in configs.items() for a in ("--config", "%s=%s" % (k, v))])

    def produce(t, kvs):
        console_produce(ctx, t, [(0, None, k, v, [], None) for k, v in kvs])

    def read_all(t):
        return [(r[1], r[2], r[3]) for r in console_consume(ctx, t)]

    common.log_compaction(ctx, make, produce, read_all)


@scenario("restart-durability")
def restart_durability(ctx):
    # One ConsoleProducer process per phase (a CLI has no producer that outlives a restart).
    t = ctx.topic("durable")
    create_topic(ctx, t)
    n = 1000
    recs = cli_records("durable", 0, n)
    console_produce(ctx, t, recs, "--compression-codec", "gzip")
    for k, mode in [(1, "term"), (2, "kill")]:
        ctx.restart_broker(mode)
        eventually(lambda: t in ok(ctx, "--list").split(), ctx.call_timeout, what="topic listed after restart")
        chunk = cli_records("durable", k * n, n)
        console_produce(ctx, t, chunk, "--compression-codec", "gzip")
        recs += chunk
    verify_records(console_consume(ctx, t), recs, "after two restarts")
    check_eq(get_offset(ctx, t, -1), len(recs), "latest offset after two restarts")


# ---------------------------------------------------------------------------------------------------------------
# kafka-consumer-groups (org.apache.kafka.tools.consumer.group.ConsumerGroupCommand). The records are produced with
# confluent-kafka to explicit partitions (the console producer cannot pick one); the group consumes and commits with
# ConsoleConsumer --group.

GROUPS_CLS = "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand"


def groups(ctx, *args):
    code, out, err = tool(ctx, GROUPS_CLS, "--bootstrap-server", ctx.bootstrap, "--command-config",
                          _client_props(ctx), "--timeout", str(int(ctx.call_timeout * 1000)), *args)
    return code, out, err


def groups_ok(ctx, *args):
    code, out, err = groups(ctx, *args)
    check(code == 0, "ConsumerGroupCommand %s exited %d: %s", " ".join(args), code, (out + err).strip()[-400:])
    return out


def describe_offsets(ctx, group, topic):
    """--describe: {(topic, partition): (current offset or None, log end offset, lag or None, consumer id)}, plus the
    non-table lines (e.g. "Consumer group 'G' has no active members.")."""
    code, out, err = groups(ctx, "--describe", "--group", group)
    check(code == 0, "ConsumerGroupCommand --describe exited %d: %s", code, (out + err).strip()[-400:])
    rows, notes, header = {}, [], None
    for line in (out + "\n" + err).splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] == "GROUP":
            header = f
            continue
        if header and len(f) >= 7 and f[0] == group and f[1] == topic:
            d = dict(zip(header, f))
            num = lambda v: None if v == "-" else int(v)  # noqa: E731
            rows[(d["TOPIC"], int(d["PARTITION"]))] = (num(d["CURRENT-OFFSET"]), num(d["LOG-END-OFFSET"]),
                                                       num(d["LAG"]), d["CONSUMER-ID"])
        else:
            notes.append(line.strip())
    return rows, notes


def cg_produce(ctx, topic, counts, tag):
    from confluent_kafka import Producer
    p = Producer({"bootstrap.servers": ctx.bootstrap, "acks": "all", "message.timeout.ms": int(ctx.call_timeout * 1000)})
    errs = []
    for part, n in enumerate(counts):
        for i in range(n):
            p.produce(topic, value=b"%s-%d-%d" % (tag.encode(), part, i), partition=part,
                      on_delivery=lambda e, m: errs.append(e) if e else None)
    check(p.flush(ctx.call_timeout) == 0 and not errs, "produce: errors %r", errs[:2])


def console_group_consume(ctx, topic, group, n):
    """ConsoleConsumer --group from the committed offsets (earliest when none) until n records; commits on exit."""
    code, out, err = tool(ctx, "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", ctx.bootstrap,
                          "--topic", topic, "--group", group, "--max-messages", str(n),
                          "--timeout-ms", str(int(ctx.call_timeout * 1000)), "--consumer.config", _client_props(ctx),
                          "--consumer-property", "auto.offset.reset=earliest")
    check(code == 0, "ConsoleConsumer --group exited %d: %s", code, err.strip()[-400:])
    return out.splitlines()


@scenario("consumer-groups-tool")
def consumer_groups_tool(ctx):
    import subprocess as sp
    t, g = ctx.topic("t"), ctx.topic("group")
    ok(ctx, "--create", "--topic", t, "--partitions", "3", "--replication-factor", "1")
    counts = [10, 20, 30]
    cg_produce(ctx, t, counts, "a")
    check_eq(len(console_group_consume(ctx, t, g, sum(counts))), sum(counts), "records consumed by the group")
    check(g in groups_ok(ctx, "--list").split(), "--list does not show %s", g)
    rows, notes = describe_offsets(ctx, g, t)
    check_eq(rows, {(t, p): (counts[p], counts[p], 0, "-") for p in range(3)},
             "--describe (CURRENT-OFFSET, LOG-END-OFFSET, LAG, CONSUMER-ID) after consuming everything")
    check(any("has no active members" in n for n in notes), "--describe of an empty group: no 'has no active "
          "members' note in %r", notes)
    more = [5, 0, 7]
    cg_produce(ctx, t, more, "b")
    rows, _ = describe_offsets(ctx, g, t)
    check_eq(rows, {(t, p): (counts[p], counts[p] + more[p], more[p], "-") for p in range(3)},
             "--describe after producing more (lag)")

    # An active member: --describe --members shows it; offsets cannot be reset while the group is not empty.
    libs = os.environ["STROM_KAFKA_LIBS"]
    member = sp.Popen(["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-cp", libs + "/*",
                       "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", ctx.bootstrap,
                       "--topic", ctx.topic("other"), "--group", g, "--timeout-ms", str(int(ctx.call_timeout * 3000)),
                       "--consumer-property", "allow.auto.create.topics=true"],
                      stdout=sp.DEVNULL, stderr=sp.DEVNULL, stdin=sp.DEVNULL, start_new_session=True)
    try:
        def active():
            out = groups_ok(ctx, "--describe", "--group", g, "--members")
            lines = [ln.split() for ln in out.splitlines() if ln.split() and ln.split()[0] == g]
            return lines if len(lines) == 1 else None
        eventually(active, ctx.call_timeout, what="--describe --members shows one active member")
        state = groups_ok(ctx, "--describe", "--group", g, "--state")
        check("Stable" in state, "--describe --state with an active member: %r", state.strip()[-300:])
        code, out, err = groups(ctx, "--reset-offsets", "--group", g, "--topic", t, "--to-earliest", "--execute")
        check("inactive" in out + err and "Stable" in out + err,
              "--reset-offsets on an active group: expected 'can only be reset if the group ... is inactive, but the "
              "current state is Stable', got exit %d: %s", code, (out + err).strip()[-300:])
    finally:
        os.killpg(member.pid, 15)
        try:
            member.wait(ctx.call_timeout)
        except sp.TimeoutExpired:
            os.killpg(member.pid, 9)
    eventually(lambda: "Empty" in groups_ok(ctx, "--describe", "--group", g, "--state"), ctx.call_timeout,
               what="group Empty after the member left")

    out = groups_ok(ctx, "--reset-offsets", "--group", g, "--topic", t, "--to-earliest", "--execute")
    reset = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[0] == g and f[1] == t:
            reset[int(f[2])] = int(f[3])
    check_eq(reset, {0: 0, 1: 0, 2: 0}, "--reset-offsets --to-earliest --execute NEW-OFFSET per partition")
    rows, _ = describe_offsets(ctx, g, t)
    check_eq(rows, {(t, p): (0, counts[p] + more[p], counts[p] + more[p], "-") for p in range(3)},
             "--describe after --reset-offsets --to-earliest")

    out = groups_ok(ctx, "--delete", "--group", g)
    check("successful" in out and g in out, "--delete output: %r", out.strip()[-300:])
    check(g not in groups_ok(ctx, "--list").split(), "--list still shows %s after --delete", g)
    code, out, err = groups(ctx, "--describe", "--group", g)
    # Kafka 4.1's tool prints the exception and still exits 0.
    check("GroupIdNotFoundException" in out + err, "--describe of a deleted group: expected GroupIdNotFoundException, "
          "got exit %d: %s", code, (out + err).strip()[-300:])


def json_objects(text):
    """The JSON values of `text`, however they are separated (Kafka 4.4's OffsetsMessageFormatter prints them
    with no newline in between)."""
    import json
    dec, out, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        value, i = dec.raw_decode(text, i)
        out.append(value)
    return out


@scenario("offsets-topic")
def offsets_topic(ctx):
    """A group's commits are records of __consumer_offsets that Kafka's own OffsetsMessageFormatter decodes."""
    t, g = ctx.topic("t"), ctx.topic("group")
    ok(ctx, "--create", "--topic", t, "--partitions", "2", "--replication-factor", "1")
    cg_produce(ctx, t, [3, 2], "o")
    check_eq(len(console_group_consume(ctx, t, g, 5)), 5, "records consumed by the group")
    check("__consumer_offsets" in ok(ctx, "--list").split(), "kafka-topics --list lacks __consumer_offsets")
    code, out, err = tool(ctx, "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", ctx.bootstrap,
                          "--topic", "__consumer_offsets", "--from-beginning", "--timeout-ms", "5000",
                          "--formatter", "org.apache.kafka.tools.consumer.OffsetsMessageFormatter",
                          "--consumer.config", _client_props(ctx))
    check(code == 0, "ConsoleConsumer of __consumer_offsets exited %d: %s", code, err.strip()[-400:])
    offsets = {}
    for o in json_objects(out):
        key, value = o.get("key") or {}, o.get("value") or {}
        data = key.get("data") or {}
        if data.get("group") == g and key.get("type") in (0, 1) and value:
            offsets[(data["topic"], data["partition"])] = (value["data"]["offset"], value["data"]["metadata"])
    check_eq(offsets, {(t, 0): (3, ""), (t, 1): (2, "")}, "the group's last offset records, as the formatter decodes them")


def admin_tool(ctx, cls, *args):
    """Runs an admin CLI tool against the broker; it must exit 0. Returns its stdout."""
    code, out, err = tool(ctx, cls, "--bootstrap-server", ctx.bootstrap, "--command-config", _client_props(ctx),
                          *args)
    check(code == 0, "%s %s exited %d: %s", cls.rsplit(".", 1)[-1], " ".join(args), code,
          (out + err).strip()[-400:])
    return out


@scenario("admin-tools")
def admin_tools(ctx):
    t = ctx.topic("adm")
    create_topic(ctx, t)
    # kafka-topics --describe through DescribeTopicPartitions (KIP-966): empty ELR lists, not "N/A".
    _, parts = parse_describe(ok(ctx, "--describe", "--topic", t))
    check_eq([(p.get("Elr"), p.get("LastKnownElr")) for p in parts], [("", "")], "Elr/LastKnownElr of --describe")
    # kafka-log-dirs --describe: one broker, one log dir, the topic's partition with offset lag 0.
    out = admin_tool(ctx, "org.apache.kafka.tools.LogDirsCommand", "--describe", "--topic-list", t)
    report = json.loads(out.strip().splitlines()[-1])
    dirs = [d for b in report["brokers"] for d in b["logDirs"]]
    check_eq(len(dirs), 1, "log dirs")
    check_eq([(p["partition"], p["offsetLag"], p["isFuture"]) for p in dirs[0]["partitions"]],
             [("%s-0" % t, 0, False)], "log dir partitions")
    # kafka-leader-election: the preferred leader is already elected.
    out = admin_tool(ctx, "org.apache.kafka.tools.LeaderElectionCommand", "--election-type", "preferred",
                     "--topic", t, "--partition", "0")
    check_eq(out.strip(), "Valid replica already elected for partitions %s-0" % t, "leader election output")
    # kafka-reassign-partitions: a reassignment to the current replica starts; nothing stays in progress.
    bid = parts[0]["Leader"]
    fd, plan = tempfile.mkstemp(suffix=".json", prefix="strom-cli-reassign-")
    os.write(fd, json.dumps({"version": 1, "partitions": [
        {"topic": t, "partition": 0, "replicas": [int(bid)]}]}).encode())
    os.close(fd)
    try:
        out = admin_tool(ctx, "org.apache.kafka.tools.reassign.ReassignPartitionsCommand", "--execute",
                         "--reassignment-json-file", plan)
        check("Successfully started partition reassignment for %s-0" % t in out, "reassignment output: %s", out)
    finally:
        os.unlink(plan)
    out = admin_tool(ctx, "org.apache.kafka.tools.reassign.ReassignPartitionsCommand", "--list")
    check_eq(out.strip(), "No partition reassignments found.", "reassignment list")
    # kafka-metadata-quorum describe --status: this broker leads, the only voter, no observers.
    out = admin_tool(ctx, "org.apache.kafka.tools.MetadataQuorumCommand", "describe", "--status")
    status = dict(re.findall(r"^(\w+):\s+(.*)$", out, re.M))
    check_eq((status.get("LeaderId"), status.get("CurrentObservers")), (bid, "[]"), "quorum status")
    # The leader epoch starts at 1 and grows with every restart of a KRaft node (this suite restarts the
    # broker in other scenarios), so only its range is compared.
    check(status.get("LeaderEpoch", "").isdigit() and int(status["LeaderEpoch"]) >= 1,
          "quorum leader epoch: %s", status.get("LeaderEpoch"))
    voters = json.loads(status.get("CurrentVoters", "[]"))
    check_eq([v["id"] for v in voters], [int(bid)], "quorum voters")


def configs_tool(ctx, *args):
    """kafka-configs (ConfigCommand) against the broker: (exit code, stdout, stderr)."""
    return tool(ctx, "org.apache.kafka.tools.ConfigCommand", "--bootstrap-server", ctx.bootstrap,
                "--command-config", _client_props(ctx), *args)


@scenario("broker-configs")
def broker_configs(ctx):
    """kafka-configs alters a dynamic broker config per broker and as the cluster default, describes both
    (and --all with synonyms), refuses a read-only key and deletes both again."""
    t = ctx.topic("bcfg")
    create_topic(ctx, t)
    _, parts = parse_describe(ok(ctx, "--describe", "--topic", t))
    bid = parts[0]["Leader"]

    def configs_ok(*args):
        code, out, err = configs_tool(ctx, *args)
        check(code == 0, "kafka-configs %s exited %d: %s", " ".join(args), code, (out + err).strip()[-400:])
        return out

    broker, default = ("--entity-type", "brokers", "--entity-name", bid), ("--entity-type", "brokers",
                                                                           "--entity-default")
    out = configs_ok("--alter", *broker, "--add-config", "log.cleaner.threads=2")
    check_eq(out.strip(), "Completed updating config for broker %s." % bid, "alter per broker")
    out = configs_ok("--alter", *default, "--add-config", "log.retention.bytes=123456")
    check_eq(out.strip(), "Completed updating default config for brokers in the cluster.", "alter default")
    out = configs_ok("--describe", *broker)
    check("  log.cleaner.threads=2 sensitive=false synonyms={DYNAMIC_BROKER_CONFIG:log.cleaner.threads=2, "
          "DEFAULT_CONFIG:log.cleaner.threads=1}" in out.splitlines(), "describe per broker: %s", out)
    out = configs_ok("--describe", *default)
    check("  log.retention.bytes=123456 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:"
          "log.retention.bytes=123456}" in out.splitlines(), "describe default: %s", out)
    out = configs_ok("--describe", *broker, "--all")
    check("  log.retention.bytes=123456 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:"
          "log.retention.bytes=123456, DEFAULT_CONFIG:log.retention.bytes=-1}" in out.splitlines(),
          "describe --all: %s", out[-2000:])
    check("  offsets.topic.num.partitions=50 sensitive=false synonyms={DEFAULT_CONFIG:"
          "offsets.topic.num.partitions=50}" in out.splitlines(), "describe --all read-only key: %s", out[-2000:])
    # A topic without an override of its own follows the new default.
    out = configs_ok("--describe", "--entity-type", "topics", "--entity-name", t, "--all")
    check("  retention.bytes=123456 sensitive=false synonyms={DYNAMIC_DEFAULT_BROKER_CONFIG:"
          "log.retention.bytes=123456, DEFAULT_CONFIG:log.retention.bytes=-1}" in out.splitlines(),
          "topic retention.bytes: %s", out[-2000:])
    code, out, err = configs_tool(ctx, "--alter", *broker, "--add-config", "num.partitions=3")
    check(code != 0 and "InvalidRequestException: Cannot update these configs dynamically: [num.partitions]"
          in out + err, "read-only key: exit %d: %s", code, (out + err).strip()[-400:])
    configs_ok("--alter", *broker, "--delete-config", "log.cleaner.threads")
    configs_ok("--alter", *default, "--delete-config", "log.retention.bytes")
    check("log.cleaner.threads" not in configs_ok("--describe", *broker), "per-broker config left after delete")
    check("log.retention.bytes" not in configs_ok("--describe", *default), "default config left after delete")


FEATURE_TOOL = "org.apache.kafka.tools.FeatureCommand"
# The features strom finalizes, as Kafka 4.4's `kafka-features describe` shows them on a new cluster.
STROM_FEATURES = {
    "eligible.leader.replicas.version": ("0", "1", "1"),
    "kraft.version": ("0", "1", "1"),
    "metadata.version": ("3.3-IV3", "4.4-IV2", "4.4-IV2"),
    "transaction.version": ("0", "2", "2"),
}


def features(ctx, *args):
    """Runs kafka-features; returns (exit code, stdout with the controller's id replaced by N)."""
    code, out, err = tool(ctx, FEATURE_TOOL, "--bootstrap-server", ctx.bootstrap, "--command-config",
                          _client_props(ctx), *args)
    return code, re.sub(r"(?i)controller \d+", "controller N", out + err).strip()


def describe_features(ctx):
    """`kafka-features describe` as {feature: (min, max, finalized, epoch)}."""
    code, out = features(ctx, "describe")
    check(code == 0, "kafka-features describe exited %d: %s", code, out[-400:])
    rows = {}
    for line in out.splitlines():
        f = dict(re.findall(r"(\w+): (\S+)", line))
        if "Feature" in f:
            rows[f["Feature"]] = (f.get("SupportedMinVersion"), f.get("SupportedMaxVersion"),
                                  f.get("FinalizedVersionLevel"), int(f.get("Epoch", "-1")))
    return rows


@scenario("features-tool")
def features_tool(ctx):
    failed = "The update failed for all features since the following feature had an error: "
    before = describe_features(ctx)
    check_eq({k: v[:3] for k, v in before.items() if k in STROM_FEATURES}, STROM_FEATURES, "kafka-features describe")
    try:
        for args, want_code, want in [
            (("downgrade", "--feature", "transaction.version=1", "--dry-run"), 0,
             "transaction.version can be downgraded to 1."),
            (("upgrade", "--feature", "transaction.version=1"), 1,
             "Could not upgrade transaction.version to 1. " + failed + "Invalid update version 1 for feature "
             "transaction.version. Can't downgrade the version of this feature without setting the upgrade type "
             "to either safe or unsafe downgrade.\n1 out of 1 operation(s) failed."),
            (("upgrade", "--feature", "transaction.version=3"), 1,
             "Could not upgrade transaction.version to 3. " + failed + "Invalid update version 3 for feature "
             "transaction.version. Local controller N only supports versions 0-2\n1 out of 1 operation(s) failed."),
            (("upgrade", "--feature", "no.such.feature=1"), 1,
             "Could not upgrade no.such.feature to 1. " + failed + "Invalid update version 1 for feature "
             "no.such.feature. Local controller N does not support this feature.\n1 out of 1 operation(s) failed."),
            (("downgrade", "--feature", "kraft.version=0"), 1,
             "Could not downgrade kraft.version to 0. " + failed + "Invalid update version 0 for feature "
             "kraft.version. Can't downgrade the version of this feature.\n1 out of 1 operation(s) failed."),
            (("downgrade", "--feature", "metadata.version=30"), 1,
             "Could not downgrade metadata.version to 30. " + failed + "Unsupported metadata.version downgrade "
             "from 33 to 30. Refusing to perform the requested downgrade because it might delete metadata "
             "information.\n1 out of 1 operation(s) failed."),
            (("downgrade", "--unsafe", "--feature", "metadata.version=30"), 1,
             "Could not downgrade metadata.version to 30. " + failed + "Unsupported metadata.version downgrade "
             "from 33 to 30. Unsafe metadata downgrade is not supported in this version.\n1 out of 1 "
             "operation(s) failed."),
            (("downgrade", "--feature", "transaction.version=1"), 0, "transaction.version was downgraded to 1."),
        ]:
            code, out = features(ctx, *args)
            check_eq((code, out), (want_code, want), "kafka-features " + " ".join(args))
        down = describe_features(ctx)
        check_eq(down["transaction.version"][:3], ("0", "2", "1"), "transaction.version after the downgrade")
        check(down["transaction.version"][3] > before["transaction.version"][3], "the epoch grows: %s -> %s",
              before["transaction.version"][3], down["transaction.version"][3])
        code, out = features(ctx, "disable", "--feature", "transaction.version")
        check_eq((code, out), (0, "transaction.version was disabled."), "kafka-features disable")
        check_eq(describe_features(ctx)["transaction.version"][:3], ("0", "2", "0"), "transaction.version disabled")
    finally:
        code, out = features(ctx, "upgrade", "--feature", "transaction.version=2")
    check_eq((code, out), (0, "transaction.version was upgraded to 2."), "kafka-features upgrade")
    check_eq(describe_features(ctx)["transaction.version"][:3], ("0", "2", "2"), "transaction.version restored")


if __name__ == "__main__":
    common.main(CLIENT)
