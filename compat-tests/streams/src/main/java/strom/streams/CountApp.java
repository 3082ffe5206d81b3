package strom.streams;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The Kafka Streams application of the streams-eos and streams-restore scenarios: input (key = word, value =
 * record index) re-keyed by word through a repartition topic, counted per word in a RocksDB store (changelog topic
 * {@code <app-id>-counts-changelog}), every new count written to the output topic (key = word, value = count as a
 * decimal string).
 *
 * <pre>java -cp ... strom.streams.CountApp --bootstrap H:P --app-id ID --input T --output T --state-dir D
 *          [--guarantee exactly_once_v2|at_least_once] [--delay-ms 2] [--config key=value]...</pre>
 *
 * Prints {@code STATE <new> <old>}, {@code PROCESSED <n>} (records seen by this process, every 250),
 * {@code RESTORE-START <store> <topic> <partition> <startOffset> <endOffset>} and
 * {@code RESTORED <store> <topic> <partition> <records>} (its state restore listener: a store partition restored
 * from its changelog, and how many records that read) and {@code ERROR <exception>} on stdout. Closes cleanly
 * (exit 0) on a {@code close} line or EOF on stdin; exits 1 if the client fails. drivers/streams.py SIGKILLs it
 * mid-run and starts it again on the same state dir (streams-eos), or wipes its state dir between two runs
 * (streams-restore).
 */
public final class CountApp {
    public static void main(String[] args) throws Exception {
        String bootstrap = null, appId = null, input = null, output = null, stateDir = null;
        String guarantee = StreamsConfig.EXACTLY_ONCE_V2;
        long delayMs = 2;
        Properties extra = new Properties();
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--bootstrap" -> bootstrap = args[++i];
                case "--app-id" -> appId = args[++i];
                case "--input" -> input = args[++i];
                case "--output" -> output = args[++i];
                case "--state-dir" -> stateDir = args[++i];
                case "--guarantee" -> guarantee = args[++i];
                case "--delay-ms" -> delayMs = Long.parseLong(args[++i]);
                // extra StreamsConfig key=value, applied last: internal topics' configs (topic.segment.ms=...),
                // experiments
                case "--config" -> {
                    String[] kv = args[++i].split("=", 2);
                    extra.put(kv[0], kv[1]);
                }
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, appId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        p.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        // No record cache: every count update goes downstream, so each word's output is exactly 1, 2, 3, ...
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        p.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        p.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        // A SIGKILLed member leaves the group only by its session timeout: keep it at the broker's minimum.
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 6000);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1000);
        // Small polls: many transactions per run, so a kill lands in the middle of one. Small fetches (the input
        // comes in small batches): otherwise the whole input is buffered first and the counting side only starts
        // once it is drained, so a kill would never interrupt both sides at once.
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_POLL_RECORDS_CONFIG), 100);
        p.put(StreamsConfig.consumerPrefix(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG), 1024);
        p.putAll(extra);

        AtomicLong seen = new AtomicLong();
        long delay = delayMs;
        StreamsBuilder b = new StreamsBuilder();
        b.<String, String>stream(input)
                .peek((k, v) -> {
                    // Throttle, so the driver can kill the process while it is still working.
                    if (delay > 0) sleep(delay);
                    long n = seen.incrementAndGet();
                    if (n % 250 == 0) say("PROCESSED " + n);
                })
                .groupBy((k, v) -> k, Grouped.as("by-word")) // a key selector always repartitions
                .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("counts").withCachingDisabled())
                .toStream()
                .mapValues(c -> Long.toString(c))
                .to(output);

        KafkaStreams streams = new KafkaStreams(b.build(p), p);
        CountDownLatch done = new CountDownLatch(1);
        boolean[] failed = {false};
        streams.setStateListener((now, old) -> {
            say("STATE " + now + " " + old);
            if (now == KafkaStreams.State.ERROR) failed[0] = true;
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) done.countDown();
        });
        streams.setGlobalStateRestoreListener(new StateRestoreListener() {
            @Override
            public void onRestoreStart(TopicPartition tp, String store, long start, long end) {
                say("RESTORE-START " + store + " " + tp.topic() + " " + tp.partition() + " " + start + " " + end);
            }

            @Override
            public void onBatchRestored(TopicPartition tp, String store, long batchEnd, long restored) {}

            @Override
            public void onRestoreEnd(TopicPartition tp, String store, long total) {
                say("RESTORED " + store + " " + tp.topic() + " " + tp.partition() + " " + total);
            }
        });
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            say("ERROR " + String.valueOf(e).replaceAll("\\s+", " "));
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        Thread stdin = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null && !line.trim().equals("close")) { /* wait */ }
            } catch (Exception ignored) {
                // EOF or error: the driver is gone, close
            }
            say("CLOSING");
            streams.close(Duration.ofSeconds(30));
            done.countDown();
        }, "stdin");
        stdin.setDaemon(true);
        streams.start();
        stdin.start();
        done.await();
        if (!failed[0]) stdin.join(40000); // a requested close: let close() finish its commit
        say("EXIT " + (failed[0] ? 1 : 0));
        System.out.flush();
        Runtime.getRuntime().halt(failed[0] ? 1 : 0);
    }

    static void sleep(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }
}
