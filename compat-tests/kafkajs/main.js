// kafkajs driver of the strom compatibility suite.
//
//   node main.js --bootstrap 127.0.0.1:P --run-id ID --scenarios a,b,c [--call-timeout 30] [--scenario-timeout 120]
//
// Prints one line per scenario: "RESULT <scenario> PASS" or "RESULT <scenario> FAIL <reason>"
// (the protocol of compat-tests/drivers/common.py).
'use strict'

const { Kafka, logLevel, ConfigResourceTypes, CompressionTypes, CompressionCodecs } = require('kafkajs')

// kafkajs ships GZIP only; the other codecs come from packages pinned in package.json. Snappy: kafkajs-snappy
// (snappyjs, pure JS). LZ4: lz4js (pure JS) frames, wrapped here. ZSTD: @mongodb-js/zstd (napi binary from npm).
const lz4js = require('lz4js')
const xxh32 = require('lz4js/xxh32')
const zstd = require('@mongodb-js/zstd')
CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy')
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  // lz4js writes one 4 MiB block per 4 MiB of input but leaves the frame's block-independence flag clear, which
  // Kafka refuses ("Dependent block stream is unsupported"). A single block is independent: set the flag (FLG bit 5)
  // and recompute the header checksum (second byte of xxh32 over FLG and BD).
  async compress(encoder) {
    if (encoder.buffer.length > 4 << 20) throw new Error('lz4 codec: batches over 4 MiB are not supported here')
    const out = Buffer.from(lz4js.compress(encoder.buffer))
    out[4] |= 0x20
    out[6] = (xxh32.hash(0, out, 4, 2) >> 8) & 0xff
    return out
  },
  async decompress(buffer) {
    return Buffer.from(lz4js.decompress(buffer))
  },
})
CompressionCodecs[CompressionTypes.ZSTD] = () => ({
  async compress(encoder) {
    return zstd.compress(encoder.buffer, 3)
  },
  async decompress(buffer) {
    return zstd.decompress(buffer)
  },
})
const CODECS = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP, snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4, zstd: CompressionTypes.ZSTD }

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

  // A diagnostics line on stdout (kept in the client's log by compat-tests/run).
  log(msg) {
    console.log(`[kafkajs ${this.scenario}] ${msg}`)
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

  async producer(opts) {
    const p = this.kafka.producer({ allowAutoTopicCreation: false, ...opts })
    await p.connect()
    this.open.push(p)
    return p
  }

  async close() {
    await Promise.all(this.open.map(c => c.disconnect().catch(() => {})))
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Producing and reading back. kafkajs consumes only through a consumer group (not served by strom yet), so records
// are read back with kafkajs' own Fetch implementation (the cluster/broker objects its consumer uses: Fetch v11
// request, record batch decoding and decompression), one partition leader request at a time, no group.

const N = 2000 // per check in idempotent-producer and acks0: kafkajs is pure JS
// Per codec in produce-consume (the same for every library client, see drivers/common.py).
const CODEC_RECORDS = 100000
const FILLER = 'the quick brown fox jumps over the lazy dog; '.repeat(4)

// The same record shapes as drivers/common.py: record i goes to partition i % partitions, offset i / partitions.
function expectedRecs(tag, first, n, partitions, base) {
  const out = []
  for (let i = first; i < first + n; i++) {
    out.push({
      partition: i % partitions,
      offset: Math.floor(i / partitions),
      key: i % 10 === 0 ? null : `key-${i}`,
      value: `value-${tag}-${String(i).padStart(6, '0')}|` + FILLER.slice(0, 40 + (i % 97)),
      headers: i % 4 === 0 ? [] : [`idx=${i}`, `tag=${tag}`],
      timestamp: base < 0 ? -1 : base + i,
    })
  }
  return out
}

const baseTs = () => (Math.floor(Date.now() / 1000) - 3600) * 1000

function toMessage(r) {
  const m = { partition: r.partition, key: r.key, value: r.value }
  if (r.timestamp >= 0) m.timestamp = String(r.timestamp)
  if (r.headers.length) m.headers = Object.fromEntries(r.headers.map(h => h.split('=', 2)))
  return m
}

// Sends recs in chunks of `chunk` records (one send() each) and checks the base offsets reported per partition.
async function produceAll(p, topic, recs, { acks = -1, compression = CompressionTypes.None, chunk = 250, what }) {
  for (let i = 0; i < recs.length; i += chunk) {
    const part = recs.slice(i, i + chunk)
    const res = await p.send({ topic, acks, compression, timeout: 30000, messages: part.map(toMessage) })
    if (acks === 0) continue
    for (const pr of res) {
      checkEq(pr.errorCode, 0, `${what}: error code for partition ${pr.partition}`)
      const first = part.find(r => r.partition === pr.partition)
      checkEq(pr.baseOffset, String(first.offset), `${what}: base offset of partition ${pr.partition} (records ${i}..)`)
    }
    checkEq(res.length, new Set(part.map(r => r.partition)).size, `${what}: partitions in the send() result`)
  }
}

const CREATE_CLUSTER = sym => String(sym) === 'Symbol(private:Kafka:createCluster)'

// Reads `partitions` partitions from `start` (offset per partition, default 0) until each reaches its high
// watermark (failing when a partition makes no progress for the call timeout); returns records in the expectedRecs
// shape. Offsets must be consecutive unless `gaps` (a compacted log).
async function fetchAll(ctx, topic, partitions, start, { gaps = false } = {}) {
  const create = ctx.kafka[Object.getOwnPropertySymbols(ctx.kafka).find(CREATE_CLUSTER)]
  const cluster = create({ allowAutoTopicCreation: false })
  await cluster.connect()
  try {
    await cluster.addTargetTopic(topic)
    const md = cluster.findTopicPartitionMetadata(topic)
    const got = []
    for (let p = 0; p < partitions; p++) {
      const leader = md.find(x => x.partitionId === p).leader
      const broker = await cluster.findBroker({ nodeId: leader })
      let offset = start ? start[p] : 0
      let high = -1
      let deadline = Date.now() + ctx.timeoutMs
      while ((high < 0 || offset < high) && Date.now() < deadline) {
        const before = offset
        const resp = await broker.fetch({
          isolationLevel: 0, maxWaitTime: 200, minBytes: 1, maxBytes: 8 << 20,
          topics: [{ topic, partitions: [{ partition: p, fetchOffset: String(offset), maxBytes: 4 << 20 }] }],
        })
        const pd = resp.responses[0].partitions[0]
        checkEq(pd.errorCode, 0, `Fetch error code for partition ${p} at offset ${offset}`)
        high = Number(pd.highWatermark)
        for (const m of pd.messages) {
          const o = Number(m.offset)
          if (o < offset) continue // a batch may start before the fetch offset
          check(gaps || o === offset, `partition ${p}: offset ${o} follows ${offset - 1}`)
          checkEq(m.batchContext && m.batchContext.timestampType, 0, `timestamp type (0 = CreateTime) at offset ${o}`)
          const headers = []
          for (const [k, v] of Object.entries(m.headers || {})) {
            for (const x of Array.isArray(v) ? v : [v]) headers.push(`${k}=${x.toString()}`)
          }
          got.push({ partition: p, offset: o, key: m.key === null ? null : m.key.toString(),
            value: m.value === null ? null : m.value.toString(), headers, timestamp: Number(m.timestamp) })
          offset = o + 1
        }
        if (offset > before) deadline = Date.now() + ctx.timeoutMs
      }
      checkEq(offset, high, `partition ${p}: read up to the high watermark`)
    }
    return got
  } finally {
    await cluster.disconnect().catch(() => {})
  }
}

// Per partition: exactly the expected records in order (so offsets are consecutive), nothing missing or extra.
function verifyRecs(got, want, what) {
  const split = rs => rs.reduce((m, r) => { (m[r.partition] = m[r.partition] || []).push(r); return m }, {})
  const g = split(got), w = split(want)
  for (const p of Object.keys(g)) check(p in w, `${what}: records on unexpected partition ${p}`)
  for (const p of Object.keys(w)) {
    const gp = g[p] || [], wp = w[p]
    for (let j = 0; j < Math.min(gp.length, wp.length); j++) {
      const e = wp[j].timestamp < 0 ? { ...wp[j], timestamp: gp[j].timestamp } : wp[j]
      const a = JSON.stringify(gp[j]), b = JSON.stringify(e)
      if (a !== b) throw new Failure(`${what}: partition ${p} record #${j}: got ${a.slice(0, 250)}, expected ${b.slice(0, 250)}`)
    }
    checkEq(gp.length, wp.length, `${what}: record count of partition ${p}`)
  }
}

async function createTopic(admin, ctx, topic, numPartitions) {
  checkEq(await admin.createTopics({ timeout: ctx.timeoutMs, waitForLeaders: true,
    topics: [{ topic, numPartitions, replicationFactor: 1 }] }), true, `createTopics ${topic}`)
}

async function checkEndOffsets(admin, topic, recs, partitions, what) {
  const offs = (await admin.fetchTopicOffsets(topic)).sort((a, b) => a.partition - b.partition)
  const want = []
  for (let p = 0; p < partitions; p++) want.push({ partition: p, low: '0', high: String(recs.filter(r => r.partition === p).length) })
  checkEq(offs.map(o => ({ partition: o.partition, low: o.low, high: o.high })), want, `${what}: fetchTopicOffsets`)
}

// The restart protocol of compat-tests/run: RESTART-BROKER <mode> on stdout, one line back on stdin.
const stdinLines = []
let stdinWaiter = null
let stdinStarted = false
function restartBroker(mode, timeoutMs = 240000) {
  if (!stdinStarted) {
    stdinStarted = true
    const rl = require('readline').createInterface({ input: process.stdin })
    rl.on('line', line => {
      stdinLines.push(line)
      if (stdinWaiter) stdinWaiter()
    })
    rl.on('close', () => {
      stdinLines.push('')
      if (stdinWaiter) stdinWaiter()
    })
  }
  console.log(`RESTART-BROKER ${mode}`)
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Failure(`no answer to RESTART-BROKER ${mode} within ${timeoutMs / 1000}s`)), timeoutMs)
    const take = () => {
      if (!stdinLines.length) return
      stdinWaiter = null
      clearTimeout(timer)
      const line = stdinLines.shift()
      if (line.startsWith('RESTARTED')) resolve(line)
      else reject(new Failure(`broker restart (${mode}) failed: ${line || 'stdin closed'}`))
    }
    stdinWaiter = take
    take()
  })
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

Object.assign(scenarios, {
  async 'produce-consume'(ctx) {
    const admin = await ctx.admin()
    const base = baseTs()
    for (const [codec, type] of Object.entries(CODECS)) {
      const t0 = Date.now()
      const t = ctx.topic(codec)
      await createTopic(admin, ctx, t, 3)
      const recs = expectedRecs(codec, 0, CODEC_RECORDS, 3, base)
      const p = await ctx.producer()
      // One send() (one Produce request, one batch per partition) per 3000 records, awaited in turn: the order of
      // the records and their offsets stay checkable without an idempotent producer.
      await produceAll(p, t, recs, { compression: type, chunk: 3000, what: `${codec}: send` })
      const t1 = Date.now()
      const got = await fetchAll(ctx, t, 3)
      const t2 = Date.now()
      verifyRecs(got, recs, `${codec} round trip`)
      await checkEndOffsets(admin, t, recs, 3, codec)
      const t3 = Date.now()
      const s = ms => (ms / 1000).toFixed(1)
      ctx.log(`${codec}: ${recs.length} records: produce ${s(t1 - t0)}s, consume ${s(t2 - t1)}s, ` +
        `verify ${s(t3 - t2)}s, total ${s(t3 - t0)}s`)
    }
  },

  async 'idempotent-producer'(ctx) {
    const admin = await ctx.admin()
    const t = ctx.topic('idem')
    await createTopic(admin, ctx, t, 3)
    const recs = expectedRecs('idem', 0, N, 3, baseTs())
    const p = await ctx.producer({ idempotent: true, maxInFlightRequests: 1 })
    await produceAll(p, t, recs, { chunk: 100, what: 'idempotent send' })
    verifyRecs(await fetchAll(ctx, t, 3), recs, 'idempotent round trip')
    await checkEndOffsets(admin, t, recs, 3, 'idempotent')
  },

  async acks0(ctx) {
    const admin = await ctx.admin()
    const t = ctx.topic('acks0')
    await createTopic(admin, ctx, t, 3)
    const recs = expectedRecs('acks0', 0, N, 3, baseTs())
    const p = await ctx.producer()
    await produceAll(p, t, recs, { acks: 0, what: 'acks=0 send' })
    await ctx.eventually('all acks=0 records readable', async () => {
      const offs = await admin.fetchTopicOffsets(t)
      return offs.reduce((n, o) => n + Number(o.high), 0) >= N
    })
    verifyRecs(await fetchAll(ctx, t, 3), recs, 'acks=0 round trip')
    await checkEndOffsets(admin, t, recs, 3, 'acks=0')
  },

  async 'offsets-by-timestamp'(ctx) {
    const admin = await ctx.admin()
    const t = ctx.topic('ts')
    await createTopic(admin, ctx, t, 1)
    const base = baseTs()
    const n = 100
    const recs = []
    for (let i = 0; i < n; i++) {
      recs.push({ partition: 0, offset: i, key: `k${i}`, value: `v${i}`, headers: [], timestamp: base + i * 1000 })
    }
    const p = await ctx.producer()
    await produceAll(p, t, recs, { chunk: 10, what: 'send' }) // ten batches of ten: lookups land inside batches
    for (const x of [base - 5000, base, base + 1, base + 5000, base + 5500, base + 42999, base + 99000, base + 99001, base + 1e9]) {
      let want = recs.findIndex(r => r.timestamp >= x)
      if (want < 0) want = n // kafkajs reports "nothing at or after" as the high watermark
      const res = await admin.fetchTopicOffsetsByTimestamp(t, x)
      checkEq(res, [{ partition: 0, offset: String(want) }], `fetchTopicOffsetsByTimestamp(base${x >= base ? '+' : ''}${x - base})`)
    }
    const offs = await admin.fetchTopicOffsets(t)
    checkEq(offs.map(o => [o.partition, o.low, o.high, o.offset]), [[0, '0', String(n), String(n)]],
      'fetchTopicOffsets (partition, low, high, offset)')
    verifyRecs(await fetchAll(ctx, t, 1, [43]), recs.slice(43), 'fetch from offset 43')
  },

  async 'restart-durability'(ctx) {
    const admin = await ctx.admin()
    const t = ctx.topic('durable')
    await createTopic(admin, ctx, t, 2)
    const n = 1000
    const base = baseTs()
    const p = await ctx.producer({ idempotent: true, maxInFlightRequests: 1,
      retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 2000 } })
    const all = []
    for (const [k, mode] of [[0, null], [1, 'term'], [2, 'kill']]) {
      const phase = mode ? `after restart (SIG${mode.toUpperCase()})` : 'before restart'
      if (mode) {
        await restartBroker(mode)
        await ctx.eventually(`topic described ${phase}`, async () => (await describeTopic(admin, t)).partitions.length === 2)
      }
      const recs = expectedRecs('durable', k * n, n, 2, base)
      await produceAll(p, t, recs, { compression: CompressionTypes.GZIP, what: phase })
      all.push(...recs)
    }
    verifyRecs(await fetchAll(ctx, t, 2), all, 'after two restarts')
    await checkEndOffsets(admin, t, all, 2, 'after two restarts')
  },
})

// Transactions (KIP-98): the scenarios and the helpers only they use are in transactions.js.
Object.assign(scenarios, require('./transactions')({ Failure, check, checkEq, sleep, errorTypes, expectError,
  describeTopic, restartBroker, CREATE_CLUSTER }))
// Log compaction (issue 16): compaction.js.
Object.assign(scenarios, require('./compaction')({ Failure, sleep, fetchAll }))

function oneLine(s) {
  s = String(s).replace(/\s+/g, ' ').trim()
  return s.length > 600 ? s.slice(0, 600) + '...' : s
}


// ---------------------------------------------------------------------------------------------------------------
// --member: one consumer-group member (consumer.run with eachBatch), driven by compat-tests/drivers/groups.py; the
// line protocol is described in drivers/member.py. autoCommit is off: every batch is committed (commitOffsets, with
// --commit-metadata as the offset metadata) before the next one, and read back with admin.fetchOffsets.

async function memberMain(argv) {
  const a = {}
  for (let i = 0; i + 1 < argv.length; i += 2) a[argv[i].replace(/^--/, '')] = argv[i + 1]
  const out = s => process.stdout.write(s + '\n')
  const callMs = Number(a['call-timeout'] || 30) * 1000
  const meta = a['commit-metadata'] || null
  const kafka = new Kafka({ clientId: 'strom-compat-kafkajs-member', brokers: [a.bootstrap], logLevel: logLevel.ERROR,
    connectionTimeout: callMs, requestTimeout: callMs, retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 2000 } })
  const opts = { groupId: a.group, sessionTimeout: Number(a['session-timeout-ms'] || 6000),
    heartbeatInterval: Number(a['heartbeat-ms'] || 1000), rebalanceTimeout: 20000, maxWaitTimeInMs: 200,
    allowAutoTopicCreation: false, retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 2000 } }
  const consumer = kafka.consumer(opts)
  const admin = meta ? kafka.admin() : null
  let current = []
  const report = () => out('ASSIGNED ' + (current.length ? current.slice().sort((x, y) => x - y).join(',') : '-'))
  consumer.on(consumer.events.GROUP_JOIN, e => {
    current = (e.payload.memberAssignment[a.topic] || []).slice()
    report()
  })
  consumer.on(consumer.events.CRASH, e => {
    const err = e.payload.error
    // A retriable crash (e.g. the broker restarting) restarts the consumer by itself: logged, not fatal.
    if (e.payload.restart) console.error('consumer crashed, restarting:', err && err.message)
    else out('ERROR consumer crashed: ' + String(err && err.message).replace(/\s+/g, ' '))
  })
  let stopping = false
  require('readline').createInterface({ input: process.stdin }).on('line', l => { if (l.trim() === 'close') stop() })
    .on('close', () => stop())
  async function stop() {
    if (stopping) return
    stopping = true
    try {
      await Promise.race([consumer.disconnect(), sleep(callMs).then(() => { throw new Error('disconnect timed out') })])
      if (admin) await admin.disconnect().catch(() => {})
      out('CLOSED')
    } catch (e) {
      out('ERROR disconnect: ' + e.message)
    }
    process.exit(0)
  }
  await consumer.connect()
  if (admin) await admin.connect()
  await consumer.subscribe({ topics: [a.topic], fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, resolveOffset }) => {
      if (!batch.messages.length) return
      for (const m of batch.messages) {
        out(`RECORD ${batch.partition} ${m.offset} ${m.value.toString()}`)
        resolveOffset(m.offset)
      }
      const next = String(Number(batch.messages[batch.messages.length - 1].offset) + 1)
      try {
        await consumer.commitOffsets([{ topic: a.topic, partition: batch.partition, offset: next, metadata: meta }])
      } catch (e) {
        // The group moved on (e.g. the coordinator forgot this member): kafkajs rejoins, the records come again.
        // (Rethrown, kafkajs would crash for good: its retrier wraps the error as non-retriable.) Not rethrown: the
        // next heartbeat fails the same way and kafkajs rejoins, then fetches from the committed offsets.
        const types = errorTypes(e)
        if (!['UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION', 'REBALANCE_IN_PROGRESS'].some(t => types.includes(t))) throw e
        out(`COMMIT-FAILED commitOffsets: ${types}: ${String(e.message).replace(/\s+/g, ' ')}`)
      }
      if (meta) {
        const got = await admin.fetchOffsets({ groupId: a.group, topics: [a.topic] })
        const p = got[0].partitions.find(x => x.partition === batch.partition)
        out(`COMMITTED ${batch.partition}:${p ? p.offset : 'null'}:${p ? p.metadata : 'null'}`)
      }
    },
  })
  out('READY')
}

async function main() {
  if (process.argv[2] === '--member') return memberMain(process.argv.slice(3))
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
