package strom.compat;

import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.protocol.Errors;

/**
 * Reference dump for broker implementers: what a real Kafka answers to DescribeConfigs (topic + broker)
 * and the exact per-topic errors of the topic-errors scenario.
 *
 * java -cp ... strom.compat.DumpNotes --bootstrap 127.0.0.1:P --out /tmp/strom-notes
 */
public final class DumpNotes {
    public static void main(String[] args) throws Exception {
        String bootstrap = null;
        Path out = Path.of("/tmp/strom-notes");
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--bootstrap" -> bootstrap = args[++i];
                case "--out" -> out = Path.of(args[++i]);
                default -> throw new IllegalArgumentException(args[i]);
            }
        }
        Files.createDirectories(out);
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 30000);
        String sfx = Long.toString(System.currentTimeMillis() % 1000000);
        try (Admin admin = Admin.create(p)) {
            String nodeId = admin.describeCluster().nodes().get(30, TimeUnit.SECONDS).iterator().next().idString();
            String plain = "notes-plain-" + sfx, custom = "notes-retention-" + sfx;
            admin.createTopics(List.of(new NewTopic(plain, 1, (short) 1),
                    new NewTopic(custom, 1, (short) 1).configs(Map.of("retention.ms", "12345"))))
                    .all().get(30, TimeUnit.SECONDS);
            try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(out.resolve("topic-configs.txt")))) {
                w.println("# Apache Kafka " + KafkaVersion.get()
                        + " single node (KRaft), DescribeConfigs(includeSynonyms=true, includeDocumentation=false)");
                w.println("# columns: name = value | source | isDefault | isReadOnly | isSensitive | type | synonyms[name=value(source)...]");
                w.println("# broker overrides in server.properties: num.partitions=1, offsets/transaction RF 1, log.dirs, listeners");
                for (String t : List.of(plain, custom)) {
                    w.println();
                    w.println("## topic " + t + (t.equals(custom) ? " (created with retention.ms=12345)" : " (created with no configs)"));
                    dumpConfigs(admin, new ConfigResource(ConfigResource.Type.TOPIC, t), w);
                }
            }
            try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(out.resolve("broker-configs.txt")))) {
                w.println("# Apache Kafka " + KafkaVersion.get()
                        + " single node (KRaft), DescribeConfigs(BROKER " + nodeId + ", includeSynonyms=true)");
                w.println("# columns: name = value | source | isDefault | isReadOnly | isSensitive | type | synonyms[name=value(source)...]");
                w.println();
                dumpConfigs(admin, new ConfigResource(ConfigResource.Type.BROKER, nodeId), w);
                w.println();
                w.println("## broker-logger resource " + nodeId + " is not dumped; DescribeConfigs for BROKER with resource name \"\" = cluster default:");
                dumpConfigs(admin, new ConfigResource(ConfigResource.Type.BROKER, ""), w);
            }
            try (PrintWriter w = new PrintWriter(Files.newBufferedWriter(out.resolve("errors.txt")))) {
                w.println("# Apache Kafka " + KafkaVersion.get()
                        + ": per-topic errors seen by the Java AdminClient (code NAME exception: broker message)");
                dumpErrors(admin, sfx, w);
            }
            admin.deleteTopics(List.of(plain, custom)).all().get(30, TimeUnit.SECONDS);
        }
        System.out.println("wrote " + out);
    }

    static void dumpConfigs(Admin admin, ConfigResource r, PrintWriter w) throws Exception {
        List<String> lines = configLines(admin, r, 30000);
        w.println("# " + lines.size() + " entries");
        lines.forEach(w::println);
    }

    /** One line per config entry, sorted by name: name = value | source | flags | type | synonyms[...]. */
    static List<String> configLines(Admin admin, ConfigResource r, long timeoutMs) throws Exception {
        Config c = admin.describeConfigs(List.of(r),
                new DescribeConfigsOptions().includeSynonyms(true).includeDocumentation(false))
                .all().get(timeoutMs, TimeUnit.MILLISECONDS).get(r);
        List<ConfigEntry> entries = new ArrayList<>(c.entries());
        entries.sort(Comparator.comparing(ConfigEntry::name));
        List<String> out = new ArrayList<>();
        for (ConfigEntry e : entries) {
            StringBuilder syn = new StringBuilder();
            for (ConfigEntry.ConfigSynonym s : e.synonyms()) {
                if (syn.length() > 0) syn.append(", ");
                syn.append(s.name()).append('=').append(s.value()).append('(').append(s.source()).append(')');
            }
            out.add(String.format("%s = %s | %s | isDefault=%s | isReadOnly=%s | isSensitive=%s | %s | synonyms[%s]",
                    e.name(), e.value(), e.source(), e.isDefault(), e.isReadOnly(), e.isSensitive(), e.type(), syn));
        }
        return out;
    }

    interface Call { void run() throws Exception; }

    static void line(PrintWriter w, String what, Call c) {
        try {
            c.run();
            w.println(what + " -> OK (no error)");
        } catch (Exception ex) {
            Throwable t = ex instanceof ExecutionException && ex.getCause() != null ? ex.getCause() : ex;
            Errors err = Errors.forException(t);
            w.println(what + " -> " + err.code() + " " + err.name() + " " + t.getClass().getSimpleName() + ": " + t.getMessage());
        }
        w.flush();
    }

    static void dumpErrors(Admin admin, String sfx, PrintWriter w) throws Exception {
        String t = "errors-" + sfx;
        admin.createTopics(List.of(new NewTopic(t, 3, (short) 1))).all().get(30, TimeUnit.SECONDS);
        line(w, "CreateTopics existing topic '" + t + "'", () ->
                admin.createTopics(List.of(new NewTopic(t, 3, (short) 1))).all().get(30, TimeUnit.SECONDS));
        line(w, "CreateTopics existing topic '" + t + "' validateOnly=true", () ->
                admin.createTopics(List.of(new NewTopic(t, 3, (short) 1)), new CreateTopicsOptions().validateOnly(true)).all().get(30, TimeUnit.SECONDS));
        for (String bad : List.of("bad/name", "..", ".", "", "a".repeat(250), "has space", "bad:name", "ünïcode")) {
            String shown = bad.length() > 40 ? "<" + bad.length() + " x 'a'>" : "'" + bad + "'";
            line(w, "CreateTopics illegal name " + shown, () ->
                    admin.createTopics(List.of(new NewTopic(bad, 1, (short) 1))).all().get(30, TimeUnit.SECONDS));
        }
        String ok249 = "b".repeat(249);
        line(w, "CreateTopics name of 249 chars (max legal)", () ->
                admin.createTopics(List.of(new NewTopic(ok249, 1, (short) 1))).all().get(30, TimeUnit.SECONDS));
        line(w, "CreateTopics 'coll.ide-" + sfx + "' then 'coll_ide-" + sfx + "' (collision)", () -> {
            admin.createTopics(List.of(new NewTopic("coll.ide-" + sfx, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            admin.createTopics(List.of(new NewTopic("coll_ide-" + sfx, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
        });
        line(w, "CreateTopics replication factor 3", () ->
                admin.createTopics(List.of(new NewTopic(t + "-rf3", 1, (short) 3))).all().get(30, TimeUnit.SECONDS));
        line(w, "CreateTopics replication factor 0", () ->
                admin.createTopics(List.of(new NewTopic(t + "-rf0", 1, (short) 0))).all().get(30, TimeUnit.SECONDS));
        line(w, "CreateTopics partitions 0", () ->
                admin.createTopics(List.of(new NewTopic(t + "-p0", 0, (short) 1))).all().get(30, TimeUnit.SECONDS));
        line(w, "CreateTopics partitions -5", () ->
                admin.createTopics(List.of(new NewTopic(t + "-pm5", -5, (short) 1))).all().get(30, TimeUnit.SECONDS));
        line(w, "CreateTopics partitions -1 replication -1 (broker defaults)", () ->
                admin.createTopics(List.of(new NewTopic(t + "-defaults", Optional.empty(), Optional.empty()))).all().get(30, TimeUnit.SECONDS));
        line(w, "CreateTopics unknown config key 'no.such.config'", () ->
                admin.createTopics(List.of(new NewTopic(t + "-badcfg", 1, (short) 1).configs(Map.of("no.such.config", "1"))))
                        .all().get(30, TimeUnit.SECONDS));
        line(w, "CreateTopics bad config value retention.ms=abc", () ->
                admin.createTopics(List.of(new NewTopic(t + "-badval", 1, (short) 1).configs(Map.of("retention.ms", "abc"))))
                        .all().get(30, TimeUnit.SECONDS));
        line(w, "CreateTopics bad config value cleanup.policy=bogus", () ->
                admin.createTopics(List.of(new NewTopic(t + "-badpol", 1, (short) 1).configs(Map.of("cleanup.policy", "bogus"))))
                        .all().get(30, TimeUnit.SECONDS));
        line(w, "CreatePartitions 3 -> 2 (fewer)", () ->
                admin.createPartitions(Map.of(t, NewPartitions.increaseTo(2))).all().get(30, TimeUnit.SECONDS));
        line(w, "CreatePartitions 3 -> 3 (same)", () ->
                admin.createPartitions(Map.of(t, NewPartitions.increaseTo(3))).all().get(30, TimeUnit.SECONDS));
        line(w, "CreatePartitions unknown topic", () ->
                admin.createPartitions(Map.of("no-such-topic-" + sfx, NewPartitions.increaseTo(4))).all().get(30, TimeUnit.SECONDS));
        line(w, "DeleteTopics unknown topic", () ->
                admin.deleteTopics(List.of("no-such-topic-" + sfx)).all().get(30, TimeUnit.SECONDS));
        line(w, "DescribeTopics unknown topic (Metadata)", () ->
                admin.describeTopics(List.of("no-such-topic-" + sfx)).allTopicNames().get(30, TimeUnit.SECONDS));
        line(w, "DescribeConfigs unknown topic", () -> {
            ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, "no-such-topic-" + sfx);
            admin.describeConfigs(List.of(r)).all().get(30, TimeUnit.SECONDS);
        });
        line(w, "DescribeConfigs broker id 99 (client-side: no such node to send it to)", () -> {
            ConfigResource r = new ConfigResource(ConfigResource.Type.BROKER, "99");
            admin.describeConfigs(List.of(r), new DescribeConfigsOptions().timeoutMs(3000)).all().get(30, TimeUnit.SECONDS);
        });
        admin.deleteTopics(List.of(t, ok249, "coll.ide-" + sfx, t + "-defaults")).all().get(30, TimeUnit.SECONDS);
    }
}
