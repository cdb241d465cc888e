#!/usr/bin/env node
// A kafkajs 2.2.4 reader of a whole topic for a Weir broker, driven by
// test/e2e/archive_test.go (tiered storage: most of the topic is served
// from the archive).
//
//   node archive_read.js <broker host:port> <topic> <group> <counts>
//
// <counts> is a JSON object of partition -> record count. kafkajs has no
// consumer without a group, so a fresh group subscribes from the beginning
// and reads until every partition holds its count. Per partition the
// script checks that offsets run 0, 1, 2, ... without gap, repeat or
// reordering, and digests every record (SHA-256 over
// "offset|timestamp|key|k=v,k=v|value\n", the headers in wire order);
// it prints one JSON document on stdout:
//   {"partitions": {"0": {"count": n, "sha256": "...", "errors": [...]}, ...}}
// and the Go test compares it with the digest of what it produced.
'use strict'

const crypto = require('crypto')
const { newKafka, deadline } = require('./lib')


const [broker, topic, groupId, countsJSON] = process.argv.slice(2)
if (!broker || !topic || !groupId || !countsJSON) {
  process.stderr.write('usage: node archive_read.js <broker host:port> <topic> <group> <counts JSON>\n')
  process.exit(2)
}
const counts = JSON.parse(countsJSON)

deadline('ARCHIVE_READ_TIMEOUT_MS', 120000, ms => `archive_read: not done after ${ms} ms: ${JSON.stringify(summary())}`)

const kafka = newKafka({ clientId: 'weir-e2e-archive-read', broker, requestTimeout: 30000, defaultLevel: 'WARN' })

const state = {}
for (const p of Object.keys(counts)) {
  state[p] = { count: 0, next: 0, hash: crypto.createHash('sha256'), errors: [] }
}

function summary() {
  const out = {}
  for (const [p, s] of Object.entries(state)) {
    out[p] = { count: s.count, next: s.next, errors: s.errors.slice(0, 10) }
  }
  return out
}

function done() {
  return Object.entries(state).every(([p, s]) => s.count >= counts[p])
}

function headerText(headers) {
  if (!headers) return ''
  return Object.keys(headers).flatMap(k =>
    (Array.isArray(headers[k]) ? headers[k] : [headers[k]]).map(v => `${k}=${v == null ? '' : v.toString()}`)
  ).join(',')
}

async function main() {
  const consumer = kafka.consumer({ groupId, maxBytes: 4 << 20, maxBytesPerPartition: 1 << 20, maxWaitTimeInMs: 200 })
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    process.stderr.write(`archive_read: consumer crashed: ${payload.error && payload.error.stack}\n`)
    process.exit(1)
  })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  let finish
  const finished = new Promise(resolve => { finish = resolve })
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      const s = state[String(batch.partition)]
      if (!s) return
      for (const m of batch.messages) {
        const off = Number(m.offset)
        if (off !== s.next) {
          s.errors.push(`offset ${off} after ${s.next - 1}`)
        }
        s.next = off + 1
        s.count++
        s.hash.update(`${m.offset}|${m.timestamp}|${m.key == null ? '' : m.key.toString()}|${headerText(m.headers)}|${m.value == null ? '' : m.value.toString()}\n`)
      }
      if (done()) finish()
    },
  })
  await finished
  await consumer.stop()
  await consumer.disconnect()
  const out = { partitions: {} }
  for (const [p, s] of Object.entries(state)) {
    out.partitions[p] = { count: s.count, sha256: s.hash.digest('hex'), errors: s.errors.slice(0, 10) }
  }
  process.stdout.write(JSON.stringify(out) + '\n')
  process.exit(0)
}

main().catch(e => {
  process.stderr.write(`archive_read: ${e.stack || e}\n`)
  process.exit(1)
})
