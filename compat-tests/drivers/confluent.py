"""confluent-kafka (librdkafka) driver. See common.py for the driver protocol."""

import common
from common import check, check_eq, eventually, expect_error, scenario

from confluent_kafka import KafkaError, KafkaException, Producer, TopicCollection
from confluent_kafka.admin import (AdminClient, ConfigResource, ConfigSource, NewPartitions, NewTopic,
                                   ResourceType)

CLIENT = "confluent-kafka"


def admin(ctx):
    return AdminClient({"bootstrap.servers": ctx.bootstrap, "socket.timeout.ms": int(ctx.call_timeout * 1000)})


def T(ctx):
    return ctx.call_timeout


def code_of(e):
    if isinstance(e, KafkaException) and e.args and isinstance(e.args[0], KafkaError):
        return e.args[0].code()
    return None


def has_code(*codes):
    return lambda e: code_of(e) in codes


def broker_id(ctx, a):
    md = a.list_topics(timeout=T(ctx))
    check(len(md.brokers) == 1, "expected exactly one broker, got %r", md.brokers)
    return next(iter(md.brokers))


def create(ctx, a, topics):
    futs = a.create_topics(topics, operation_timeout=T(ctx), request_timeout=T(ctx))
    for f in futs.values():
        f.result(timeout=T(ctx))


def describe(ctx, a, name):
    futs = a.describe_topics(TopicCollection([name]), request_timeout=T(ctx))
    return futs[name].result(timeout=T(ctx))


@scenario("metadata")
def metadata(ctx):
    a = admin(ctx)
    md = a.list_topics(timeout=T(ctx))
    check_eq(len(md.brokers), 1, "broker count")
    b = next(iter(md.brokers.values()))
    check_eq((b.host, b.port), (ctx.host, ctx.port), "broker host/port")
    check(md.cluster_id, "empty cluster id: %r", md.cluster_id)
    check(md.controller_id in md.brokers, "controller id %r not among brokers %r", md.controller_id, list(md.brokers))
    check_eq(b.id, md.controller_id, "broker id vs controller id (single node)")


@scenario("describe-cluster")
def describe_cluster(ctx):
    a = admin(ctx)
    r = a.describe_cluster(request_timeout=T(ctx)).result(timeout=T(ctx))
    check(r.cluster_id, "empty cluster id")
    check_eq(len(r.nodes), 1, "node count")
    n = r.nodes[0]
    check_eq((n.host, n.port), (ctx.host, ctx.port), "node host/port")
    check(r.controller is not None, "no controller")
    check_eq(r.controller.id, n.id, "controller id")
    md = a.list_topics(timeout=T(ctx))
    check_eq(r.cluster_id, md.cluster_id, "cluster id DescribeCluster vs Metadata")


@scenario("topic-admin")
def topic_admin(ctx):
    a = admin(ctx)
    bid = broker_id(ctx, a)
    t, tc = ctx.topic("p3"), ctx.topic("cfg")
    create(ctx, a, [NewTopic(t, num_partitions=3, replication_factor=1),
                    NewTopic(tc, num_partitions=1, replication_factor=1,
                             config={"retention.ms": "12345", "cleanup.policy": "compact"})])
    names = a.list_topics(timeout=T(ctx)).topics
    check(t in names and tc in names, "list_topics lacks the new topics: %r", sorted(names))

    d = describe(ctx, a, t)
    check_eq(sorted(p.id for p in d.partitions), [0, 1, 2], "partition ids")
    for p in d.partitions:
        check_eq(p.leader.id if p.leader else None, bid, "leader of partition %d" % p.id)
        check_eq([n.id for n in p.replicas], [bid], "replicas of partition %d" % p.id)
        check_eq([n.id for n in p.isr], [bid], "isr of partition %d" % p.id)
    md = a.list_topics(topic=t, timeout=T(ctx)).topics[t]
    check_eq(sorted(md.partitions), [0, 1, 2], "metadata partitions")
    for p in md.partitions.values():
        check_eq((p.leader, list(p.replicas), list(p.isrs)), (bid, [bid], [bid]), "metadata partition %d" % p.id)

    res = ConfigResource(ResourceType.TOPIC, tc)
    cfg = a.describe_configs([res], request_timeout=T(ctx))[res].result(timeout=T(ctx))
    rm = cfg.get("retention.ms")
    check(rm is not None, "no retention.ms in describe_configs")
    check_eq((rm.value, rm.source, rm.is_default), ("12345", ConfigSource.DYNAMIC_TOPIC_CONFIG.value, False),
             "retention.ms (value, source, is_default)")
    cp = cfg["cleanup.policy"]
    check_eq((cp.value, cp.source), ("compact", ConfigSource.DYNAMIC_TOPIC_CONFIG.value), "cleanup.policy")
    sb = cfg["segment.bytes"]
    check_eq((sb.value, sb.source, sb.is_default), ("1073741824", ConfigSource.DEFAULT_CONFIG.value, True),
             "segment.bytes (value, source, is_default)")

    for f in a.create_partitions([NewPartitions(t, 5)], operation_timeout=T(ctx), request_timeout=T(ctx)).values():
        f.result(timeout=T(ctx))
    eventually(lambda: len(describe(ctx, a, t).partitions) == 5, T(ctx), what="5 partitions after create_partitions")

    for f in a.delete_topics([t, tc], operation_timeout=T(ctx), request_timeout=T(ctx)).values():
        f.result(timeout=T(ctx))
    eventually(lambda: t not in a.list_topics(timeout=T(ctx)).topics and tc not in a.list_topics(timeout=T(ctx)).topics,
               T(ctx), what="deleted topics gone from list_topics")
    eventually(lambda: _unknown(ctx, a, t), T(ctx), what="describe of deleted topic -> UNKNOWN_TOPIC_OR_PART")


def _unknown(ctx, a, t):
    try:
        describe(ctx, a, t)
        return False
    except KafkaException as e:
        check_eq(code_of(e), KafkaError.UNKNOWN_TOPIC_OR_PART, "error of describe on a deleted topic")
        return True


@scenario("topic-errors")
def topic_errors(ctx):
    a = admin(ctx)
    t = ctx.topic("x")
    create(ctx, a, [NewTopic(t, num_partitions=3, replication_factor=1)])
    expect_error(lambda: create(ctx, a, [NewTopic(t, num_partitions=3, replication_factor=1)]),
                 has_code(KafkaError.TOPIC_ALREADY_EXISTS), "create existing")
    for bad in ["bad/name", "..", "a" * 250]:
        expect_error(lambda: create(ctx, a, [NewTopic(bad, num_partitions=1, replication_factor=1)]),
                     has_code(KafkaError.TOPIC_EXCEPTION), "create %r" % bad[:20])
    expect_error(lambda: create(ctx, a, [NewTopic(ctx.topic("rf3"), num_partitions=1, replication_factor=3)]),
                 has_code(KafkaError.INVALID_REPLICATION_FACTOR), "replication factor 3")
    expect_error(lambda: create(ctx, a, [NewTopic(ctx.topic("p0"), num_partitions=0, replication_factor=1)]),
                 has_code(KafkaError.INVALID_PARTITIONS), "0 partitions")

    def shrink():
        for f in a.create_partitions([NewPartitions(t, 2)], operation_timeout=T(ctx), request_timeout=T(ctx)).values():
            f.result(timeout=T(ctx))
    expect_error(shrink, has_code(KafkaError.INVALID_PARTITIONS), "create_partitions 3 -> 2")

    unknown = ctx.topic("nope")

    def delete_unknown():
        for f in a.delete_topics([unknown], operation_timeout=T(ctx), request_timeout=T(ctx)).values():
            f.result(timeout=T(ctx))
    expect_error(delete_unknown, has_code(KafkaError.UNKNOWN_TOPIC_OR_PART), "delete unknown")
    expect_error(lambda: describe(ctx, a, unknown), has_code(KafkaError.UNKNOWN_TOPIC_OR_PART), "describe unknown")
    expect_error(lambda: create(ctx, a, [NewTopic(ctx.topic("badcfg"), num_partitions=1, replication_factor=1,
                                                  config={"no.such.config": "1"})]),
                 has_code(KafkaError.INVALID_CONFIG), "unknown config key")
    names = a.list_topics(timeout=T(ctx)).topics
    leaked = [n for n in names if n.startswith(ctx.topic()) and n != t]
    check(not leaked, "failed creates left topics behind: %r", leaked)


@scenario("auto-create")
def auto_create(ctx):
    t = ctx.topic("auto")
    a = admin(ctx)
    expect_error(lambda: describe(ctx, a, t), has_code(KafkaError.UNKNOWN_TOPIC_OR_PART), "topic absent before")
    p = Producer({"bootstrap.servers": ctx.bootstrap, "allow.auto.create.topics": True})
    # A producer's metadata request for one topic allows auto-creation (librdkafka default for producers).
    eventually(lambda: p.list_topics(topic=t, timeout=T(ctx)).topics[t].error is None, T(ctx),
               what="auto-created topic in producer metadata")
    d = eventually(lambda: describe(ctx, a, t), T(ctx), what="describe auto-created topic")
    check_eq(len(d.partitions), 1, "partitions of auto-created topic (num.partitions=1)")


if __name__ == "__main__":
    common.main(CLIENT)
