package org.apache.kafka.common.utils;

/**
 * Bridge for the FileStream connectors of connect-file 4.3.1 (the newest on Maven Central) on the 4.4.0 worker:
 * their {@code version()} calls {@code org.apache.kafka.common.utils.AppInfoParser.getVersion()}, which kafka-clients
 * 4.4.0 moved to {@code org.apache.kafka.common.utils.internals}; without this class the worker's config validation
 * fails with NoClassDefFoundError (HTTP 500 on POST /connectors). It is the only class connect-file 4.3.1 uses that
 * 4.4.0 lacks (checked with javap). Same answer as Kafka's: the kafka-clients version on the classpath.
 */
public final class AppInfoParser {
    private AppInfoParser() {
    }

    /** The version of kafka-clients, as {@code org.apache.kafka.common.utils.internals.AppInfoParser} reports it. */
    public static String getVersion() {
        return org.apache.kafka.common.utils.internals.AppInfoParser.getVersion();
    }
}
