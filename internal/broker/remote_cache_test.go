package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// fakeRemote is an in-memory RemoteStorage that counts segment reads and
// verifies objects as internal/archive does (size and CRC-32C at the end).
type fakeRemote struct {
	mu        sync.Mutex
	manifests map[RemotePartition]RemoteManifest
	objects   map[segmentKey][]byte
	txnIdx    map[segmentKey][]byte // transaction indexes
	txnReads  atomic.Int64
	reads     atomic.Int64
	// gate, when set, holds every segment read until it is closed.
	gate chan struct{}
}

func newFakeRemote() *fakeRemote {
	return &fakeRemote{manifests: map[RemotePartition]RemoteManifest{}, objects: map[segmentKey][]byte{},
		txnIdx: map[segmentKey][]byte{}}
}

func (f *fakeRemote) Upload(_ context.Context, rp RemotePartition, seg RemoteSegment, logStart int64, r io.Reader) (RemoteManifest, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return RemoteManifest{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.manifests[rp]
	if seg.BaseOffset < m.NextOffset() && !m.Empty() {
		return m, nil
	}
	seg.CRC32C = crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
	seg.Size = int64(len(data))
	if seg.TxnIndex {
		seg.TxnIndexSize = int64(len(seg.TxnIndexData))
		if len(seg.TxnIndexData) > 0 {
			seg.TxnIndexCRC32C = crc32.Checksum(seg.TxnIndexData, crc32.MakeTable(crc32.Castagnoli))
			f.txnIdx[segmentKey{rp, seg.BaseOffset}] = bytes.Clone(seg.TxnIndexData)
		}
	}
	seg.TxnIndexData = nil
	if m.Empty() {
		m.StartOffset = logStart
	}
	m.StartOffset = max(m.StartOffset, logStart)
	m.Segments = append(append([]RemoteSegment(nil), m.Segments...), seg)
	f.manifests[rp] = m
	f.objects[segmentKey{rp, seg.BaseOffset}] = data
	return m, nil
}

func (f *fakeRemote) Manifest(_ context.Context, rp RemotePartition) (RemoteManifest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.manifests[rp], nil
}

func (f *fakeRemote) ReadSegment(_ context.Context, rp RemotePartition, base int64) (io.ReadCloser, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.manifests[rp]
	seg, ok := m.find(base)
	data := f.objects[segmentKey{rp, base}]
	if !ok || data == nil {
		return nil, fmt.Errorf("fake: no segment %d", base)
	}
	return io.NopCloser(&fakeVerifier{r: bytes.NewReader(data), seg: seg, h: crc32.New(crc32.MakeTable(crc32.Castagnoli)), gate: f.gate}), nil
}

func (f *fakeRemote) Trim(_ context.Context, rp RemotePartition, start int64) (RemoteManifest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.manifests[rp]
	var keep []RemoteSegment
	for _, s := range m.Segments {
		if s.LastOffset >= start {
			keep = append(keep, s)
		} else {
			delete(f.objects, segmentKey{rp, s.BaseOffset})
			delete(f.txnIdx, segmentKey{rp, s.BaseOffset})
		}
	}
	m.Segments, m.StartOffset = keep, max(m.StartOffset, start)
	f.manifests[rp] = m
	return m, nil
}

// ReadTxnIndex verifies as internal/archive does: size and CRC-32C.
func (f *fakeRemote) ReadTxnIndex(_ context.Context, rp RemotePartition, base int64) ([]byte, error) {
	f.txnReads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	m := f.manifests[rp]
	seg, ok := m.find(base)
	data, stored := f.txnIdx[segmentKey{rp, base}]
	switch {
	case !ok || seg.BaseOffset != base || !seg.TxnIndex:
		return nil, fmt.Errorf("fake: no transaction index %d", base)
	case !stored:
		return nil, errors.New("fake: transaction index listed but missing")
	case int64(len(data)) != seg.TxnIndexSize || crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) != seg.TxnIndexCRC32C:
		return nil, errors.New("fake: corrupt transaction index")
	}
	return bytes.Clone(data), nil
}

// corrupt flips a byte of the archived object holding offset.
func (f *fakeRemote) corrupt(rp RemotePartition, base int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	data := f.objects[segmentKey{rp, base}]
	data[len(data)/2] ^= 0xff
}

type fakeVerifier struct {
	r    io.Reader
	seg  RemoteSegment
	h    hash.Hash32
	n    int64
	gate chan struct{}
}

func (v *fakeVerifier) Read(p []byte) (int, error) {
	if v.gate != nil {
		<-v.gate
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.h.Write(p[:n])
	if err == io.EOF && (v.n != v.seg.Size || v.h.Sum32() != v.seg.CRC32C) {
		return n, errors.New("fake: corrupt object")
	}
	return n, err
}

// openTiered opens a broker over remote with one tiered partition of
// small segments and archives them: the offsets below the returned
// partition's local log start are read from the archive.
func openTiered(t *testing.T, fsys vfs.FS, remote *fakeRemote, cacheBytes int64) (*Broker, *Partition) {
	t.Helper()
	b, err := Open(Options{FS: fsys, Dir: "/data", Logger: quiet(), Remote: remote, RemoteInterval: time.Hour,
		RetentionCheckInterval: time.Hour, RemoteCacheBytes: cacheBytes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if _, err := b.CreateTopic("tiered", 1, map[string]string{"remote.storage.enable": "true",
		"segment.bytes": "4096", "local.retention.bytes": "1", "retention.ms": "-1"}, false); err != nil {
		t.Fatal(err)
	}
	p, _ := b.Partition("tiered", 0)
	for range 100 {
		produceAt(t, p, 5, time.Now().UnixMilli())
	}
	b.TierOnce(context.Background())
	if p.LocalLogStartOffset() < 300 {
		t.Fatalf("local log start %d: too little archived", p.LocalLogStartOffset())
	}
	return b, p
}

// readArchived reads the archived offsets maxBytes at a time, checking
// they come back contiguous.
func readArchived(t *testing.T, p *Partition, maxBytes int) {
	t.Helper()
	for next := int64(0); next < p.LocalLogStartOffset(); {
		data, err := p.Read(next, maxBytes)
		if err != nil {
			t.Fatalf("read %d: %v", next, err)
		}
		if len(data) == 0 {
			t.Fatalf("read %d: nothing", next)
		}
		for rest := data; len(rest) > 0; {
			one, r, err := batch.Split(rest)
			if err != nil {
				t.Fatal(err)
			}
			h, _ := batch.ParseHeader(one)
			if h.BaseOffset != next {
				t.Fatalf("batch at %d, want %d", h.BaseOffset, next)
			}
			next, rest = h.LastOffset()+1, r
		}
	}
}

// cacheFiles lists the remote read cache's directory.
func cacheFiles(t *testing.T, b *Broker) []string {
	t.Helper()
	names, err := b.opts.FS.List(b.remoteCache.dir)
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// Catching up from the archive a batch at a time downloads each segment
// once, not once a read.
func TestRemoteReadDownloadsEachSegmentOnce(t *testing.T) {
	remote := newFakeRemote()
	b, p := openTiered(t, vfs.NewMem(), remote, 1<<20)
	m := p.remoteManifest()
	readArchived(t, p, 1) // one batch a read
	var want int64
	for _, s := range m.Segments {
		if s.BaseOffset < p.LocalLogStartOffset() {
			want++
		}
	}
	if got := remote.reads.Load(); got != want {
		t.Fatalf("%d segment downloads for %d segments", got, want)
	}
	readArchived(t, p, 1000)
	if got := remote.reads.Load(); got != want {
		t.Fatalf("a second pass downloaded again: %d downloads for %d segments", got, want)
	}
	if n := len(cacheFiles(t, b)); int64(n) != want {
		t.Fatalf("%d cache files, want %d", n, want)
	}
	// ListOffsets by timestamp reads the archived segments through the cache too.
	if o, _, err := p.ListOffset(0); err != nil || o != 0 {
		t.Fatalf("ListOffset(0) = %d, %v", o, err)
	}
	if got := remote.reads.Load(); got != want {
		t.Fatalf("ListOffset downloaded again: %d", got)
	}
}

// The cache keeps to its byte bound by evicting least recently used
// files, but a file being read stays open and on disk until its reader
// is done.
func TestRemoteCacheEvictsWhileRead(t *testing.T) {
	remote := newFakeRemote()
	b, p := openTiered(t, vfs.NewMem(), remote, 4096) // about one segment
	m := p.remoteManifest()
	s0, s1 := m.Segments[0], m.Segments[1]
	held, err := p.cachedSegment(s0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Read(s1.BaseOffset, 1); err != nil {
		t.Fatal(err)
	}
	c := b.remoteCache
	c.mu.Lock()
	_, cached0 := c.items[segmentKey{p.remotePartition(), s0.BaseOffset}]
	c.mu.Unlock()
	if cached0 {
		t.Fatal("the least recently used segment was not evicted")
	}
	if n := len(cacheFiles(t, b)); n != 2 {
		t.Fatalf("%d cache files while the evicted one is read, want 2", n)
	}
	data, err := held.read(c.crc, s0.BaseOffset, 1<<20, nil)
	if err != nil || len(data) == 0 {
		t.Fatalf("read the evicted segment held: %d bytes, %v", len(data), err)
	}
	c.release(held)
	if n := len(cacheFiles(t, b)); n != 1 {
		t.Fatalf("%d cache files after the reader let go, want 1", n)
	}
	c.mu.Lock()
	size, doomed := c.size, c.doomed
	c.mu.Unlock()
	if size > c.max || doomed != 0 {
		t.Fatalf("cache holds %d bytes (%d doomed), bound %d", size, doomed, c.max)
	}
	before := remote.reads.Load()
	if _, err := p.Read(s0.BaseOffset, 1); err != nil {
		t.Fatal(err)
	}
	if remote.reads.Load() != before+1 {
		t.Fatal("an evicted segment was not downloaded again")
	}
}

// Readers arriving together for a segment not yet cached share one
// download.
func TestRemoteCacheConcurrentReadsDownloadOnce(t *testing.T) {
	remote := newFakeRemote()
	b, p := openTiered(t, vfs.NewMem(), remote, 1<<20)
	remote.gate = make(chan struct{})
	const readers = 8
	errs := make(chan error, readers)
	for range readers {
		go func() {
			_, err := p.Read(0, 1)
			errs <- err
		}()
	}
	key := segmentKey{p.remotePartition(), 0}
	for deadline := time.Now().Add(10 * time.Second); ; {
		b.remoteCache.mu.Lock()
		l := b.remoteCache.loading[key]
		waiting := l != nil && l.waiters == readers-1
		b.remoteCache.mu.Unlock()
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("readers did not gather on one download")
		}
		time.Sleep(time.Millisecond)
	}
	close(remote.gate)
	for range readers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := remote.reads.Load(); n != 1 {
		t.Fatalf("%d downloads, want 1", n)
	}
}

// A damaged archived object fails the read and leaves nothing cached; once
// it reads back whole the next read downloads it.
func TestRemoteCacheCorruptObject(t *testing.T) {
	remote := newFakeRemote()
	b, p := openTiered(t, vfs.NewMem(), remote, 1<<20)
	rp := p.remotePartition()
	remote.corrupt(rp, 0)
	for range 2 {
		if _, err := p.Read(0, 1); !errors.Is(err, ErrStorage) {
			t.Fatalf("read of a corrupt segment: %v, want ErrStorage", err)
		}
	}
	if names := cacheFiles(t, b); len(names) != 0 {
		t.Fatalf("cache files after a failed download: %v", names)
	}
	b.remoteCache.mu.Lock()
	size, items := b.remoteCache.size, len(b.remoteCache.items)
	b.remoteCache.mu.Unlock()
	if size != 0 || items != 0 {
		t.Fatalf("cache holds %d bytes in %d files after failed downloads", size, items)
	}
	remote.corrupt(rp, 0) // flipped back
	if _, err := p.Read(0, 1); err != nil {
		t.Fatal(err)
	}
	if n := remote.reads.Load(); n != 3 {
		t.Fatalf("%d downloads, want 3", n)
	}
}

// Trimming the archive drops the trimmed segments' cached files, and the
// cache directory does not outlive a restart.
func TestRemoteCacheForgetAndWipe(t *testing.T) {
	remote := newFakeRemote()
	fsys := vfs.NewMem()
	b, p := openTiered(t, fsys, remote, 1<<20)
	m := p.remoteManifest()
	readArchived(t, p, 1<<20)
	n := len(cacheFiles(t, b))
	if err := p.trimRemote(context.Background(), m.Segments[1].BaseOffset); err != nil {
		t.Fatal(err)
	}
	names := cacheFiles(t, b)
	if len(names) != n-1 {
		t.Fatalf("%d cache files after trimming one segment, want %d", len(names), n-1)
	}
	for _, name := range names {
		if strings.Contains(name, fmt.Sprintf("-0-%d-", m.Segments[0].BaseOffset)) {
			t.Fatalf("trimmed segment still cached: %s", name)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	stale, err := fsys.Create("/data/remote-cache/stale.log") // as a crash leaves it
	if err != nil {
		t.Fatal(err)
	}
	_ = stale.Close()
	b, err = Open(Options{FS: fsys, Dir: "/data", Logger: quiet(), Remote: remote, RemoteInterval: time.Hour,
		RetentionCheckInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if names := cacheFiles(t, b); len(names) != 0 {
		t.Fatalf("cache files after a restart: %v", names)
	}
}

// Damage to a cache file is an error, never data, and the damaged copy is
// dropped: the next read downloads the segment again.
func TestRemoteCacheDamagedFile(t *testing.T) {
	remote := newFakeRemote()
	b, p := openTiered(t, vfs.NewMem(), remote, 1<<20)
	if _, err := p.Read(0, 1); err != nil {
		t.Fatal(err)
	}
	names := cacheFiles(t, b)
	if len(names) != 1 {
		t.Fatalf("cache files %v", names)
	}
	f, err := b.opts.FS.OpenReadWrite(b.remoteCache.dir + "/" + names[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0xff}, batch.HeaderSize+4); err != nil { // in the first batch's records
		t.Fatal(err)
	}
	_ = f.Close()
	if _, err := p.Read(0, 1); !errors.Is(err, ErrLogCorrupt) {
		t.Fatalf("read of a damaged cache file: %v, want ErrLogCorrupt", err)
	}
	if data, err := p.Read(0, 1); err != nil || len(data) == 0 {
		t.Fatalf("read after the damaged copy was dropped: %d bytes, %v", len(data), err)
	}
	if n := remote.reads.Load(); n != 2 {
		t.Fatalf("%d downloads, want 2", n)
	}
}
