#!/usr/bin/env python3
"""scripts/bench-clients.py — librdkafka (confluent-kafka) load generators and the chart for scripts/bench.

Runs inside the venv scripts/bench creates (confluent-kafka, matplotlib). Every subcommand prints one JSON
object on its last stdout line; errors go to stderr and make the exit status non-zero.

  create-topics BOOTSTRAP NAME:PARTITIONS...       create topics (CreateTopics), wait until Metadata lists them
  produce BOOTSTRAP TOPIC N SIZE ACKS              produce N records of SIZE bytes as fast as possible
  consume BOOTSTRAP TOPIC N                        assign() every partition from the beginning, read N records
  latency-consumer BOOTSTRAP TOPIC N TIMEOUT       assign() at the end, print "ready", time N records
  latency-producer BOOTSTRAP TOPIC RATE SECONDS SIZE   produce at a fixed rate, the send time in each record
  chart RESULTS.json OUT.png                       throughput and latency chart
  versions                                         confluent-kafka and librdkafka versions

No consumer groups: consumers use assign() with explicit offsets and never commit (strom serves no group
coordinator yet; librdkafka still insists on a group.id, which it never uses with assign()).
"""

import json
import os
import struct
import sys
import time


def out(obj):
    print(json.dumps(obj), flush=True)


def die(msg):
    print("bench-clients: " + msg, file=sys.stderr, flush=True)
    sys.exit(1)


def quiet_logger():
    import logging
    log = logging.getLogger("librdkafka")
    log.setLevel(logging.WARNING)
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(logging.Formatter("%(asctime)s librdkafka %(levelname)s %(message)s"))
    log.addHandler(h)
    return log


def create_topics(bootstrap, specs):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = []
    for s in specs:
        name, parts = s.rsplit(":", 1)
        topics.append(NewTopic(name, num_partitions=int(parts), replication_factor=1))
    futures = admin.create_topics(topics, operation_timeout=30, request_timeout=30)
    for name, f in futures.items():
        f.result(timeout=60)
    want = {t.topic: t.num_partitions for t in topics}
    deadline = time.time() + 60
    while True:
        md = admin.list_topics(timeout=10)
        ok = all(n in md.topics and md.topics[n].error is None and len(md.topics[n].partitions) == p
                 for n, p in want.items())
        if ok:
            break
        if time.time() > deadline:
            die("topics not visible in metadata after 60s: %s" % sorted(want))
        time.sleep(0.2)
    out({"created": sorted(want)})


def produce(bootstrap, topic, n, size, acks):
    from confluent_kafka import Producer
    errors = []
    delivered = [0]

    def on_delivery(err, _msg):
        if err is not None:
            if len(errors) < 5:
                errors.append(str(err))
            else:
                errors.append(None)
        else:
            delivered[0] += 1

    p = Producer({
        "bootstrap.servers": bootstrap,
        "acks": acks,
        "linger.ms": 5,
        "queue.buffering.max.messages": 500000,
        "queue.buffering.max.kbytes": 1048576,
        "message.timeout.ms": 120000,
        "logger": quiet_logger(),
    })
    payload = os.urandom(size)
    md = p.list_topics(topic, timeout=30)
    if topic not in md.topics or md.topics[topic].error is not None:
        die("topic %s not in metadata: %s" % (topic, md.topics.get(topic)))
    t0 = time.perf_counter()
    produce_ = p.produce
    for i in range(n):
        while True:
            try:
                produce_(topic, payload, on_delivery=on_delivery)
                break
            except BufferError:
                p.poll(0.005)
        if i & 0x3FFF == 0:
            p.poll(0)
    left = p.flush(180)
    t1 = time.perf_counter()
    if left:
        die("%d records still undelivered after 180 s" % left)
    if errors:
        die("%d delivery errors, first: %s" % (len(errors), [e for e in errors if e][:5]))
    secs = t1 - t0
    out({"records": n, "delivered": delivered[0], "seconds": secs, "records_per_s": n / secs,
         "mb_per_s": n * size / secs / 1e6})


def consume(bootstrap, topic, n, timeout=180.0):
    from confluent_kafka import Consumer, TopicPartition, OFFSET_BEGINNING
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "strom-bench-reader",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # When the Python loop falls behind, librdkafka's fetch queue (64 MiB) fills and it stops fetching
        # for fetch.queue.backoff.ms (default 1000 ms): with a fast broker one such pause can double a
        # run's time. A short back-off keeps the figure about the broker (same setting for every broker).
        "fetch.queue.backoff.ms": 20,
        "logger": quiet_logger(),
    })
    md = c.list_topics(topic, timeout=30)
    if topic not in md.topics or md.topics[topic].error is not None:
        die("topic %s not in metadata" % topic)
    parts = sorted(md.topics[topic].partitions)
    t0 = time.perf_counter()
    c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
    got = 0
    nbytes = 0
    errs = []
    deadline = time.time() + timeout
    while got < n:
        if time.time() > deadline:
            die("consumed %d of %d records in %ss (errors: %s)" % (got, n, timeout, errs[:3]))
        for m in c.consume(num_messages=10000, timeout=1.0):
            e = m.error()
            if e is not None:
                if len(errs) < 10:
                    errs.append(str(e))
                continue
            got += 1
            nbytes += len(m.value())
    t1 = time.perf_counter()
    c.close()
    secs = t1 - t0
    out({"records": got, "seconds": secs, "records_per_s": got / secs, "mb_per_s": nbytes / secs / 1e6,
         "partitions": len(parts), "errors": errs[:3]})


def latency_consumer(bootstrap, topic, n, timeout):
    from confluent_kafka import Consumer, TopicPartition, OFFSET_END
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "strom-bench-latency",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "logger": quiet_logger(),
    })
    md = c.list_topics(topic, timeout=30)
    if topic not in md.topics or md.topics[topic].error is not None:
        die("topic %s not in metadata" % topic)
    parts = sorted(md.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, OFFSET_END) for p in parts])
    # Let the consumer resolve the end offsets and start fetching before the producer starts.
    t_ready = time.time() + 1.5
    while time.time() < t_ready:
        c.poll(0.1)
    print("ready", flush=True)
    lat = []
    errs = []
    deadline = time.time() + timeout
    while len(lat) < n and time.time() < deadline:
        m = c.poll(0.2)
        if m is None:
            continue
        now = time.monotonic_ns()
        if m.error() is not None:
            if len(errs) < 10:
                errs.append(str(m.error()))
            continue
        v = m.value()
        if v is None or len(v) < 16:
            continue
        sent, seq = struct.unpack_from(">qq", v, 0)
        lat.append((seq, (now - sent) / 1e6))
    c.close()
    out({"received": len(lat), "latencies_ms": lat, "errors": errs[:3]})


def latency_producer(bootstrap, topic, rate, seconds, size):
    from confluent_kafka import Producer
    errors = []

    def on_delivery(err, _msg):
        if err is not None and len(errors) < 10:
            errors.append(str(err))

    p = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 0, "logger": quiet_logger()})
    p.list_topics(topic, timeout=30)
    n = int(rate * seconds)
    pad = b"\0" * (size - 16)
    interval = 1e9 / rate
    start = time.monotonic_ns()
    for i in range(n):
        due = start + int(i * interval)
        while True:
            now = time.monotonic_ns()
            if now >= due:
                break
            wait = (due - now) / 1e9
            p.poll(wait if wait > 0.0005 else 0)
        p.produce(topic, struct.pack(">qq", time.monotonic_ns(), i) + pad, on_delivery=on_delivery)
        p.poll(0)
    left = p.flush(60)
    elapsed = (time.monotonic_ns() - start) / 1e9
    if left or errors:
        die("latency producer: %d undelivered, errors %s" % (left, errors[:3]))
    out({"sent": n, "seconds": elapsed, "achieved_rate": n / elapsed})


def versions():
    import confluent_kafka
    v = confluent_kafka.version()
    out({"confluent_kafka": v if isinstance(v, str) else v[0], "librdkafka": confluent_kafka.libversion()[0]})


def chart(results_path, png):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    with open(results_path) as f:
        res = json.load(f)
    rows = res["chart"]
    colors = {"strom": "#2b7bba", "kafka": "#d9822b", "ceiling": "#9a9a9a"}
    # The loopback+disk ceiling (scripts/bench) gets a third bar where it was measured.
    brokers = ["strom", "kafka"] + (["ceiling"] if any(it.get("ceiling") for v in rows.values() for it in v) else [])
    names = {"strom": "strom", "kafka": "Kafka %s" % res.get("kafka_version", ""), "ceiling": "loopback+disk ceiling"}
    fig, axes = plt.subplots(1, 2, figsize=(14, 5.5), gridspec_kw={"width_ratios": [3, 2]})
    for ax, key, title, ylabel, log in (
        (axes[0], "throughput", "Throughput, MB/s (median of rounds; bars: min-max)", "MB/s", False),
        (axes[1], "latency", "End-to-end latency, ms (median of rounds; bars: min-max)", "ms (log scale)", True),
    ):
        items = rows[key]
        labels = [it["label"] for it in items]
        x = list(range(len(items)))
        here = [b for b in brokers if b != "ceiling" or any(it.get(b) for it in items)]
        w = 0.76 / len(here)
        for j, broker in enumerate(here):
            med = [it[broker]["median"] if it.get(broker) else 0 for it in items]
            lo = [max(0.0, m - it[broker]["min"]) if it.get(broker) else 0 for m, it in zip(med, items)]
            hi = [it[broker]["max"] - m if it.get(broker) else 0 for m, it in zip(med, items)]
            pos = [i + (j - (len(here) - 1) / 2) * w for i in x]
            bars = ax.bar(pos, med, w, yerr=[lo, hi], capsize=3, label=names[broker], color=colors[broker])
            for b, m, it in zip(bars, med, items):
                if not it.get(broker) and broker != "ceiling":
                    ax.text(b.get_x() + b.get_width() / 2, 0, "n/a", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x)
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(res.get("chart_title", "strom vs Apache Kafka"), fontsize=11)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    out({"png": png})


def main():
    a = sys.argv[1:]
    if not a:
        die(__doc__)
    cmd = a[0]
    if cmd == "create-topics":
        create_topics(a[1], a[2:])
    elif cmd == "produce":
        produce(a[1], a[2], int(a[3]), int(a[4]), a[5])
    elif cmd == "consume":
        consume(a[1], a[2], int(a[3]))
    elif cmd == "latency-consumer":
        latency_consumer(a[1], a[2], int(a[3]), float(a[4]))
    elif cmd == "latency-producer":
        latency_producer(a[1], a[2], float(a[3]), float(a[4]), int(a[5]))
    elif cmd == "chart":
        chart(a[1], a[2])
    elif cmd == "versions":
        versions()
    else:
        die("unknown subcommand %s" % cmd)


if __name__ == "__main__":
    main()
