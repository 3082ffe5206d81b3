#!/usr/bin/env python3
"""scripts/bench-clients.py — topic creation (confluent-kafka's AdminClient) and the chart for scripts/bench; the
load generators are Kafka's Java tools and librdkafka's rdkafka_performance (scripts/rdkafka-performance).

Runs inside the venv scripts/bench creates (confluent-kafka, matplotlib). Every subcommand prints one JSON
object on its last stdout line; errors go to stderr and make the exit status non-zero.

  create-topics BOOTSTRAP NAME:PARTITIONS[:K=V,...]...
                                                   create topics (CreateTopics) with those topic configs, wait
                                                   until Metadata lists them
  chart RESULTS.json OUT.png                       throughput and latency chart
  versions                                         confluent-kafka and librdkafka versions
"""

import json
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
        name, parts, *configs = s.split(":", 2)
        config = dict(kv.split("=", 1) for kv in configs[0].split(",")) if configs else {}
        topics.append(NewTopic(name, num_partitions=int(parts), replication_factor=1, config=config))
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
        (axes[0], "throughput", "Throughput, MB/s (median of rounds; bars: min-max)", "MB/s (log scale)", True),
        (axes[1], "latency", "End-to-end latency, ms (median of rounds; bars: min-max)", "ms (log scale)", True),
    ):
        items = rows[key]
        labels = [it["label"] for it in items]
        x = list(range(len(items)))
        here = [b for b in brokers if b != "ceiling" or any(it.get(b) for it in items)]
        w = 0.76 / len(here)
        for j, broker in enumerate(here):
            # Both axes are logarithmic: a missing value is NaN (no bar), not 0.
            med = [it[broker]["median"] if it.get(broker) else float("nan") for it in items]
            lo = [max(0.0, m - it[broker]["min"]) if it.get(broker) else 0 for m, it in zip(med, items)]
            hi = [it[broker]["max"] - m if it.get(broker) else 0 for m, it in zip(med, items)]
            pos = [i + (j - (len(here) - 1) / 2) * w for i in x]
            bars = ax.bar(pos, med, w, yerr=[lo, hi], capsize=3, label=names[broker], color=colors[broker])
            for b, m, it in zip(bars, med, items):
                if not it.get(broker) and broker != "ceiling":
                    ax.text(b.get_x() + b.get_width() / 2, 0.01, "n/a", ha="center", va="bottom", fontsize=7,
                            transform=ax.get_xaxis_transform())
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
    elif cmd == "chart":
        chart(a[1], a[2])
    elif cmd == "versions":
        versions()
    else:
        die("unknown subcommand %s" % cmd)


if __name__ == "__main__":
    main()
