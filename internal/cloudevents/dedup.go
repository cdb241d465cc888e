package cloudevents

import (
	"crypto/sha256"
	"sync"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
)

// dedup remembers, for a window, which source+id pairs each topic stored
// and where, so a retried POST answers with the original position instead
// of writing again. A pair being written is claimed: a concurrent request
// for it waits for the outcome. After a restart each topic's memory is
// rebuilt from the window's tail of its partitions on first use.
type dedup struct {
	window time.Duration
	max    int

	mu      sync.Mutex
	entries map[[32]byte]*dedupEntry
	order   []*dedupEntry // settled entries, oldest first
	head    int
	warmed  map[[16]byte]*sync.Once
}

// dedupEntry is one claimed or stored pair.
type dedupEntry struct {
	key  [32]byte
	done chan struct{} // closed once settled

	// Set before done closes.
	ok        bool
	partition int32
	offset    int64
	expires   time.Time
}

func newDedup(window time.Duration, max int) *dedup {
	return &dedup{window: window, max: max, entries: map[[32]byte]*dedupEntry{}, warmed: map[[16]byte]*sync.Once{}}
}

// dedupKey names a pair within a topic, by the topic's id so that a topic
// deleted and created again starts afresh.
func dedupKey(topicID [16]byte, source, id string) [32]byte {
	h := sha256.New()
	h.Write(topicID[:])
	h.Write([]byte(source))
	h.Write([]byte{0})
	h.Write([]byte(id))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// claim returns the entry for k: an existing one to wait on (owner false),
// or a new claim the caller must settle with complete (owner true).
func (d *dedup) claim(k [32]byte, now time.Time) (e *dedupEntry, owner bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sweep(now)
	if e := d.entries[k]; e != nil {
		select {
		case <-e.done:
			if e.ok && now.Before(e.expires) {
				return e, false
			}
		default:
			return e, false // being written
		}
	}
	e = &dedupEntry{key: k, done: make(chan struct{})}
	d.entries[k] = e
	return e, true
}

// complete settles a claim: stored at partition/offset, or released.
func (d *dedup) complete(e *dedupEntry, ok bool, partition int32, offset int64, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-e.done:
		return
	default:
	}
	e.ok, e.partition, e.offset, e.expires = ok, partition, offset, now.Add(d.window)
	close(e.done)
	if !ok {
		if d.entries[e.key] == e {
			delete(d.entries, e.key)
		}
		return
	}
	d.order = append(d.order, e)
}

// forget drops the pairs of records that were appended but never became
// durable, so that a retry writes them again.
func (d *dedup) forget(ps []pending) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range ps {
		if p.claim != nil && d.entries[p.claim.key] == p.claim {
			delete(d.entries, p.claim.key)
		}
	}
}

// sweep drops expired entries and those past the size bound, oldest
// first. d.mu is held.
func (d *dedup) sweep(now time.Time) {
	for d.head < len(d.order) {
		e := d.order[d.head]
		if len(d.order)-d.head <= d.max && now.Before(e.expires) {
			break
		}
		if d.entries[e.key] == e {
			delete(d.entries, e.key)
		}
		d.order[d.head] = nil
		d.head++
	}
	if d.head > 1024 && d.head*2 > len(d.order) {
		d.order = append([]*dedupEntry(nil), d.order[d.head:]...)
		d.head = 0
	}
}

// remember adds a stored pair found in the log.
func (d *dedup) remember(k [32]byte, partition int32, offset int64, expires time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.entries[k]; ok {
		return
	}
	e := &dedupEntry{key: k, done: make(chan struct{}), ok: true, partition: partition, offset: offset, expires: expires}
	close(e.done)
	d.entries[k] = e
	d.order = append(d.order, e)
}

// maxWarmRecords bounds the records read per partition to rebuild the
// memory of one topic.
const maxWarmRecords = 100000

// warm rebuilds t's pairs from the records written within the window, once
// per topic and process; concurrent first requests wait for it.
func (d *dedup) warm(t *broker.Topic, g *Gateway) {
	d.mu.Lock()
	once := d.warmed[t.ID]
	if once == nil {
		once = new(sync.Once)
		d.warmed[t.ID] = once
	}
	d.mu.Unlock()
	once.Do(func() {
		since := g.opts.Now().Add(-d.window).UnixMilli()
		for _, p := range t.Partitions() {
			d.warmPartition(t, p, since, g)
		}
	})
}

func (d *dedup) warmPartition(t *broker.Topic, p *broker.Partition, since int64, g *Gateway) {
	hw := p.HighWatermark()
	from, _, err := p.ListOffset(since)
	if err != nil || from < 0 {
		return // nothing written within the window
	}
	from = max(from, hw-maxWarmRecords, p.LogStartOffset())
	_, err = readRecords(p, from, hw, 1<<20, func(offset, ts int64, r batch.Record) bool {
		var id, source string
		for _, h := range r.Headers {
			switch h.Key {
			case headerPrefix + "id":
				id = string(h.Value)
			case headerPrefix + "source":
				source = string(h.Value)
			}
		}
		if id != "" && source != "" {
			d.remember(dedupKey(t.ID, source, id), p.Index(), offset, time.UnixMilli(ts).Add(d.window))
		}
		return true
	})
	if err != nil {
		g.log.Warn("cloudevents: rebuilding idempotence memory", "topic", t.Name, "partition", p.Index(), "err", err)
	}
}
