package broker

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/weirhq/weir/internal/batch"
)

// Tiered storage (KIP-405): for topics with remote.storage.enable=true,
// sealed segments are copied to a RemoteStorage (uploader.go), the local
// copy is bounded by local.retention.* once a segment is copied, and reads
// below the local log start are served from the copy (here). The broker
// declares what it needs; internal/server adapts internal/archive to it.

// RemoteStorage is what the broker needs of tiered storage. Methods are
// safe for concurrent use and bounded by their context. A partition is
// named by its topic's ID (so a topic created again under an old name
// never inherits the old archive).
type RemoteStorage interface {
	// Upload copies a sealed segment (seg.Size bytes from r) and commits
	// it to the partition's manifest, returning the manifest after it.
	// logStart is the partition's log start offset, archive included: it
	// raises the manifest's start and alone allows a gap (offsets deleted
	// before they were copied). Uploading a segment the manifest holds is a no-op.
	Upload(ctx context.Context, rp RemotePartition, seg RemoteSegment, logStart int64, r io.Reader) (RemoteManifest, error)
	// Manifest returns what the archive holds for the partition (empty
	// for a partition never archived).
	Manifest(ctx context.Context, rp RemotePartition) (RemoteManifest, error)
	// ReadSegment returns the verified bytes of the archived segment with
	// base offset base; damage is an error, never data.
	ReadSegment(ctx context.Context, rp RemotePartition, base int64) ([]byte, error)
	// Trim raises the partition's start offset to start, deleting the
	// segments wholly below it, and returns the manifest after it.
	Trim(ctx context.Context, rp RemotePartition, start int64) (RemoteManifest, error)
}

// RemotePartition names a partition in remote storage.
type RemotePartition struct {
	// TopicID is the topic's ID, 32 hex digits.
	TopicID   string
	Partition int32
}

// RemoteSegment is one archived segment.
type RemoteSegment struct {
	BaseOffset, LastOffset       int64
	FirstTimestamp, MaxTimestamp int64 // Unix ms, -1 unknown
	Size                         int64
	CRC32C                       uint32 // set by the store
	UploadTime                   int64  // Unix ms, set by the store
}

// RemoteManifest lists a partition's archived segments: contiguous, by
// base offset; readable from StartOffset to the last segment's end.
type RemoteManifest struct {
	StartOffset int64
	Segments    []RemoteSegment
}

// Empty reports whether nothing is archived.
func (m *RemoteManifest) Empty() bool { return m == nil || len(m.Segments) == 0 }

// NextOffset is the offset after the last archived one (StartOffset when
// empty).
func (m *RemoteManifest) NextOffset() int64 {
	if len(m.Segments) == 0 {
		return m.StartOffset
	}
	return m.Segments[len(m.Segments)-1].LastOffset + 1
}

// Bytes is the archived segments' total size.
func (m *RemoteManifest) Bytes() int64 {
	var n int64
	for _, s := range m.Segments {
		n += s.Size
	}
	return n
}

// find returns the archived segment holding offset, if readable.
func (m *RemoteManifest) find(offset int64) (RemoteSegment, bool) {
	if offset < m.StartOffset {
		return RemoteSegment{}, false
	}
	i := sort.Search(len(m.Segments), func(i int) bool { return m.Segments[i].LastOffset >= offset })
	if i == len(m.Segments) || m.Segments[i].BaseOffset > offset {
		return RemoteSegment{}, false
	}
	return m.Segments[i], true
}

// remotePartition names p in remote storage.
func (p *Partition) remotePartition() RemotePartition {
	return RemotePartition{TopicID: hex.EncodeToString(p.topic.ID[:]), Partition: p.index}
}

// remoteEnabled reports whether p's topic is tiered: remote.storage.enable
// is true and the node has an archive. Without one the config is stored
// only and every segment stays local.
func (p *Partition) remoteEnabled() bool {
	return p.broker.opts.Remote != nil && p.topic.remote.Load()
}

// remoteManifest is the cached manifest, nil until loaded.
func (p *Partition) remoteManifest() *RemoteManifest { return p.remote.Load() }

// setManifest caches m.
func (p *Partition) setManifest(m RemoteManifest) { p.remote.Store(&m) }

// loadManifest loads and caches p's manifest.
func (p *Partition) loadManifest(ctx context.Context) (*RemoteManifest, error) {
	m, err := p.broker.opts.Remote.Manifest(ctx, p.remotePartition())
	if err != nil {
		return nil, err
	}
	p.setManifest(m)
	return &m, nil
}

// LocalLogStartOffset is the first offset held on local disk (ListOffsets
// earliest-local, -4).
func (p *Partition) LocalLogStartOffset() int64 { return p.log.LogStartOffset() }

// LogStartOffset is the first readable offset: the archive's start when
// the archive holds the offsets below the local log start, the local log
// start otherwise.
func (p *Partition) LogStartOffset() int64 {
	local := p.log.LogStartOffset()
	if m := p.remoteManifest(); !m.Empty() && m.StartOffset < local && m.NextOffset() >= local {
		return m.StartOffset
	}
	return local
}

// ArchivedRange returns the offsets the archive holds, [start, last];
// ok is false when nothing is archived (or the manifest is not loaded).
func (p *Partition) ArchivedRange() (start, last int64, ok bool) {
	m := p.remoteManifest()
	if m.Empty() {
		return 0, 0, false
	}
	return m.StartOffset, m.NextOffset() - 1, true
}

// readRemote serves a read below the local log start from the archive:
// whole batches of one archived segment from the one holding offset, up to
// maxBytes (at least that first batch), copied into alloc's buffer.
func (p *Partition) readRemote(offset int64, maxBytes int, alloc func(int) []byte) ([]byte, error) {
	m := p.remoteManifest()
	if m == nil {
		ctx, cancel := remoteCtx()
		var err error
		m, err = p.loadManifest(ctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%w: %s-%d: archive manifest: %w", ErrStorage, p.topic.Name, p.index, err)
		}
	}
	seg, ok := m.find(offset)
	if !ok {
		return nil, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, p.LogStartOffset(), p.log.HighWatermark())
	}
	data, err := p.broker.remoteCache.get(p, seg)
	if err != nil {
		return nil, err
	}
	pos, first := 0, -1
	for pos+batch.HeaderSize <= len(data) {
		h, err := batch.ParseHeader(data[pos:])
		if err != nil || pos+h.Size() > len(data) {
			return nil, fmt.Errorf("%w: archived segment %s-%d %d at byte %d", ErrLogCorrupt, p.topic.Name, p.index, seg.BaseOffset, pos)
		}
		if first < 0 && h.LastOffset() >= offset {
			first = pos
		}
		if first >= 0 && pos > first && pos+h.Size()-first > maxBytes {
			break
		}
		pos += h.Size()
	}
	if first < 0 {
		return nil, nil
	}
	out := data[first:pos]
	var buf []byte
	if alloc != nil {
		buf = alloc(len(out))[:len(out)]
	} else {
		buf = make([]byte, len(out))
	}
	copy(buf, out)
	p.broker.tier.remoteRead.Add(float64(len(buf)))
	return buf, nil
}

// readTiered reads offset through the local log, or from the archive when
// it lies below the local log start (or retention removes it meanwhile).
func (p *Partition) readTiered(offset int64, maxBytes int, alloc func(int) []byte) ([]byte, error) {
	if offset < p.log.LogStartOffset() && p.remoteEnabled() {
		return p.readRemote(offset, maxBytes, alloc)
	}
	data, err := p.log.ReadBuf(offset, maxBytes, alloc)
	if errors.Is(err, ErrOffsetOutOfRange) && offset < p.log.LogStartOffset() && p.remoteEnabled() {
		return p.readRemote(offset, maxBytes, alloc)
	}
	return data, err
}

// remoteOffsetForTimestamp looks ts up in the archived segments below the
// local log start; found is false when none of them reaches ts.
func (p *Partition) remoteOffsetForTimestamp(ts int64) (offset, recordTs int64, found bool, err error) {
	m := p.remoteManifest()
	if m.Empty() {
		return 0, 0, false, nil
	}
	local := p.log.LogStartOffset()
	for _, seg := range m.Segments {
		if seg.BaseOffset >= local {
			break
		}
		if seg.MaxTimestamp < ts || seg.LastOffset < m.StartOffset {
			continue
		}
		data, err := p.broker.remoteCache.get(p, seg)
		if err != nil {
			return 0, 0, false, err
		}
		for rest := data; len(rest) > 0; {
			one, r, err := batch.Split(rest)
			if err != nil {
				return 0, 0, false, fmt.Errorf("%w: archived segment %d: %w", ErrLogCorrupt, seg.BaseOffset, err)
			}
			rest = r
			h, err := batch.ParseHeader(one)
			if err != nil {
				return 0, 0, false, fmt.Errorf("%w: archived segment %d: %w", ErrLogCorrupt, seg.BaseOffset, err)
			}
			if h.MaxTimestamp < ts || h.LastOffset() < m.StartOffset {
				continue
			}
			hh, recs, err := batch.RecordsCompacted(one, maxDecompressedBatch)
			if err != nil {
				return 0, 0, false, fmt.Errorf("%w: archived segment %d: %w", ErrLogCorrupt, seg.BaseOffset, err)
			}
			for _, r := range recs {
				if o, rts := r.Offset(hh), r.Timestamp(hh); o >= m.StartOffset && o < local && rts >= ts {
					return o, rts, true, nil
				}
			}
		}
	}
	return 0, 0, false, nil
}

// segmentCache keeps recently read archived segments in memory, up to a
// byte bound, least recently used out first.
type segmentCache struct {
	max int64

	mu    sync.Mutex
	size  int64
	tick  uint64
	items map[segmentKey]*cachedSegment
	// loading lets one reader fetch a segment while others wait for it.
	loading map[segmentKey]*sync.WaitGroup
}

type segmentKey struct {
	rp   RemotePartition
	base int64
}

type cachedSegment struct {
	data []byte
	used uint64
}

func newSegmentCache(max int64) *segmentCache {
	return &segmentCache{max: max, items: map[segmentKey]*cachedSegment{}, loading: map[segmentKey]*sync.WaitGroup{}}
}

// get returns seg's bytes, from the cache or the store.
func (c *segmentCache) get(p *Partition, seg RemoteSegment) ([]byte, error) {
	key := segmentKey{rp: p.remotePartition(), base: seg.BaseOffset}
	for {
		c.mu.Lock()
		if it := c.items[key]; it != nil && int64(len(it.data)) == seg.Size {
			c.tick++
			it.used = c.tick
			c.mu.Unlock()
			return it.data, nil
		}
		if wg := c.loading[key]; wg != nil {
			c.mu.Unlock()
			wg.Wait()
			continue
		}
		wg := &sync.WaitGroup{}
		wg.Add(1)
		c.loading[key] = wg
		c.mu.Unlock()

		data, err := p.broker.remoteRead(p, seg.BaseOffset)

		c.mu.Lock()
		delete(c.loading, key)
		wg.Done()
		if err == nil {
			c.put(key, data)
		}
		c.mu.Unlock()
		return data, err
	}
}

// put adds data, evicting the least recently used; c.mu is held. A
// segment larger than the bound is served but not kept.
func (c *segmentCache) put(key segmentKey, data []byte) {
	if int64(len(data)) > c.max {
		return
	}
	if old := c.items[key]; old != nil {
		c.size -= int64(len(old.data))
	}
	c.tick++
	c.items[key] = &cachedSegment{data: data, used: c.tick}
	c.size += int64(len(data))
	for c.size > c.max {
		var oldest segmentKey
		var at uint64 = ^uint64(0)
		for k, it := range c.items {
			if it.used < at {
				oldest, at = k, it.used
			}
		}
		c.size -= int64(len(c.items[oldest].data))
		delete(c.items, oldest)
	}
}

// forget drops a partition's cached segments below start.
func (c *segmentCache) forget(rp RemotePartition, start int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, it := range c.items {
		if k.rp == rp && k.base < start {
			c.size -= int64(len(it.data))
			delete(c.items, k)
		}
	}
}

// remoteRead reads one archived segment through the store, counting it.
func (b *Broker) remoteRead(p *Partition, base int64) ([]byte, error) {
	ctx, cancel := remoteCtx()
	defer cancel()
	data, err := b.opts.Remote.ReadSegment(ctx, p.remotePartition(), base)
	if err != nil {
		return nil, fmt.Errorf("%w: %s-%d: archived segment %d: %w", ErrStorage, p.topic.Name, p.index, base, err)
	}
	return data, nil
}

// isRemoteTopic reports whether configs turn tiered storage on.
func (b *Broker) isRemoteTopic(configs map[string]string) bool {
	return strings.EqualFold(strings.TrimSpace(b.effective(configs, "remote.storage.enable")), "true")
}

// ArchiveStatus describes a partition's tiering as the operators' tools
// show it.
type ArchiveStatus struct {
	Partition        int32
	LogStartOffset   int64 // as clients see it, archive included
	LocalStartOffset int64
	HighWatermark    int64
	Manifest         RemoteManifest
}

// ArchiveStatus loads the manifests of a tiered topic's partitions.
func (b *Broker) ArchiveStatus(ctx context.Context, topic string) ([]ArchiveStatus, error) {
	t, err := b.Topic(topic)
	if err != nil {
		return nil, err
	}
	if b.opts.Remote == nil {
		return nil, fmt.Errorf("%w: this node has no archive (start it with --archive URL)", ErrInvalidRequest)
	}
	var out []ArchiveStatus
	for _, p := range t.Partitions() {
		m, err := p.loadManifest(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: %s-%d: %w", ErrStorage, topic, p.index, err)
		}
		out = append(out, ArchiveStatus{Partition: p.index, LogStartOffset: p.LogStartOffset(), LocalStartOffset: p.log.LogStartOffset(),
			HighWatermark: p.log.HighWatermark(), Manifest: *m})
	}
	return out, nil
}

// VerifyProblem is one finding of VerifyArchive.
type VerifyProblem struct {
	Partition  int32
	BaseOffset int64 // -1 for the partition as a whole
	Problem    string
}

// VerifyArchive reads every archived segment of topic, checking its
// checksum and size (the store verifies them) and that its batches cover
// its offsets, and checks the manifest joins the local log without a gap.
// It returns the segments and bytes read and the problems found.
func (b *Broker) VerifyArchive(ctx context.Context, topic string) (segments, bytes int64, problems []VerifyProblem, err error) {
	st, err := b.ArchiveStatus(ctx, topic)
	if err != nil {
		return 0, 0, nil, err
	}
	t, _ := b.Topic(topic)
	for _, s := range st {
		rp := RemotePartition{TopicID: hex.EncodeToString(t.ID[:]), Partition: s.Partition}
		m := s.Manifest
		if !m.Empty() && m.NextOffset() < s.LocalStartOffset {
			problems = append(problems, VerifyProblem{s.Partition, -1,
				fmt.Sprintf("gap: the archive ends at %d, the local log starts at %d", m.NextOffset()-1, s.LocalStartOffset)})
		}
		for i, seg := range m.Segments {
			if i > 0 && seg.BaseOffset != m.Segments[i-1].LastOffset+1 {
				problems = append(problems, VerifyProblem{s.Partition, seg.BaseOffset,
					fmt.Sprintf("gap after %d", m.Segments[i-1].LastOffset)})
			}
			data, err := b.opts.Remote.ReadSegment(ctx, rp, seg.BaseOffset)
			if err != nil {
				if ctx.Err() != nil {
					return segments, bytes, problems, ctx.Err()
				}
				problems = append(problems, VerifyProblem{s.Partition, seg.BaseOffset, err.Error()})
				continue
			}
			segments++
			bytes += int64(len(data))
			if msg := checkSegmentBatches(data, seg); msg != "" {
				problems = append(problems, VerifyProblem{s.Partition, seg.BaseOffset, msg})
			}
		}
	}
	return segments, bytes, problems, nil
}

// checkSegmentBatches checks that data is whole, CRC-valid batches with
// contiguous offsets from seg's base to its last offset.
func checkSegmentBatches(data []byte, seg RemoteSegment) string {
	next := seg.BaseOffset
	for rest := data; len(rest) > 0; {
		one, r, err := batch.Split(rest)
		if err != nil {
			return fmt.Sprintf("batch at offset %d: %v", next, err)
		}
		h, err := batch.VerifyCompacted(one)
		if err != nil {
			return fmt.Sprintf("batch at offset %d: %v", next, err)
		}
		if h.BaseOffset != next {
			return fmt.Sprintf("batch at offset %d, want %d", h.BaseOffset, next)
		}
		next = h.LastOffset() + 1
		rest = r
	}
	if next != seg.LastOffset+1 {
		return fmt.Sprintf("batches end at %d, the manifest says %d", next-1, seg.LastOffset)
	}
	return ""
}
