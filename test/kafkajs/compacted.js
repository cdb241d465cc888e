#!/usr/bin/env node
// A kafkajs 2.2.4 group consumer of a compacted topic, driven by
// test/e2e/compaction_test.go.
//
//   node compacted.js <broker host:port> <topic> <group> <last offset>
//
// It subscribes to <topic> (partition 0 matters) from the beginning, or
// from the group's committed offset, and prints every record it consumes
// as one JSON line on stdout: {"o": "offset", "k": base64 | null,
// "v": base64 | null}. Once it has consumed the record at <last offset>
// it disconnects (committing what it resolved) and exits 0; if it never
// gets there the test's timeout kills it. Logs go to stderr.
'use strict'

const { newKafka } = require('./lib')


const [broker, topic, groupId, last] = process.argv.slice(2)
if (!broker || !topic || !groupId || last === undefined) {
  process.stderr.write('usage: node compacted.js <broker host:port> <topic> <group> <last offset>\n')
  process.exit(2)
}

const kafka = newKafka({ clientId: 'weir-e2e-compacted', broker })

const consumer = kafka.consumer({
  groupId,
  sessionTimeout: 10000,
  heartbeatInterval: 500,
  maxWaitTimeInMs: 100,
  retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
})

// Every fetch's position, so a consumer that stops advancing shows where.
consumer.on(consumer.events.END_BATCH_PROCESS, e => {
  const { partition, firstOffset, lastOffset, batchSize, offsetLag } = e.payload
  process.stderr.write(`batch: p${partition} first ${firstOffset} last ${lastOffset} size ${batchSize} lag ${offsetLag}\n`)
})

const b64 = b => (b === null || b === undefined ? null : b.toString('base64'))
let done = false

async function main() {
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      process.stdout.write(JSON.stringify({ p: partition, o: message.offset, k: b64(message.key), v: b64(message.value) }) + '\n')
      if (message.offset === last && !done) {
        done = true
        // Let kafkajs resolve this offset and commit after the batch.
        setTimeout(async () => {
          await consumer.disconnect()
          process.exit(0)
        }, 200)
      }
    },
  })
}

main().catch(e => {
  process.stderr.write(`compacted: ${e.stack}\n`)
  process.exit(1)
})
