package strom.compat;

import static strom.compat.Ctx.check;
import static strom.compat.Ctx.checkEq;
import static strom.compat.Ctx.expectError;

import java.util.*;
import java.util.concurrent.atomic.AtomicReference;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.common.ClusterResource;
import org.apache.kafka.common.ClusterResourceListener;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartitionInfo;
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
                    + org.apache.kafka.common.utils.AppInfoParser.getVersion()
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
}
