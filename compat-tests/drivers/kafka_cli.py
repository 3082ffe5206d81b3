"""Kafka's own CLI tools (org.apache.kafka.tools.TopicCommand, later ConsumerGroupCommand, console producer and
consumer), run as `java -cp <kafka libs>/* CLASS ...` from the same jars as scripts/kafka-reference.
See common.py for the driver protocol. Needs STROM_KAFKA_LIBS (set by compat-tests/run)."""

import os
import re
import subprocess
import tempfile

import common
from common import check, check_eq, eventually, scenario

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


def tool(ctx, cls, *args):
    """Runs a Kafka CLI tool; returns (exit code, stdout, stderr)."""
    global _log4j_file
    if _log4j_file is None:
        fd, _log4j_file = tempfile.mkstemp(suffix=".properties", prefix="strom-cli-log4j2-")
        os.write(fd, _LOG4J.encode())
        os.close(fd)
    libs = os.environ["STROM_KAFKA_LIBS"]
    cmd = ["java", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto",
           "-Dlog4j2.configurationFile=" + _log4j_file, "-cp", libs + "/*", cls] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=ctx.call_timeout + 30)
    ctx.log("$", cls.rsplit(".", 1)[-1], *args, "-> exit", r.returncode, "|", r.stdout.strip()[:400],
            "|", r.stderr.strip()[:400])
    return r.returncode, r.stdout, r.stderr


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


if __name__ == "__main__":
    common.main(CLIENT)
