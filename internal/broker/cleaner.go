package broker

import (
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/commitlog"
	"github.com/weirhq/weir/internal/metrics"
)

// The cleaner compacts the partitions of topics with cleanup.policy
// compact (or compact,delete), internal topics included: every
// Options.CleanerBackoff it looks at each such partition and cleans it
// (commitlog.Clean) when its dirty ratio — the sealed bytes written since
// the last clean over all sealed bytes — reaches min.cleanable.dirty.ratio,
// or when its oldest uncleaned segment is older than max.compaction.lag.ms.
// A clean stops at the partition's last stable offset (open transactions
// are never looked into) and before segments newer than
// min.compaction.lag.ms; tombstones go delete.retention.ms after they were
// written, records of aborted transactions at the first clean. One
// goroutine cleans one partition at a time; its reads and writes are
// throttled to Options.CleanerIOBytesPerSecond.

// Cleaner defaults (Kafka's log.cleaner.* settings).
const (
	DefaultCleanerBackoff = 5 * time.Second
	// DefaultCleanerDedupeBufferSize is log.cleaner.dedupe.buffer.size;
	// the key map holds one key per 24 bytes of it.
	DefaultCleanerDedupeBufferSize = 128 << 20
	cleanerBytesPerKey             = 24
	// DefaultInternalSegmentBytes is the internal topics' segment.bytes.
	DefaultInternalSegmentBytes = 100 << 20
)

type cleanerMetrics struct {
	runs, read, written, removed prometheus.Counter
	last                         prometheus.Gauge
}

func newCleanerMetrics(r *metrics.Registry) *cleanerMetrics {
	return &cleanerMetrics{
		runs:    r.Counter("weir_cleaner_cleans_total", "Partition cleans (log compaction) run."),
		read:    r.Counter("weir_cleaner_bytes_read_total", "Bytes the cleaner read (both passes)."),
		written: r.Counter("weir_cleaner_bytes_written_total", "Bytes of cleaned segments the cleaner wrote."),
		removed: r.Counter("weir_cleaner_records_removed_total", "Records compaction removed: superseded by a later record of their key, expired tombstones, aborted transactional records."),
		last:    r.Gauge("weir_cleaner_last_clean_timestamp_seconds", "When the cleaner last finished cleaning a partition (Unix seconds)."),
	}
}

func (b *Broker) cleanerLoop() {
	defer close(b.cleanerDone)
	t := time.NewTicker(b.opts.CleanerBackoff)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.CleanCompacted()
		}
	}
}

// CleanCompacted runs the cleaner over every compacted partition now,
// cleaning those that need it (see the file comment). It returns how many
// partitions it cleaned.
func (b *Broker) CleanCompacted() int {
	n := 0
	for _, t := range b.Topics() {
		cfg := t.Configs()
		if !strings.Contains(b.effective(cfg, "cleanup.policy"), "compact") {
			continue
		}
		for _, p := range t.Partitions() {
			select {
			case <-b.stop:
				return n
			default:
			}
			cleaned, err := p.cleanIfDirty(cfg)
			if err != nil && !errors.Is(err, commitlog.ErrClosed) {
				b.opts.Logger.Warn("broker: cleaner", "topic", t.Name, "partition", p.index, "err", err)
			}
			if cleaned {
				n++
			}
		}
	}
	return n
}

// cleanIfDirty cleans p when its dirty ratio or compaction lag asks for it.
func (p *Partition) cleanIfDirty(cfg map[string]string) (bool, error) {
	b := p.broker
	now := b.opts.Now()
	ratio, _ := strconv.ParseFloat(b.effective(cfg, "min.cleanable.dirty.ratio"), 64)
	maxLag := b.effectiveInt(cfg, "max.compaction.lag.ms")
	d := p.log.Dirt(p.cleanedTo.Load())
	if d.Dirty == 0 {
		return false, nil
	}
	overdue := d.FirstDirtyMaxTs >= 0 && now.UnixMilli()-d.FirstDirtyMaxTs > maxLag
	if float64(d.Dirty) < ratio*float64(d.Clean+d.Dirty) && !overdue {
		return false, nil
	}
	return true, p.Clean(cfg)
}

// Clean compacts the partition now (commitlog.Clean with the topic's
// configs cfg), whatever its dirty ratio.
func (p *Partition) Clean(cfg map[string]string) error {
	b := p.broker
	st, err := p.log.Clean(commitlog.CleanOptions{
		UpTo:             p.LastStableOffset(),
		Now:              b.opts.Now(),
		MinCompactionLag: time.Duration(b.effectiveInt(cfg, "min.compaction.lag.ms")) * time.Millisecond,
		DeleteRetention:  time.Duration(b.effectiveInt(cfg, "delete.retention.ms")) * time.Millisecond,
		MaxKeys:          int(b.opts.CleanerDedupeBufferSize / cleanerBytesPerKey),
		Aborted:          p.abortedBatch,
		AbortDropped:     p.txns.forget,
		Throttle:         b.throttle.wait,
	})
	m := b.cleaner
	m.read.Add(float64(st.BytesRead))
	m.written.Add(float64(st.BytesWritten))
	m.removed.Add(float64(st.RecordsRemoved))
	if err != nil {
		return err
	}
	if st.Segments > 0 {
		m.runs.Inc()
		m.last.Set(float64(b.opts.Now().UnixMilli()) / 1000)
		if st.CleanedTo > p.cleanedTo.Load() {
			p.cleanedTo.Store(st.CleanedTo)
		}
		b.opts.Logger.Debug("broker: cleaned", "topic", p.topic.Name, "partition", p.index, "segments", st.Segments,
			"rewritten", st.Rewritten, "records_removed", st.RecordsRemoved, "cleaned_to", st.CleanedTo)
	}
	return nil
}

// abortedBatch reports whether the transactional batch h belongs to a
// transaction the partition's index records as aborted.
func (p *Partition) abortedBatch(h batch.Header) bool {
	for _, a := range p.AbortedTransactions(h.BaseOffset, h.BaseOffset+1) {
		if a.ProducerID == h.ProducerID {
			return true
		}
	}
	return false
}

// ioThrottle holds the cleaner to a rate of bytes per second
// (log.cleaner.io.max.bytes.per.second); 0 is unlimited.
type ioThrottle struct {
	rate float64
	mu   sync.Mutex
	// start and bytes measure the current window; it restarts when the
	// cleaner has been idle for a second.
	start time.Time
	bytes float64
	stop  <-chan struct{}
}

func (t *ioThrottle) wait(n int) {
	if t == nil || t.rate <= 0 {
		return
	}
	t.mu.Lock()
	now := time.Now()
	if now.Sub(t.start) > time.Second+time.Duration(t.bytes/t.rate*float64(time.Second)) {
		t.start, t.bytes = now, 0
	}
	t.bytes += float64(n)
	ahead := time.Duration(t.bytes/t.rate*float64(time.Second)) - now.Sub(t.start)
	t.mu.Unlock()
	if ahead <= 0 {
		return
	}
	timer := time.NewTimer(ahead)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-t.stop:
	}
}
