// kafkajs driver of the strom compatibility suite.
//
//   node main.js --bootstrap 127.0.0.1:P --run-id ID --scenarios a,b,c [--call-timeout 30] [--scenario-timeout 120]
//
// Prints one line per scenario: "RESULT <scenario> PASS" or "RESULT <scenario> FAIL <reason>"
// (the protocol of compat-tests/drivers/common.py).
'use strict'

const { Kafka, logLevel, ConfigResourceTypes } = require('kafkajs')

function parseArgs(argv) {
  const a = { callTimeout: 30, scenarioTimeout: 120, runId: 'run', scenarios: [] }
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]
    const v = argv[++i]
    if (k === '--bootstrap') a.bootstrap = v
    else if (k === '--run-id') a.runId = v
    else if (k === '--scenarios') a.scenarios = v.split(',').filter(Boolean)
    else if (k === '--call-timeout') a.callTimeout = Number(v)
    else if (k === '--scenario-timeout') a.scenarioTimeout = Number(v)
    else throw new Error('unknown argument ' + k)
  }
  return a
}

class Failure extends Error {}

function check(cond, msg) {
  if (!cond) throw new Failure(msg)
}

function checkEq(actual, expected, what) {
  const a = JSON.stringify(actual)
  const e = JSON.stringify(expected)
  if (a !== e) throw new Failure(`${what}: expected ${e}, got ${a}`)
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

// All kafkajs error types in an error chain (wrapped retriable errors, aggregate errors).
function errorTypes(e, seen = new Set()) {
  const out = []
  if (!e || typeof e !== 'object' || seen.has(e)) return out
  seen.add(e)
  if (e.type) out.push(e.type)
  for (const k of ['cause', 'originalError']) out.push(...errorTypes(e[k], seen))
  if (Array.isArray(e.errors)) for (const x of e.errors) out.push(...errorTypes(x, seen))
  return out
}

async function expectError(what, type, fn) {
  let r
  try {
    r = await fn()
  } catch (e) {
    if (e instanceof Failure) throw e
    const types = errorTypes(e)
    if (!types.includes(type)) throw new Failure(`${what}: expected ${type}, got ${e.name}: ${e.message} (types ${types})`)
    return e
  }
  throw new Failure(`${what}: expected ${type}, got success (${JSON.stringify(r)})`)
}

class Ctx {
  constructor(args, scenario) {
    this.bootstrap = args.bootstrap
    const i = args.bootstrap.lastIndexOf(':')
    this.host = args.bootstrap.slice(0, i)
    this.port = Number(args.bootstrap.slice(i + 1))
    this.runId = args.runId
    this.scenario = scenario
    this.timeoutMs = args.callTimeout * 1000
    this.kafka = new Kafka({
      clientId: 'strom-compat-kafkajs',
      brokers: [args.bootstrap],
      logLevel: logLevel.ERROR,
      connectionTimeout: this.timeoutMs,
      requestTimeout: this.timeoutMs,
      // Short retries: error scenarios expect the error, not kafkajs' default 5 retries with backoff.
      retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
    })
    this.open = []
  }

  topic(suffix) {
    return `${this.scenario}-kafkajs-${this.runId}` + (suffix ? `-${suffix}` : '')
  }

  async admin() {
    const a = this.kafka.admin()
    await a.connect()
    this.open.push(a)
    return a
  }

  async eventually(what, probe) {
    const deadline = Date.now() + this.timeoutMs
    let last
    for (;;) {
      try {
        const v = await probe()
        if (v) return v
        last = v
      } catch (e) {
        last = e.message
      }
      if (Date.now() > deadline) throw new Failure(`${what} not reached within ${this.timeoutMs / 1000}s (last: ${last})`)
      await sleep(200)
    }
  }

  async close() {
    await Promise.all(this.open.map(c => c.disconnect().catch(() => {})))
  }
}

async function describeTopic(admin, t) {
  const md = await admin.fetchTopicMetadata({ topics: [t] })
  checkEq(md.topics.length, 1, 'fetchTopicMetadata topic count')
  return md.topics[0]
}

const scenarios = {
  async metadata(ctx) {
    const admin = await ctx.admin()
    const c = await admin.describeCluster()
    checkEq(c.brokers.length, 1, 'broker count')
    const b = c.brokers[0]
    checkEq([b.host, b.port], [ctx.host, ctx.port], 'broker host/port')
    check(typeof c.clusterId === 'string' && c.clusterId.length > 0, `empty cluster id: ${c.clusterId}`)
    checkEq(c.controller, b.nodeId, 'controller id')
    const names = await admin.listTopics()
    check(Array.isArray(names), 'listTopics did not return an array')
  },

  async 'topic-admin'(ctx) {
    const admin = await ctx.admin()
    const bid = (await admin.describeCluster()).brokers[0].nodeId
    const t = ctx.topic('p3')
    const tc = ctx.topic('cfg')
    const created = await admin.createTopics({
      timeout: ctx.timeoutMs,
      topics: [
        { topic: t, numPartitions: 3, replicationFactor: 1 },
        {
          topic: tc,
          numPartitions: 1,
          replicationFactor: 1,
          configEntries: [
            { name: 'retention.ms', value: '12345' },
            { name: 'cleanup.policy', value: 'compact' },
          ],
        },
      ],
    })
    checkEq(created, true, 'createTopics result')
    const names = await admin.listTopics()
    check(names.includes(t) && names.includes(tc), `listTopics lacks the new topics: ${names}`)

    const md = await describeTopic(admin, t)
    const parts = md.partitions.slice().sort((x, y) => x.partitionId - y.partitionId)
    checkEq(parts.map(p => p.partitionId), [0, 1, 2], 'partition ids')
    for (const p of parts) {
      checkEq([p.partitionErrorCode, p.leader, p.replicas, p.isr], [0, bid, [bid], [bid]],
        `error/leader/replicas/isr of partition ${p.partitionId}`)
    }

    const dc = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: tc }],
    })
    checkEq(dc.resources.length, 1, 'describeConfigs resource count')
    const r = dc.resources[0]
    checkEq(r.errorCode, 0, 'describeConfigs error code')
    const cfg = Object.fromEntries(r.configEntries.map(e => [e.configName, e]))
    const DYNAMIC_TOPIC_CONFIG = 1
    const DEFAULT_CONFIG = 5
    checkEq([cfg['retention.ms'].configValue, cfg['retention.ms'].configSource, cfg['retention.ms'].isDefault],
      ['12345', DYNAMIC_TOPIC_CONFIG, false], 'retention.ms (value, source, isDefault)')
    checkEq([cfg['cleanup.policy'].configValue, cfg['cleanup.policy'].configSource], ['compact', DYNAMIC_TOPIC_CONFIG],
      'cleanup.policy (value, source)')
    checkEq([cfg['segment.bytes'].configValue, cfg['segment.bytes'].configSource, cfg['segment.bytes'].isDefault],
      ['1073741824', DEFAULT_CONFIG, true], 'segment.bytes (value, source, isDefault)')

    await admin.createPartitions({ timeout: ctx.timeoutMs, topicPartitions: [{ topic: t, count: 5 }] })
    await ctx.eventually('5 partitions', async () => (await describeTopic(admin, t)).partitions.length === 5)

    await admin.deleteTopics({ topics: [t, tc], timeout: ctx.timeoutMs })
    await ctx.eventually('deleted topics gone from listTopics', async () => {
      const n = await admin.listTopics()
      return !n.includes(t) && !n.includes(tc)
    })
    await ctx.eventually('metadata of deleted topic -> UNKNOWN_TOPIC_OR_PARTITION', async () => {
      await expectError('describe deleted', 'UNKNOWN_TOPIC_OR_PARTITION', () => describeTopic(admin, t))
      return true
    })
  },

  async 'topic-errors'(ctx) {
    const admin = await ctx.admin()
    const t = ctx.topic('x')
    const create = (topic, numPartitions, replicationFactor, configEntries) =>
      admin.createTopics({ timeout: ctx.timeoutMs, topics: [{ topic, numPartitions, replicationFactor, configEntries }] })
    checkEq(await create(t, 3, 1), true, 'create')
    // kafkajs reports TOPIC_ALREADY_EXISTS as a false result, not an exception.
    checkEq(await create(t, 3, 1), false, 'create existing (false = TOPIC_ALREADY_EXISTS)')
    for (const bad of ['bad/name', '..', 'a'.repeat(250)]) {
      await expectError(`create ${bad.slice(0, 20)}`, 'INVALID_TOPIC_EXCEPTION', () => create(bad, 1, 1))
    }
    await expectError('replication factor 3', 'INVALID_REPLICATION_FACTOR', () => create(ctx.topic('rf3'), 1, 3))
    await expectError('0 partitions', 'INVALID_PARTITIONS', () => create(ctx.topic('p0'), 0, 1))
    await expectError('createPartitions 3 -> 2', 'INVALID_PARTITIONS',
      () => admin.createPartitions({ timeout: ctx.timeoutMs, topicPartitions: [{ topic: t, count: 2 }] }))
    const unknown = ctx.topic('nope')
    await expectError('delete unknown', 'UNKNOWN_TOPIC_OR_PARTITION',
      () => admin.deleteTopics({ topics: [unknown], timeout: ctx.timeoutMs }))
    await expectError('describe unknown', 'UNKNOWN_TOPIC_OR_PARTITION', () => describeTopic(admin, unknown))
    await expectError('unknown config key', 'INVALID_CONFIG',
      () => create(ctx.topic('badcfg'), 1, 1, [{ name: 'no.such.config', value: '1' }]))
    const leaked = (await admin.listTopics()).filter(n => n.startsWith(ctx.topic('')) && n !== t)
    checkEq(leaked, [], 'topics left behind by failed creates')
  },

  async 'auto-create'(ctx) {
    const admin = await ctx.admin()
    const t = ctx.topic('auto')
    await expectError('topic absent before', 'UNKNOWN_TOPIC_OR_PARTITION', () => describeTopic(admin, t))
    // A consumer's subscribe() fetches metadata for the topic with allowAutoTopicCreation (kafkajs default: true);
    // it needs no group coordinator until run().
    const consumer = ctx.kafka.consumer({ groupId: ctx.topic('group'), allowAutoTopicCreation: true })
    ctx.open.push(consumer)
    await consumer.connect()
    await ctx.eventually('subscribe to an auto-created topic', async () => {
      await consumer.subscribe({ topics: [t] })
      return true
    })
    const md = await ctx.eventually('auto-created topic in fetchTopicMetadata', () => describeTopic(admin, t))
    checkEq(md.partitions.length, 1, 'partitions of auto-created topic (num.partitions=1)')
  },
}

function oneLine(s) {
  s = String(s).replace(/\s+/g, ' ').trim()
  return s.length > 600 ? s.slice(0, 600) + '...' : s
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  for (const name of args.scenarios) {
    const fn = scenarios[name]
    if (!fn) {
      console.log(`RESULT ${name} FAIL scenario not implemented by the kafkajs driver`)
      continue
    }
    const ctx = new Ctx(args, name)
    const start = Date.now()
    let timer
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Failure(`timed out after ${args.scenarioTimeout}s`)), args.scenarioTimeout * 1000)
    })
    try {
      await Promise.race([fn(ctx), timeout])
      console.log(`RESULT ${name} PASS (${((Date.now() - start) / 1000).toFixed(1)}s)`)
    } catch (e) {
      if (!(e instanceof Failure)) console.error(e)
      const reason = e instanceof Failure ? e.message : `${e.name}: ${e.message}`
      console.log(`RESULT ${name} FAIL ${oneLine(reason)}`)
    } finally {
      clearTimeout(timer)
      await Promise.race([ctx.close(), sleep(3000)])
    }
  }
  process.exit(0)
}

main().catch(e => {
  console.error(e)
  process.exit(1)
})
