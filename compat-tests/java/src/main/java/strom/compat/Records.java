package strom.compat;

import static strom.compat.Ctx.check;
import static strom.compat.Ctx.checkEq;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;

/**
 * The records of the produce/consume scenarios, the same shapes as drivers/common.py builds: record i goes to
 * partition i % partitions and must come back at offset i / partitions, with key (null for every 10th), value,
 * headers (none for every 4th) and timestamp base + i.
 */
final class Records {
    static final String[] CODECS = {"none", "gzip", "snappy", "lz4", "zstd"};
    private static final String FILLER = "the quick brown fox jumps over the lazy dog; ".repeat(4);

    /** One record as strings (everything the suite produces is ASCII); timestamp -1 = not checked. */
    record Rec(int partition, long offset, String key, String value, List<String> headers, long timestamp) {
        ProducerRecord<byte[], byte[]> toProducerRecord(String topic) {
            List<Header> hs = new ArrayList<>();
            for (String h : headers) {
                int eq = h.indexOf('=');
                hs.add(new RecordHeader(h.substring(0, eq), h.substring(eq + 1).getBytes(StandardCharsets.UTF_8)));
            }
            return new ProducerRecord<>(topic, partition, timestamp < 0 ? null : timestamp, bytes(key), bytes(value), hs);
        }
    }

    static byte[] bytes(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    static String str(byte[] b) {
        return b == null ? null : new String(b, StandardCharsets.UTF_8);
    }

    static Rec expected(String tag, int i, int partitions, long baseTs) {
        String key = i % 10 == 0 ? null : "key-" + i;
        String value = String.format("value-%s-%06d|", tag, i) + FILLER.substring(0, 40 + i % 97);
        List<String> headers = i % 4 == 0 ? List.of() : List.of("idx=" + i, "tag=" + tag);
        return new Rec(i % partitions, i / partitions, key, value, headers, baseTs < 0 ? -1 : baseTs + i);
    }

    static List<Rec> expected(String tag, int first, int n, int partitions, long baseTs) {
        List<Rec> out = new ArrayList<>(n);
        for (int i = first; i < first + n; i++) out.add(expected(tag, i, partitions, baseTs));
        return out;
    }

    /** An hour ago, whole second. */
    static long baseTs() {
        return (System.currentTimeMillis() / 1000 - 3600) * 1000;
    }

    /** Sends recs, flushes, waits for every acknowledgement; returns the metadata per record. */
    static List<RecordMetadata> send(Ctx ctx, KafkaProducer<byte[], byte[]> p, String topic, List<Rec> recs)
            throws Exception {
        List<Future<RecordMetadata>> fs = new ArrayList<>(recs.size());
        for (Rec r : recs) fs.add(p.send(r.toProducerRecord(topic)));
        p.flush();
        List<RecordMetadata> out = new ArrayList<>(recs.size());
        for (int i = 0; i < fs.size(); i++) {
            try {
                out.add(fs.get(i).get(ctx.timeoutMs, TimeUnit.MILLISECONDS));
            } catch (java.util.concurrent.ExecutionException e) {
                throw new AssertionError("send of record " + i + " failed: " + e.getCause(), e.getCause());
            }
        }
        return out;
    }

    /** send, then every record must have been acknowledged at its expected partition and offset. */
    static void sendChecked(Ctx ctx, KafkaProducer<byte[], byte[]> p, String topic, List<Rec> recs, String what)
            throws Exception {
        List<RecordMetadata> md = send(ctx, p, topic, recs);
        for (int i = 0; i < recs.size(); i++) {
            Rec r = recs.get(i);
            RecordMetadata m = md.get(i);
            if (m.partition() != r.partition() || m.offset() != r.offset())
                throw new AssertionError(String.format("%s: record %d acknowledged at partition %d offset %d, expected %d/%d",
                        what, i, m.partition(), m.offset(), r.partition(), r.offset()));
            if (r.timestamp() >= 0) checkEq(m.timestamp(), r.timestamp(), what + ": acknowledged timestamp of record " + i);
        }
    }

    static Rec fromConsumer(ConsumerRecord<byte[], byte[]> c) {
        List<String> hs = new ArrayList<>();
        for (Header h : c.headers()) hs.add(h.key() + "=" + str(h.value()));
        return new Rec(c.partition(), c.offset(), str(c.key()), str(c.value()), hs, c.timestamp());
    }

    /**
     * Reads partitions 0..partitions-1 (assign, no group) from the beginning or from start[p] until n records came back
     * or none came for the call timeout.
     */
    static List<Rec> consume(Ctx ctx, String topic, int partitions, int n, long[] start) throws Exception {
        KafkaConsumer<byte[], byte[]> c = ctx.consumer(Map.of("auto.offset.reset", "earliest"));
        try {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < partitions; p++) tps.add(new TopicPartition(topic, p));
            c.assign(tps);
            if (start == null) c.seekToBeginning(tps);
            else for (int p = 0; p < partitions; p++) c.seek(tps.get(p), start[p]);
            List<Rec> got = new ArrayList<>(n);
            long deadline = System.nanoTime() + ctx.timeoutMs * 1_000_000L;
            while (got.size() < n && System.nanoTime() < deadline) {
                var polled = c.poll(Duration.ofMillis(500));
                if (!polled.isEmpty()) deadline = System.nanoTime() + ctx.timeoutMs * 1_000_000L;
                for (ConsumerRecord<byte[], byte[]> r : polled) {
                    if (r.timestampType() != TimestampType.CREATE_TIME)
                        checkEq(r.timestampType(), TimestampType.CREATE_TIME, "timestamp type at offset " + r.offset());
                    got.add(fromConsumer(r));
                }
            }
            // The high watermarks must account for exactly what was read (nothing extra).
            Map<TopicPartition, Long> ends = c.endOffsets(tps, Duration.ofMillis(ctx.timeoutMs));
            long[] counts = new long[partitions];
            for (Rec r : got) counts[r.partition()]++;
            for (int p = 0; p < partitions; p++) {
                long from = start == null ? 0 : start[p];
                checkEq(ends.get(tps.get(p)), from + counts[p], "end offset of partition " + p + " vs records read");
            }
            return got;
        } finally {
            c.close(Duration.ofSeconds(5));
        }
    }

    /** Per partition: exactly the expected records in order (so offsets are consecutive), nothing missing. */
    static void verify(List<Rec> got, List<Rec> expected, String what) {
        Map<Integer, List<Rec>> g = new TreeMap<>(), e = new TreeMap<>();
        for (Rec r : got) g.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r);
        for (Rec r : expected) e.computeIfAbsent(r.partition(), k -> new ArrayList<>()).add(r);
        check(e.keySet().containsAll(g.keySet()), "%s: records on partitions %s, expected %s", what, g.keySet(), e.keySet());
        for (var en : e.entrySet()) {
            List<Rec> gp = g.getOrDefault(en.getKey(), List.of()), ep = en.getValue();
            for (int j = 0; j < Math.min(gp.size(), ep.size()); j++) {
                Rec a = gp.get(j), b = ep.get(j);
                Rec bb = b.timestamp() < 0 ? new Rec(b.partition(), b.offset(), b.key(), b.value(), b.headers(), a.timestamp()) : b;
                if (!a.equals(bb))
                    throw new AssertionError(String.format("%s: partition %d record #%d: got %s, expected %s", what,
                            en.getKey(), j, a, bb));
            }
            check(gp.size() == ep.size(), "%s: partition %d has %d records, expected %d", what, en.getKey(), gp.size(), ep.size());
        }
        check(got.size() == expected.size(), "%s: %d records, expected %d", what, got.size(), expected.size());
    }
}
