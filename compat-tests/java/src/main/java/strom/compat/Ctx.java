package strom.compat;

import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.KafkaFuture;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.Serializer;

/** Per-scenario context: unique topic names, bounded client calls, assertions, client lifecycle. */
final class Ctx {
    final String bootstrap, host, runId, scenario;
    final int port;
    final long timeoutMs;
    private final List<AutoCloseable> open = new ArrayList<>();

    Ctx(String bootstrap, String runId, String scenario, long timeoutMs) {
        this.bootstrap = bootstrap;
        int i = bootstrap.lastIndexOf(':');
        this.host = bootstrap.substring(0, i);
        this.port = Integer.parseInt(bootstrap.substring(i + 1));
        this.runId = runId;
        this.scenario = scenario;
        this.timeoutMs = timeoutMs;
    }

    private static final java.io.BufferedReader STDIN =
            new java.io.BufferedReader(new java.io.InputStreamReader(System.in, java.nio.charset.StandardCharsets.UTF_8));
    private static final java.util.concurrent.ExecutorService STDIN_READER = java.util.concurrent.Executors
            .newSingleThreadExecutor(r -> {
                Thread t = new Thread(r, "stdin");
                t.setDaemon(true);
                return t;
            });

    /**
     * Asks compat-tests/run to restart the broker on the same data dir and port ("term": SIGTERM, "kill": SIGKILL)
     * and waits until it answers again (protocol: RESTART-BROKER mode on stdout, RESTARTED/RESTART-FAILED on stdin).
     */
    void restartBroker(String mode) throws Exception {
        synchronized (System.out) {
            System.out.println("RESTART-BROKER " + mode);
            System.out.flush();
        }
        String line;
        try {
            line = STDIN_READER.submit(STDIN::readLine).get(240, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            throw new AssertionError("no answer to RESTART-BROKER " + mode + " within 240s");
        }
        if (line == null || !line.startsWith("RESTARTED"))
            throw new AssertionError("broker restart (" + mode + ") failed: " + (line == null ? "stdin closed" : line));
    }

    /** A diagnostics line on stdout (kept in the client's log by compat-tests/run). */
    void log(String msg) {
        synchronized (System.out) {
            System.out.println("[java " + scenario + "] " + msg);
            System.out.flush();
        }
    }

    /** A topic name unique to this run, client and scenario. */
    String topic(String suffix) {
        return scenario + "-java-" + runId + (suffix.isEmpty() ? "" : "-" + suffix);
    }

    Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) timeoutMs);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) timeoutMs);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "strom-compat-java-" + scenario);
        return track(Admin.create(p));
    }

    KafkaProducer<byte[], byte[]> producer(Map<String, Object> extra) {
        return producer(extra, new ByteArraySerializer());
    }

    KafkaProducer<byte[], byte[]> producer(Map<String, Object> extra, Serializer<byte[]> keySerializer) {
        Map<String, Object> p = new HashMap<>();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, (int) timeoutMs);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) timeoutMs);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, (int) timeoutMs + 1000);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "strom-compat-java-" + scenario);
        p.putAll(extra);
        return track(new KafkaProducer<>(p, keySerializer, new ByteArraySerializer()));
    }

    KafkaConsumer<byte[], byte[]> consumer(Map<String, Object> extra) {
        Map<String, Object> p = new HashMap<>();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, (int) timeoutMs);
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, (int) timeoutMs);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, "strom-compat-java-" + scenario);
        p.putAll(extra);
        return track(new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer()));
    }

    <T extends AutoCloseable> T track(T c) {
        synchronized (open) {
            open.add(c);
        }
        return c;
    }

    void closeAll() {
        List<AutoCloseable> cs;
        synchronized (open) {
            cs = new ArrayList<>(open);
            open.clear();
        }
        for (AutoCloseable c : cs) {
            try {
                if (c instanceof Admin a) a.close(Duration.ofSeconds(2));
                else if (c instanceof KafkaProducer<?, ?> p) p.close(Duration.ofSeconds(2));
                else if (c instanceof KafkaConsumer<?, ?> k) k.close(Duration.ofSeconds(2));
                else c.close();
            } catch (Exception ignored) {
                // best effort
            }
        }
    }

    /** Waits for a client future, bounded by the call timeout; unwraps ExecutionException. */
    <T> T get(KafkaFuture<T> f) throws Exception {
        try {
            return f.get(timeoutMs, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof Exception c) throw c;
            throw e;
        }
    }

    static void check(boolean cond, String fmt, Object... args) {
        if (!cond) throw new AssertionError(String.format(fmt, args));
    }

    static void checkEq(Object actual, Object expected, String what) {
        if (!Objects.equals(actual, expected))
            throw new AssertionError(what + ": expected " + expected + ", got " + actual);
    }

    interface Call<T> {
        T call() throws Exception;
    }

    interface Probe {
        boolean ok() throws Exception;
    }

    /** Polls until probe returns true or the call timeout passes. */
    void eventually(String what, Probe probe) throws Exception {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        Object last = null;
        while (true) {
            try {
                if (probe.ok()) return;
                last = "false";
            } catch (AssertionError | Exception e) {
                last = e;
            }
            if (System.nanoTime() > deadline)
                throw new AssertionError(what + " not reached within " + timeoutMs / 1000 + "s (last: " + last + ")");
            Thread.sleep(200);
        }
    }

    /** call must throw an exception of class expected (after unwrapping ExecutionException). */
    static Throwable expectError(String what, Class<? extends Throwable> expected, Call<?> call) {
        Object r;
        try {
            r = call.call();
        } catch (Throwable t) {
            Throwable c = t instanceof ExecutionException && t.getCause() != null ? t.getCause() : t;
            if (c instanceof AssertionError a) throw a;
            if (!expected.isInstance(c))
                throw new AssertionError(what + ": expected " + expected.getSimpleName() + ", got "
                        + c.getClass().getName() + ": " + c.getMessage());
            return c;
        }
        throw new AssertionError(what + ": expected " + expected.getSimpleName() + ", got success (" + r + ")");
    }
}
