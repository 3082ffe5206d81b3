package strom.compat;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

/**
 * One consumer-group member process (KafkaConsumer.subscribe, classic protocol), driven by compat-tests/drivers/groups.py;
 * the line protocol is described in drivers/member.py.
 *
 * <pre>java ... strom.compat.Member --bootstrap H:P --group G --topic T [--session-timeout-ms 6000] [--heartbeat-ms 1000]
 *          [--assignor range|cooperative-sticky|roundrobin|sticky] [--commit-metadata STR] [--call-timeout S]</pre>
 *
 * Offsets are committed synchronously after every non-empty poll; with the eager range assignor the rebalance
 * listener also commits on revocation (nothing is pending then: commits follow each batch).
 */
public final class Member {
    static synchronized void out(String s) {
        System.out.println(s);
        System.out.flush();
    }

    static String parts(Collection<Integer> ps) {
        if (ps.isEmpty()) return "-";
        List<Integer> l = new ArrayList<>(ps);
        Collections.sort(l);
        StringBuilder b = new StringBuilder();
        for (int p : l) b.append(b.length() == 0 ? "" : ",").append(p);
        return b.toString();
    }

    public static void main(String[] args) {
        Map<String, String> a = new HashMap<>();
        for (int i = 0; i + 1 < args.length; i += 2) a.put(args[i].replaceFirst("^--", ""), args[i + 1]);
        String topic = a.get("topic"), meta = a.get("commit-metadata");
        long callMs = (long) (Double.parseDouble(a.getOrDefault("call-timeout", "30")) * 1000);
        AtomicBoolean stop = new AtomicBoolean();
        Thread stdin = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) if (line.trim().equals("close")) break;
            } catch (Exception ignored) {
                // EOF or error: close
            }
            stop.set(true);
        }, "stdin");
        stdin.setDaemon(true);
        stdin.start();
        try {
            run(a, topic, meta, callMs, stop);
        } catch (Throwable t) {
            t.printStackTrace();
            out("ERROR " + (t.getClass().getName() + ": " + t.getMessage()).replaceAll("\\s+", " "));
        }
        System.out.flush();
        Runtime.getRuntime().halt(0);
    }

    static void run(Map<String, String> a, String topic, String meta, long callMs, AtomicBoolean stop) {
        Map<String, Object> p = new HashMap<>();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, a.get("bootstrap"));
        p.put(ConsumerConfig.GROUP_ID_CONFIG, a.get("group"));
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, Integer.parseInt(a.getOrDefault("session-timeout-ms", "6000")));
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, Integer.parseInt(a.getOrDefault("heartbeat-ms", "1000")));
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) callMs);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) callMs);
        p.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, 200);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "strom-compat-java-member");
        String assignor = a.get("assignor");
        if (assignor != null) {
            String cls = switch (assignor) {
                case "range" -> RangeAssignor.class.getName();
                case "roundrobin" -> RoundRobinAssignor.class.getName();
                case "sticky" -> StickyAssignor.class.getName();
                case "cooperative-sticky" -> CooperativeStickyAssignor.class.getName();
                default -> throw new IllegalArgumentException("unknown assignor " + assignor);
            };
            p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, cls);
        }
        KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        Set<Integer> current = new TreeSet<>();
        c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> ps) {
                for (TopicPartition tp : ps) current.remove(tp.partition());
                out("ASSIGNED " + parts(current));
            }

            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> ps) {
                for (TopicPartition tp : ps) current.add(tp.partition());
                out("ASSIGNED " + parts(current));
            }

            @Override
            public void onPartitionsLost(Collection<TopicPartition> ps) {
                onPartitionsRevoked(ps);
            }
        });
        out("READY");
        while (!stop.get()) {
            ConsumerRecords<byte[], byte[]> recs = c.poll(Duration.ofMillis(200));
            Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
            for (ConsumerRecord<byte[], byte[]> r : recs) {
                out("RECORD " + r.partition() + " " + r.offset() + " " + new String(r.value(), StandardCharsets.UTF_8));
                next.put(new TopicPartition(r.topic(), r.partition()),
                        meta == null ? new OffsetAndMetadata(r.offset() + 1) : new OffsetAndMetadata(r.offset() + 1, meta));
            }
            if (next.isEmpty()) continue;
            try {
                c.commitSync(next, Duration.ofMillis(callMs));
            } catch (CommitFailedException | org.apache.kafka.common.errors.RebalanceInProgressException e) {
                // The group moved on (e.g. the coordinator forgot this member): the next poll rejoins and the
                // uncommitted records come again (at least once).
                out("COMMIT-FAILED commitSync: " + (e.getClass().getName() + ": " + e.getMessage()).replaceAll("\\s+", " "));
                continue;
            } catch (Exception e) {
                out("ERROR commitSync: " + (e.getClass().getName() + ": " + e.getMessage()).replaceAll("\\s+", " "));
                continue;
            }
            if (meta != null) {
                Map<TopicPartition, OffsetAndMetadata> got = c.committed(next.keySet(), Duration.ofMillis(callMs));
                StringBuilder b = new StringBuilder("COMMITTED");
                for (TopicPartition tp : new TreeSet<>(Comparator.comparingInt(TopicPartition::partition)) {{ addAll(next.keySet()); }}) {
                    OffsetAndMetadata om = got.get(tp);
                    b.append(' ').append(tp.partition()).append(':').append(om == null ? "null" : om.offset())
                            .append(':').append(om == null ? "null" : om.metadata());
                }
                out(b.toString());
            }
        }
        c.close(CloseOptions.timeout(Duration.ofMillis(callMs)));
        out("CLOSED");
    }
}
