// The log-compaction scenario of the kafkajs driver (see main.js): the same input and expected list as
// drivers/common.py (log_compaction), java/.../Compaction.java and franz/compaction.go.
'use strict'

// Aggressive cleaner settings; tombstones stay a day (delete.retention.ms), so the result is fixed.
const CONFIGS = { 'cleanup.policy': 'compact', 'segment.ms': '100', 'min.cleanable.dirty.ratio': '0.01',
  'delete.retention.ms': '86400000' }
// [key, value]; a null value is a tombstone. ROLL is written after segment.ms so Kafka (which rolls a segment only
// on an append) seals the segment holding WRITES.
const WRITES = [['k1', 'a1'], ['k2', 'b1'], ['k3', 'c1'], ['k1', 'a2'], ['k2', null], ['k4', 'd1'], ['k1', 'a3'],
  ['k3', 'c2']]
const ROLL = [['s1', 'x']]
// [offset, key, value] of Apache Kafka 4.4.0's cleaned log.
const EXPECTED = [[4, 'k2', null], [5, 'k4', 'd1'], [6, 'k1', 'a3'], [7, 'k3', 'c2'], [8, 's1', 'x']]

module.exports = ({ Failure, sleep, fetchAll }) => ({
  async 'log-compaction'(ctx) {
    const admin = await ctx.admin()
    const t = ctx.topic('')
    const configEntries = Object.entries(CONFIGS).map(([name, value]) => ({ name, value }))
    const created = await admin.createTopics({ timeout: ctx.timeoutMs, waitForLeaders: true,
      topics: [{ topic: t, numPartitions: 1, replicationFactor: 1, configEntries }] })
    if (created !== true) throw new Failure(`createTopics ${t}: ${created}`)
    const p = await ctx.producer()
    const send = async kvs => {
      for (const [key, value] of kvs) await p.send({ topic: t, acks: -1, messages: [{ partition: 0, key, value }] })
    }
    await sleep(500)
    await send(WRITES)
    await sleep(1500)
    await send(ROLL)
    const deadline = Date.now() + 30000
    for (;;) {
      const last = JSON.stringify((await fetchAll(ctx, t, 1, undefined, { gaps: true })).map(r => [r.offset, r.key, r.value]))
      if (last === JSON.stringify(EXPECTED)) return
      if (Date.now() > deadline) {
        throw new Failure(`log not cleaned to the expected records within 30s: expected ${JSON.stringify(EXPECTED)}, last read ${last}`)
      }
      await sleep(1000)
    }
  },
})
