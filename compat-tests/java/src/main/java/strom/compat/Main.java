package strom.compat;

import java.util.*;
import java.util.concurrent.*;

/**
 * Java (org.apache.kafka:kafka-clients) driver of the compatibility suite; one JVM runs all requested scenarios.
 *
 * <pre>java -cp ... strom.compat.Main --bootstrap 127.0.0.1:P --run-id ID --scenarios a,b,c
 *          [--call-timeout 30] [--scenario-timeout 120]</pre>
 *
 * Prints one line per scenario: {@code RESULT <scenario> PASS} or {@code RESULT <scenario> FAIL <reason>}
 * (the protocol of compat-tests/drivers/common.py).
 */
public final class Main {
    public static void main(String[] args) {
        String bootstrap = null, runId = "run";
        List<String> names = new ArrayList<>();
        double callTimeout = 30, scenarioTimeout = 120;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--bootstrap" -> bootstrap = args[++i];
                case "--run-id" -> runId = args[++i];
                case "--scenarios" -> names.addAll(Arrays.asList(args[++i].split(",")));
                case "--call-timeout" -> callTimeout = Double.parseDouble(args[++i]);
                case "--scenario-timeout" -> scenarioTimeout = Double.parseDouble(args[++i]);
                default -> throw new IllegalArgumentException("unknown argument " + args[i]);
            }
        }
        Objects.requireNonNull(bootstrap, "--bootstrap is required");
        Map<String, Scenarios.Scenario> registry = Scenarios.all();
        ExecutorService pool = Executors.newCachedThreadPool(r -> {
            Thread t = new Thread(r, "scenario");
            t.setDaemon(true);
            return t;
        });
        for (String name : names) {
            if (name.isEmpty()) continue;
            Scenarios.Scenario s = registry.get(name);
            if (s == null) {
                System.out.println("RESULT " + name + " FAIL scenario not implemented by the java driver");
                continue;
            }
            Ctx ctx = new Ctx(bootstrap, runId, name, (long) (callTimeout * 1000));
            long start = System.nanoTime();
            Future<?> f = pool.submit(() -> {
                s.run(ctx);
                return null;
            });
            try {
                f.get((long) (scenarioTimeout * 1000), TimeUnit.MILLISECONDS);
                System.out.printf("RESULT %s PASS (%.1fs)%n", name, (System.nanoTime() - start) / 1e9);
            } catch (TimeoutException e) {
                f.cancel(true);
                System.out.printf("RESULT %s FAIL timed out after %.0fs%n", name, scenarioTimeout);
            } catch (ExecutionException e) {
                Throwable c = e.getCause();
                c.printStackTrace();
                String reason = c instanceof AssertionError ? c.getMessage() : c.getClass().getName() + ": " + c.getMessage();
                System.out.println("RESULT " + name + " FAIL " + oneLine(reason));
            } catch (InterruptedException e) {
                System.out.println("RESULT " + name + " FAIL interrupted");
            } finally {
                ctx.closeAll();
            }
            System.out.flush();
        }
        System.out.flush();
        System.err.flush();
        Runtime.getRuntime().halt(0); // do not wait for stuck client threads
    }

    static String oneLine(String s) {
        String r = String.valueOf(s).replaceAll("\\s+", " ").trim();
        return r.length() > 600 ? r.substring(0, 600) + "..." : r;
    }
}
