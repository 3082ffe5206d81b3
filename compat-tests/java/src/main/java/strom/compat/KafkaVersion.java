package strom.compat;

import java.io.InputStream;
import java.util.Properties;

/** The kafka-clients version on the classpath, from the jar's own kafka/kafka-version.properties (the file
 *  Kafka's AppInfoParser reads; that class moved between 4.1 and 4.4, the file did not). */
final class KafkaVersion {
    private KafkaVersion() {}

    static String get() {
        try (InputStream in = KafkaVersion.class.getResourceAsStream("/kafka/kafka-version.properties")) {
            Properties p = new Properties();
            if (in != null) {
                p.load(in);
            }
            return p.getProperty("version", "unknown");
        } catch (java.io.IOException e) {
            return "unknown";
        }
    }
}
