package strom.compat;

import static strom.compat.Ctx.check;
import static strom.compat.Ctx.checkEq;
import static strom.compat.Ctx.expectError;

import java.util.*;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import strom.compat.Records.Rec;
import org.apache.kafka.common.ClusterResource;
import org.apache.kafka.common.ClusterResourceListener;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.*;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/** The Java client's scenarios. Names match compat-tests/registry.py. */
final class Scenarios {
    interface Scenario {
        void run(Ctx ctx) throws Exception;
    }

    static Map<String, Scenario> all() {
        Map<String, Scenario> m = new LinkedHashMap<>();
        m.put("metadata", Scenarios::metadata);
        m.put("describe-cluster", Scenarios::describeCluster);
        m.put("topic-admin", Scenarios::topicAdmin);
        m.put("topic-errors", Scenarios::topicErrors);
        m.put("auto-create", Scenarios::autoCreate);
        m.put("topic-configs-golden", Scenarios::topicConfigsGolden);
        m.put("produce-consume", Scenarios::produceConsume);
        m.put("idempotent-producer", Scenarios::idempotentProducer);
        m.put("acks0", Scenarios::acks0);
        m.put("offsets-by-timestamp", Scenarios::offsetsByTimestamp);
        m.put("restart-durability", Scenarios::restartDurability);
        Transactions.register(m);
        Compaction.register(m);
        return m;
    }

    /** Key serializer that records the cluster id the producer learns from Metadata responses. */
    public static final class ClusterIdSpy extends ByteArraySerializer implements ClusterResourceListener {
        final AtomicReference<String> clusterId = new AtomicReference<>();

        @Override
        public void onUpdate(ClusterResource r) {
            if (r.clusterId() != null) clusterId.set(r.clusterId());
        }
    }

    static Node onlyNode(Ctx ctx, Admin admin) throws Exception {
        Collection<Node> nodes = ctx.get(admin.describeCluster().nodes());
        checkEq(nodes.size(), 1, "node count");
        return nodes.iterator().next();
    }

    /** Producer/consumer view of metadata (Metadata API): leaders' host/port, cluster id, topic listing. */
    static void metadata(Ctx ctx) throws Exception {
        Admin admin = ctx.admin();
        String t = ctx.topic("p2");
        ctx.get(admin.createTopics(List.of(new NewTopic(t, 2, (short) 1))).all());
        ClusterIdSpy spy = new ClusterIdSpy();
        KafkaProducer<byte[], byte[]> producer = ctx.producer(Map.of(), spy);
        List<PartitionInfo> parts = producer.partitionsFor(t);
        checkEq(parts.size(), 2, "partitionsFor size");
        for (PartitionInfo p : parts) {
            check(p.leader() != null, "partition %d has no leader", p.partition());
            checkEq(p.leader().host() + ":" + p.leader().port(), ctx.host + ":" + ctx.port, "leader address");
            checkEq(Arrays.stream(p.replicas()).map(Node::id).toList(), List.of(p.leader().id()), "replicas");
        }
        String cid = spy.clusterId.get();
        check(cid != null && !cid.isEmpty(), "producer learned no cluster id from Metadata");
        checkEq(cid, ctx.get(admin.describeCluster().clusterId()), "cluster id (Metadata vs DescribeCluster)");
        KafkaConsumer<byte[], byte[]> consumer = ctx.consumer(Map.of());
        Map<String, List<PartitionInfo>> topics = consumer.listTopics(java.time.Duration.ofMillis(ctx.timeoutMs));
        check(topics.containsKey(t), "consumer.listTopics lacks %s: %s", t, topics.keySet());
        checkEq(topics.get(t).size(), 2, "consumer.listTopics partitions");
    }

    static void describeCluster(Ctx ctx) throws Exception {
        Admin admin = ctx.admin();
        DescribeClusterResult r = admin.describeCluster(new DescribeClusterOptions().includeAuthorizedOperations(true));
        String cid = ctx.get(r.clusterId());
        check(cid != null && !cid.isEmpty(), "empty cluster id");
        Collection<Node> nodes = ctx.get(r.nodes());
        checkEq(nodes.size(), 1, "node count");
        Node n = nodes.iterator().next();
        checkEq(n.host() + ":" + n.port(), ctx.host + ":" + ctx.port, "node address");
        Node controller = ctx.get(r.controller());
        check(controller != null && !controller.isEmpty(), "no controller: %s", controller);
        checkEq(controller.id(), n.id(), "controller id");
        // A second client instance sees the same cluster id.
        checkEq(ctx.get(ctx.admin().describeCluster().clusterId()), cid, "cluster id stable across clients");
    }

    static TopicDescription describe(Ctx ctx, Admin admin, String t) throws Exception {
        return ctx.get(admin.describeTopics(List.of(t)).allTopicNames()).get(t);
    }

    static void topicAdmin(Ctx ctx) throws Exception {
        Admin admin = ctx.admin();
        int bid = onlyNode(ctx, admin).id();
        String t = ctx.topic("p3"), tc = ctx.topic("cfg");
        CreateTopicsResult cr = admin.createTopics(List.of(new NewTopic(t, 3, (short) 1),
                new NewTopic(tc, 1, (short) 1).configs(Map.of("retention.ms", "12345", "cleanup.policy", "compact"))));
        ctx.get(cr.all());
        checkEq(ctx.get(cr.numPartitions(t)), 3, "CreateTopics result numPartitions");
        checkEq(ctx.get(cr.replicationFactor(t)), 1, "CreateTopics result replicationFactor");
        check(ctx.get(cr.topicId(t)) != null, "CreateTopics returned no topic id");
        Set<String> names = ctx.get(admin.listTopics().names());
        check(names.contains(t) && names.contains(tc), "listTopics lacks the new topics: %s", names);

        TopicDescription d = describe(ctx, admin, t);
        checkEq(d.partitions().size(), 3, "partition count");
        checkEq(d.topicId(), ctx.get(cr.topicId(t)), "topic id (describe vs create)");
        for (TopicPartitionInfo p : d.partitions()) {
            checkEq(p.leader() == null ? null : p.leader().id(), bid, "leader of partition " + p.partition());
            checkEq(p.replicas().stream().map(Node::id).toList(), List.of(bid), "replicas of partition " + p.partition());
            checkEq(p.isr().stream().map(Node::id).toList(), List.of(bid), "isr of partition " + p.partition());
        }
        checkEq(d.partitions().stream().map(TopicPartitionInfo::partition).toList(), List.of(0, 1, 2), "partition ids");

        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, tc);
        Config cfg = ctx.get(admin.describeConfigs(List.of(res),
                new DescribeConfigsOptions().includeSynonyms(true)).all()).get(res);
        ConfigEntry rm = cfg.get("retention.ms");
        check(rm != null, "no retention.ms entry");
        checkEq(List.of(rm.value(), rm.source(), rm.isDefault()),
                List.of("12345", ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, false), "retention.ms (value, source, isDefault)");
        check(!rm.synonyms().isEmpty() && rm.synonyms().get(0).source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG,
                "retention.ms first synonym should be the topic override: %s", rm.synonyms());
        ConfigEntry cp = cfg.get("cleanup.policy");
        checkEq(List.of(cp.value(), cp.source()), List.of("compact", ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG), "cleanup.policy");
        ConfigEntry sb = cfg.get("segment.bytes");
        check(sb != null, "no segment.bytes entry");
        checkEq(List.of(sb.value(), sb.source(), sb.isDefault(), sb.isReadOnly(), sb.isSensitive()),
                List.of("1073741824", ConfigEntry.ConfigSource.DEFAULT_CONFIG, true, false, false),
                "segment.bytes (value, source, isDefault, isReadOnly, isSensitive)");

        ctx.get(admin.createPartitions(Map.of(t, NewPartitions.increaseTo(5))).all());
        ctx.eventually("5 partitions after createPartitions", () -> describe(ctx, admin, t).partitions().size() == 5);

        ctx.get(admin.deleteTopics(List.of(t, tc)).all());
        ctx.eventually("deleted topics gone from listTopics", () -> {
            Set<String> n = ctx.get(admin.listTopics().names());
            return !n.contains(t) && !n.contains(tc);
        });
        ctx.eventually("describe of deleted topic -> UnknownTopicOrPartitionException", () -> {
            expectError("describe deleted", UnknownTopicOrPartitionException.class, () -> describe(ctx, admin, t));
            return true;
        });
    }

    static void create(Ctx ctx, Admin admin, NewTopic nt) throws Exception {
        ctx.get(admin.createTopics(List.of(nt)).all());
    }

    static void topicErrors(Ctx ctx) throws Exception {
        Admin admin = ctx.admin();
        String t = ctx.topic("x");
        create(ctx, admin, new NewTopic(t, 3, (short) 1));
        expectError("create existing", TopicExistsException.class, () -> {
            create(ctx, admin, new NewTopic(t, 3, (short) 1));
            return null;
        });
        for (String bad : List.of("bad/name", "..", "a".repeat(250))) {
            expectError("create '" + bad.substring(0, Math.min(20, bad.length())) + "'", InvalidTopicException.class, () -> {
                create(ctx, admin, new NewTopic(bad, 1, (short) 1));
                return null;
            });
        }
        expectError("replication factor 3", InvalidReplicationFactorException.class, () -> {
            create(ctx, admin, new NewTopic(ctx.topic("rf3"), 1, (short) 3));
            return null;
        });
        expectError("0 partitions", InvalidPartitionsException.class, () -> {
            create(ctx, admin, new NewTopic(ctx.topic("p0"), 0, (short) 1));
            return null;
        });
        expectError("createPartitions 3 -> 2", InvalidPartitionsException.class,
                () -> ctx.get(admin.createPartitions(Map.of(t, NewPartitions.increaseTo(2))).all()));
        String unknown = ctx.topic("nope");
        expectError("delete unknown", UnknownTopicOrPartitionException.class,
                () -> ctx.get(admin.deleteTopics(List.of(unknown)).all()));
        expectError("describe unknown", UnknownTopicOrPartitionException.class, () -> describe(ctx, admin, unknown));
        expectError("describeConfigs unknown topic", UnknownTopicOrPartitionException.class,
                () -> ctx.get(admin.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.TOPIC, unknown))).all()));
        expectError("unknown config key", InvalidConfigurationException.class, () -> {
            create(ctx, admin, new NewTopic(ctx.topic("badcfg"), 1, (short) 1).configs(Map.of("no.such.config", "1")));
            return null;
        });
        Set<String> leaked = ctx.get(admin.listTopics().names()).stream()
                .filter(n -> n.startsWith(ctx.topic("")) && !n.equals(t)).collect(Collectors.toSet());
        check(leaked.isEmpty(), "failed creates left topics behind: %s", leaked);
    }

    /**
     * The complete DescribeConfigs answer (every entry's value, source, flags, type, synonyms) for a topic without
     * overrides and for one with retention.ms=12345 must equal what Apache Kafka answers, recorded in
     * compat-tests/golden/topic-configs.txt ({@code compat-tests/run --against kafka --update-golden} rewrites it).
     */
    static void topicConfigsGolden(Ctx ctx) throws Exception {
        Admin admin = ctx.admin();
        String plain = ctx.topic("plain"), custom = ctx.topic("retention");
        ctx.get(admin.createTopics(List.of(new NewTopic(plain, 1, (short) 1),
                new NewTopic(custom, 1, (short) 1).configs(Map.of("retention.ms", "12345")))).all());
        List<String> actual = new ArrayList<>();
        actual.add("## topic created with no configs");
        actual.addAll(DumpNotes.configLines(admin, new ConfigResource(ConfigResource.Type.TOPIC, plain), ctx.timeoutMs));
        actual.add("## topic created with retention.ms=12345");
        actual.addAll(DumpNotes.configLines(admin, new ConfigResource(ConfigResource.Type.TOPIC, custom), ctx.timeoutMs));
        String dir = System.getenv("STROM_GOLDEN_DIR");
        check(dir != null, "STROM_GOLDEN_DIR is not set");
        java.nio.file.Path golden = java.nio.file.Path.of(dir, "topic-configs.txt");
        if ("1".equals(System.getenv("STROM_GOLDEN_UPDATE"))) {
            List<String> out = new ArrayList<>();
            out.add("# DescribeConfigs(includeSynonyms=true) of fresh topics on Apache Kafka "
                    + KafkaVersion.get()
                    + ", recorded by compat-tests/run --against kafka --update-golden. Do not edit by hand.");
            out.addAll(actual);
            java.nio.file.Files.write(golden, out);
            return;
        }
        List<String> expected = java.nio.file.Files.readAllLines(golden).stream()
                .filter(l -> !l.startsWith("# ")).toList();
        Set<String> diffs = new LinkedHashSet<>();
        Set<String> exp = new LinkedHashSet<>(expected), act = new LinkedHashSet<>(actual);
        for (String l : expected) if (!act.contains(l)) diffs.add("expected: " + l);
        for (String l : actual) if (!exp.contains(l)) diffs.add("got: " + l);
        check(diffs.isEmpty(), "%d line(s) differ from golden/topic-configs.txt: %s", diffs.size(),
                String.join(" ;; ", new ArrayList<>(diffs).subList(0, Math.min(8, diffs.size()))));
        checkEq(actual, expected, "entry order/duplicates vs golden/topic-configs.txt");
    }

    static void autoCreate(Ctx ctx) throws Exception {
        Admin admin = ctx.admin();
        String t = ctx.topic("auto");
        expectError("topic absent before", UnknownTopicOrPartitionException.class, () -> describe(ctx, admin, t));
        // The producer's Metadata requests allow auto-creation; partitionsFor waits (max.block.ms) until it exists.
        KafkaProducer<byte[], byte[]> producer = ctx.producer(Map.of());
        List<PartitionInfo> parts = producer.partitionsFor(t);
        checkEq(parts.size(), 1, "partitions of auto-created topic (num.partitions=1)");
        checkEq(describe(ctx, admin, t).partitions().size(), 1, "describe auto-created topic");
    }

    // ---------------------------------------------------------------------------------------------------------
    // Producing and consuming (consumers use assign(), no group).

    /** Records per check in idempotent-producer and acks0. */
    static final int N = 10_000;
    /** Records per codec in produce-consume (the same for every library client, see drivers/common.py). */
    static final int CODEC_RECORDS = 100_000;

    /**
     * Per codec: CODEC_RECORDS records through a producer with default settings apart from the codec (so idempotent,
     * acks=all, linger.ms=5, 5 requests in flight), every acknowledgement and every record read back checked.
     */
    static void produceConsume(Ctx ctx) throws Exception {
        Admin admin = ctx.admin();
        long base = Records.baseTs();
        for (String codec : Records.CODECS) {
            long t0 = System.nanoTime();
            String t = ctx.topic(codec);
            create(ctx, admin, new NewTopic(t, 3, (short) 1));
            List<Rec> recs = Records.expected(codec, 0, CODEC_RECORDS, 3, base);
            KafkaProducer<byte[], byte[]> p = ctx.producer(Map.of(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec));
            Records.sendChecked(ctx, p, t, recs, codec + ": acknowledgement");
            p.close(java.time.Duration.ofSeconds(5));
            long t1 = System.nanoTime();
            List<Rec> got = Records.consume(ctx, t, 3, recs.size(), null);
            long t2 = System.nanoTime();
            Records.verify(got, recs, codec + " round trip");
            long t3 = System.nanoTime();
            ctx.log(String.format("%s: %d records: produce %.1fs, consume %.1fs, verify %.1fs, total %.1fs", codec,
                    CODEC_RECORDS, (t1 - t0) / 1e9, (t2 - t1) / 1e9, (t3 - t2) / 1e9, (t3 - t0) / 1e9));
        }
    }

    /** Default producer settings: idempotent in 4.x (acks=all, 5 requests in flight per connection). */
    static void idempotentProducer(Ctx ctx) throws Exception {
        Admin admin = ctx.admin();
        String t = ctx.topic("idem");
        create(ctx, admin, new NewTopic(t, 3, (short) 1));
        List<Rec> recs = Records.expected("idem", 0, N, 3, Records.baseTs());
        KafkaProducer<byte[], byte[]> p = ctx.producer(Map.of(ProducerConfig.LINGER_MS_CONFIG, 2,
                ProducerConfig.BATCH_SIZE_CONFIG, 8192));
        Records.sendChecked(ctx, p, t, recs, "idempotent acknowledgement");
        Records.verify(Records.consume(ctx, t, 3, N, null), recs, "idempotent round trip");
    }

    static void acks0(Ctx ctx) throws Exception {
        Admin admin = ctx.admin();
        String t = ctx.topic("acks0");
        create(ctx, admin, new NewTopic(t, 3, (short) 1));
        List<Rec> recs = Records.expected("acks0", 0, N, 3, Records.baseTs());
        KafkaProducer<byte[], byte[]> p = ctx.producer(Map.of(ProducerConfig.ACKS_CONFIG, "0",
                ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false, ProducerConfig.LINGER_MS_CONFIG, 5));
        List<RecordMetadata> md = Records.send(ctx, p, t, recs);
        // No response with acks=0: the client reports the partition and offset -1.
        for (int i = 0; i < md.size(); i++) {
            checkEq(List.of(md.get(i).partition(), md.get(i).offset(), md.get(i).hasOffset()),
                    List.of(recs.get(i).partition(), -1L, false), "acks=0 metadata of record " + i);
        }
        Records.verify(Records.consume(ctx, t, 3, N, null), recs, "acks=0 round trip");
    }

    static void offsetsByTimestamp(Ctx ctx) throws Exception {
        Admin admin = ctx.admin();
        String t = ctx.topic("ts");
        create(ctx, admin, new NewTopic(t, 1, (short) 1));
        TopicPartition tp = new TopicPartition(t, 0);
        long base = Records.baseTs();
        int n = 100;
        // Record i has timestamp base + i*1000; ten batches of ten, so lookups land inside batches.
        List<Rec> recs = new ArrayList<>();
        for (int i = 0; i < n; i++) recs.add(new Rec(0, i, "k" + i, "v" + i, List.of(), base + i * 1000L));
        KafkaProducer<byte[], byte[]> p = ctx.producer(Map.of(ProducerConfig.LINGER_MS_CONFIG, 50));
        for (int i = 0; i < n; i += 10) Records.sendChecked(ctx, p, t, recs.subList(i, i + 10), "acknowledgement");

        KafkaConsumer<byte[], byte[]> c = ctx.consumer(Map.of());
        java.time.Duration to = java.time.Duration.ofMillis(ctx.timeoutMs);
        long[] targets = {base - 5000, base, base + 1, base + 5000, base + 5500, base + 42_999, base + 99_000,
                base + 99_001, base + 1_000_000_000L};
        for (long x : targets) {
            int want = -1;
            for (int i = 0; i < n; i++) if (base + i * 1000L >= x) { want = i; break; }
            OffsetAndTimestamp ot = c.offsetsForTimes(Map.of(tp, x), to).get(tp);
            String what = "offsetsForTimes(base" + (x >= base ? "+" : "") + (x - base) + ")";
            if (want < 0) check(ot == null, "%s: expected null (no record at or after it), got %s", what, ot);
            else {
                check(ot != null, "%s: expected offset %d, got null", what, want);
                checkEq(List.of(ot.offset(), ot.timestamp()), List.of((long) want, base + want * 1000L), what + " (offset, timestamp)");
            }
        }
        checkEq(c.beginningOffsets(List.of(tp), to).get(tp), 0L, "beginningOffsets");
        checkEq(c.endOffsets(List.of(tp), to).get(tp), (long) n, "endOffsets");

        // Admin ListOffsets: earliest, latest, max timestamp, a timestamp.
        Map<String, OffsetSpec> specs = new LinkedHashMap<>();
        specs.put("earliest", OffsetSpec.earliest());
        specs.put("latest", OffsetSpec.latest());
        specs.put("maxTimestamp", OffsetSpec.maxTimestamp());
        specs.put("forTimestamp(base+5500)", OffsetSpec.forTimestamp(base + 5500));
        specs.put("forTimestamp(after the last)", OffsetSpec.forTimestamp(base + 1_000_000_000L));
        Map<String, List<Long>> want = Map.of("earliest", List.of(0L), "latest", List.of((long) n),
                "maxTimestamp", List.of(n - 1L, base + (n - 1) * 1000L), "forTimestamp(base+5500)", List.of(6L, base + 6000),
                "forTimestamp(after the last)", List.of(-1L));
        for (var e : specs.entrySet()) {
            ListOffsetsResult.ListOffsetsResultInfo info = ctx.get(admin.listOffsets(Map.of(tp, e.getValue())).partitionResult(tp));
            List<Long> got = want.get(e.getKey()).size() == 2 ? List.of(info.offset(), info.timestamp()) : List.of(info.offset());
            checkEq(got, want.get(e.getKey()), "Admin.listOffsets " + e.getKey());
        }

        // seek() to an offset (one found by timestamp, then an arbitrary one): poll returns records from there.
        c.assign(List.of(tp));
        for (long off : new long[] {c.offsetsForTimes(Map.of(tp, base + 42_500), to).get(tp).offset(), 7, 99}) {
            c.seek(tp, off);
            List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
            long deadline = System.nanoTime() + ctx.timeoutMs * 1_000_000L;
            while (got.size() < n - off && System.nanoTime() < deadline)
                for (ConsumerRecord<byte[], byte[]> r : c.poll(java.time.Duration.ofMillis(300))) got.add(r);
            Records.verify(got.stream().map(Records::fromConsumer).toList(), recs.subList((int) off, n),
                    "poll after seek(" + off + ")");
            checkEq(c.position(tp), (long) n, "position after reading to the end from " + off);
        }
    }

    /**
     * Records acknowledged with acks=all survive a clean restart (SIGTERM) and a crash (SIGKILL); the same idempotent
     * producer instance reconnects and continues after each restart.
     */
    static void restartDurability(Ctx ctx) throws Exception {
        Admin admin = ctx.admin();
        String t = ctx.topic("durable");
        CreateTopicsResult cr = admin.createTopics(List.of(new NewTopic(t, 2, (short) 1)));
        ctx.get(cr.all());
        Uuid id = ctx.get(cr.topicId(t));
        int n = 3000;
        long base = Records.baseTs();
        KafkaProducer<byte[], byte[]> p = ctx.producer(Map.of(ProducerConfig.COMPRESSION_TYPE_CONFIG, "zstd",
                ProducerConfig.LINGER_MS_CONFIG, 5));
        List<Rec> all = new ArrayList<>();
        String[] modes = {null, "term", "kill"};
        for (int k = 0; k < modes.length; k++) {
            String phase = modes[k] == null ? "before restart" : "after restart (SIG" + modes[k].toUpperCase() + ")";
            if (modes[k] != null) {
                ctx.restartBroker(modes[k]);
                Admin a = ctx.admin();
                ctx.eventually("topic described after restart", () -> describe(ctx, a, t).partitions().size() == 2);
                checkEq(describe(ctx, a, t).topicId(), id, "topic id " + phase);
            }
            List<Rec> recs = Records.expected("durable", k * n, n, 2, base);
            Records.sendChecked(ctx, p, t, recs, phase);
            all.addAll(recs);
        }
        Records.verify(Records.consume(ctx, t, 2, all.size(), null), all, "after two restarts");
    }
}
