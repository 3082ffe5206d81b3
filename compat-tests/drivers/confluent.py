"""confluent-kafka (librdkafka) driver. See common.py for the driver protocol."""

import threading
import time

import common
from common import (CODEC_RECORDS, CODECS, Stopwatch, check, check_eq, eventually, expect_error, expected_records,
                    scenario, verify_records)

from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, Consumer, KafkaError, KafkaException, Producer,
                             TopicCollection, TopicPartition)
from confluent_kafka.admin import (AdminClient, ConfigResource, ConfigSource, NewPartitions, NewTopic, OffsetSpec,
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


# ---------------------------------------------------------------------------------------------------------------
# Producing and consuming. Consumers use assign() with explicit offsets; librdkafka insists on a group.id for any
# consumer, but with assign(), explicit start offsets and no commits it never needs the group coordinator for
# fetching.

N = 10000  # records per check in idempotent-producer and acks0 (produce-consume: CODEC_RECORDS per codec)


def producer(ctx, **conf):
    ms = int(ctx.call_timeout * 1000)
    c = {"bootstrap.servers": ctx.bootstrap, "socket.timeout.ms": ms, "message.timeout.ms": ms, "linger.ms": 5}
    c.update({k.replace("_", "."): v for k, v in conf.items()})
    if not c.get("enable.idempotence"):
        # Without idempotence librdkafka keeps up to 1e6 requests in flight, so a retried batch (e.g. the first
        # produce to a just-created partition) can land after later ones: one in flight keeps the order checkable.
        c.setdefault("max.in.flight.requests.per.connection", 1)
    return Producer(c)


def produce_all(ctx, p, topic, recs, timestamps=True):
    """Produces recs ((partition, offset, key, value, headers, ts) tuples) to their partitions and waits for every
    delivery report; returns the reported (partition, offset) per record. Fails on any delivery error."""
    results = [None] * len(recs)

    def cb(i):
        def f(err, msg):
            results[i] = err if err is not None else (msg.partition(), msg.offset())
        return f
    for i, r in enumerate(recs):
        kw = {"timestamp": r[5]} if timestamps and r[5] is not None else {}
        while True:
            try:
                p.produce(topic, value=r[3], key=r[2], partition=r[0], headers=r[4] or None, on_delivery=cb(i), **kw)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    # Wait for every delivery report, failing only when none arrives for the call timeout (a large batch of records
    # may take longer than that in total on a slow machine).
    left, deadline = None, time.monotonic() + T(ctx) + 5
    while True:
        now_left = p.flush(1.0)
        if now_left == 0:
            break
        if left is None or now_left < left:
            left, deadline = now_left, time.monotonic() + T(ctx) + 5
        check(time.monotonic() < deadline, "%d records still undelivered, none delivered for %ss", now_left,
              T(ctx) + 5)
    errs = [(i, e) for i, e in enumerate(results) if isinstance(e, KafkaError) or e is None]
    check(not errs, "%d delivery errors, first: record %s: %s", len(errs), errs[0][0] if errs else None,
          errs[0][1] if errs else None)
    return results


def check_delivered(results, recs, what):
    got = [tuple(x) for x in results]
    want = [(r[0], r[1]) for r in recs]
    if got != want:
        i = next(i for i in range(len(want)) if got[i] != want[i])
        raise AssertionError("%s: record %d delivered at (partition, offset) %r, expected %r" % (what, i, got[i],
                                                                                                 want[i]))


def consumer(ctx):
    ms = int(ctx.call_timeout * 1000)
    return Consumer({"bootstrap.servers": ctx.bootstrap, "group.id": ctx.topic("reader"), "enable.auto.commit": False,
                     "enable.auto.offset.store": False, "socket.timeout.ms": ms, "fetch.wait.max.ms": 200})


def close_bounded(c, timeout=10):
    t = threading.Thread(target=c.close, daemon=True)
    t.start()
    t.join(timeout)


def consume_all(ctx, topic, partitions, n, offsets=None, timeout=None):
    """Reads partitions 0..partitions-1 from the beginning (or from offsets[p]) until n records came back or no record
    came for the timeout; returns (partition, offset, key, value, headers, timestamp) tuples in consumption order."""
    c = consumer(ctx)
    try:
        c.assign([TopicPartition(topic, p, offsets[p] if offsets else OFFSET_BEGINNING) for p in range(partitions)])
        got = []
        append = got.append
        idle = timeout or T(ctx)
        deadline = time.monotonic() + idle
        while len(got) < n and time.monotonic() < deadline:
            before = len(got)
            for m in c.consume(num_messages=10000, timeout=0.5):
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(m.error())
                tt, ts = m.timestamp()
                if tt != TIMESTAMP_CREATE_TIME:
                    raise AssertionError("timestamp type of offset %d: expected %r, got %r" % (
                        m.offset(), TIMESTAMP_CREATE_TIME, tt))
                append((m.partition(), m.offset(), m.key(), m.value(), m.headers() or [], ts))
            if len(got) > before:
                deadline = time.monotonic() + idle
        return got
    finally:
        close_bounded(c)


def watermarks(ctx, topic, partitions):
    c = consumer(ctx)
    try:
        return [c.get_watermark_offsets(TopicPartition(topic, p), timeout=T(ctx), cached=False)
                for p in range(partitions)]
    finally:
        close_bounded(c)


def check_watermarks(ctx, topic, recs, partitions, what):
    want = [(0, sum(1 for r in recs if r[0] == p)) for p in range(partitions)]
    check_eq([tuple(w) for w in watermarks(ctx, topic, partitions)], want, "%s: (low, high) watermarks" % what)


def base_ts():
    return (int(time.time()) - 3600) * 1000  # an hour ago, whole second


@scenario("produce-consume")
def produce_consume(ctx):
    a = admin(ctx)
    ts = base_ts()
    for codec in CODECS:
        sw = Stopwatch(ctx, "%s: %d records" % (codec, CODEC_RECORDS))
        t = ctx.topic(codec)
        create(ctx, a, [NewTopic(t, num_partitions=3, replication_factor=1)])
        recs = expected_records(codec, CODEC_RECORDS, partitions=3, base_ts=ts)
        p = producer(ctx, compression_type=codec, acks="all")
        check_delivered(produce_all(ctx, p, t, recs), recs, "%s: delivery" % codec)
        sw.lap("produce")
        got = consume_all(ctx, t, 3, len(recs))
        sw.lap("consume")
        verify_records(got, recs, "%s round trip" % codec)
        check_watermarks(ctx, t, recs, 3, codec)
        sw.lap("verify")
        sw.done()


@scenario("idempotent-producer")
def idempotent_producer(ctx):
    a = admin(ctx)
    t = ctx.topic("idem")
    create(ctx, a, [NewTopic(t, num_partitions=3, replication_factor=1)])
    recs = expected_records("idem", N, partitions=3, base_ts=base_ts())
    p = producer(ctx, enable_idempotence=True, max_in_flight_requests_per_connection=5, linger_ms=2,
                 batch_num_messages=200)
    check_delivered(produce_all(ctx, p, t, recs), recs, "idempotent delivery")
    verify_records(consume_all(ctx, t, 3, N), recs, "idempotent round trip")
    check_watermarks(ctx, t, recs, 3, "idempotent")


@scenario("acks0")
def acks0(ctx):
    a = admin(ctx)
    t = ctx.topic("acks0")
    create(ctx, a, [NewTopic(t, num_partitions=3, replication_factor=1)])
    recs = expected_records("acks0", N, partitions=3, base_ts=base_ts())
    p = producer(ctx, acks=0)
    res = produce_all(ctx, p, t, recs)
    # With acks=0 the broker sends no response; librdkafka's delivery report offsets are its own guess, not checked.
    check_eq([pt for pt, _ in res], [r[0] for r in recs], "partitions reported for acks=0 deliveries")
    verify_records(consume_all(ctx, t, 3, N), recs, "acks=0 round trip")
    check_watermarks(ctx, t, recs, 3, "acks=0")


@scenario("offsets-by-timestamp")
def offsets_by_timestamp(ctx):
    a = admin(ctx)
    t = ctx.topic("ts")
    create(ctx, a, [NewTopic(t, num_partitions=1, replication_factor=1)])
    base, n = base_ts(), 100
    # Record i has timestamp base + i*1000; ten produce calls of ten records, so lookups land inside batches.
    recs = [(0, i, b"k%d" % i, b"v%d" % i, [], base + i * 1000) for i in range(n)]
    p = producer(ctx, linger_ms=50)
    for chunk in range(0, n, 10):
        check_delivered(produce_all(ctx, p, t, recs[chunk:chunk + 10]), recs[chunk:chunk + 10], "delivery")

    def first_at_or_after(x):
        return next((i for i in range(n) if base + i * 1000 >= x), -1)
    targets = [base - 5000, base, base + 1, base + 5000, base + 5500, base + 42999, base + 99000, base + 99001,
               base + 10 ** 9]
    c = consumer(ctx)
    try:
        # One lookup per call: librdkafka merges a list naming the same partition twice.
        res = [c.offsets_for_times([TopicPartition(t, 0, x)], timeout=T(ctx))[0] for x in targets]
        check(all(r.error is None for r in res), "offsets_for_times errors: %r", [r.error for r in res])
        # librdkafka reports "no record at or after the timestamp" as offset -1 (OFFSET_END).
        check_eq([r.offset for r in res], [first_at_or_after(x) for x in targets],
                 "offsets_for_times base%s" % ["%+d" % (x - base) for x in targets])
        check_eq(tuple(c.get_watermark_offsets(TopicPartition(t, 0), timeout=T(ctx), cached=False)), (0, n),
                 "watermarks (earliest, latest)")
    finally:
        close_bounded(c)
    # The same through the AdminClient's ListOffsets, including the max-timestamp spec.
    tp = TopicPartition(t, 0)
    specs = [("earliest", OffsetSpec.earliest(), 0, None), ("latest", OffsetSpec.latest(), n, None),
             ("max_timestamp", OffsetSpec.max_timestamp(), n - 1, base + (n - 1) * 1000),
             ("for_timestamp(base+5500)", OffsetSpec.for_timestamp(base + 5500), 6, base + 6000),
             ("for_timestamp(after last)", OffsetSpec.for_timestamp(base + 10 ** 9), -1, None)]
    for name, spec, off, ts in specs:
        r = a.list_offsets({tp: spec}, request_timeout=T(ctx))[tp].result(timeout=T(ctx))
        check_eq(r.offset, off, "list_offsets %s offset" % name)
        if ts is not None:
            check_eq(r.timestamp, ts, "list_offsets %s timestamp" % name)
    # Consuming from the offset found for a timestamp starts at that record.
    off = c_off = first_at_or_after(base + 42500)
    got = consume_all(ctx, t, 1, n - off, offsets=[c_off])
    verify_records(got, recs[off:], "consume from the offset of base+42500")


@scenario("restart-durability")
def restart_durability(ctx):
    a = admin(ctx)
    t = ctx.topic("durable")
    create(ctx, a, [NewTopic(t, num_partitions=2, replication_factor=1)])
    n = 2000
    ts = base_ts()
    p = producer(ctx, acks="all", compression_type="lz4")
    phases = [expected_records("durable", n, partitions=2, base_ts=ts, first=k * n) for k in range(3)]
    check_delivered(produce_all(ctx, p, t, phases[0]), phases[0], "before restart")
    for k, mode in [(1, "term"), (2, "kill")]:
        ctx.restart_broker(mode)
        eventually(lambda: len(describe(ctx, admin(ctx), t).partitions) == 2, T(ctx),
                   what="topic with 2 partitions after restart (SIG%s)" % mode.upper())
        # The same producer instance reconnects and continues.
        check_delivered(produce_all(ctx, p, t, phases[k]), phases[k], "after restart (SIG%s)" % mode.upper())
    recs = phases[0] + phases[1] + phases[2]
    verify_records(consume_all(ctx, t, 2, len(recs)), recs, "after two restarts")
    check_watermarks(ctx, t, recs, 2, "after two restarts")




# --- transactions -----------------------------------------------------------------------------------------------

@scenario("log-compaction")
def log_compaction(ctx):
    a = admin(ctx)

    def make(t, configs):
        create(ctx, a, [NewTopic(t, num_partitions=1, replication_factor=1, config=configs)])

    def produce(t, kvs):
        recs = [(0, None, k, v, None, None) for k, v in kvs]
        produce_all(ctx, producer(ctx), t, recs, timestamps=False)

    def read_all(t):
        c = consumer(ctx)
        try:
            _, high = c.get_watermark_offsets(TopicPartition(t, 0), timeout=T(ctx), cached=False)
            c.assign([TopicPartition(t, 0, OFFSET_BEGINNING)])
            got, deadline = [], time.monotonic() + T(ctx)
            while (not got or got[-1][0] < high - 1) and time.monotonic() < deadline:
                for m in c.consume(num_messages=1000, timeout=0.5):
                    if m.error():
                        if m.error().code() == KafkaError._PARTITION_EOF:
                            continue
                        raise KafkaException(m.error())
                    got.append((m.offset(), m.key(), m.value()))
            return got
        finally:
            close_bounded(c)

    common.log_compaction(ctx, make, produce, read_all)


def txn_consumer(ctx, isolation, group=None):
    ms = int(ctx.call_timeout * 1000)
    return Consumer({"bootstrap.servers": ctx.bootstrap, "group.id": group or ctx.topic("reader-" + isolation),
                     "enable.auto.commit": False, "enable.auto.offset.store": False, "socket.timeout.ms": ms,
                     "fetch.wait.max.ms": 200, "isolation.level": isolation, "auto.offset.reset": "earliest"})


def read_isolated(ctx, topic, partitions, isolation, idle=3.0):
    """(partition, offset, key) of every record of the topic a consumer with `isolation` gets, until nothing came
    for `idle` seconds after the first record (or the call timeout with none)."""
    c = txn_consumer(ctx, isolation)
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        got, deadline = [], time.monotonic() + T(ctx)
        while time.monotonic() < deadline:
            batch = c.consume(num_messages=1000, timeout=0.5)
            for m in batch:
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise KafkaException(m.error())
                got.append((m.partition(), m.offset(), m.key()))
            if batch and any(not m.error() for m in batch):
                deadline = time.monotonic() + idle
        return sorted(got)
    finally:
        close_bounded(c)


def txn_produce(p, topic, keys, partitions):
    for i, k in enumerate(keys):
        p.produce(topic, key=k, value=b"v-" + k, partition=i % partitions)
    p.flush(30)


@scenario("transactions")
def transactions(ctx):
    a = admin(ctx)
    t = ctx.topic("data")
    create(ctx, a, [NewTopic(t, num_partitions=2, replication_factor=1)])
    p = producer(ctx, transactional_id=ctx.topic("tid"))
    p.init_transactions(T(ctx))
    keys = lambda tag, n: [("%s%d" % (tag, i)).encode() for i in range(n)]  # noqa: E731
    # Committed, aborted, committed: 5 records per partition each, and a marker after each transaction.
    for tag, commit in (("c", True), ("a", False), ("d", True)):
        p.begin_transaction()
        txn_produce(p, t, keys(tag, 10), 2)
        if commit:
            p.commit_transaction(T(ctx))
        else:
            p.abort_transaction(T(ctx))
    committed = read_isolated(ctx, t, 2, "read_committed")
    want = sorted([(i % 2, i // 2, k) for i, k in enumerate(keys("c", 10))] +
                  [(i % 2, 12 + i // 2, k) for i, k in enumerate(keys("d", 10))])
    check_eq(committed, want, "read_committed records (partition, offset, key)")
    uncommitted = read_isolated(ctx, t, 2, "read_uncommitted")
    check_eq(len(uncommitted), 30, "read_uncommitted record count (committed and aborted)")
    check_eq(sorted({o for _, o, _ in uncommitted}), [o for o in range(17) if o not in (5, 11)],
             "read_uncommitted offsets (markers at 5 and 11)")
    check_eq([tuple(w) for w in watermarks(ctx, t, 2)], [(0, 18), (0, 18)], "watermarks (markers included)")

    # An open transaction holds read_committed consumers at its first offset (the last stable offset).
    p.begin_transaction()
    txn_produce(p, t, keys("open", 2), 2)
    check_eq(read_isolated(ctx, t, 2, "read_committed", idle=1.0), want, "read_committed while a transaction is open")
    check_eq(len(read_isolated(ctx, t, 2, "read_uncommitted", idle=1.0)), 32, "read_uncommitted sees the open one")
    p.commit_transaction(T(ctx))
    check_eq(len(read_isolated(ctx, t, 2, "read_committed")), 22, "read_committed after the commit")


@scenario("transactions-offsets")
def transactions_offsets(ctx):
    """Consume-transform-produce: offsets sent to the transaction are committed with it, or not at all."""
    a = admin(ctx)
    src, dst = ctx.topic("src"), ctx.topic("dst")
    create(ctx, a, [NewTopic(src, num_partitions=1, replication_factor=1),
                    NewTopic(dst, num_partitions=1, replication_factor=1)])
    plain = producer(ctx)
    txn_produce(plain, src, [b"k%d" % i for i in range(20)], 1)
    group = ctx.topic("group")
    c = txn_consumer(ctx, "read_committed", group=group)
    p = producer(ctx, transactional_id=ctx.topic("tid"))
    try:
        p.init_transactions(T(ctx))
        c.assign([TopicPartition(src, 0, OFFSET_BEGINNING)])
        for round_, commit in ((0, True), (1, False)):
            got = []
            deadline = time.monotonic() + T(ctx)
            while len(got) < 10 and time.monotonic() < deadline:
                m = c.poll(0.5)
                if m is not None and not m.error():
                    got.append(m)
            check_eq(len(got), 10, "records consumed in round %d" % round_)
            p.begin_transaction()
            txn_produce(p, dst, [m.key() for m in got], 1)
            p.send_offsets_to_transaction([TopicPartition(src, 0, got[-1].offset() + 1)],
                                          c.consumer_group_metadata(), T(ctx))
            if commit:
                p.commit_transaction(T(ctx))
            else:
                p.abort_transaction(T(ctx))
        committed = c.committed([TopicPartition(src, 0)], timeout=T(ctx))
        check_eq(committed[0].offset, 10, "committed offset (the aborted transaction's offsets are dropped)")
    finally:
        close_bounded(c)
    out = read_isolated(ctx, dst, 1, "read_committed")
    check_eq([k for _, _, k in out], [b"k%d" % i for i in range(10)], "read_committed output keys")


@scenario("transactions-fencing")
def transactions_fencing(ctx):
    """A second producer with the same transactional.id fences the first; a transaction left open past its timeout
    is aborted by the coordinator."""
    a = admin(ctx)
    t = ctx.topic("data")
    create(ctx, a, [NewTopic(t, num_partitions=1, replication_factor=1)])
    tid = ctx.topic("tid")
    old = producer(ctx, transactional_id=tid)
    old.init_transactions(T(ctx))
    old.begin_transaction()
    txn_produce(old, t, [b"zombie"], 1)
    new = producer(ctx, transactional_id=tid)
    new.init_transactions(T(ctx))  # aborts the zombie's transaction
    new.begin_transaction()
    txn_produce(new, t, [b"new"], 1)
    new.commit_transaction(T(ctx))
    try:
        old.commit_transaction(T(ctx))
        raise AssertionError("the fenced producer committed")
    except KafkaException as e:
        err = e.args[0]
        check(err.fatal(), "the fenced producer's error is not fatal: %s", err)
        ctx.log("fenced producer error:", err.code(), err.name(), err.str())
    check_eq([k for _, _, k in read_isolated(ctx, t, 1, "read_committed")], [b"new"], "only the new producer's record")

    # Left open past transaction.timeout.ms: the coordinator aborts it (its periodic check runs every 10 s).
    slow = producer(ctx, transactional_id=ctx.topic("slow"), transaction_timeout_ms=5000, socket_timeout_ms=5000,
                    message_timeout_ms=5000)
    slow.init_transactions(T(ctx))
    slow.begin_transaction()
    txn_produce(slow, t, [b"timed-out"], 1)
    eventually(lambda: len(read_isolated(ctx, t, 1, "read_committed", idle=0.5)) == 1 and
               stable_end(ctx, t) == high_end(ctx, t), 40, interval=1.0, what="the timed-out transaction aborted")
    try:
        slow.commit_transaction(T(ctx))
        raise AssertionError("a transaction aborted by its timeout committed")
    except KafkaException as e:
        ctx.log("timed-out producer error:", e.args[0].code(), e.args[0].name(), e.args[0].str())
    check_eq([k for _, _, k in read_isolated(ctx, t, 1, "read_committed")], [b"new"], "the timed-out record is gone")


@scenario("transactions-restart")
def transactions_restart(ctx):
    """The broker is SIGKILLed with a transaction open, twice: the producer carries on with the same transaction,
    which then commits (and, the second time, aborts) exactly as it would have without the crash."""
    a = admin(ctx)
    t = ctx.topic("data")
    create(ctx, a, [NewTopic(t, num_partitions=1, replication_factor=1)])
    p = producer(ctx, transactional_id=ctx.topic("tid"))
    p.init_transactions(T(ctx))
    keys = lambda tag, n: [("%s%d" % (tag, i)).encode() for i in range(n)]  # noqa: E731
    p.begin_transaction()
    txn_produce(p, t, keys("a", 10), 1)
    ctx.restart_broker("kill")
    txn_produce(p, t, keys("b", 10), 1)
    p.commit_transaction(T(ctx))
    p.begin_transaction()
    txn_produce(p, t, keys("x", 5), 1)
    ctx.restart_broker("kill")
    p.abort_transaction(T(ctx))
    p.begin_transaction()
    txn_produce(p, t, keys("c", 3), 1)
    p.commit_transaction(T(ctx))
    want = [(0, i, k) for i, k in enumerate(keys("a", 10) + keys("b", 10))] + \
           [(0, 27 + i, k) for i, k in enumerate(keys("c", 3))]
    check_eq(read_isolated(ctx, t, 1, "read_committed"), want, "read_committed records after two crashes")
    check_eq(high_end(ctx, t), 31, "high watermark (three markers)")

def end_offset(ctx, topic, isolation):
    """Partition 0's end offset as ListOffsets latest answers it for `isolation` (READ_COMMITTED: the last stable
    offset; READ_UNCOMMITTED: the high watermark)."""
    tp = TopicPartition(topic, 0)
    a = admin(ctx)  # kept alive until the answer is in
    r = a.list_offsets({tp: OffsetSpec.latest()}, isolation_level=isolation, request_timeout=T(ctx))
    return r[tp].result(timeout=T(ctx)).offset


def stable_end(ctx, topic):
    from confluent_kafka import IsolationLevel
    return end_offset(ctx, topic, IsolationLevel.READ_COMMITTED)


def high_end(ctx, topic):
    # Not a consumer's watermarks: librdkafka consumers default to read_committed, whose end is the LSO.
    from confluent_kafka import IsolationLevel
    return end_offset(ctx, topic, IsolationLevel.READ_UNCOMMITTED)

if __name__ == "__main__":
    common.main(CLIENT)
