"""kcat (librdkafka CLI, Debian package) driver. See common.py for the driver protocol.

kcat cannot create or delete topics; topic-admin uses the confluent-kafka AdminClient for those steps and checks
what `kcat -L` reports at each point.
"""

import json
import subprocess

import common
from common import check, check_eq, eventually, scenario

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


if __name__ == "__main__":
    common.main(CLIENT)
