package broker

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirhq/weir/internal/commitlog"
	"github.com/weirhq/weir/internal/metrics"
	"github.com/weirhq/weir/internal/vfs"
)

// Options configure a broker. Zero values take the defaults noted.
type Options struct {
	// FS is the filesystem; default the OS.
	FS vfs.FS
	// Dir is the data directory; required.
	Dir string
	// AutoCreateTopics creates unknown topics when EnsureTopic is called.
	AutoCreateTopics bool
	// DefaultPartitions for auto-created topics (default 1).
	DefaultPartitions int32
	// Durability of every partition log.
	Durability commitlog.Durability
	// SyncInterval for commitlog.Interval.
	SyncInterval time.Duration
	// Broker-level topic defaults (Kafka's log.* settings).
	SegmentBytes    int64 // default 1 GiB
	RetentionMs     int64 // default 7 days; -1 forever
	RetentionBytes  int64 // default -1
	MaxMessageBytes int32 // default 1048588
	// RetentionCheckInterval is how often retention runs (default 5 s;
	// Kafka's log.retention.check.interval.ms defaults to 5 min): every
	// partition whose active segment is past segment.ms is rolled, then
	// segments past retention.ms or retention.bytes are deleted.
	RetentionCheckInterval time.Duration
	// CleanerBackoff is how often the cleaner looks for partitions to
	// compact (log.cleaner.backoff.ms; default DefaultCleanerBackoff).
	CleanerBackoff time.Duration
	// CleanerDedupeBufferSize bounds the cleaner's key map, at 24 bytes a
	// key (log.cleaner.dedupe.buffer.size; default 128 MiB).
	CleanerDedupeBufferSize int64
	// CleanerIOBytesPerSecond caps the cleaner's reads and writes
	// (log.cleaner.io.max.bytes.per.second); 0 is unlimited.
	CleanerIOBytesPerSecond float64
	// InternalSegmentBytes is the segment.bytes of the internal topics
	// (offsets.topic.segment.bytes; default 100 MiB).
	InternalSegmentBytes int64
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
	// LogMetrics is handed to every partition log (fsync observations);
	// nil records none.
	LogMetrics *commitlog.Metrics
	// Metrics receives the per-topic traffic counters; nil records into
	// unregistered metrics.
	Metrics *metrics.Registry
	// Remote is the node's tiered storage (tier.go); nil: none, and a
	// topic cannot turn remote.storage.enable on (one that had it keeps
	// it, unread).
	Remote RemoteStorage
	// RemoteInterval is how often the uploader looks for sealed segments
	// to archive (default DefaultRemoteInterval).
	RemoteInterval time.Duration
	// RemoteUploadConcurrency bounds the partitions uploading at once
	// (default DefaultRemoteUploadConcurrency).
	RemoteUploadConcurrency int
	// RemoteCacheBytes bounds the local copies of archived segments kept
	// under <Dir>/remote-cache for reads below the local log start, in
	// bytes on disk (default DefaultRemoteCacheBytes; remote_cache.go).
	RemoteCacheBytes int64
}

func (o *Options) fill() error {
	if o.FS == nil {
		o.FS = vfs.OS()
	}
	if o.Dir == "" {
		return errors.New("broker: Options.Dir is required")
	}
	if o.DefaultPartitions <= 0 {
		o.DefaultPartitions = 1
	}
	if o.SegmentBytes == 0 {
		o.SegmentBytes = 1 << 30
	}
	if o.RetentionMs == 0 {
		o.RetentionMs = 7 * 24 * 3600 * 1000
	}
	if o.RetentionBytes == 0 {
		o.RetentionBytes = -1
	}
	if o.MaxMessageBytes == 0 {
		o.MaxMessageBytes = 1048588
	}
	if o.CleanerBackoff <= 0 {
		o.CleanerBackoff = DefaultCleanerBackoff
	}
	if o.InternalSegmentBytes <= 0 {
		o.InternalSegmentBytes = DefaultInternalSegmentBytes
	}
	if o.CleanerDedupeBufferSize <= 0 {
		o.CleanerDedupeBufferSize = DefaultCleanerDedupeBufferSize
	}
	if o.RetentionCheckInterval <= 0 {
		o.RetentionCheckInterval = 5 * time.Second
	}
	if o.RemoteInterval <= 0 {
		o.RemoteInterval = DefaultRemoteInterval
	}
	if o.RemoteUploadConcurrency <= 0 {
		o.RemoteUploadConcurrency = DefaultRemoteUploadConcurrency
	}
	if o.RemoteCacheBytes <= 0 {
		o.RemoteCacheBytes = DefaultRemoteCacheBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// Broker owns the topics and partitions of one node.
type Broker struct {
	opts Options

	mu     sync.RWMutex
	topics map[string]*Topic
	closed bool

	pids      *producerIDs
	clusterID string
	// lock holds the data directory (lock.go) until Close; nil if the
	// filesystem cannot lock.
	lock io.Closer

	// dataDirs and withheld serve ClientMessage (clientmsg.go).
	dataDirs []string
	withheld withheldLog

	hooks    gateHooks
	traffic  *trafficMetrics
	internal map[string]*InternalLog // guarded by mu

	stop chan struct{}
	done chan struct{}

	// The cleaner (cleaner.go).
	cleaner     *cleanerMetrics
	throttle    *ioThrottle
	cleanerDone chan struct{}

	// Tiered storage (tier.go, uploader.go).
	tier        *tierMetrics
	remoteCache *remoteCache
	tierMu      sync.Mutex // one uploader pass at a time
	lagSegments atomic.Int64
	// pendingSince is when the uploader first saw the longest-waiting
	// unarchived sealed segment (Unix ns, 0: none waits); uploadErr is the
	// last failed upload (uploader.go, ArchiveHealth).
	pendingSince atomic.Int64
	uploadErr    atomic.Pointer[tierError]
	tierDone     chan struct{}
	// archiveDeletes are the removals of deleted topics' archived
	// segments under way (tier.go); Close waits for them.
	archiveDeletes sync.WaitGroup
}

// Topic is a named set of partitions with configs.
type Topic struct {
	Name string
	ID   [16]byte

	mu         sync.RWMutex
	configs    map[string]string
	partitions []*Partition

	// maxMessageBytes caches the effective max.message.bytes so the
	// produce path reads no map.
	maxMessageBytes atomic.Int64
	// compression caches the effective compression.type: the codec
	// batches are stored in, or -1 for "producer" (as produced).
	compression atomic.Int32
	// timestampBefore and timestampAfter cache how far a record's
	// CreateTime may lie behind and ahead of the clock (timestamps.go).
	timestampBefore, timestampAfter atomic.Int64

	// metrics counts the topic's traffic; nil for the unregistered
	// topic of a validate-only create.
	metrics *topicMetrics

	// remote and copyOff cache remote.storage.enable and
	// remote.log.copy.disable.
	remote, copyOff atomic.Bool
}

// setConfigs replaces a topic's explicit configs and refreshes the values
// derived from them.
func (b *Broker) setConfigs(t *Topic, configs map[string]string) {
	if configs == nil {
		configs = map[string]string{}
	}
	t.mu.Lock()
	t.configs = configs
	t.mu.Unlock()
	t.maxMessageBytes.Store(b.effectiveInt(configs, "max.message.bytes"))
	t.compression.Store(compressionCodec(b.effective(configs, "compression.type")))
	before, after := b.timestampBounds(configs)
	t.timestampBefore.Store(before)
	t.timestampAfter.Store(after)
	t.remote.Store(b.isRemoteTopic(configs))
	t.copyOff.Store(strings.EqualFold(strings.TrimSpace(b.effective(configs, "remote.log.copy.disable")), "true"))
}

// Partitions returns the topic's partitions.
func (t *Topic) Partitions() []*Partition {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.partitions
}

// Configs returns a copy of the topic's explicitly set configs.
func (t *Topic) Configs() map[string]string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make(map[string]string, len(t.configs))
	for k, v := range t.configs {
		out[k] = v
	}
	return out
}

type topicMeta struct {
	Name       string            `json:"name"`
	ID         string            `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// Open opens (or creates) the broker's data directory and every topic in
// it. The directory is locked until Close: a second Open of it, in this
// process or another, fails at once with ErrDirLocked.
func Open(opts Options) (*Broker, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if err := vfs.MkdirAllDurable(opts.FS, opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("broker: create %s: %w", opts.Dir, err)
	}
	lock, err := lockDir(opts)
	if err != nil {
		return nil, err
	}
	b := &Broker{opts: opts, topics: map[string]*Topic{}, lock: lock, dataDirs: dataDirForms(opts.Dir),
		stop: make(chan struct{}), done: make(chan struct{}),
		traffic: newTrafficMetrics(opts.Metrics), internal: map[string]*InternalLog{},
		cleaner: newCleanerMetrics(opts.Metrics), cleanerDone: make(chan struct{}),
		tier: newTierMetrics(opts.Metrics), tierDone: make(chan struct{})}
	b.remoteCache = newRemoteCache(opts.FS, filepath.Join(opts.Dir, remoteCacheDirName), opts.RemoteCacheBytes, opts.Logger, b.tier.cacheDownload)
	b.throttle = &ioThrottle{rate: opts.CleanerIOBytesPerSecond, stop: b.stop}
	if err := b.open(); err != nil {
		_ = b.closeTopics()
		_ = b.unlock()
		return nil, err
	}
	b.loadManifests()
	go b.retentionLoop()
	go b.cleanerLoop()
	go b.tierLoop()
	return b, nil
}

// open reads a locked data directory: producer ids, cluster id, topics.
func (b *Broker) open() error {
	for _, d := range []string{b.topicsDir(), b.logsDir()} {
		if err := vfs.MkdirAllDurable(b.opts.FS, d, 0o755); err != nil {
			return fmt.Errorf("broker: create %s: %w", d, err)
		}
	}
	pids, err := openProducerIDs(b.opts.FS, filepath.Join(b.opts.Dir, "producer-ids"))
	if err != nil {
		return err
	}
	// Only a cache: what an earlier run left is not trusted.
	if err := b.remoteCache.reset(b.opts.Remote != nil); err != nil {
		return err
	}
	b.pids = pids
	if b.clusterID, err = loadClusterID(b.opts.FS, filepath.Join(b.opts.Dir, "cluster-id")); err != nil {
		return err
	}
	return b.load()
}

// unlock releases the data directory's lock, if one is held.
func (b *Broker) unlock() error {
	if b.lock == nil {
		return nil
	}
	return b.lock.Close()
}

func (b *Broker) topicsDir() string { return filepath.Join(b.opts.Dir, "topics") }
func (b *Broker) logsDir() string   { return filepath.Join(b.opts.Dir, "logs") }

func (b *Broker) load() error {
	fsys := b.opts.FS
	metas, err := b.loadMetas()
	if err != nil {
		return err
	}
	ids := map[string]bool{}
	for _, m := range metas {
		id, _ := parseID(m.ID) // checked and made canonical by loadMetas
		t := &Topic{Name: m.Name, ID: id, metrics: b.traffic.topic(m.Name)}
		b.setConfigs(t, m.Configs)
		b.topics[m.Name] = t
		ids[m.ID] = true
		if err := b.openPartitions(t, m.Partitions); err != nil {
			return err
		}
	}
	// Remove the logs of topics whose create or delete was interrupted.
	dirs, err := fsys.List(b.logsDir())
	if err != nil {
		return fmt.Errorf("broker: list logs: %w", err)
	}
	for _, d := range dirs {
		if !ids[d] {
			b.opts.Logger.Info("broker: removing orphaned topic logs", "dir", d)
			if err := fsys.RemoveAll(filepath.Join(b.logsDir(), d)); err != nil {
				return fmt.Errorf("broker: remove orphan %s: %w", d, err)
			}
		}
	}
	return nil
}

// openPartitions opens (and recovers) a loaded topic's partitions, several
// at once: after a crash each active segment is read and checked whole, and
// on a multi-core machine the partitions' scans overlap (restart time is
// in docs/benchmarks.md). The partitions opened are in t.partitions, in
// order, even when one fails; the first failure is returned.
func (b *Broker) openPartitions(t *Topic, n int32) error {
	parts := make([]*Partition, n)
	errs := make([]error, n)
	var next atomic.Int32
	var wg sync.WaitGroup
	for range min(int(n), max(4, 2*runtime.GOMAXPROCS(0))) {
		wg.Go(func() {
			for p := next.Add(1) - 1; p < n; p = next.Add(1) - 1 {
				parts[p], errs[p] = b.openPartition(t, p)
			}
		})
	}
	wg.Wait()
	for _, part := range parts {
		if part != nil {
			t.partitions = append(t.partitions, part)
		}
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *Broker) openPartition(t *Topic, p int32) (*Partition, error) {
	lim := b.limits(t.configs)
	log, err := commitlog.Open(commitlog.Options{
		FS:             b.opts.FS,
		Dir:            filepath.Join(b.logsDir(), hex.EncodeToString(t.ID[:]), strconv.Itoa(int(p))),
		SegmentBytes:   lim.SegmentBytes,
		SegmentMs:      lim.SegmentMs,
		RetentionMs:    lim.RetentionMs,
		RetentionBytes: lim.RetentionBytes,
		LogAppendTime:  lim.LogAppendTime,
		Durability:     b.opts.Durability,
		SyncInterval:   b.opts.SyncInterval,
		Now:            b.opts.Now,
		Logger:         b.opts.Logger,
		Metrics:        b.opts.LogMetrics,
	})
	if err != nil {
		return nil, fmt.Errorf("broker: open %s-%d: %w", t.Name, p, err)
	}
	part := &Partition{topic: t, index: p, log: log, broker: b, producers: map[int64]*producerState{}}
	if err := part.loadProducers(); err != nil {
		_ = log.Close()
		return nil, err
	}
	return part, nil
}

// Dir is the data directory.
func (b *Broker) Dir() string { return b.opts.Dir }

// ClusterID is the node's cluster id, created with the data directory.
func (b *Broker) ClusterID() string { return b.clusterID }

// loadClusterID reads the persisted cluster id, creating one (Kafka's
// format: 16 random bytes, base64url without padding) on first start.
func loadClusterID(fsys vfs.FS, path string) (string, error) {
	raw, err := readAll(fsys, path)
	if err == nil && len(raw) == 22 {
		return string(raw), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("broker: read %s: %w", path, err)
	}
	id, err := newID()
	if err != nil {
		return "", err
	}
	s := base64.RawURLEncoding.EncodeToString(id[:])
	if err := writeDurable(fsys, path, []byte(s)); err != nil {
		return "", fmt.Errorf("broker: write %s: %w", path, err)
	}
	return s, nil
}

// Close stops retention, closes every log cleanly and then releases the
// data directory for the next Open.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	<-b.done
	<-b.cleanerDone
	<-b.tierDone
	b.archiveDeletes.Wait()
	b.remoteCache.close()
	err := b.closeTopics()
	return errors.Join(err, b.unlock())
}

func (b *Broker) closeTopics() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, t := range b.topics {
		for _, p := range t.partitions {
			if err := p.log.Close(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func (b *Broker) retentionLoop() {
	defer close(b.done)
	t := time.NewTicker(b.opts.RetentionCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.EnforceRetention()
		}
	}
}

// EnforceRetention runs one retention check on every partition now. Each
// partition whose active segment holds records first appended at least
// segment.ms ago is rolled, whatever its cleanup.policy, so that the
// records become a sealed segment retention (and the cleaner) can act on:
// Kafka rolls only when the next append arrives, which leaves an idle
// partition's records in place for good. Then, where cleanup.policy
// contains delete, segments past retention.ms or retention.bytes are
// deleted; for tiered topics the uploader applies retention instead
// (uploader.go), since a segment may go only once it is archived.
func (b *Broker) EnforceRetention() {
	for _, t := range b.Topics() {
		del := strings.Contains(b.effective(t.Configs(), "cleanup.policy"), "delete") &&
			!(b.opts.Remote != nil && t.remote.Load())
		for _, p := range t.Partitions() {
			if _, err := p.log.RollIfDue(); err != nil {
				if !errors.Is(err, commitlog.ErrClosed) {
					b.opts.Logger.Warn("broker: segment.ms roll", "topic", t.Name, "partition", p.index, "err", err)
				}
				continue
			}
			if !del {
				continue
			}
			if n, err := p.log.EnforceRetention(); err != nil && !errors.Is(err, commitlog.ErrClosed) {
				b.opts.Logger.Warn("broker: retention", "topic", t.Name, "partition", p.index, "err", err)
			} else if n > 0 {
				p.pruneTxns()
				b.opts.Logger.Debug("broker: retention deleted segments", "topic", t.Name, "partition", p.index, "segments", n)
			}
		}
	}
}

// Topics returns the topics sorted by name.
func (b *Broker) Topics() []*Topic {
	b.mu.RLock()
	out := make([]*Topic, 0, len(b.topics))
	for _, t := range b.topics {
		out = append(out, t)
	}
	b.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Topic returns the named topic.
func (b *Broker) Topic(name string) (*Topic, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if b.closed {
		return nil, ErrClosed
	}
	t, ok := b.topics[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopicOrPartition, name)
	}
	return t, nil
}

// TopicByID returns the topic with the given id.
func (b *Broker) TopicByID(id [16]byte) (*Topic, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, t := range b.topics {
		if t.ID == id {
			return t, nil
		}
	}
	return nil, fmt.Errorf("%w: id %x", ErrUnknownTopicOrPartition, id)
}

// Partition returns one partition of a topic.
func (b *Broker) Partition(topic string, p int32) (*Partition, error) {
	t, err := b.Topic(topic)
	if err != nil {
		return nil, err
	}
	parts := t.Partitions()
	if p < 0 || int(p) >= len(parts) {
		return nil, fmt.Errorf("%w: %s-%d", ErrUnknownTopicOrPartition, topic, p)
	}
	return parts[p], nil
}

// AutoCreate reports whether unknown topics are created on use.
func (b *Broker) AutoCreate() bool { return b.opts.AutoCreateTopics }

// EnsureTopic returns the topic, creating it with the default partition
// count when auto-creation is on. A topic it creates passes the same rules
// as one a client creates explicitly (CreateTopic).
func (b *Broker) EnsureTopic(name string) (*Topic, error) {
	t, err := b.Topic(name)
	if err == nil || !b.opts.AutoCreateTopics || !errors.Is(err, ErrUnknownTopicOrPartition) {
		return t, err
	}
	t, err = b.CreateTopic(name, b.opts.DefaultPartitions, nil, false)
	if errors.Is(err, ErrTopicExists) {
		return b.Topic(name)
	}
	return t, err
}

var topicNameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// ValidateTopicName applies Kafka's topic naming rules.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalidTopic)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is not allowed", ErrInvalidTopic, name)
	case len(name) > 249:
		return fmt.Errorf("%w: %d characters, at most 249", ErrInvalidTopic, len(name))
	case !topicNameRE.MatchString(name):
		return fmt.Errorf("%w: %q may contain only ASCII letters, digits, '.', '_' and '-'", ErrInvalidTopic, name)
	}
	return nil
}

func newID() ([16]byte, error) {
	var id [16]byte
	for id == ([16]byte{}) {
		if _, err := rand.Read(id[:]); err != nil {
			return id, err
		}
	}
	return id, nil
}

func parseID(s string) ([16]byte, error) {
	var id [16]byte
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != 16 {
		return id, fmt.Errorf("broker: bad topic id %q", s)
	}
	copy(id[:], raw)
	return id, nil
}

func readAll(fsys vfs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	if n > 16<<20 {
		return nil, fmt.Errorf("broker: %s is %d bytes, too large", name, n)
	}
	buf := make([]byte, n)
	if n == 0 {
		return buf, nil
	}
	_, err = f.ReadAt(buf, 0)
	return buf, err
}

// writeDurable replaces name with data atomically and durably.
func writeDurable(fsys vfs.FS, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := fsys.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fsys.Rename(tmp, name); err != nil {
		return err
	}
	return fsys.SyncDir(filepath.Dir(name))
}
