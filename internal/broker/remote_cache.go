package broker

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// Reads below a tiered partition's local log start are served from local
// copies of archived segments: the first read of a segment downloads it
// whole into a file under <data>/remote-cache (through the store's
// verifying reader, to a temporary name renamed once the object checked
// out), building a sparse offset → position index from the batch headers
// as the bytes stream past; every read after that is a positional read of
// that file, like a read of a local segment. The files are a cache: never
// synced, and the directory is wiped when the broker opens.
//
// The cache is bounded by the bytes of its files (Options.RemoteCacheBytes)
// and evicts whole files, least recently used first. A reader holds a
// reference to the file it reads, so eviction removes a file from the
// cache at once but closes and deletes it only when its last reader is
// done: the bound can be exceeded for the length of the reads in flight
// (and by the downloads in flight, whose bytes are reserved up front).
// Readers that want a segment being downloaded wait for that one download.

const (
	// remoteCacheDirName is the cache's directory under the data dir.
	remoteCacheDirName = "remote-cache"
	// remoteIndexInterval is the bytes between sparse index entries (as
	// Kafka's index.interval.bytes).
	remoteIndexInterval = 4096
	// remoteCopyBuffer is the chunk a download reads and writes at a time.
	remoteCopyBuffer = 1 << 20
	// remoteDownloadRate is the slowest download rate tolerated: a
	// download's deadline is remoteTimeout plus its size at this rate.
	remoteDownloadRate = 4 << 20
	// batchCRCStart is where a batch's CRC-32C coverage starts
	// (Attributes).
	batchCRCStart = 21
)

// errRemoteCacheClosed is returned by reads racing the broker's Close.
var errRemoteCacheClosed = errors.New("broker: remote read cache closed")

// segmentKey names an archived segment.
type segmentKey struct {
	rp   RemotePartition
	base int64
}

// remoteCache is the on-disk cache of archived segments.
type remoteCache struct {
	fs         vfs.FS
	dir        string
	max        int64
	logger     *slog.Logger
	crc        *crc32.Table
	downloaded prometheus.Counter
	// txns holds archived segments' aborted transactions (tier_txn.go).
	txns txnIndexCache

	mu sync.Mutex
	// size is the bytes on disk: cached files, evicted files still being
	// read, and the reservations of downloads in flight; doomed is the
	// part of it evicted files hold until their readers are done.
	size, doomed int64
	tick, gen    uint64
	items        map[segmentKey]*cachedSegment
	loading      map[segmentKey]*segmentLoad
	closed       bool
}

// segmentLoad is a download in flight; waiters take a reference to its
// result before done closes.
type segmentLoad struct {
	done    chan struct{}
	waiters int
	seg     *cachedSegment
	err     error
}

// cachedSegment is one archived segment in a local file. The file and
// index are immutable once published; refs, used and cached are guarded
// by the cache's mutex.
type cachedSegment struct {
	key   segmentKey
	path  string
	f     vfs.File
	size  int64
	index []remoteIndexEntry

	refs   int    // readers holding the file open
	used   uint64 // last use, for LRU
	cached bool   // in the cache's items; once false, deleted at refs 0
}

// remoteIndexEntry maps a batch's base offset to its position.
type remoteIndexEntry struct{ offset, pos int64 }

func newRemoteCache(fsys vfs.FS, dir string, max int64, logger *slog.Logger, downloaded prometheus.Counter) *remoteCache {
	return &remoteCache{fs: fsys, dir: dir, max: max, logger: logger, crc: crc32.MakeTable(crc32.Castagnoli),
		downloaded: downloaded, items: map[segmentKey]*cachedSegment{}, loading: map[segmentKey]*segmentLoad{}}
}

// reset wipes the cache directory (left by an earlier run) and, when
// create is set, makes it again.
func (c *remoteCache) reset(create bool) error {
	if err := c.fs.RemoveAll(c.dir); err != nil {
		return fmt.Errorf("broker: wipe %s: %w", c.dir, err)
	}
	if create {
		if err := c.fs.MkdirAll(c.dir, 0o755); err != nil {
			return fmt.Errorf("broker: create %s: %w", c.dir, err)
		}
	}
	return nil
}

// acquire returns the segment key names, size bytes, from the cache or
// downloaded with open; the caller must release it.
func (c *remoteCache) acquire(key segmentKey, size int64, open func(ctx context.Context) (io.ReadCloser, error)) (*cachedSegment, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errRemoteCacheClosed
	}
	if s := c.items[key]; s != nil {
		c.tick++
		s.used = c.tick
		s.refs++
		c.mu.Unlock()
		return s, nil
	}
	if l := c.loading[key]; l != nil {
		l.waiters++
		c.mu.Unlock()
		<-l.done
		return l.seg, l.err
	}
	l := &segmentLoad{done: make(chan struct{})}
	c.loading[key] = l
	c.gen++
	gen := c.gen
	c.size += size // reserved while downloading
	doomed := c.evictLocked()
	c.mu.Unlock()
	c.remove(doomed)

	s, err := c.download(key, gen, size, open)

	c.mu.Lock()
	delete(c.loading, key)
	c.size -= size
	if err == nil {
		c.size += s.size
		c.tick++
		s.used = c.tick
		s.refs = 1 + l.waiters
		if !c.closed && s.size <= c.max {
			s.cached = true
			c.items[key] = s
		} else {
			c.doomed += s.size // served to these readers, then deleted
		}
		doomed = c.evictLocked()
	}
	l.seg, l.err = s, err
	close(l.done)
	c.mu.Unlock()
	c.remove(doomed)
	return s, err
}

// release drops a reference taken by acquire.
func (c *remoteCache) release(s *cachedSegment) {
	c.mu.Lock()
	s.refs--
	gone := s.refs == 0 && !s.cached
	if gone {
		c.size -= s.size
		c.doomed -= s.size
	}
	c.mu.Unlock()
	if gone {
		c.remove([]*cachedSegment{s})
	}
}

// evictLocked takes least recently used files out of the cache until its
// bytes (less those already on their way out) fit the bound, and returns
// the ones no reader holds, for the caller to delete outside the lock.
func (c *remoteCache) evictLocked() []*cachedSegment {
	var out []*cachedSegment
	for c.size-c.doomed > c.max && len(c.items) > 0 {
		var oldest *cachedSegment
		for _, s := range c.items {
			if oldest == nil || s.used < oldest.used {
				oldest = s
			}
		}
		out = c.dropLocked(oldest, out)
	}
	return out
}

// dropLocked takes s out of the cache, appending it to out when no reader
// holds it (its bytes are then no longer counted).
func (c *remoteCache) dropLocked(s *cachedSegment, out []*cachedSegment) []*cachedSegment {
	delete(c.items, s.key)
	s.cached = false
	if s.refs > 0 {
		c.doomed += s.size
		return out
	}
	c.size -= s.size
	return append(out, s)
}

// remove closes and deletes files taken out of the cache.
func (c *remoteCache) remove(segs []*cachedSegment) {
	for _, s := range segs {
		err := s.f.Close()
		if rerr := c.fs.Remove(s.path); err == nil {
			err = rerr
		}
		if err != nil {
			c.logger.Warn("broker: remove a remote read cache file", slog.String("path", s.path), slog.Any("error", err))
		}
	}
}

// drop takes s out of the cache if it is still there (a damaged copy:
// the next read downloads it again).
func (c *remoteCache) drop(s *cachedSegment) {
	c.mu.Lock()
	var out []*cachedSegment
	if c.items[s.key] == s {
		out = c.dropLocked(s, nil)
	}
	c.mu.Unlock()
	c.remove(out)
}

// forget drops a partition's cached segments below start, and their
// aborted transactions.
func (c *remoteCache) forget(rp RemotePartition, start int64) {
	c.txns.forget(rp, start)
	c.mu.Lock()
	var out []*cachedSegment
	for k, s := range c.items {
		if k.rp == rp && k.base < start {
			out = c.dropLocked(s, out)
		}
	}
	c.mu.Unlock()
	c.remove(out)
}

// close drops every file; those being read are closed by their last
// reader.
func (c *remoteCache) close() {
	c.mu.Lock()
	c.closed = true
	var out []*cachedSegment
	for _, s := range c.items {
		out = c.dropLocked(s, out)
	}
	c.mu.Unlock()
	c.remove(out)
}

// download copies a segment into a new cache file, indexing it on the way.
// A failed or damaged download leaves no file behind.
func (c *remoteCache) download(key segmentKey, gen uint64, size int64, open func(ctx context.Context) (io.ReadCloser, error)) (*cachedSegment, error) {
	ctx, cancel := context.WithTimeout(context.Background(), remoteTimeout+time.Duration(size/remoteDownloadRate)*time.Second)
	defer cancel()
	rc, err := open(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	path := filepath.Join(c.dir, fmt.Sprintf("%s-%d-%d-%d.log", key.rp.TopicID, key.rp.Partition, key.base, gen))
	tmp := path + ".tmp"
	f, err := c.fs.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("%w: remote read cache: %w", ErrStorage, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = f.Close()
			_ = c.fs.Remove(tmp) // a cache file: nothing refers to it
		}
	}()
	buf := make([]byte, remoteCopyBuffer)
	var ix remoteIndexer
	var pos int64
	for {
		n, rerr := io.ReadFull(rc, buf)
		if n > 0 {
			if _, err := f.WriteAt(buf[:n], pos); err != nil {
				return nil, fmt.Errorf("%w: remote read cache: %w", ErrStorage, err)
			}
			ix.write(buf[:n])
			pos += int64(n)
			c.downloaded.Add(float64(n))
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return nil, rerr
		}
	}
	if err := ix.finish(); err != nil {
		return nil, fmt.Errorf("%w: archived segment %d: %w", ErrLogCorrupt, key.base, err)
	}
	// Closed before the rename (which some systems refuse for an open
	// file) and opened again read-only.
	ok = true
	err = f.Close()
	if err == nil {
		err = c.fs.Rename(tmp, path)
	}
	if err == nil {
		f, err = c.fs.Open(path)
	}
	if err != nil {
		_ = c.fs.Remove(tmp)
		_ = c.fs.Remove(path)
		return nil, fmt.Errorf("%w: remote read cache: %w", ErrStorage, err)
	}
	return &cachedSegment{key: key, path: path, f: f, size: pos, index: ix.entries}, nil
}

// remoteIndexer walks the batch headers of a segment streaming past,
// keeping one index entry per remoteIndexInterval bytes.
type remoteIndexer struct {
	pos     int64 // bytes seen
	skip    int64 // bytes left of the current batch after its header
	hdr     [batch.HeaderSize]byte
	have    int // bytes of the next header seen
	last    int64
	entries []remoteIndexEntry
	err     error
}

func (x *remoteIndexer) write(p []byte) {
	for len(p) > 0 && x.err == nil {
		if x.skip > 0 {
			n := min(x.skip, int64(len(p)))
			x.skip -= n
			x.pos += n
			p = p[n:]
			continue
		}
		n := copy(x.hdr[x.have:], p)
		x.have += n
		x.pos += int64(n)
		p = p[n:]
		if x.have < batch.HeaderSize {
			continue
		}
		start := x.pos - batch.HeaderSize
		h, err := batch.ParseHeader(x.hdr[:])
		if err != nil {
			x.err = fmt.Errorf("batch at byte %d: %w", start, err)
			return
		}
		if len(x.entries) == 0 || start-x.entries[len(x.entries)-1].pos >= remoteIndexInterval {
			x.entries = append(x.entries, remoteIndexEntry{offset: h.BaseOffset, pos: start})
		}
		x.skip = int64(h.Size()) - batch.HeaderSize
		x.have = 0
		x.last = start
	}
}

func (x *remoteIndexer) finish() error {
	if x.err == nil && (x.skip > 0 || x.have > 0) {
		x.err = fmt.Errorf("batch at byte %d runs past the end", x.last)
	}
	return x.err
}

// lookup returns the position of the last indexed batch whose base offset
// is at most offset (0 before the first).
func (s *cachedSegment) lookup(offset int64) int64 {
	i := sort.Search(len(s.index), func(i int) bool { return s.index[i].offset > offset })
	if i == 0 {
		return 0
	}
	return s.index[i-1].pos
}

// readHeaderAt reads the batch header at pos.
func (s *cachedSegment) readHeaderAt(pos int64, hdr []byte) (batch.Header, error) {
	if _, err := s.f.ReadAt(hdr, pos); err != nil {
		return batch.Header{}, fmt.Errorf("%w: read %s at %d: %w", ErrStorage, s.path, pos, err)
	}
	h, err := batch.ParseHeader(hdr)
	if err != nil || pos+int64(h.Size()) > s.size {
		return batch.Header{}, fmt.Errorf("%w: %s: batch at %d", ErrLogCorrupt, s.path, pos)
	}
	return h, nil
}

// read returns whole batches from the one holding offset, up to maxBytes
// (at least that batch); nil when the segment's batches end before
// offset.
func (s *cachedSegment) read(crc *crc32.Table, offset int64, maxBytes int, alloc func(int) []byte) ([]byte, error) {
	hdr := make([]byte, batch.HeaderSize)
	for pos := s.lookup(offset); pos < s.size; {
		h, err := s.readHeaderAt(pos, hdr)
		if err != nil {
			return nil, err
		}
		if h.LastOffset() >= offset {
			return s.readAt(crc, pos, h.Size(), maxBytes, alloc)
		}
		pos += int64(h.Size())
	}
	return nil, nil
}

// readAt returns whole batches from pos, where a batch of first bytes
// starts, up to maxBytes (at least that batch), each checked against its
// CRC: damage ends the read, or fails it when it comes first.
func (s *cachedSegment) readAt(crc *crc32.Table, pos int64, first, maxBytes int, alloc func(int) []byte) ([]byte, error) {
	want := max(min(s.size-pos, int64(maxBytes)), int64(first))
	var buf []byte
	if alloc != nil {
		buf = alloc(int(want))[:want]
	} else {
		buf = make([]byte, want)
	}
	if _, err := s.f.ReadAt(buf, pos); err != nil {
		return nil, fmt.Errorf("%w: read %s at %d: %w", ErrStorage, s.path, pos, err)
	}
	n := 0
	for n+batch.HeaderSize <= len(buf) {
		h, err := batch.ParseHeader(buf[n:])
		if err == nil && n+h.Size() > len(buf) {
			break
		}
		if err == nil && crc32.Checksum(buf[n+batchCRCStart:n+h.Size()], crc) != h.CRC {
			err = batch.ErrCorrupt
		}
		if err != nil {
			if n > 0 {
				break
			}
			return nil, fmt.Errorf("%w: %s at %d: %w", ErrLogCorrupt, s.path, pos, err)
		}
		n += h.Size()
	}
	return buf[:n], nil
}
