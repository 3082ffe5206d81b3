package strom.compat;

import static strom.compat.Records.bytes;
import static strom.compat.Records.str;

import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;

/**
 * The log-compaction scenario, the same input and expected list as drivers/common.py (log_compaction): keyed
 * updates and a tombstone to a compacted topic, one more write after segment.ms to roll the segment (Kafka rolls
 * only on an append), then a read from the beginning must be Apache Kafka 4.4.0's cleaned result.
 */
final class Compaction {
    private Compaction() {}

    static void register(Map<String, Scenarios.Scenario> m) {
        m.put("log-compaction", Compaction::logCompaction);
        m.put("log-compaction-transactions", Compaction::logCompactionTransactions);
    }

    static final Map<String, String> CONFIGS = Map.of("cleanup.policy", "compact", "segment.ms", "100",
            "min.cleanable.dirty.ratio", "0.01", "delete.retention.ms", "86400000");
    /** (key, value) pairs; a null value is a tombstone. */
    static final String[][] WRITES = {{"k1", "a1"}, {"k2", "b1"}, {"k3", "c1"}, {"k1", "a2"}, {"k2", null},
            {"k4", "d1"}, {"k1", "a3"}, {"k3", "c2"}};
    static final String[][] ROLL = {{"s1", "x"}};
    /** "offset key value" of Kafka's cleaned log (the tombstone of k2 is inside delete.retention.ms). */
    static final List<String> EXPECTED = List.of("4 k2 null", "5 k4 d1", "6 k1 a3", "7 k3 c2", "8 s1 x");

    static void logCompaction(Ctx ctx) throws Exception {
        String t = create(ctx);
        produce(ctx, t, WRITES);
        Thread.sleep(1500);
        produce(ctx, t, ROLL);
        awaitCleaned(ctx, t, EXPECTED);
    }

    /**
     * The transactional variant (drivers/common.py, log_compaction_transactions): plain writes, an aborted then a
     * committed transaction of one transactional producer, the roll write. Kafka removes the aborted records (they
     * never shadow k1's older value) and compacts the committed one like any other.
     */
    static final List<String> EXPECTED_TXN = List.of("0 k1 a1", "5 k2 b2", "7 s1 x");

    static void logCompactionTransactions(Ctx ctx) throws Exception {
        String t = create(ctx);
        produce(ctx, t, new String[][] {{"k1", "a1"}, {"k2", "b1"}});
        try (KafkaProducer<byte[], byte[]> p = Transactions.txnProducer(ctx, ctx.topic("tid"), 60_000)) {
            p.initTransactions();
            p.beginTransaction();
            p.send(new ProducerRecord<>(t, 0, bytes("k1"), bytes("a2")));
            p.send(new ProducerRecord<>(t, 0, bytes("k3"), bytes("c1")));
            p.flush();
            p.abortTransaction();
            p.beginTransaction();
            p.send(new ProducerRecord<>(t, 0, bytes("k2"), bytes("b2")));
            p.commitTransaction();
        }
        Thread.sleep(1500); // the markers are written after commitTransaction returns
        produce(ctx, t, ROLL);
        awaitCleaned(ctx, t, EXPECTED_TXN);
    }

    static String create(Ctx ctx) throws Exception {
        String t = ctx.topic("");
        ctx.get(ctx.admin().createTopics(List.of(new NewTopic(t, 1, (short) 1).configs(CONFIGS))).all());
        Thread.sleep(500);
        return t;
    }

    static void awaitCleaned(Ctx ctx, String t, List<String> expected) throws Exception {
        long deadline = System.nanoTime() + 30_000_000_000L;
        List<String> last;
        while (true) {
            last = readAll(ctx, t);
            if (last.equals(expected)) return;
            if (System.nanoTime() > deadline) break;
            Thread.sleep(1000);
        }
        throw new AssertionError("log not cleaned to the expected records within 30s: expected " + expected
                + ", last read " + last);
    }

    static void produce(Ctx ctx, String topic, String[][] kvs) throws Exception {
        try (KafkaProducer<byte[], byte[]> p = ctx.producer(Map.of())) {
            List<java.util.concurrent.Future<?>> fs = new ArrayList<>();
            for (String[] kv : kvs) fs.add(p.send(new ProducerRecord<>(topic, 0, bytes(kv[0]), bytes(kv[1]))));
            p.flush();
            for (var f : fs) f.get(ctx.timeoutMs, java.util.concurrent.TimeUnit.MILLISECONDS);
        }
    }

    /** "offset key value" of every record from the beginning up to the high watermark. */
    static List<String> readAll(Ctx ctx, String topic) {
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> c = ctx.consumer(Map.of())) {
            c.assign(List.of(tp));
            c.seekToBeginning(List.of(tp));
            long high = c.endOffsets(List.of(tp)).get(tp);
            List<String> got = new ArrayList<>();
            long deadline = System.nanoTime() + ctx.timeoutMs * 1_000_000L;
            while (c.position(tp) < high && System.nanoTime() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                    got.add(r.offset() + " " + str(r.key()) + " " + str(r.value()));
                }
            }
            return got;
        }
    }
}
