#!/usr/bin/env node
// A kafkajs 2.2.4 consumer-group member for a Weir broker, driven by
// test/e2e/groups_kafkajs_test.go.
//
//   node group.js <broker host:port> <topic> <group> <client id>
//
// It subscribes to <topic> from the beginning (when the group has no
// committed offset) and prints every record it consumes as one JSON line
// on stdout: {"p": partition, "o": "offset", "v": "value"}. kafkajs
// auto-commits what eachMessage resolved after every batch and before it
// rejoins a rebalancing group. SIGTERM (or SIGINT) disconnects cleanly:
// the consumer commits and sends LeaveGroup, then the script exits 0.
// Group events and kafkajs logs go to stderr.
'use strict'

const { newKafka, deadline } = require('./lib')


const [broker, topic, groupId, clientId] = process.argv.slice(2)
if (!broker || !topic || !groupId || !clientId) {
  process.stderr.write('usage: node group.js <broker host:port> <topic> <group> <client id>\n')
  process.exit(2)
}

// A hard deadline so a wedged broker never leaves the process behind.
deadline('GROUP_TIMEOUT_MS', 120000, ms => `group: still running after ${ms} ms, exiting`)

const kafka = newKafka({ clientId, broker })

const consumer = kafka.consumer({
  groupId,
  sessionTimeout: Number(process.env.GROUP_SESSION_TIMEOUT_MS || 6000),
  rebalanceTimeout: 20000,
  heartbeatInterval: 500,
  // The fetch long-poll must stay well below the session timeout: kafkajs
  // heartbeats between batches.
  maxWaitTimeInMs: 250,
  retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
})

// kafkajs logs each join (with the assignment) at INFO.
const { CRASH, REBALANCING, STOP } = consumer.events
consumer.on(REBALANCING, () => process.stderr.write('group: rebalancing\n'))
consumer.on(STOP, () => process.stderr.write('group: stopped\n'))
consumer.on(CRASH, e => {
  const { error, restart } = e.payload
  process.stderr.write(`group: consumer crashed (restart: ${restart}): ${error && error.stack}\n`)
  if (!restart) process.exit(5)
})

let stopping = false
async function shutdown(signal) {
  if (stopping) return
  stopping = true
  process.stderr.write(`group: ${signal}, disconnecting\n`)
  try {
    await consumer.disconnect()
  } catch (e) {
    process.stderr.write(`group: disconnect failed: ${e.stack}\n`)
    process.exit(6)
  }
  process.exit(0)
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))

async function main() {
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      // Writes to a pipe are synchronous on Linux: a line printed is a
      // record processed before kafkajs resolves its offset.
      process.stdout.write(JSON.stringify({ p: partition, o: message.offset, v: message.value.toString() }) + '\n')
    },
  })
  process.stderr.write('group: running\n')
}

main().catch(e => {
  process.stderr.write(`group: ${e.stack}\n`)
  process.exit(1)
})
