package commitlog

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/weirhq/weir/internal/vfs"
)

// Durability is the fsync policy of a log.
type Durability int

const (
	// Always reports an append durable only after fdatasync (group commit).
	Always Durability = iota
	// Interval fdatasyncs every Options.SyncInterval.
	Interval
	// Never leaves flushing to the page cache (sealed segments are still
	// synced when rolled).
	Never
)

// String returns the policy's config name.
func (d Durability) String() string {
	switch d {
	case Always:
		return "always"
	case Interval:
		return "interval"
	case Never:
		return "never"
	}
	return fmt.Sprintf("durability(%d)", int(d))
}

// Options configure one log. Zero values take the defaults noted.
type Options struct {
	// FS is the filesystem; required.
	FS vfs.FS
	// Dir is the partition directory; required. It is created if missing.
	Dir string
	// SegmentBytes rolls the active segment once it would exceed this many
	// bytes (segment.bytes). Default 1 GiB; at most 2 GiB-1.
	SegmentBytes int64
	// SegmentMs rolls a non-empty active segment this old (segment.ms).
	// Default 7 days.
	SegmentMs int64
	// RetentionMs deletes sealed segments whose newest timestamp is older
	// (retention.ms). -1 keeps forever. Default 7 days.
	RetentionMs int64
	// RetentionBytes deletes the oldest sealed segments while the log is
	// larger (retention.bytes). -1 (default) is unlimited; 0 is treated as -1.
	RetentionBytes int64
	// IndexIntervalBytes is the spacing of index entries. Default 4096.
	IndexIntervalBytes int64
	// LogAppendTime makes the log stamp batches with the append time
	// (message.timestamp.type=LogAppendTime).
	LogAppendTime bool
	// Durability is the fsync policy; the zero value is Always.
	Durability Durability
	// SyncInterval is the fsync period for Interval. Default 1s.
	SyncInterval time.Duration
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// Logger receives recovery and failure reports; default slog.Default().
	Logger *slog.Logger
	// Metrics receives fsync observations; nil records none.
	Metrics *Metrics
}

func (o *Options) fill() error {
	if o.FS == nil {
		return errors.New("commitlog: Options.FS is required")
	}
	if o.Dir == "" {
		return errors.New("commitlog: Options.Dir is required")
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = 1 << 30
	}
	if o.SegmentBytes < 100 || o.SegmentBytes > 1<<31-1 {
		return fmt.Errorf("commitlog: segment bytes %d out of range [100, 2147483647]", o.SegmentBytes)
	}
	if o.SegmentMs == 0 {
		o.SegmentMs = 7 * 24 * 3600 * 1000
	}
	if o.RetentionMs == 0 {
		o.RetentionMs = 7 * 24 * 3600 * 1000
	}
	if o.RetentionBytes == 0 {
		o.RetentionBytes = -1
	}
	if o.IndexIntervalBytes <= 0 {
		o.IndexIntervalBytes = 4096
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	switch o.Durability {
	case Always, Interval, Never:
	default:
		return fmt.Errorf("commitlog: unknown durability %d", o.Durability)
	}
	return nil
}

// Limits are the per-topic settings that may change while the log is open.
type Limits struct {
	SegmentBytes   int64
	SegmentMs      int64
	RetentionMs    int64
	RetentionBytes int64
	LogAppendTime  bool
}

// SetLimits applies changed topic settings (alter configs) to the open
// log; zero values keep the current setting.
func (l *Log) SetLimits(lim Limits) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := l.opts
	if lim.SegmentBytes != 0 {
		o.SegmentBytes = lim.SegmentBytes
	}
	if lim.SegmentMs != 0 {
		o.SegmentMs = lim.SegmentMs
	}
	if lim.RetentionMs != 0 {
		o.RetentionMs = lim.RetentionMs
	}
	if lim.RetentionBytes != 0 {
		o.RetentionBytes = lim.RetentionBytes
	}
	o.LogAppendTime = lim.LogAppendTime
	if err := o.fill(); err != nil {
		return err
	}
	// Assign field by field: other fields (FS, Durability…) are read
	// without the lock.
	l.opts.SegmentBytes, l.opts.SegmentMs = o.SegmentBytes, o.SegmentMs
	l.opts.RetentionMs, l.opts.RetentionBytes = o.RetentionMs, o.RetentionBytes
	l.opts.LogAppendTime = o.LogAppendTime
	return nil
}
