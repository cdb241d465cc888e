package stream

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kgo"
)

// clock tracks event time on one input partition of a task.
//
// On a source topic the partition's watermark is the newest event time
// seen minus the allowed out-of-orderness. On a repartition topic, where
// every upstream task writes, records arrive in no useful time order, so
// the watermark is the minimum of the watermarks the upstream tasks wrote
// into the partition as marker records (see marker).
type clock struct {
	bound, idle int64 // ms; idle 0 = never idle
	max         int64 // newest event time seen, minTime before the first
	last        int64 // wall clock of the last record, or of the task's opening
	ended       bool  // end of input: the watermark is maxTime
	marks       []int64
	table       bool // a table's source partition: always idle (see isIdle)
}

func newClock(spec *sourceSpec, producers int32, now int64) *clock {
	c := &clock{max: minTime, last: now, table: spec.table}
	if spec.repartition {
		c.marks = make([]int64, producers)
		for i := range c.marks {
			c.marks[i] = minTime
		}
		return c
	}
	c.bound, c.idle = spec.opts.bound.Milliseconds(), spec.opts.idle.Milliseconds()
	return c
}

func (c *clock) observe(ts, now int64) {
	c.max = max(c.max, ts)
	c.last = now
}

func (c *clock) mark(producer int32, wm int64, now int64) {
	if int(producer) < len(c.marks) && wm > c.marks[producer] {
		c.marks[producer] = wm
	}
	c.last = now
}

func (c *clock) watermark() int64 {
	switch {
	case c.ended:
		return maxTime
	case c.marks != nil:
		return minOf(c.marks)
	case c.max == minTime:
		return minTime
	}
	return c.max - c.bound
}

func minOf(xs []int64) int64 {
	m := int64(maxTime)
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

// isIdle reports whether the partition is left out of the task watermark.
// A table's source partition always is: a table is state, read as it
// changes, and a rarely updated table must not hold back the windows of the
// streams it is joined with. It still ends (end of input).
func (c *clock) isIdle(now int64) bool { return c.table || c.idle > 0 && now-c.last >= c.idle }

// Watermark markers. An upstream task writes one to every partition of
// each repartition topic it writes, at commit, when its watermark has
// advanced since the last marker. It has a null key and value and two
// headers:
//
//	weir.stream.wm    int64 BE: the upstream task's watermark (Unix ms;
//	                  math.MaxInt64 = end of its input)
//	weir.stream.task  int32 BE: the upstream task's partition
//
// Written after the task's records in the same partition (one producer,
// ordered), a marker tells the downstream task that the upstream task
// sends nothing older, save late records.
const (
	markerWM   = "weir.stream.wm"
	markerTask = "weir.stream.task"
)

func markerRecord(topic string, partition, producer int32, wm, now int64) *kgo.Record {
	return &kgo.Record{
		Topic: topic, Partition: partition, Timestamp: msTime(now),
		Headers: []kgo.RecordHeader{
			{Key: markerWM, Value: binary.BigEndian.AppendUint64(nil, uint64(wm))},
			{Key: markerTask, Value: binary.BigEndian.AppendUint32(nil, uint32(producer))},
		},
	}
}

// marker decodes a marker record.
func marker(r *kgo.Record) (producer int32, wm int64, ok bool) {
	if r.Value != nil || len(r.Headers) != 2 || r.Headers[0].Key != markerWM || r.Headers[1].Key != markerTask ||
		len(r.Headers[0].Value) != 8 || len(r.Headers[1].Value) != 4 {
		return 0, 0, false
	}
	return int32(binary.BigEndian.Uint32(r.Headers[1].Value)), int64(binary.BigEndian.Uint64(r.Headers[0].Value)), true
}
