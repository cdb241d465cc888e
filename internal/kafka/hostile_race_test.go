//go:build race

package kafka

// raceDetector is whether the race detector is on: it makes accepting and
// serving connections several times slower, so the connection-scale tests
// scale down under it.
const raceDetector = true
