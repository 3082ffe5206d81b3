package strom.compat;

import static strom.compat.Ctx.check;
import static strom.compat.Ctx.checkEq;

import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.ProducerFencedException;

/** The Java client's transaction scenarios (KIP-98, KIP-447). Names match compat-tests/registry.py. */
final class Transactions {
    private Transactions() {}

    static void register(Map<String, Scenarios.Scenario> m) {
        m.put("transactions", Transactions::transactions);
        m.put("transactions-offsets", Transactions::offsets);
        m.put("transactions-fencing", Transactions::fencing);
        m.put("transactions-restart", Transactions::restart);
    }

    static KafkaProducer<byte[], byte[]> txnProducer(Ctx ctx, String id, int timeoutMs) {
        return ctx.producer(Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, id,
                ProducerConfig.TRANSACTION_TIMEOUT_CONFIG, timeoutMs, ProducerConfig.LINGER_MS_CONFIG, 5));
    }

    static void send(KafkaProducer<byte[], byte[]> p, String topic, List<String> keys, int partitions) throws Exception {
        for (int i = 0; i < keys.size(); i++) {
            byte[] k = keys.get(i).getBytes();
            p.send(new ProducerRecord<>(topic, i % partitions, k, ("v-" + keys.get(i)).getBytes()));
        }
        p.flush();
    }

    static List<String> keys(String tag, int n) {
        List<String> out = new ArrayList<>();
        for (int i = 0; i < n; i++) out.add(tag + i);
        return out;
    }

    /** "partition:offset:key" of every record a consumer with `isolation` reads, sorted. */
    static List<String> read(Ctx ctx, String topic, int partitions, String isolation, long idleMs) {
        KafkaConsumer<byte[], byte[]> c = ctx.consumer(Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation));
        try {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < partitions; p++) tps.add(new TopicPartition(topic, p));
            c.assign(tps);
            c.seekToBeginning(tps);
            List<String> got = new ArrayList<>();
            long deadline = System.currentTimeMillis() + ctx.timeoutMs;
            boolean any = false;
            while (System.currentTimeMillis() < deadline) {
                var recs = c.poll(Duration.ofMillis(300));
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    got.add(r.partition() + ":" + r.offset() + ":" + new String(r.key()));
                }
                if (!recs.isEmpty()) {
                    any = true;
                    deadline = System.currentTimeMillis() + idleMs;
                } else if (any) {
                    deadline = Math.min(deadline, System.currentTimeMillis() + idleMs);
                }
            }
            Collections.sort(got);
            return got;
        } finally {
            c.close(Duration.ofSeconds(2));
        }
    }

    static void transactions(Ctx ctx) throws Exception {
        Admin admin = ctx.admin();
        String t = ctx.topic("data");
        Scenarios.create(ctx, admin, new NewTopic(t, 2, (short) 1));
        KafkaProducer<byte[], byte[]> p = txnProducer(ctx, ctx.topic("tid"), 60000);
        p.initTransactions();
        String[] tags = {"c", "a", "d"};
        boolean[] commit = {true, false, true};
        for (int i = 0; i < 3; i++) {
            p.beginTransaction();
            send(p, t, keys(tags[i], 10), 2);
            if (commit[i]) p.commitTransaction();
            else p.abortTransaction();
        }
        List<String> want = new ArrayList<>();
        for (int i = 0; i < 10; i++) want.add((i % 2) + ":" + (i / 2) + ":c" + i);
        for (int i = 0; i < 10; i++) want.add((i % 2) + ":" + (12 + i / 2) + ":d" + i);
        Collections.sort(want);
        checkEq(read(ctx, t, 2, "read_committed", 3000), want, "read_committed records (partition:offset:key)");
        checkEq(read(ctx, t, 2, "read_uncommitted", 3000).size(), 30, "read_uncommitted record count");
        Map<TopicPartition, Long> ends = ctx.consumer(Map.of()).endOffsets(
                List.of(new TopicPartition(t, 0), new TopicPartition(t, 1)));
        checkEq(ends.values().stream().sorted().toList(), List.of(18L, 18L), "end offsets (markers included)");

        p.beginTransaction();
        send(p, t, keys("open", 2), 2);
        checkEq(read(ctx, t, 2, "read_committed", 1000), want, "read_committed while a transaction is open");
        KafkaConsumer<byte[], byte[]> rc = ctx.consumer(Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"));
        checkEq(rc.endOffsets(List.of(new TopicPartition(t, 0))).get(new TopicPartition(t, 0)), 18L,
                "read_committed end offset = last stable offset while a transaction is open");
        p.commitTransaction();
        checkEq(read(ctx, t, 2, "read_committed", 3000).size(), 22, "read_committed after the commit");
    }

    static void offsets(Ctx ctx) throws Exception {
        Admin admin = ctx.admin();
        String src = ctx.topic("src"), dst = ctx.topic("dst");
        Scenarios.create(ctx, admin, new NewTopic(src, 1, (short) 1));
        Scenarios.create(ctx, admin, new NewTopic(dst, 1, (short) 1));
        KafkaProducer<byte[], byte[]> plain = ctx.producer(Map.of());
        send(plain, src, keys("k", 20), 1);
        String group = ctx.topic("group");
        KafkaConsumer<byte[], byte[]> c = ctx.consumer(Map.of(ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed", ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false,
                ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest", ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 10));
        c.subscribe(List.of(src));
        KafkaProducer<byte[], byte[]> p = txnProducer(ctx, ctx.topic("tid"), 60000);
        p.initTransactions();
        for (int round = 0; round < 2; round++) {
            List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
            long deadline = System.currentTimeMillis() + ctx.timeoutMs;
            while (got.size() < 10 && System.currentTimeMillis() < deadline) {
                for (var r : c.poll(Duration.ofMillis(300))) got.add(r);
            }
            checkEq(got.size(), 10, "records consumed in round " + round);
            p.beginTransaction();
            List<String> ks = new ArrayList<>();
            for (var r : got) ks.add(new String(r.key()));
            send(p, dst, ks, 1);
            p.sendOffsetsToTransaction(Map.of(new TopicPartition(src, 0),
                    new OffsetAndMetadata(got.get(got.size() - 1).offset() + 1)), c.groupMetadata());
            if (round == 0) p.commitTransaction();
            else p.abortTransaction();
        }
        c.close(Duration.ofSeconds(5));
        Map<TopicPartition, OffsetAndMetadata> committed = ctx.get(admin.listConsumerGroupOffsets(group)
                .partitionsToOffsetAndMetadata());
        checkEq(committed.get(new TopicPartition(src, 0)).offset(), 10L,
                "committed offset (the aborted transaction's offsets are dropped)");
        List<String> want = new ArrayList<>();
        for (int i = 0; i < 10; i++) want.add("0:" + i + ":k" + i);
        Collections.sort(want);
        checkEq(read(ctx, dst, 1, "read_committed", 3000), want, "read_committed output");
    }

    static void fencing(Ctx ctx) throws Exception {
        Admin admin = ctx.admin();
        String t = ctx.topic("data");
        Scenarios.create(ctx, admin, new NewTopic(t, 1, (short) 1));
        String tid = ctx.topic("tid");
        KafkaProducer<byte[], byte[]> old = txnProducer(ctx, tid, 60000);
        old.initTransactions();
        old.beginTransaction();
        send(old, t, List.of("zombie"), 1);
        KafkaProducer<byte[], byte[]> fresh = txnProducer(ctx, tid, 60000);
        fresh.initTransactions();
        fresh.beginTransaction();
        send(fresh, t, List.of("new"), 1);
        fresh.commitTransaction();
        try {
            old.commitTransaction();
            throw new AssertionError("the fenced producer committed");
        } catch (ProducerFencedException e) {
            ctx.log("fenced producer: " + e);
        }
        checkEq(read(ctx, t, 1, "read_committed", 2000), List.of("0:2:new"), "only the new producer's record");

        KafkaProducer<byte[], byte[]> slow = txnProducer(ctx, ctx.topic("slow"), 2000);
        slow.initTransactions();
        slow.beginTransaction();
        send(slow, t, List.of("timed-out"), 1);
        TopicPartition tp = new TopicPartition(t, 0);
        KafkaConsumer<byte[], byte[]> rc = ctx.consumer(Map.of(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed"));
        KafkaConsumer<byte[], byte[]> ru = ctx.consumer(Map.of());
        long deadline = System.currentTimeMillis() + 40000;
        while (!rc.endOffsets(List.of(tp)).get(tp).equals(ru.endOffsets(List.of(tp)).get(tp))) {
            check(System.currentTimeMillis() < deadline, "the timed-out transaction was not aborted in 40 s");
            Thread.sleep(500);
        }
        try {
            slow.commitTransaction();
            throw new AssertionError("a transaction aborted by its timeout committed");
        } catch (Exception e) {
            ctx.log("timed-out producer: " + e);
        }
        checkEq(read(ctx, t, 1, "read_committed", 2000), List.of("0:2:new"), "the timed-out record is gone");
    }

    /** The broker is SIGKILLed with a transaction open, twice: the producer carries on with the same transaction. */
    static void restart(Ctx ctx) throws Exception {
        Admin admin = ctx.admin();
        String t = ctx.topic("data");
        Scenarios.create(ctx, admin, new NewTopic(t, 1, (short) 1));
        KafkaProducer<byte[], byte[]> p = txnProducer(ctx, ctx.topic("tid"), 60000);
        p.initTransactions();
        p.beginTransaction();
        send(p, t, keys("a", 10), 1);
        ctx.restartBroker("kill");
        send(p, t, keys("b", 10), 1);
        p.commitTransaction();
        p.beginTransaction();
        send(p, t, keys("x", 5), 1);
        ctx.restartBroker("kill");
        p.abortTransaction();
        p.beginTransaction();
        send(p, t, keys("c", 3), 1);
        p.commitTransaction();
        List<String> want = new ArrayList<>();
        for (int i = 0; i < 10; i++) want.add("0:" + i + ":a" + i);
        for (int i = 0; i < 10; i++) want.add("0:" + (10 + i) + ":b" + i);
        for (int i = 0; i < 3; i++) want.add("0:" + (27 + i) + ":c" + i);
        Collections.sort(want);
        checkEq(read(ctx, t, 1, "read_committed", 3000), want, "read_committed records after two crashes");
    }
}
