"""kafka-python (pure Python client, 3.x API) driver. See common.py for the driver protocol."""

import time

import common
from common import (CODEC_RECORDS, CODECS, Stopwatch, check, check_eq, eventually, expect_error, expected_records,
                    scenario, verify_records)

import kafka.codec
import kafka.errors as E
from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

CLIENT = "kafka-python"


def admin(ctx):
    ms = int(ctx.call_timeout * 1000)
    return KafkaAdminClient(bootstrap_servers=ctx.bootstrap, request_timeout_ms=ms, bootstrap_timeout_ms=ms,
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
                      bootstrap_timeout_ms=int(ctx.call_timeout * 1000), allow_auto_create_topics=True)
    try:
        parts = p.partitions_for(t)  # Metadata request with allow_auto_topic_creation=true
        check_eq(sorted(parts), [0], "partitions_for of auto-created topic (num.partitions=1)")
    finally:
        p.close(timeout=5)
    d = describe(a, t)
    check_eq((d["error_code"], len(d["partitions"])), (0, 1), "describe auto-created topic (error, partitions)")


# ---------------------------------------------------------------------------------------------------------------
# Producing and consuming (consumers use assign(), group_id=None). kafka-python is pure Python: fewer records in
# idempotent-producer and acks0; produce-consume sends CODEC_RECORDS per codec with larger batches.

N = 2000


def producer(ctx, **conf):
    ms = int(ctx.call_timeout * 1000)
    c = dict(bootstrap_servers=ctx.bootstrap, max_block_ms=ms, request_timeout_ms=ms, bootstrap_timeout_ms=ms,
             linger_ms=5, client_id="strom-compat-kafka-python")
    c.update(conf)
    # kafka-python refuses a delivery timeout below linger + request timeout (e.g. with --call-timeout 120).
    c.setdefault("delivery_timeout_ms", max(120000, c["linger_ms"] + ms + 1000))
    return KafkaProducer(**c)


def produce_all(ctx, p, topic, recs, check_offsets=True, what="produce"):
    send = p.send
    futs = [send(topic, value=r[3], key=r[2], headers=r[4] or None, partition=r[0], timestamp_ms=r[5]) for r in recs]
    p.flush(timeout=ctx.call_timeout + 5)  # the timeout bounds the wait for each batch, not the whole flush
    mds = []
    for i, (f, r) in enumerate(zip(futs, recs)):
        check(f.is_done, "%s: record %d not acknowledged after flush", what, i)
        md = f.get(timeout=0)
        if check_offsets and (md.partition != r[0] or md.offset != r[1]):
            check_eq((md.partition, md.offset), (r[0], r[1]), "%s: partition/offset of record %d" % (what, i))
        mds.append(md)
    return mds


def consumer(ctx, **conf):
    ms = int(ctx.call_timeout * 1000)
    return KafkaConsumer(bootstrap_servers=ctx.bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", request_timeout_ms=ms, bootstrap_timeout_ms=ms,
                         fetch_max_wait_ms=200,
                         client_id="strom-compat-kafka-python", **conf)


def consume_all(ctx, topic, partitions, n, offsets=None, **conf):
    """Reads partitions 0..partitions-1 from the beginning (or offsets[p]) until n records came back or none came for
    the call timeout; checks the end offsets against what was read; returns record tuples in consumption order."""
    c = consumer(ctx, **conf)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        if offsets is None:
            c.seek_to_beginning(*tps)
        else:
            for tp in tps:
                c.seek(tp, offsets[tp.partition])
        got = []
        append = got.append
        deadline = time.monotonic() + ctx.call_timeout
        while len(got) < n and time.monotonic() < deadline:
            for tp, msgs in c.poll(timeout_ms=500, max_records=20000).items():
                deadline = time.monotonic() + ctx.call_timeout  # progress: the timeout bounds a stall, not the total
                for m in msgs:
                    if m.timestamp_type != 0:
                        check_eq(m.timestamp_type, 0, "timestamp type (CreateTime) at offset %d" % m.offset)
                    append((m.partition, m.offset, m.key, m.value, m.headers, m.timestamp))
        ends = c.end_offsets(tps, timeout_ms=int(ctx.call_timeout * 1000))
        for tp in tps:
            start = 0 if offsets is None else offsets[tp.partition]
            check_eq(ends[tp], start + sum(1 for r in got if r[0] == tp.partition),
                     "end offset of partition %d vs records read" % tp.partition)
        return got
    finally:
        c.close()


def codec_supported(codec):
    return {"none": True, "gzip": kafka.codec.has_gzip(), "snappy": kafka.codec.has_snappy(),
            "lz4": kafka.codec.has_lz4(), "zstd": kafka.codec.has_zstd()}[codec]


def base_ts():
    return (int(time.time()) - 3600) * 1000


@scenario("produce-consume")
def produce_consume(ctx):
    # python-snappy, lz4 and zstandard are pinned in requirements.txt: every codec must be available.
    missing = [c for c in CODECS if not codec_supported(c)]
    check(not missing, "codec libraries missing in the venv: %r", missing)
    a = admin(ctx)
    ts = base_ts()
    for codec in CODECS:
        sw = Stopwatch(ctx, "%s: %d records" % (codec, CODEC_RECORDS))
        t = ctx.topic(codec)
        create(a, t, 3)
        recs = expected_records(codec, CODEC_RECORDS, partitions=3, base_ts=ts)
        # Idempotent (kafka-python's default); larger batches than the default 16 KiB keep the pure-Python per-request
        # work down.
        p = producer(ctx, compression_type=None if codec == "none" else codec, acks="all", linger_ms=20,
                     batch_size=256 * 1024)
        try:
            produce_all(ctx, p, t, recs, what="%s: produce" % codec)
        finally:
            p.close(timeout=5)
        sw.lap("produce")
        got = consume_all(ctx, t, 3, len(recs), max_partition_fetch_bytes=4 << 20)
        sw.lap("consume")
        verify_records(got, recs, "%s round trip" % codec)
        sw.lap("verify")
        sw.done()


@scenario("idempotent-producer")
def idempotent_producer(ctx):
    a = admin(ctx)
    t = ctx.topic("idem")
    create(a, t, 3)
    recs = expected_records("idem", N, partitions=3, base_ts=base_ts())
    p = producer(ctx, enable_idempotence=True, acks="all", max_in_flight_requests_per_connection=5, batch_size=4096)
    try:
        produce_all(ctx, p, t, recs, what="idempotent produce")
    finally:
        p.close(timeout=5)
    verify_records(consume_all(ctx, t, 3, N), recs, "idempotent round trip")


@scenario("acks0")
def acks0(ctx):
    a = admin(ctx)
    t = ctx.topic("acks0")
    create(a, t, 3)
    recs = expected_records("acks0", N, partitions=3, base_ts=base_ts())
    p = producer(ctx, acks=0, enable_idempotence=False)
    try:
        mds = produce_all(ctx, p, t, recs, check_offsets=False, what="acks=0 produce")
        # No response with acks=0: the client's reported offsets are its own guess, only the partitions are checked.
        check_eq([m.partition for m in mds], [r[0] for r in recs], "partitions reported for acks=0 sends")
    finally:
        p.close(timeout=5)
    got = []

    def all_readable():
        got[:] = consume_all(ctx, t, 3, N)
        return len(got) >= N
    eventually(all_readable, ctx.call_timeout, what="all acks=0 records readable")
    verify_records(got, recs, "acks=0 round trip")


@scenario("offsets-by-timestamp")
def offsets_by_timestamp(ctx):
    a = admin(ctx)
    t = ctx.topic("ts")
    create(a, t, 1)
    base, n = base_ts(), 100
    recs = [(0, i, b"k%d" % i, b"v%d" % i, [], base + i * 1000) for i in range(n)]
    p = producer(ctx, linger_ms=50)
    try:
        for chunk in range(0, n, 10):  # ten batches of ten: lookups land inside batches
            produce_all(ctx, p, t, recs[chunk:chunk + 10])
    finally:
        p.close(timeout=5)
    tp = TopicPartition(t, 0)
    c = consumer(ctx)
    ms = int(ctx.call_timeout * 1000)
    try:
        for x in [base - 5000, base, base + 1, base + 5000, base + 5500, base + 42999, base + 99000, base + 99001,
                  base + 10 ** 9]:
            want = next((i for i in range(n) if base + i * 1000 >= x), None)
            r = c.offsets_for_times({tp: x}, timeout_ms=ms)[tp]
            what = "offsets_for_times(base%+d)" % (x - base)
            if want is None:
                check(r is None, "%s: expected None (no record at or after it), got %r", what, r)
            else:
                check(r is not None, "%s: expected offset %d, got None", what, want)
                check_eq((r.offset, r.timestamp), (want, base + want * 1000), what + " (offset, timestamp)")
        check_eq(c.beginning_offsets([tp], timeout_ms=ms)[tp], 0, "beginning_offsets")
        check_eq(c.end_offsets([tp], timeout_ms=ms)[tp], n, "end_offsets")
    finally:
        c.close()
    off = 43  # first record at or after base + 42500
    verify_records(consume_all(ctx, t, 1, n - off, offsets=[off]), recs[off:], "consume after seek(%d)" % off)


@scenario("restart-durability")
def restart_durability(ctx):
    a = admin(ctx)
    t = ctx.topic("durable")
    create(a, t, 2)
    n = 1000
    ts = base_ts()
    # Not idempotent (the Java, franz-go and kafkajs cells cover that): one request in flight keeps retries in order.
    p = producer(ctx, acks="all", compression_type="gzip", enable_idempotence=False, retries=20,
                 max_in_flight_requests_per_connection=1, reconnect_backoff_max_ms=1000)
    try:
        phases = [expected_records("durable", n, partitions=2, base_ts=ts, first=k * n) for k in range(3)]
        produce_all(ctx, p, t, phases[0], what="before restart")
        for k, mode in [(1, "term"), (2, "kill")]:
            ctx.restart_broker(mode)
            eventually(lambda: len(describe(admin(ctx), t)["partitions"]) == 2, ctx.call_timeout,
                       what="topic with 2 partitions after restart")
            produce_all(ctx, p, t, phases[k], what="after restart (SIG%s)" % mode.upper())
    finally:
        p.close(timeout=5)
    recs = phases[0] + phases[1] + phases[2]
    verify_records(consume_all(ctx, t, 2, len(recs)), recs, "after two restarts")


# ---------------------------------------------------------------------------------------------------------------
# Transactions (KIP-98, KIP-447): the same checks as drivers/confluent.py and java/.../Transactions.java. Record keys
# are tag+i, values b"v-"+key, record i of a transaction to partition i % partitions.

@scenario("log-compaction")
def log_compaction(ctx):
    a = admin(ctx)

    def make(t, configs):
        create(a, t, 1, configs=configs)

    def produce(t, kvs):
        p = producer(ctx)
        try:
            produce_all(ctx, p, t, [(0, None, k, v, None, None) for k, v in kvs], check_offsets=False)
        finally:
            p.close()

    def read_all(t):
        c = consumer(ctx)
        try:
            tp = TopicPartition(t, 0)
            c.assign([tp])
            c.seek_to_beginning(tp)
            high = c.end_offsets([tp], timeout_ms=int(ctx.call_timeout * 1000))[tp]
            got, deadline = [], time.monotonic() + ctx.call_timeout
            while c.position(tp) < high and time.monotonic() < deadline:
                for m in c.poll(timeout_ms=500).get(tp, []):
                    got.append((m.offset, m.key, m.value))
            return got
        finally:
            c.close()

    common.log_compaction(ctx, make, produce, read_all)


def txn_keys(tag, n):
    return [("%s%d" % (tag, i)).encode() for i in range(n)]


def txn_producer(ctx, tid, timeout_ms):
    return producer(ctx, transactional_id=tid, transaction_timeout_ms=timeout_ms, acks="all")


def txn_send(ctx, p, topic, keys, partitions, what):
    futs = [p.send(topic, key=k, value=b"v-" + k, partition=i % partitions) for i, k in enumerate(keys)]
    p.flush(timeout=ctx.call_timeout + 5)
    for i, f in enumerate(futs):
        check(f.is_done, "%s: record %d not acknowledged after flush", what, i)
        f.get(timeout=0)


def read_isolated(ctx, topic, partitions, isolation, idle=2.0):
    """(partition, offset, key) of every record of the topic a consumer with `isolation` gets (assign(), no group),
    sorted; until nothing came for `idle` seconds after the first record (or the call timeout with none)."""
    c = consumer(ctx, isolation_level=isolation)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        c.assign(tps)
        c.seek_to_beginning(*tps)
        got, deadline = [], time.monotonic() + ctx.call_timeout
        while time.monotonic() < deadline:
            recs = c.poll(timeout_ms=300)
            for msgs in recs.values():
                got.extend((m.partition, m.offset, m.key) for m in msgs)
            if any(recs.values()):
                deadline = time.monotonic() + idle
            elif got:
                deadline = min(deadline, time.monotonic() + idle)
        return sorted(got)
    finally:
        c.close()


def end_offsets(ctx, topic, partitions, isolation):
    """ListOffsets latest per partition: the high watermark (read_uncommitted) or last stable offset (read_committed)."""
    c = consumer(ctx, isolation_level=isolation)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        ends = c.end_offsets(tps, timeout_ms=int(ctx.call_timeout * 1000))
        return [ends[tp] for tp in tps]
    finally:
        c.close()


@scenario("transactions")
def transactions(ctx):
    a = admin(ctx)
    t = ctx.topic("data")
    create(a, t, 2)
    p = txn_producer(ctx, ctx.topic("tid"), 60000)
    try:
        p.init_transactions()
        # Committed, aborted, committed: 5 records per partition each, and a marker after each transaction.
        for tag, commit in (("c", True), ("a", False), ("d", True)):
            p.begin_transaction()
            txn_send(ctx, p, t, txn_keys(tag, 10), 2, "send %s" % tag)
            if commit:
                p.commit_transaction()
            else:
                p.abort_transaction()
        want = sorted([(i % 2, i // 2, k) for i, k in enumerate(txn_keys("c", 10))] +
                      [(i % 2, 12 + i // 2, k) for i, k in enumerate(txn_keys("d", 10))])
        check_eq(read_isolated(ctx, t, 2, "read_committed"), want, "read_committed records (partition, offset, key)")
        unc = read_isolated(ctx, t, 2, "read_uncommitted")
        check_eq(len(unc), 30, "read_uncommitted record count (committed and aborted)")
        check_eq(sorted({o for _, o, _ in unc}), [o for o in range(17) if o not in (5, 11)],
                 "read_uncommitted offsets (markers at 5 and 11)")
        check_eq(end_offsets(ctx, t, 2, "read_uncommitted"), [18, 18], "end offsets (markers included)")

        # An open transaction holds read_committed consumers at its first offset (the last stable offset).
        p.begin_transaction()
        txn_send(ctx, p, t, txn_keys("open", 2), 2, "send open")
        check_eq(read_isolated(ctx, t, 2, "read_committed", idle=1.0), want, "read_committed while a transaction is open")
        check_eq(len(read_isolated(ctx, t, 2, "read_uncommitted", idle=1.0)), 32, "read_uncommitted sees the open one")
        check_eq(end_offsets(ctx, t, 2, "read_committed"), [18, 18],
                 "read_committed end offsets = last stable offsets while a transaction is open")
        check_eq(end_offsets(ctx, t, 2, "read_uncommitted"), [19, 19], "high watermarks while a transaction is open")
        p.commit_transaction()
        check_eq(len(read_isolated(ctx, t, 2, "read_committed")), 22, "read_committed after the commit")
    finally:
        p.close(timeout=5)


@scenario("transactions-offsets")
def transactions_offsets(ctx):
    """Consume-transform-produce: a group member (subscribe, read_committed, 10 records a poll) and
    send_offsets_to_transaction with its group metadata (KIP-447): offsets committed with the transaction, or not at
    all."""
    a = admin(ctx)
    src, dst = ctx.topic("src"), ctx.topic("dst")
    create(a, src, 1)
    create(a, dst, 1)
    plain = producer(ctx)
    try:
        txn_send(ctx, plain, src, txn_keys("k", 20), 1, "send source records")
    finally:
        plain.close(timeout=5)
    group = ctx.topic("group")
    ms = int(ctx.call_timeout * 1000)
    c = KafkaConsumer(bootstrap_servers=ctx.bootstrap, group_id=group, enable_auto_commit=False,
                      auto_offset_reset="earliest", isolation_level="read_committed", max_poll_records=10,
                      request_timeout_ms=ms, bootstrap_timeout_ms=ms, fetch_max_wait_ms=200,
                      session_timeout_ms=6000, heartbeat_interval_ms=1000, client_id="strom-compat-kafka-python")
    p = txn_producer(ctx, ctx.topic("tid"), 60000)
    try:
        p.init_transactions()
        c.subscribe([src])
        for round_, commit in ((0, True), (1, False)):
            got = []
            deadline = time.monotonic() + ctx.call_timeout
            while len(got) < 10 and time.monotonic() < deadline:
                for msgs in c.poll(timeout_ms=300, max_records=10 - len(got)).values():
                    got.extend(msgs)
            check_eq(len(got), 10, "records consumed in round %d" % round_)
            p.begin_transaction()
            txn_send(ctx, p, dst, [m.key for m in got], 1, "send round %d" % round_)
            p.send_offsets_to_transaction({TopicPartition(src, 0): OffsetAndMetadata(got[-1].offset + 1, "", -1)},
                                          c.group_metadata())
            if commit:
                p.commit_transaction()
            else:
                p.abort_transaction()
    finally:
        p.close(timeout=5)
        c.close()
    committed = a.list_group_offsets({group: [TopicPartition(src, 0)]})[group]
    check_eq({tp.partition: o.offset for tp, o in committed.items()}, {0: 10},
             "committed offset (the aborted transaction's offsets are dropped)")
    check_eq(read_isolated(ctx, dst, 1, "read_committed"), [(0, i, k) for i, k in enumerate(txn_keys("k", 10))],
             "read_committed output")


@scenario("transactions-fencing")
def transactions_fencing(ctx):
    """A second producer with the same transactional_id fences the first; a transaction left open past its timeout
    is aborted by the coordinator."""
    a = admin(ctx)
    t = ctx.topic("data")
    create(a, t, 1)
    tid = ctx.topic("tid")
    old = txn_producer(ctx, tid, 60000)
    new = txn_producer(ctx, tid, 60000)
    slow = txn_producer(ctx, ctx.topic("slow"), 2000)
    try:
        old.init_transactions()
        old.begin_transaction()
        txn_send(ctx, old, t, [b"zombie"], 1, "send zombie")
        new.init_transactions()  # fences old, aborts its transaction
        new.begin_transaction()
        txn_send(ctx, new, t, [b"new"], 1, "send new")
        new.commit_transaction()
        e = expect_error(old.commit_transaction, is_err(E.ProducerFencedError), "commit of the fenced producer")
        ctx.log("fenced producer:", type(e).__name__, e)
        check_eq(read_isolated(ctx, t, 1, "read_committed"), [(0, 2, b"new")], "only the new producer's record")

        # Left open past transaction_timeout_ms: the coordinator aborts it (its periodic check runs every 10 s).
        slow.init_transactions()
        slow.begin_transaction()
        txn_send(ctx, slow, t, [b"timed-out"], 1, "send timed-out")
        eventually(lambda: end_offsets(ctx, t, 1, "read_committed") == end_offsets(ctx, t, 1, "read_uncommitted"),
                   40, interval=0.5, what="the timed-out transaction aborted")
        e = expect_error(slow.commit_transaction, lambda e: isinstance(e, E.KafkaError),
                         "commit of the transaction aborted by its timeout")
        ctx.log("timed-out producer:", type(e).__name__, e)
        check_eq(read_isolated(ctx, t, 1, "read_committed"), [(0, 2, b"new")], "the timed-out record is gone")
    finally:
        for x in (old, new, slow):
            x.close(timeout=2)


@scenario("transactions-restart")
def transactions_restart(ctx):
    """The broker is SIGKILLed with a transaction open, twice: the producer carries on with the same transaction,
    which then commits (and, the second time, aborts) exactly as it would have without the crash."""
    a = admin(ctx)
    t = ctx.topic("data")
    create(a, t, 1)
    p = txn_producer(ctx, ctx.topic("tid"), 60000)
    try:
        p.init_transactions()
        p.begin_transaction()
        txn_send(ctx, p, t, txn_keys("a", 10), 1, "send a")
        ctx.restart_broker("kill")
        txn_send(ctx, p, t, txn_keys("b", 10), 1, "send b (after the first crash)")
        p.commit_transaction()
        p.begin_transaction()
        txn_send(ctx, p, t, txn_keys("x", 5), 1, "send x")
        ctx.restart_broker("kill")
        p.abort_transaction()
        p.begin_transaction()
        txn_send(ctx, p, t, txn_keys("c", 3), 1, "send c")
        p.commit_transaction()
    finally:
        p.close(timeout=5)
    want = [(0, i, k) for i, k in enumerate(txn_keys("a", 10) + txn_keys("b", 10))] + \
           [(0, 27 + i, k) for i, k in enumerate(txn_keys("c", 3))]
    check_eq(read_isolated(ctx, t, 1, "read_committed"), want, "read_committed records after two crashes")
    check_eq(end_offsets(ctx, t, 1, "read_uncommitted"), [31], "high watermark (three markers)")


if __name__ == "__main__":
    common.main(CLIENT)
