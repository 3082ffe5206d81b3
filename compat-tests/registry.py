"""The compatibility suite's scenario registry: which scenario runs with which client.

Every cell is one of
  READY   - the client's driver implements the scenario; it runs and counts as passed or failed
  NOT_YET - planned; shown as `not-yet` in the table, never run, never counted as passed
  NA      - does not apply to this client (e.g. kcat cannot create topics); shown as `-`, not counted

To turn a not-yet cell into a real check: implement the scenario (same name) in that client's driver
(drivers/*.py, java/src/main/java/strom/compat/Scenarios.java, franz/main.go, kafkajs/main.js), flip the cell
to READY here, and validate with `compat-tests/run --against kafka --client NAME --scenario NAME` first.
"""

READY, NOT_YET, NA = "ready", "not-yet", "n/a"

# Column order of the table. Each client has a driver speaking the RESULT-line protocol of drivers/common.py.
CLIENTS = [
    "confluent-kafka",  # librdkafka via Python (confluent-kafka wheel)
    "kcat",             # librdkafka CLI (Debian package)
    "java",             # org.apache.kafka:kafka-clients (AdminClient, producer, consumer)
    "kafka-cli",        # Kafka's own CLI tools (TopicCommand, ...) from the reference Kafka jars
    "franz-go",         # github.com/twmb/franz-go (kgo, kadm, kmsg)
    "kafkajs",          # kafkajs (npm)
    "kafka-python",     # kafka-python (PyPI)
]


def _cells(default, **overrides):
    cells = {c: default for c in CLIENTS}
    for k, v in overrides.items():
        name = k.replace("_", "-")
        assert name in cells, "unknown client %s" % name
        cells[name] = v
    return cells


# (name, what it checks, {client: status}). Order = row order of the table.
SCENARIOS = [
    ("metadata", "one broker at 127.0.0.1:<port>, non-empty cluster id, controller id = that broker",
     _cells(READY, kafka_cli=NA)),
    ("topic-admin", "create 3-partition + configured topics, list, describe (leader/replicas/isr), "
                    "describeConfigs sources/defaults, createPartitions 3->5, delete",
     _cells(READY)),
    ("topic-errors", "TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_REPLICATION_FACTOR, INVALID_PARTITIONS, "
                     "UNKNOWN_TOPIC_OR_PARTITION, INVALID_CONFIG",
     _cells(READY, kcat=NA)),
    ("describe-cluster", "DescribeCluster: cluster id, nodes, controller",
     _cells(READY, kcat=NA, kafka_cli=NA, kafkajs=NA)),
    ("auto-create", "Metadata for a new topic with auto-creation allowed creates it with num.partitions=1",
     _cells(READY, kafka_cli=NA)),
    ("topic-configs-golden", "complete DescribeConfigs (values, sources, flags, types, synonyms) of fresh topics "
                             "equals Apache Kafka's, recorded in golden/topic-configs.txt",
     _cells(NA, java=READY)),
    # --- producing and consuming (consumers use manual assignment, no group) --------------------------------
    ("produce-consume", "round trip of 100,000 records per codec none/gzip/snappy/lz4/zstd (kcat and kafka-cli: "
                        "10,000 and 2,000, one partition): every record comes back with its key, value, headers, "
                        "timestamp and partition, in order at consecutive offsets, nothing lost or duplicated, end "
                        "offsets matching",
     _cells(READY)),
    ("idempotent-producer", "enable.idempotence producer (InitProducerId, sequence numbers): exactly N records back, "
                            "no duplicates, consecutive offsets",
     _cells(READY, kcat=NA, kafka_cli=NA)),
    ("acks0", "acks=0 produce is consumable: every record eventually readable, in order, nothing extra",
     _cells(READY)),
    # --- consumer groups (classic protocol; member processes driven by drivers/groups.py) ----------------------
    ("consumer-group-rebalance", "two, then three member processes of one group share 6 partitions (disjoint, "
                                 "complete); a closing member's share moves before the session timeout, a SIGKILLed "
                                 "member's after it; every record consumed exactly once (commits after each batch); "
                                 "java with range and cooperative-sticky",
     _cells(READY, kafka_cli=NA)),
    ("committed-offsets", "commit with metadata, read it back (member's committed() and OffsetFetch); a new member "
                          "resumes from the committed offsets; a live member continues across a SIGTERM and a SIGKILL "
                          "broker restart with nothing skipped",
     _cells(READY)),
    ("offsets-by-timestamp", "ListOffsets earliest/latest/max-timestamp/by timestamp (first record at or after it, "
                             "none after the last); consuming from an offset or timestamp",
     _cells(READY)),
    ("restart-durability", "topics and acks=all records survive a SIGTERM restart and a SIGKILL crash of the broker "
                           "(same dir and port); the same producer reconnects and continues; N+M+K records back",
     _cells(READY)),
    ("consumer-groups-tool", "ConsumerGroupCommand --list, --describe (CURRENT-OFFSET/LOG-END-OFFSET/LAG, --members, "
                             "--state), --reset-offsets refused while a member is active, --to-earliest --execute, "
                             "--delete",
     _cells(NA, kafka_cli=READY)),
    ("admin-tools", "kafka-topics --describe shows empty Elr (DescribeTopicPartitions), kafka-log-dirs --describe, "
                    "kafka-leader-election (already elected), kafka-reassign-partitions --execute to the current "
                    "replica and --list, kafka-metadata-quorum describe --status (one voter leading)",
     _cells(NA, kafka_cli=READY)),
    ("broker-configs", "kafka-configs --alter of a dynamic broker config per broker and as the cluster default, "
                       "--describe of both (and --all, with synonyms), a topic following the new default, a "
                       "read-only key refused, --delete-config",
     _cells(NA, kafka_cli=READY)),
    ("offsets-topic", "a console consumer group's commits are records of the internal topic __consumer_offsets "
                      "(listed by kafka-topics --list) that Kafka's OffsetsMessageFormatter decodes to the same "
                      "offsets and metadata",
     _cells(NA, kafka_cli=READY)),
    ("features-tool", "kafka-features describe lists the finalized levels; upgrade/downgrade/disable of "
                      "transaction.version (--dry-run, a new epoch each change) and Kafka's refusals: a downgrade "
                      "without --downgrade, an unsupported level or feature, kraft.version and metadata.version "
                      "downgrades",
     _cells(NA, kafka_cli=READY)),
    # --- log compaction (both brokers run with log.cleaner.backoff.ms low, see BROKER_OVERRIDES in run) ---------
    ("log-compaction", "keyed updates and a tombstone to a compacted topic (segment.ms=100, "
                       "min.cleanable.dirty.ratio=0.01, delete.retention.ms one day), a write after segment.ms to "
                       "roll the segment; once cleaned, a read from the beginning is exactly Kafka's: the newest "
                       "value per key and the tombstone, at their original offsets (with gaps)",
     _cells(READY)),
    ("log-compaction-transactions", "plain writes, an aborted and a committed transaction of one transactional "
                                    "producer to a compacted topic, the roll write; once cleaned, a read from the "
                                    "beginning is exactly Kafka's: the aborted records gone (never shadowing an "
                                    "older value), the committed one compacted like any other",
     _cells(NA, java=READY)),
    # --- transactions (KIP-98) ---------------------------------------------------------------------------------
    ("transactions", "transactional producer: committed, aborted, committed transactions on 2 partitions; "
                     "read_committed sees exactly the committed records at Kafka's offsets (markers in between), "
                     "read_uncommitted all of them; an open transaction holds read_committed at its first offset",
     _cells(READY, kcat=NA, kafka_cli=NA)),
    ("transactions-offsets", "consume-transform-produce with sendOffsetsToTransaction: offsets of a committed "
                             "transaction are committed, those of an aborted one are not; output read_committed",
     _cells(READY, kcat=NA, kafka_cli=NA)),
    ("transactions-fencing", "a second producer with the same transactional.id fences the first (fatal error, its "
                             "open transaction aborted); a transaction open past transaction.timeout.ms is aborted",
     _cells(READY, kcat=NA, kafka_cli=NA)),
    ("transactions-restart", "the broker is SIGKILLed twice with a transaction open; the producer carries on: the "
                             "first transaction commits, the second aborts, read_committed sees exactly Kafka's "
                             "records at Kafka's offsets",
     _cells(READY, kcat=NA, kafka_cli=NA)),
    # --- Kafka Streams (drivers/streams.py; the application is compat-tests/streams) ----------------------------
    ("streams-eos", "Kafka Streams app (kafka-streams of the reference version, exactly_once_v2, repartition topic, "
                    "RocksDB count store with changelog) over 3,000 fixed records, SIGKILLed and restarted on the "
                    "same state dir twice: read_committed output per word is exactly 1, 2, ..., n, no duplicate, "
                    "no gap",
     _cells(NA, java=READY)),
    # --- Kafka Connect (drivers/connect.py; the worker is compat-tests/connect) ---------------------------------
    ("connect-distributed", "Kafka Connect worker (connect-runtime of the reference version, distributed mode) creates "
                            "its compacted config/offset/status topics; FileStreamSource -> topic -> FileStreamSink "
                            "copies a 2,000-line file exactly; after a SIGTERM the next worker resumes from its stored "
                            "connector configs and source offsets: 1,000 appended lines copied, no duplicate, no loss",
     _cells(NA, java=READY)),
    ("connect-eos-source", "connect-distributed with exactly.once.source.support=enabled (KIP-618): the source task "
                           "writes records and offsets in transactions (commit markers in the topic), the leader "
                           "the config topic; same exact copy before and after the restart, read_committed",
     _cells(NA, java=READY)),
    # --- MirrorMaker 2 (drivers/mirror.py; connect-mirror from compat-tests/mirror) ---------------------------
    ("mirror-maker", "MirrorMaker 2 (dedicated mode) from the broker to a second one (strom: to a second strom, and "
                     "from a Kafka to it): the topic (3 partitions, 3,000 keyed records), its configs and a later "
                     "config change, and an idle group's offsets translated to the target's, at both end points; "
                     "every record (partition, key, value, timestamp, headers) equal",
     _cells(NA, java=READY)),
    ("streams-restore", "the same app with at_least_once and with exactly_once_v2: its changelog (created compacted, "
                        "aggressive cleaner configs through the topic. prefix) is compacted by the broker after 2,000 "
                        "count updates; the state dir wiped, the restarted app restores from the compacted changelog "
                        "(restore listener: fewer records than updates) and its counts continue: the last count per "
                        "word exact (EOS: read_committed output exactly 1..n)",
     _cells(NA, java=READY)),
]


# Scenarios that need more than the run's --scenario-timeout (default 120 s): the factor it is multiplied by.
# compat-tests/run starts a client's driver once per distinct timeout. produce-consume moves 5 x 100,000 records per
# library client (about 25 s for kafka-python on a 2-core machine).
TIMEOUT_FACTOR = {
    "produce-consume": 3,
    "transactions-fencing": 2,
    "transactions-restart": 2,
    "mirror-maker": 2,  # a second broker and a MirrorMaker JVM start inside it (about 40 s each when loaded)
}


def timeout_factor(scenario):
    return TIMEOUT_FACTOR.get(scenario, 1)


def scenario_names():
    return [s[0] for s in SCENARIOS]


def status(scenario, client):
    for name, _, cells in SCENARIOS:
        if name == scenario:
            return cells[client]
    raise KeyError(scenario)
