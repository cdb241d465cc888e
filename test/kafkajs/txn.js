#!/usr/bin/env node
// kafkajs 2.2.4 transactions against a Weir broker, driven by
// test/e2e/transactions_kafkajs_test.go.
//
//   node txn.js <broker host:port> <in topic> <out topic> <offsets group> <read group>
//
// Both topics have 4 partitions; <in topic> already holds at least 4
// records per partition. A transactional producer runs three
// transactions on <out topic>, two records per partition each:
//   t1: send, sendOffsets(<offsets group>, <in topic> offset 2), commit
//   t2: send, sendOffsets(<offsets group>, <in topic> offset 4), abort
//   t3: send, commit
// Values are "t<n>-<committed|aborted>-p<partition>-<i>". Then a consumer
// of <read group> (readUncommitted: false) reads <out topic> from the
// beginning until it has the 16 committed records, and the script prints
// one JSON object on stdout: {"consumed": [{"p", "o", "v"}...]} in the
// order received. Every check is the Go test's; logs go to stderr.
'use strict'

const { newKafka, deadline } = require('./lib')


const [broker, inTopic, outTopic, offsetsGroup, readGroup] = process.argv.slice(2)
if (!broker || !inTopic || !outTopic || !offsetsGroup || !readGroup) {
  process.stderr.write('usage: node txn.js <broker> <in topic> <out topic> <offsets group> <read group>\n')
  process.exit(2)
}

deadline('TXN_TIMEOUT_MS', 30000, ms => `txn: still running after ${ms} ms, exiting`)

const kafka = newKafka({ clientId: 'weir-e2e-kafkajs-txn', broker })

const PARTITIONS = 4

async function runTransaction(producer, n, commit, offset) {
  const state = commit ? 'committed' : 'aborted'
  const txn = await producer.transaction()
  const messages = []
  for (let i = 0; i < 2; i++) {
    for (let p = 0; p < PARTITIONS; p++) {
      messages.push({ partition: p, key: String(i), value: `t${n}-${state}-p${p}-${i}` })
    }
  }
  await txn.send({ topic: outTopic, acks: -1, messages })
  if (offset !== undefined) {
    const partitions = []
    for (let p = 0; p < PARTITIONS; p++) partitions.push({ partition: p, offset: String(offset) })
    await txn.sendOffsets({ consumerGroupId: offsetsGroup, topics: [{ topic: inTopic, partitions }] })
  }
  if (commit) await txn.commit()
  else await txn.abort()
  process.stderr.write(`txn: t${n} ${state}\n`)
}

async function main() {
  const producer = kafka.producer({ transactionalId: 'weir-e2e-kafkajs-txn', idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  await runTransaction(producer, 1, true, 2)
  await runTransaction(producer, 2, false, 4)
  await runTransaction(producer, 3, true)
  await producer.disconnect()

  const want = 2 * 2 * PARTITIONS
  const consumed = []
  const consumer = kafka.consumer({
    groupId: readGroup,
    readUncommitted: false,
    maxWaitTimeInMs: 250,
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 1000 },
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [outTopic], fromBeginning: true })
  let resolveDone
  const done = new Promise(resolve => { resolveDone = resolve })
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      consumed.push({ p: partition, o: message.offset, v: message.value.toString() })
      if (consumed.length >= want) resolveDone()
    },
  })
  await done
  await consumer.disconnect()
  process.stdout.write(JSON.stringify({ consumed }) + '\n')
}

main().then(() => process.exit(0), e => {
  process.stderr.write(`txn: ${e.stack}\n`)
  process.exit(1)
})
