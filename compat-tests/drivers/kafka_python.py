"""kafka-python (pure Python client, 3.x API) driver. See common.py for the driver protocol."""

import common
from common import check, check_eq, eventually, expect_error, scenario

import kafka.errors as E
from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

CLIENT = "kafka-python"


def admin(ctx):
    ms = int(ctx.call_timeout * 1000)
    return KafkaAdminClient(bootstrap_servers=ctx.bootstrap, request_timeout_ms=ms,
                            client_id="strom-compat-kafka-python")


def is_err(cls):
    return lambda e: isinstance(e, cls)


def create(a, name, partitions, rf=1, configs=None):
    return a.create_topics({name: {"num_partitions": partitions, "replication_factor": rf,
                                   "configs": configs or {}}})


def describe(a, name):
    [t] = a.describe_topics([name])
    return t


@scenario("metadata")
def metadata(ctx):
    a = admin(ctx)
    md = a._manager.run(a._get_cluster_metadata, [])  # plain Metadata request, no topics
    brokers = md["brokers"]
    check_eq(len(brokers), 1, "broker count")
    b = brokers[0]
    check_eq((b["host"], b["port"]), (ctx.host, ctx.port), "broker host/port")
    check(md["cluster_id"], "empty cluster id")
    check_eq(md["controller_id"], b["node_id"], "controller id")
    check_eq(md["topics"], [], "topics for an empty topic list")
    names = a.list_topics()
    check(isinstance(names, list), "list_topics: %r", names)


@scenario("describe-cluster")
def describe_cluster(ctx):
    a = admin(ctx)
    c = a.describe_cluster()
    check(c["cluster_id"], "empty cluster id")
    check_eq(len(c["brokers"]), 1, "broker count")
    b = c["brokers"][0]
    check_eq((b["host"], b["port"]), (ctx.host, ctx.port), "broker host/port")
    check_eq(c["controller_id"], b["broker_id"], "controller id")


@scenario("topic-admin")
def topic_admin(ctx):
    a = admin(ctx)
    bid = a.describe_cluster()["brokers"][0]["broker_id"]
    t, tc = ctx.topic("p3"), ctx.topic("cfg")
    r = create(a, t, 3)
    check_eq([(x["name"], x["error_code"], x["num_partitions"], x["replication_factor"]) for x in r["topics"]],
             [(t, 0, 3, 1)], "CreateTopics response")
    create(a, tc, 1, configs={"retention.ms": "12345", "cleanup.policy": "compact"})
    names = a.list_topics()
    check(t in names and tc in names, "list_topics lacks the new topics: %r", names)

    d = describe(a, t)
    check_eq(d["error_code"], 0, "describe error")
    parts = sorted(d["partitions"], key=lambda p: p["partition_index"])
    check_eq([p["partition_index"] for p in parts], [0, 1, 2], "partition ids")
    for p in parts:
        check_eq((p["leader_id"], p["replica_nodes"], p["isr_nodes"]), (bid, [bid], [bid]),
                 "leader/replicas/isr of partition %d" % p["partition_index"])

    c = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, tc)], config_filter="all")["topic"][tc]
    check_eq((c["retention.ms"]["value"], c["retention.ms"]["config_source"]), ("12345", "DYNAMIC_TOPIC_CONFIG"),
             "retention.ms (value, source)")
    check_eq((c["cleanup.policy"]["value"], c["cleanup.policy"]["config_source"]), ("compact", "DYNAMIC_TOPIC_CONFIG"),
             "cleanup.policy (value, source)")
    check_eq((c["segment.bytes"]["value"], c["segment.bytes"]["config_source"]), ("1073741824", "DEFAULT_CONFIG"),
             "segment.bytes (value, source)")
    # Default filter 'modified' returns only the non-default entries.
    mod = a.describe_configs([ConfigResource(ConfigResourceType.TOPIC, tc)])["topic"][tc]
    check("retention.ms" in mod and "segment.bytes" not in mod, "modified-only configs: %r", sorted(mod))

    a.create_partitions({t: 5})
    eventually(lambda: len(describe(a, t)["partitions"]) == 5, ctx.call_timeout, what="5 partitions")

    r = a.delete_topics([t, tc])
    check_eq(sorted((x["name"], x["error_code"]) for x in r["topics"]), sorted([(t, 0), (tc, 0)]), "DeleteTopics")
    eventually(lambda: t not in a.list_topics() and tc not in a.list_topics(), ctx.call_timeout,
               what="deleted topics gone from list_topics")
    eventually(lambda: describe(a, t)["error_code"] == E.UnknownTopicOrPartitionError.errno, ctx.call_timeout,
               what="metadata of deleted topic -> UNKNOWN_TOPIC_OR_PARTITION")


@scenario("topic-errors")
def topic_errors(ctx):
    a = admin(ctx)
    t = ctx.topic("x")
    create(a, t, 3)
    expect_error(lambda: create(a, t, 3), is_err(E.TopicAlreadyExistsError), "create existing")
    for bad in ["bad/name", "..", "a" * 250]:
        expect_error(lambda: create(a, bad, 1), is_err(E.InvalidTopicError), "create %r" % bad[:20])
    expect_error(lambda: create(a, ctx.topic("rf3"), 1, rf=3), is_err(E.InvalidReplicationFactorError),
                 "replication factor 3")
    expect_error(lambda: create(a, ctx.topic("p0"), 0), is_err(E.InvalidPartitionsError), "0 partitions")
    expect_error(lambda: a.create_partitions({t: 2}), is_err(E.InvalidPartitionsError), "create_partitions 3 -> 2")
    unknown = ctx.topic("nope")
    expect_error(lambda: a.delete_topics([unknown]), is_err(E.UnknownTopicOrPartitionError), "delete unknown")
    check_eq(describe(a, unknown)["error_code"], E.UnknownTopicOrPartitionError.errno, "describe unknown error code")
    expect_error(lambda: create(a, ctx.topic("badcfg"), 1, configs={"no.such.config": "1"}),
                 is_err(E.InvalidConfigurationError), "unknown config key")
    leaked = [n for n in a.list_topics() if n.startswith(ctx.topic()) and n != t]
    check(not leaked, "failed creates left topics behind: %r", leaked)


@scenario("auto-create")
def auto_create(ctx):
    a = admin(ctx)
    t = ctx.topic("auto")
    check_eq(describe(a, t)["error_code"], E.UnknownTopicOrPartitionError.errno, "topic absent before")
    p = KafkaProducer(bootstrap_servers=ctx.bootstrap, max_block_ms=int(ctx.call_timeout * 1000),
                      allow_auto_create_topics=True)
    try:
        parts = p.partitions_for(t)  # Metadata request with allow_auto_topic_creation=true
        check_eq(sorted(parts), [0], "partitions_for of auto-created topic (num.partitions=1)")
    finally:
        p.close(timeout=5)
    d = describe(a, t)
    check_eq((d["error_code"], len(d["partitions"])), (0, 1), "describe auto-created topic (error, partitions)")


if __name__ == "__main__":
    common.main(CLIENT)
