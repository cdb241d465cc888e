// What the kafkajs test scripts share: loading kafkajs (exit 3 with a
// clear line when `npm ci` has not run), a client whose every log line
// goes to stderr (stdout carries only the script's result), and a hard
// deadline so a wedged broker never leaves a process behind.
'use strict'

function requireKafkajs() {
  try {
    return require('kafkajs')
  } catch (e) {
    process.stderr.write(`cannot load kafkajs (run npm ci in test/kafkajs): ${e.message}\n`)
    process.exit(3)
  }
}

const kafkajs = requireKafkajs()

// newKafka returns a client of broker; KAFKAJS_LOG_LEVEL overrides the
// log level (default defaultLevel).
function newKafka({ clientId, broker, requestTimeout = 10000, retries = 5, defaultLevel = 'INFO' }) {
  const { Kafka, logLevel } = kafkajs
  const levels = { NOTHING: logLevel.NOTHING, ERROR: logLevel.ERROR, WARN: logLevel.WARN, INFO: logLevel.INFO, DEBUG: logLevel.DEBUG }
  const level = levels[(process.env.KAFKAJS_LOG_LEVEL || defaultLevel).toUpperCase()] ?? levels[defaultLevel]
  const logCreator = () => ({ namespace, label, log }) => {
    const { timestamp, message, ...rest } = log
    process.stderr.write(`${timestamp} ${label} [${namespace}] ${message} ${JSON.stringify(rest)}\n`)
  }
  return new Kafka({
    clientId,
    brokers: [broker],
    connectionTimeout: 3000,
    requestTimeout,
    retry: { retries, initialRetryTime: 100, maxRetryTime: 1000 },
    logLevel: level,
    logCreator,
  })
}

// deadline exits the process with status 4 after the milliseconds in the
// environment variable envVar (default defMs), writing message() to
// stderr; the timer does not keep the process alive.
function deadline(envVar, defMs, message) {
  const ms = Number(process.env[envVar] || defMs)
  const timer = setTimeout(() => {
    process.stderr.write(`${message(ms)}\n`)
    process.exit(4)
  }, ms)
  timer.unref()
  return timer
}

module.exports = { kafkajs, newKafka, deadline }
