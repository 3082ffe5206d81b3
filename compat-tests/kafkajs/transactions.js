// Transaction scenarios of the kafkajs driver ("transactions", "transactions-offsets", "transactions-fencing",
// "transactions-restart").
// main.js registers them with
//
//   Object.assign(scenarios, require('./transactions')({ Failure, check, checkEq, ... }))
//
// handing over the helpers it shares with the other scenarios (no circular require).
'use strict'

const { Kafka, logLevel } = require('kafkajs')

let Failure, check, checkEq, sleep, errorTypes, expectError, describeTopic, restartBroker, CREATE_CLUSTER

// ---------------------------------------------------------------------------------------------------------------
// Transactions (KIP-98): the same checks as drivers/confluent.py and java/.../Transactions.java. Record keys are
// tag+i, values "v-"+key, record i of a transaction to partition i % partitions. Reading back goes through kafkajs' own
// Fetch path with the isolation level asked for (READ_COMMITTED = 1) and its consumer's Batch class, which drops the
// records of aborted transactions (the fetch response's aborted transactions) and the control records (markers).

const Batch = require('kafkajs/src/consumer/batch')
const COORDINATOR_TYPES = require('kafkajs/src/protocol/coordinatorTypes')
const READ_UNCOMMITTED = 0
const READ_COMMITTED = 1

const txnKeys = (tag, n) => Array.from({ length: n }, (_, i) => `${tag}${i}`)

// A client whose cluster retries longer than ctx.kafka's (2 retries, for the error scenarios): on a fresh broker the
// first FindCoordinator of a transactional id answers COORDINATOR_NOT_AVAILABLE / LOAD_IN_PROGRESS while the
// transaction state topic is created and loaded, and kafkajs looks coordinators up with the cluster's retry settings.
function txnKafka(ctx) {
  if (!ctx.txnKafka) {
    ctx.txnKafka = new Kafka({ clientId: 'strom-compat-kafkajs', brokers: [ctx.bootstrap], logLevel: logLevel.ERROR,
      connectionTimeout: ctx.timeoutMs, requestTimeout: ctx.timeoutMs,
      retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 2000 } })
  }
  return ctx.txnKafka
}

async function txnProducer(ctx, transactionalId, transactionTimeout) {
  const p = txnKafka(ctx).producer({ allowAutoTopicCreation: false, transactionalId, transactionTimeout,
    idempotent: true, maxInFlightRequests: 1, retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 } })
  await p.connect()
  ctx.open.push(p)
  return p
}

// createTopics without waitForLeaders, then the metadata polled until every partition has a leader: right after the
// broker started, its creation of the internal topics can keep a new topic's metadata unknown for a moment.
async function txnCreateTopic(admin, ctx, topic, numPartitions) {
  checkEq(await admin.createTopics({ timeout: ctx.timeoutMs, waitForLeaders: false,
    topics: [{ topic, numPartitions, replicationFactor: 1 }] }), true, `createTopics ${topic}`)
  await ctx.eventually(`${topic} with ${numPartitions} partitions and leaders`, async () => {
    const md = await describeTopic(admin, topic)
    return md.partitions.length === numPartitions && md.partitions.every(x => x.leader >= 0)
  })
}

// One send() (one Produce request) of keys, key i to partition i % partitions; checks every partition's error code.
async function txnSend(sender, topic, keys, partitions, what) {
  const res = await sender.send({ topic, acks: -1, timeout: 30000,
    messages: keys.map((k, i) => ({ partition: i % partitions, key: k, value: `v-${k}` })) })
  for (const pr of res) checkEq(pr.errorCode, 0, `${what}: error code for partition ${pr.partition}`)
}

async function withCluster(ctx, isolationLevel, fn) {
  const create = ctx.kafka[Object.getOwnPropertySymbols(ctx.kafka).find(CREATE_CLUSTER)]
  const cluster = create({ allowAutoTopicCreation: false, isolationLevel })
  await cluster.connect()
  try {
    return await fn(cluster)
  } finally {
    await cluster.disconnect().catch(() => {})
  }
}

// "partition:offset:key" of every record a consumer with the isolation level gets, sorted: each partition is read
// from offset 0 up to its end in the fetch response (last stable offset with READ_COMMITTED, high watermark with
// READ_UNCOMMITTED), failing if a partition makes no progress for the call timeout.
async function fetchIsolated(ctx, topic, partitions, isolationLevel) {
  return withCluster(ctx, isolationLevel, async cluster => {
    await cluster.addTargetTopic(topic)
    const md = cluster.findTopicPartitionMetadata(topic)
    const got = []
    for (let p = 0; p < partitions; p++) {
      const broker = await cluster.findBroker({ nodeId: md.find(x => x.partitionId === p).leader })
      let offset = 0
      let end = -1
      let deadline = Date.now() + ctx.timeoutMs
      while ((end < 0 || offset < end) && Date.now() < deadline) {
        const resp = await broker.fetch({ isolationLevel, maxWaitTime: 200, minBytes: 1, maxBytes: 8 << 20,
          topics: [{ topic, partitions: [{ partition: p, fetchOffset: String(offset), maxBytes: 4 << 20 }] }] })
        const pd = resp.responses[0].partitions[0]
        checkEq(pd.errorCode, 0, `Fetch error code for partition ${p} at offset ${offset}`)
        end = Number(isolationLevel === READ_COMMITTED ? pd.lastStableOffset : pd.highWatermark)
        const batch = new Batch(topic, String(offset), pd)
        for (const m of batch.messages) got.push(`${p}:${m.offset}:${m.key.toString()}`)
        const before = offset
        for (const m of batch.messagesWithinOffset) offset = Math.max(offset, Number(m.offset) + 1)
        if (offset > before) deadline = Date.now() + ctx.timeoutMs
      }
      check(end >= 0 && offset >= end, `partition ${p}: read up to ${offset}, end offset ${end}`)
    }
    return got.sort()
  })
}

// End offset per partition (ListOffsets latest): high watermark (READ_UNCOMMITTED) or last stable offset
// (READ_COMMITTED), as kafkajs' consumer asks for them.
async function endOffsets(ctx, topic, partitions, isolationLevel) {
  return withCluster(ctx, isolationLevel, async cluster => {
    await cluster.addTargetTopic(topic)
    const ps = Array.from({ length: partitions }, (_, partition) => ({ partition }))
    const [res] = await cluster.fetchTopicsOffset([{ topic, partitions: ps, fromBeginning: false }])
    return res.partitions.sort((a, b) => a.partition - b.partition).map(x => Number(x.offset))
  })
}

// transactions-restart: a transactional producer on a Kafka instance of its own whose logCreator keeps the producer id
// and epoch kafkajs logs (DEBUG 'Initialized producer id & epoch'; errors are printed as kafkajs' default logger does).
async function trackedTxnProducer(ctx, transactionalId) {
  const tracked = { transactionalId, producerId: null, producerEpoch: null }
  const kafka = new Kafka({ clientId: 'strom-compat-kafkajs', brokers: [ctx.bootstrap], logLevel: logLevel.DEBUG,
    connectionTimeout: ctx.timeoutMs, requestTimeout: ctx.timeoutMs,
    retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 2000 },
    logCreator: () => ({ namespace, level, label, log }) => {
      if (log.message === 'Initialized producer id & epoch') {
        tracked.producerId = log.producerId
        tracked.producerEpoch = log.producerEpoch
      } else if (level <= logLevel.ERROR) {
        console.error(JSON.stringify({ level: label, ...log, message: `[${namespace}] ${log.message}` }))
      }
    } })
  tracked.producer = kafka.producer({ allowAutoTopicCreation: false, transactionalId, transactionTimeout: 60000,
    idempotent: true, maxInFlightRequests: 1, retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 } })
  await tracked.producer.connect()
  ctx.open.push(tracked.producer)
  return tracked
}

// Ends txn (commit or abort) right after a broker restart. kafkajs sends EndTxn once and does not retry it: an answer
// such as NOT_COORDINATOR or COORDINATOR_LOAD_IN_PROGRESS while the restarted coordinator reloads __transaction_state
// fails commit()/abort() with a retriable KafkaJSProtocolError, and leaves the producer's transaction state in
// COMMITTING/ABORTING for good (neither the call nor a new transaction can follow; seen against Kafka 4.4.0).
// Adaptation: resend the EndTxn (same producer id, epoch and result) until it is answered, as the Java client does,
// and carry on with a new producer of the same transactional id (its InitProducerId finds the transaction complete).
// The transaction still ends as asked, so the records and offsets are the same. Returns the producer to go on with.
async function restartTxnEnd(ctx, tracked, txn, commit, what) {
  try {
    await (commit ? txn.commit() : txn.abort())
    return tracked
  } catch (e) {
    if (!e.retriable) throw e
    ctx.log(`${what}: kafkajs failed with ${e.type || e.name} (${e.message}); resending EndTxn`)
  }
  check(tracked.producerId != null, `${what}: producer id not logged by kafkajs`)
  await withCluster(ctx, READ_UNCOMMITTED, async cluster => {
    const deadline = Date.now() + ctx.timeoutMs
    for (;;) {
      try {
        const coordinator = await cluster.findGroupCoordinator({ groupId: tracked.transactionalId,
          coordinatorType: COORDINATOR_TYPES.TRANSACTION })
        await coordinator.endTxn({ transactionalId: tracked.transactionalId, producerId: tracked.producerId,
          producerEpoch: tracked.producerEpoch, transactionResult: commit })
        ctx.log(`${what}: EndTxn(${commit ? 'commit' : 'abort'}) answered without error`)
        return
      } catch (e) {
        if (!e.retriable && e.type !== 'CONCURRENT_TRANSACTIONS') throw e
        check(Date.now() < deadline, `${what}: EndTxn still failing after ${ctx.timeoutMs / 1000}s: ${e.message}`)
        ctx.log(`${what}: EndTxn failed with ${e.type || e.name}; retrying`)
        await sleep(200)
      }
    }
  })
  await tracked.producer.disconnect()
  return trackedTxnProducer(ctx, tracked.transactionalId)
}

const txnScenarios = {
  async transactions(ctx) {
    const admin = await ctx.admin()
    const t = ctx.topic('data')
    await txnCreateTopic(admin, ctx, t, 2)
    const p = await txnProducer(ctx, ctx.topic('tid'), 60000)
    // Committed, aborted, committed: 5 records per partition each, and a marker after each transaction.
    for (const [tag, commit] of [['c', true], ['a', false], ['d', true]]) {
      const txn = await p.transaction()
      await txnSend(txn, t, txnKeys(tag, 10), 2, `send ${tag}`)
      if (commit) await txn.commit()
      else await txn.abort()
    }
    const want = [...txnKeys('c', 10).map((k, i) => `${i % 2}:${Math.floor(i / 2)}:${k}`),
      ...txnKeys('d', 10).map((k, i) => `${i % 2}:${12 + Math.floor(i / 2)}:${k}`)].sort()
    checkEq(await fetchIsolated(ctx, t, 2, READ_COMMITTED), want, 'read_committed records (partition:offset:key)')
    const unc = await fetchIsolated(ctx, t, 2, READ_UNCOMMITTED)
    checkEq(unc.length, 30, 'read_uncommitted record count (committed and aborted)')
    checkEq([...new Set(unc.map(x => Number(x.split(':')[1])))].sort((a, b) => a - b),
      Array.from({ length: 17 }, (_, o) => o).filter(o => o !== 5 && o !== 11), 'read_uncommitted offsets (markers at 5 and 11)')
    checkEq(await endOffsets(ctx, t, 2, READ_UNCOMMITTED), [18, 18], 'end offsets (markers included)')

    // An open transaction holds read_committed consumers at its first offset (the last stable offset).
    const open = await p.transaction()
    await txnSend(open, t, txnKeys('open', 2), 2, 'send open')
    checkEq(await fetchIsolated(ctx, t, 2, READ_COMMITTED), want, 'read_committed while a transaction is open')
    checkEq((await fetchIsolated(ctx, t, 2, READ_UNCOMMITTED)).length, 32, 'read_uncommitted sees the open one')
    checkEq(await endOffsets(ctx, t, 2, READ_COMMITTED), [18, 18],
      'read_committed end offsets = last stable offsets while a transaction is open')
    checkEq(await endOffsets(ctx, t, 2, READ_UNCOMMITTED), [19, 19], 'high watermarks while a transaction is open')
    await open.commit()
    checkEq((await fetchIsolated(ctx, t, 2, READ_COMMITTED)).length, 22, 'read_committed after the commit')
  },

  // Consume-transform-produce: a group consumer (consumer.run, autoCommit off, read_committed) hands records to
  // transactions that produce them to the output topic and add the consumed offsets with sendOffsets. kafkajs'
  // sendOffsets sends the group id only (TxnOffsetCommit v0/v1, no member id or generation: no KIP-447 fencing).
  async 'transactions-offsets'(ctx) {
    const admin = await ctx.admin()
    const src = ctx.topic('src')
    const dst = ctx.topic('dst')
    await txnCreateTopic(admin, ctx, src, 1)
    await txnCreateTopic(admin, ctx, dst, 1)
    const plain = await ctx.producer()
    await txnSend(plain, src, txnKeys('k', 20), 1, 'send source records')
    const group = ctx.topic('group')
    const p = await txnProducer(ctx, ctx.topic('tid'), 60000)
    const consumer = txnKafka(ctx).consumer({ groupId: group, readUncommitted: false, maxWaitTimeInMs: 200,
      sessionTimeout: 6000, heartbeatInterval: 1000, allowAutoTopicCreation: false })
    ctx.open.push(consumer)
    await consumer.connect()
    await consumer.subscribe({ topics: [src], fromBeginning: true })
    const got = []
    let finish
    const finished = new Promise(resolve => { finish = resolve })
    const round = async (n, msgs) => {
      const txn = await p.transaction()
      await txnSend(txn, dst, msgs.map(m => m.key.toString()), 1, `send round ${n}`)
      await txn.sendOffsets({ consumerGroupId: group,
        topics: [{ topic: src, partitions: [{ partition: 0, offset: String(Number(msgs[msgs.length - 1].offset) + 1) }] }] })
      if (n === 0) await txn.commit()
      else await txn.abort()
    }
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => {
        if (got.length >= 20) return
        got.push(message)
        if (got.length % 10) return
        const n = got.length / 10 - 1
        try {
          await round(n, got.slice(n * 10))
          if (n === 1) finish(null)
        } catch (e) {
          finish(e)
        }
      },
    })
    let timer
    const err = await Promise.race([finished, new Promise(resolve => {
      timer = setTimeout(() => resolve(new Failure(`${got.length} of 20 records consumed and transformed within ` +
        `${ctx.timeoutMs / 1000}s`)), ctx.timeoutMs)
    })])
    clearTimeout(timer)
    if (err) throw err
    checkEq(got.map(m => m.key.toString()), txnKeys('k', 20), 'records consumed (round 0, round 1)')
    await consumer.disconnect()
    const committed = await admin.fetchOffsets({ groupId: group, topics: [src] })
    checkEq(committed[0].partitions.map(x => [x.partition, x.offset]), [[0, '10']],
      'committed offset (the aborted transaction\'s offsets are dropped)')
    checkEq(await fetchIsolated(ctx, dst, 1, READ_COMMITTED), txnKeys('k', 10).map((k, i) => `0:${i}:${k}`).sort(),
      'read_committed output')
  },

  async 'transactions-fencing'(ctx) {
    const admin = await ctx.admin()
    const t = ctx.topic('data')
    await txnCreateTopic(admin, ctx, t, 1)
    const tid = ctx.topic('tid')
    const old = await txnProducer(ctx, tid, 60000)
    const zombie = await old.transaction() // InitProducerId
    await txnSend(zombie, t, ['zombie'], 1, 'send zombie')
    const fresh = await txnProducer(ctx, tid, 60000)
    const txn = await fresh.transaction() // InitProducerId with the same transactional id: fences old, aborts its txn
    await txnSend(txn, t, ['new'], 1, 'send new')
    await txn.commit()
    // kafkajs sends EndTxn v1: Kafka reports the fencing as INVALID_PRODUCER_EPOCH there (PRODUCER_FENCED from v2 on).
    const e = await expectError('commit of the fenced producer', 'INVALID_PRODUCER_EPOCH', () => zombie.commit())
    ctx.log(`fenced producer: ${e.name}: ${e.message} (types ${errorTypes(e)})`)
    checkEq(await fetchIsolated(ctx, t, 1, READ_COMMITTED), ['0:2:new'], 'only the new producer\'s record')

    // Left open past its transaction timeout: the coordinator aborts it (its periodic check runs every 10 s).
    const slow = await txnProducer(ctx, ctx.topic('slow'), 2000)
    const open = await slow.transaction()
    await txnSend(open, t, ['timed-out'], 1, 'send timed-out')
    const deadline = Date.now() + 40000
    for (;;) {
      const [lso] = await endOffsets(ctx, t, 1, READ_COMMITTED)
      const [hw] = await endOffsets(ctx, t, 1, READ_UNCOMMITTED)
      if (lso === hw) {
        ctx.log(`timed-out transaction aborted: end offset ${hw}`)
        break
      }
      check(Date.now() < deadline, `the timed-out transaction was not aborted in 40 s (last stable offset ${lso}, high watermark ${hw})`)
      await sleep(500)
    }
    let committed = false
    try {
      await open.commit()
      committed = true
    } catch (e) {
      ctx.log(`timed-out producer: ${e.name}: ${e.message} (types ${errorTypes(e)})`)
    }
    check(!committed, 'a transaction aborted by its timeout committed')
    checkEq(await fetchIsolated(ctx, t, 1, READ_COMMITTED), ['0:2:new'], 'the timed-out record is gone')
  },

  // The broker is SIGKILLed with a transaction open, twice: the producer carries on with the same transaction,
  // which then commits (and, the second time, aborts) exactly as it would have without the crash. kafkajs cannot retry
  // an EndTxn the reloading coordinator refused (restartTxnEnd): then a new producer takes over for the next transaction.
  async 'transactions-restart'(ctx) {
    const admin = await ctx.admin()
    const t = ctx.topic('data')
    await txnCreateTopic(admin, ctx, t, 1)
    const tid = ctx.topic('tid')
    let p = await trackedTxnProducer(ctx, tid)
    const first = await p.producer.transaction()
    await txnSend(first, t, txnKeys('a', 10), 1, 'send a')
    await restartBroker('kill')
    await txnSend(first, t, txnKeys('b', 10), 1, 'send b (after the first crash)')
    p = await restartTxnEnd(ctx, p, first, true, 'commit after the first crash')
    const second = await p.producer.transaction()
    await txnSend(second, t, txnKeys('x', 5), 1, 'send x')
    await restartBroker('kill')
    p = await restartTxnEnd(ctx, p, second, false, 'abort after the second crash')
    const third = await p.producer.transaction()
    await txnSend(third, t, txnKeys('c', 3), 1, 'send c')
    await third.commit()
    const want = [...[...txnKeys('a', 10), ...txnKeys('b', 10)].map((k, i) => `0:${i}:${k}`),
      ...txnKeys('c', 3).map((k, i) => `0:${27 + i}:${k}`)].sort()
    checkEq(await fetchIsolated(ctx, t, 1, READ_COMMITTED), want, 'read_committed records after two crashes')
    checkEq(await endOffsets(ctx, t, 1, READ_UNCOMMITTED), [31], 'high watermark (three markers)')
  },
}

module.exports = helpers => {
  ;({ Failure, check, checkEq, sleep, errorTypes, expectError, describeTopic, restartBroker, CREATE_CLUSTER } = helpers)
  return txnScenarios
}
