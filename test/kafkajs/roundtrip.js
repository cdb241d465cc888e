#!/usr/bin/env node
// kafkajs 2.2.4 round trip against a Weir broker, driven by
// test/e2e/kafkajs_test.go.
//
//   node roundtrip.js <broker host:port> <topic>
//   (or WEIR_BROKER / WEIR_TOPIC in the environment)
//
// It creates <topic> (3 partitions) and <topic>-idem (1 partition) with the
// Admin client, checks them with fetchTopicMetadata, produces keyed records
// with headers and explicit timestamps (acks -1, gzip) and with an
// idempotent producer (maxInFlightRequests 1), and checks fetchTopicOffsets
// and fetchTopicOffsetsByTimestamp. kafkajs has no consumer without a group,
// so the Go test reads the records back with franz-go: this script prints
// everything it sent, with the offsets the broker acknowledged, as one JSON
// document on stdout. kafkajs' own logs go to stderr as JSON lines.
'use strict'

const { kafkajs, newKafka, deadline } = require('./lib')
const { CompressionTypes, Partitioners } = kafkajs


const broker = process.argv[2] || process.env.WEIR_BROKER
const topic = process.argv[3] || process.env.WEIR_TOPIC
if (!broker || !topic) {
  process.stderr.write('usage: node roundtrip.js <broker host:port> <topic>\n')
  process.exit(2)
}
const idemTopic = `${topic}-idem`

// A hard deadline so a wedged broker never hangs the Go test.
const timer = deadline('ROUNDTRIP_TIMEOUT_MS', 25000, ms => `roundtrip: no result after ${ms} ms`)

const kafka = newKafka({ clientId: 'weir-e2e-kafkajs', broker, retries: 3 })

function check(cond, msg) {
  if (!cond) throw new Error(`check failed: ${msg}`)
}

const b64 = v => (v == null ? null : Buffer.from(v).toString('base64'))

// headerList flattens a kafkajs headers object in wire order (arrays become
// repeated keys, exactly as kafkajs encodes them).
function headerList(headers) {
  if (!headers) return []
  return Object.keys(headers).flatMap(k =>
    (Array.isArray(headers[k]) ? headers[k] : [headers[k]]).map(v => ({ key: k, value: b64(v) }))
  )
}

// record turns a sent message into the JSON the Go test compares against.
const record = (topicName, partition, offset, m, extra) => ({
  topic: topicName,
  partition,
  offset,
  key: b64(m.key),
  value: b64(m.value),
  timestamp: Number(m.timestamp),
  headers: headerList(m.headers),
  ...extra,
})

// assign gives each message of one send its offset: kafkajs sends the
// messages of a partition as one batch, in order, and reports its base
// offset per partition.
function assign(topicName, messages, metadata, extra) {
  const next = {}
  for (const md of metadata) {
    check(md.topicName === topicName, `ack for topic ${md.topicName}, want ${topicName}`)
    check(md.errorCode === 0, `ack error code ${md.errorCode} for partition ${md.partition}`)
    next[md.partition] = Number(md.baseOffset)
  }
  return messages.map(m => {
    check(next[m.partition] !== undefined, `no ack for partition ${m.partition}: ${JSON.stringify(metadata)}`)
    return record(topicName, m.partition, next[m.partition]++, m, extra)
  })
}

async function main() {
  const out = { topic, idemTopic, records: [] }
  const admin = kafka.admin()
  await admin.connect()
  try {
    // Admin: create, create again (already exists => false), metadata.
    out.created = await admin.createTopics({
      topics: [
        { topic, numPartitions: 3, replicationFactor: 1 },
        { topic: idemTopic, numPartitions: 1, replicationFactor: 1 },
      ],
      waitForLeaders: true,
    })
    check(out.created === true, `createTopics returned ${out.created}, want true`)
    out.createdAgain = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true })
    check(out.createdAgain === false, `second createTopics returned ${out.createdAgain}, want false`)

    const md = await admin.fetchTopicMetadata({ topics: [topic, idemTopic] })
    out.metadata = md.topics.map(t => ({
      name: t.name,
      partitions: t.partitions
        .map(p => ({ partitionId: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr, partitionErrorCode: p.partitionErrorCode }))
        .sort((a, b) => a.partitionId - b.partitionId),
    }))
    const byName = Object.fromEntries(out.metadata.map(t => [t.name, t]))
    check(byName[topic] && byName[topic].partitions.length === 3, `metadata for ${topic}: ${JSON.stringify(byName[topic])}`)
    check(byName[idemTopic] && byName[idemTopic].partitions.length === 1, `metadata for ${idemTopic}: ${JSON.stringify(byName[idemTopic])}`)
    for (const t of out.metadata) {
      for (const p of t.partitions) {
        check(p.leader === 0 && p.partitionErrorCode === 0, `${t.name}[${p.partitionId}]: ${JSON.stringify(p)}`)
      }
    }

    // Producer: acks -1, gzip, headers (strings, binary, repeated keys),
    // explicit timestamps (also out of order inside one batch), a NULL key
    // and a tombstone.
    const base = Date.now() - 3600 * 1000
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false })
    await producer.connect()
    try {
      for (let p = 0; p < 3; p++) {
        const messages = []
        for (let i = 0; i < 5; i++) {
          messages.push({
            partition: p,
            key: `key-${p}-${i}`,
            value: `value ${p}/${i} héllo ✓ ` + 'kafkajs-gzip '.repeat(20),
            timestamp: String(base + p * 100000 + (i === 2 ? -5000 : i * 1000)),
            headers: {
              'trace-id': `t-${p}-${i}`,
              bin: Buffer.from([0, 1, 2, 255, p, i]),
              dup: ['first', 'second'],
            },
          })
        }
        messages.push({ partition: p, key: null, value: `no key ${p}`, timestamp: String(base + p * 100000 + 9000) })
        messages.push({ partition: p, key: `tombstone-${p}`, value: null, timestamp: String(base + p * 100000 + 9500), headers: { empty: '' } })
        const md = await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages })
        out.records.push(...assign(topic, messages, md, { codec: 1, idempotent: false }))
      }
      // One send spanning all partitions (sendBatch).
      const batch = [0, 1, 2].map(p => ({
        partition: p,
        key: Buffer.from([0xde, 0xad, 0xbe, 0xef, p]),
        value: Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 13 + p) & 0xff)),
        timestamp: String(base + 500000 + p),
        headers: { batch: 'sendBatch' },
      }))
      const md = await producer.sendBatch({
        acks: -1,
        compression: CompressionTypes.GZIP,
        topicMessages: [{ topic, messages: batch }],
      })
      out.records.push(...assign(topic, batch, md, { codec: 1, idempotent: false }))
    } finally {
      await producer.disconnect()
    }

    // Idempotent producer, one request in flight, several sends. (kafkajs
    // warns that limited retries may break EoS; bounded retries keep a
    // failing run short.)
    const idem = kafka.producer({
      createPartitioner: Partitioners.DefaultPartitioner,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    })
    await idem.connect()
    try {
      for (let s = 0; s < 4; s++) {
        const messages = []
        for (let i = 0; i < 3; i++) {
          messages.push({
            partition: 0,
            key: `idem-${s}-${i}`,
            value: `idempotent send ${s} record ${i}`,
            timestamp: String(base + 700000 + s * 10 + i),
            headers: { seq: `${s * 3 + i}` },
          })
        }
        const md = await idem.send({ topic: idemTopic, acks: -1, messages })
        out.records.push(...assign(idemTopic, messages, md, { codec: 0, idempotent: true }))
      }
    } finally {
      await idem.disconnect()
    }

    // Offsets: high watermark = records per partition, low = 0.
    out.offsets = {}
    for (const t of [topic, idemTopic]) {
      const offs = await admin.fetchTopicOffsets(t)
      out.offsets[t] = offs
        .map(o => ({ partition: o.partition, high: Number(o.high), low: Number(o.low) }))
        .sort((a, b) => a.partition - b.partition)
      for (const o of out.offsets[t]) {
        const n = out.records.filter(r => r.topic === t && r.partition === o.partition).length
        check(o.high === n && o.low === 0, `fetchTopicOffsets ${t}[${o.partition}] = ${JSON.stringify(o)}, want high ${n} low 0`)
      }
    }

    // Offsets by timestamp: the first offset whose timestamp is >= ts.
    out.byTimestamp = []
    for (const ts of [base, base + 1500, base + 100000 + 3500, base + 500001]) {
      const offs = await admin.fetchTopicOffsetsByTimestamp(topic, ts)
      out.byTimestamp.push({
        timestamp: ts,
        offsets: offs.map(o => ({ partition: o.partition, offset: Number(o.offset) })).sort((a, b) => a.partition - b.partition),
      })
    }
  } finally {
    await admin.disconnect()
  }
  return out
}

main().then(
  out => {
    clearTimeout(timer)
    process.stdout.write(JSON.stringify(out) + '\n')
  },
  err => {
    clearTimeout(timer)
    const extra = {}
    for (const k of ['name', 'type', 'code', 'retriable', 'broker', 'topic', 'partition']) {
      if (err && err[k] !== undefined) extra[k] = err[k]
    }
    process.stderr.write(`roundtrip failed: ${err && err.stack ? err.stack : err} ${JSON.stringify(extra)}\n`)
    if (err && err.errors) process.stderr.write(`  errors: ${JSON.stringify(err.errors)}\n`)
    if (err && err.cause) process.stderr.write(`  cause: ${err.cause.stack || err.cause}\n`)
    process.exitCode = 1
  }
)
