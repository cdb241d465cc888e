package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// TopicPartition names one partition. Topic is the topic's name or ID;
// either way it must be a legal Kafka topic name, which keeps it a safe
// single key element.
type TopicPartition struct {
	Topic     string
	Partition int32
}

func (tp TopicPartition) String() string { return tp.Topic + "/" + strconv.Itoa(int(tp.Partition)) }

func (tp TopicPartition) check() error {
	t := tp.Topic
	if t == "" || len(t) > 249 || t == "." || t == ".." || tp.Partition < 0 {
		return fmt.Errorf("archive: invalid topic partition %q/%d", t, tp.Partition)
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("archive: invalid topic name %q", t)
		}
	}
	return nil
}

func (tp TopicPartition) dir() string { return tp.Topic + "/" + strconv.Itoa(int(tp.Partition)) }

// ManifestKey is the key of the partition's manifest.
func ManifestKey(tp TopicPartition) string { return tp.dir() + "/manifest" }

// SegmentKey is the key of the segment object base-last.
func SegmentKey(tp TopicPartition, base, last int64) string {
	return fmt.Sprintf("%s/%020d-%020d.log", tp.dir(), base, last)
}

// SegmentMeta describes a segment to upload.
type SegmentMeta struct {
	BaseOffset, LastOffset       int64
	FirstTimestamp, MaxTimestamp int64
	// Size is the exact number of bytes the reader yields.
	Size int64
	// LogStartOffset is the local log's start offset now. It raises the
	// archive's start offset, and only it permits a gap (see Manifest.Add).
	LogStartOffset int64
	// HasTxnIndex records the segment's transaction index, TxnIndex, in
	// its manifest entry: stored as an object of its own (txnindex.go)
	// when not empty; empty means no aborted transaction overlaps the
	// segment. Without it the entry records none, as before Weir wrote
	// transaction indexes.
	HasTxnIndex bool
	TxnIndex    []byte
}

// Archive uploads and reads partitions' segments on a Backend and keeps
// their manifests.
type Archive struct {
	be   Backend
	opts Options

	mu    sync.Mutex
	parts map[TopicPartition]*partition

	linkFellBack atomic.Bool // a link failed and the segment was copied (logged once)
}

// partition serialises one partition's changes and caches its manifest.
type partition struct {
	sem chan struct{} // holds one token across a change

	mu       sync.Mutex
	manifest *Manifest // newest loaded or stored; nil until then or after a failed store
}

func (p *partition) cached() *Manifest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.manifest
}

// remember caches m unless a newer generation is cached already.
func (p *partition) remember(m *Manifest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.manifest == nil || m.Generation >= p.manifest.Generation {
		p.manifest = m
	}
}

func (p *partition) forget() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.manifest = nil
}

func (p *partition) unlock() { <-p.sem }

// New returns an Archive on be. opts take their defaults.
func New(be Backend, opts Options) (*Archive, error) {
	opts = opts.Defaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Archive{be: be, opts: opts, parts: map[TopicPartition]*partition{}}, nil
}

// Backend returns the archive's backend.
func (a *Archive) Backend() Backend { return a.be }

func (a *Archive) part(tp TopicPartition) *partition {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.parts[tp]
	if p == nil {
		p = &partition{sem: make(chan struct{}, 1)}
		a.parts[tp] = p
	}
	return p
}

// lockPart locks tp's partition, giving up when ctx ends first.
func (a *Archive) lockPart(ctx context.Context, tp TopicPartition) (*partition, error) {
	p := a.part(tp)
	select {
	case p.sem <- struct{}{}:
		return p, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("archive: %s: %w", tp, ctx.Err())
	}
}

// Manifest loads tp's manifest from the backend. A partition never archived
// has an empty manifest of generation 0.
func (a *Archive) Manifest(ctx context.Context, tp TopicPartition) (*Manifest, error) {
	if err := tp.check(); err != nil {
		return nil, err
	}
	m, err := a.loadManifest(ctx, tp)
	if err != nil {
		return nil, err
	}
	a.part(tp).remember(m)
	return m.Clone(), nil
}

func (a *Archive) loadManifest(ctx context.Context, tp TopicPartition) (*Manifest, error) {
	key := ManifestKey(tp)
	rc, err := a.be.Get(ctx, key, 0, a.opts.MaxManifestBytes+1)
	if errors.Is(err, ErrNotFound) {
		return &Manifest{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("archive: %s: manifest: %w", tp, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("archive: %s: manifest: %w", tp, err)
	}
	if int64(len(b)) > a.opts.MaxManifestBytes {
		return nil, fmt.Errorf("archive: %s: manifest larger than %d bytes", tp, a.opts.MaxManifestBytes)
	}
	m := &Manifest{}
	if err := m.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("archive: %s: %w", tp, err)
	}
	return m, nil
}

// current returns the cached manifest of a locked partition, loading it on
// first use.
func (a *Archive) current(ctx context.Context, tp TopicPartition, p *partition) (*Manifest, error) {
	if m := p.cached(); m != nil {
		return m, nil
	}
	m, err := a.loadManifest(ctx, tp)
	if err != nil {
		return nil, err
	}
	p.remember(m)
	return p.cached(), nil
}

// store writes m as the next generation after the partition's current one.
func (a *Archive) store(ctx context.Context, tp TopicPartition, p *partition, cur, m *Manifest) error {
	m.Generation = cur.Generation + 1
	b, err := m.MarshalBinary()
	if err != nil {
		return err
	}
	if err := a.be.Put(ctx, ManifestKey(tp), bytes.NewReader(b), int64(len(b))); err != nil {
		// The Put may or may not have landed; reload before the next change.
		p.forget()
		return fmt.Errorf("archive: %s: manifest generation %d: %w", tp, m.Generation, err)
	}
	p.remember(m)
	return nil
}

// UploadSegment copies a sealed segment to the archive and then commits it
// to the manifest. r must yield exactly meta.Size bytes. A segment already
// archived with the same range and size is not uploaded again. On error the
// manifest is unchanged, or (if only its own write failed in an unknown
// state) holds the segment whole; a retry is always safe.
func (a *Archive) UploadSegment(ctx context.Context, tp TopicPartition, meta SegmentMeta, r io.Reader) error {
	if err := tp.check(); err != nil {
		return err
	}
	p, err := a.lockPart(ctx, tp)
	if err != nil {
		return err
	}
	defer p.unlock()
	cur, err := a.current(ctx, tp, p)
	if err != nil {
		return err
	}
	seg := Segment{
		BaseOffset: meta.BaseOffset, LastOffset: meta.LastOffset,
		FirstTimestamp: meta.FirstTimestamp, MaxTimestamp: meta.MaxTimestamp,
		Size: meta.Size,
	}
	if s, ok := cur.segment(seg.BaseOffset); ok && s.LastOffset == seg.LastOffset && s.Size == seg.Size {
		return nil
	}
	next := cur.Clone()
	if err := next.Add(seg, meta.LogStartOffset); err != nil {
		return fmt.Errorf("archive: %s: %w", tp, err)
	}
	if err := a.putTxnIndex(ctx, tp, &seg, meta); err != nil {
		return err
	}
	key := SegmentKey(tp, seg.BaseOffset, seg.LastOffset)
	start := a.opts.Now()
	linked, err := a.putLinked(ctx, tp, key, &seg, r)
	if err != nil {
		return err
	}
	if !linked {
		h := crc32.New(castagnoli)
		if err := a.be.Put(ctx, key, io.TeeReader(r, h), seg.Size); err != nil {
			return fmt.Errorf("archive: %s: upload %d-%d: %w", tp, seg.BaseOffset, seg.LastOffset, err)
		}
		seg.CRC32C = h.Sum32()
	}
	seg.UploadTime = a.opts.Now().UnixMilli()
	next.Segments[len(next.Segments)-1] = seg
	if err := a.store(ctx, tp, p, cur, next); err != nil {
		return err
	}
	a.opts.Logger.Debug("archive: segment uploaded", slog.String("partition", tp.String()),
		slog.Int64("base", seg.BaseOffset), slog.Int64("last", seg.LastOffset), slog.Int64("bytes", seg.Size),
		slog.Bool("linked", linked), slog.Duration("took", a.opts.Now().Sub(start)))
	return nil
}

// putLinked stores the segment r reads as a hard link when r is a local
// file the backend can link (link.go), setting seg.CRC32C from reading
// the file. linked is false, with no error, when it cannot: the caller
// copies r, which nothing has read yet. The first such fallback is logged.
func (a *Archive) putLinked(ctx context.Context, tp TopicPartition, key string, seg *Segment, r io.Reader) (linked bool, err error) {
	lb, ok := a.be.(fileLinker)
	if !ok {
		return false, nil
	}
	lf, ok := r.(LocalFile)
	if !ok {
		return false, nil
	}
	f := lf.LocalFile()
	if f == nil {
		return false, nil
	}
	if err := lb.putLinked(ctx, key, f, seg.Size); err != nil {
		if ctx.Err() != nil {
			return false, fmt.Errorf("archive: %s: upload %d-%d: %w", tp, seg.BaseOffset, seg.LastOffset, err)
		}
		if !a.linkFellBack.Swap(true) {
			a.opts.Logger.Info("archive: cannot link segments into the archive; copying them",
				slog.String("partition", tp.String()), slog.Any("err", err))
		}
		return false, nil
	}
	// The object is in place; a failure from here leaves an orphan that
	// the retry replaces or Sweep removes, as a failed copy does.
	crc, err := checksumFile(ctx, f, seg.Size)
	if err != nil {
		return false, fmt.Errorf("archive: %s: upload %d-%d: checksum: %w", tp, seg.BaseOffset, seg.LastOffset, err)
	}
	seg.CRC32C = crc
	return true, nil
}

// ReadSegment opens the archived segment with the given base offset. The
// reader checks the size and CRC-32C the manifest records: at the end of a
// damaged object it returns an error wrapping ErrCorrupt instead of io.EOF.
func (a *Archive) ReadSegment(ctx context.Context, tp TopicPartition, baseOffset int64) (io.ReadCloser, Segment, error) {
	if err := tp.check(); err != nil {
		return nil, Segment{}, err
	}
	seg, ok := a.cachedSegment(tp, baseOffset)
	if !ok {
		m, err := a.Manifest(ctx, tp) // another process may have added it
		if err != nil {
			return nil, Segment{}, err
		}
		if seg, ok = m.segment(baseOffset); !ok {
			return nil, Segment{}, fmt.Errorf("%w: %s base offset %d", ErrSegmentNotFound, tp, baseOffset)
		}
	}
	rc, err := a.be.Get(ctx, SegmentKey(tp, seg.BaseOffset, seg.LastOffset), 0, -1)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, Segment{}, fmt.Errorf("archive: %s: segment %d-%d listed but missing: %w", tp, seg.BaseOffset, seg.LastOffset, ErrCorrupt)
		}
		return nil, Segment{}, fmt.Errorf("archive: %s: %w", tp, err)
	}
	return &verifyReader{rc: rc, h: crc32.New(castagnoli), seg: seg, name: tp.String()}, seg, nil
}

func (a *Archive) cachedSegment(tp TopicPartition, base int64) (Segment, bool) {
	m := a.part(tp).cached()
	if m == nil {
		return Segment{}, false
	}
	return m.segment(base)
}

// verifyReader passes a segment object through, checking its size and
// CRC-32C at the end.
type verifyReader struct {
	rc   io.ReadCloser
	h    hash.Hash32
	seg  Segment
	name string
	n    int64
	err  error
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.rc.Read(p)
	v.n += int64(n)
	v.h.Write(p[:n])
	switch {
	case v.n > v.seg.Size:
		v.err = v.corrupt(fmt.Sprintf("longer than its %d bytes", v.seg.Size))
	case n > 0 && v.n == v.seg.Size && v.h.Sum32() != v.seg.CRC32C:
		// Checked as the last byte arrives, so the chunk that completes a
		// damaged object is withheld: a caller that ignores the error still
		// never holds the whole object as data.
		v.err = v.corrupt(fmt.Sprintf("crc32c %08x, want %08x", v.h.Sum32(), v.seg.CRC32C))
	case err == io.EOF && v.n < v.seg.Size:
		v.err = v.corrupt(fmt.Sprintf("%d of %d bytes", v.n, v.seg.Size))
	case err == io.EOF && v.seg.Size == 0 && v.seg.CRC32C != 0:
		v.err = v.corrupt("empty, want a non-zero crc32c")
	case err != nil:
		v.err = err
		return n, err
	default:
		return n, nil
	}
	return 0, v.err
}

func (v *verifyReader) corrupt(what string) error {
	return fmt.Errorf("%w segment %s %d-%d: %s", ErrCorrupt, v.name, v.seg.BaseOffset, v.seg.LastOffset, what)
}

func (v *verifyReader) Close() error { return v.rc.Close() }

// ReadSegmentBytes reads a whole archived segment into memory, verified.
func (a *Archive) ReadSegmentBytes(ctx context.Context, tp TopicPartition, baseOffset int64) ([]byte, Segment, error) {
	rc, seg, err := a.ReadSegment(ctx, tp, baseOffset)
	if err != nil {
		return nil, Segment{}, err
	}
	defer rc.Close()
	b := make([]byte, 0, seg.Size)
	b, err = readAllInto(rc, b)
	if err != nil {
		return nil, Segment{}, err
	}
	return b, seg, nil
}

func readAllInto(r io.Reader, b []byte) ([]byte, error) {
	buf := bytes.NewBuffer(b)
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// Trim raises tp's start offset (remote retention, DeleteRecords), stores
// the manifest, then deletes the objects of segments wholly below it. A
// failed delete leaves an orphan for Sweep.
func (a *Archive) Trim(ctx context.Context, tp TopicPartition, startOffset int64) error {
	if err := tp.check(); err != nil {
		return err
	}
	p, err := a.lockPart(ctx, tp)
	if err != nil {
		return err
	}
	defer p.unlock()
	cur, err := a.current(ctx, tp, p)
	if err != nil {
		return err
	}
	if startOffset <= cur.StartOffset {
		return nil
	}
	next := cur.Clone()
	dropped := next.Trim(startOffset)
	if err := a.store(ctx, tp, p, cur, next); err != nil {
		return err
	}
	for _, s := range dropped {
		err := a.be.Delete(ctx, SegmentKey(tp, s.BaseOffset, s.LastOffset))
		if err == nil {
			err = a.deleteTxnIndex(ctx, tp, s)
		}
		if err != nil {
			a.opts.Logger.Warn("archive: delete of a trimmed segment failed; Sweep will retry",
				slog.String("partition", tp.String()), slog.Int64("base", s.BaseOffset), slog.Any("err", err))
		}
	}
	return nil
}

// Sweep deletes tp's objects the manifest does not name: orphans of failed
// uploads and of trims. It returns the deleted keys.
func (a *Archive) Sweep(ctx context.Context, tp TopicPartition) ([]string, error) {
	if err := tp.check(); err != nil {
		return nil, err
	}
	p, err := a.lockPart(ctx, tp)
	if err != nil {
		return nil, err
	}
	defer p.unlock()
	p.forget() // sweep against the stored manifest, never a stale cache
	cur, err := a.current(ctx, tp, p)
	if err != nil {
		return nil, err
	}
	keep := map[string]bool{ManifestKey(tp): true}
	for _, s := range cur.Segments {
		keep[SegmentKey(tp, s.BaseOffset, s.LastOffset)] = true
		if s.TxnIndexSize > 0 {
			keep[TxnIndexKey(tp, s.BaseOffset, s.LastOffset)] = true
		}
	}
	objs, err := a.be.List(ctx, tp.dir()+"/")
	if err != nil {
		return nil, fmt.Errorf("archive: %s: sweep: %w", tp, err)
	}
	var deleted []string
	for _, o := range objs {
		if keep[o.Key] || strings.Contains(strings.TrimPrefix(o.Key, tp.dir()+"/"), "/") {
			continue
		}
		if err := a.be.Delete(ctx, o.Key); err != nil {
			return deleted, fmt.Errorf("archive: %s: sweep: %w", tp, err)
		}
		deleted = append(deleted, o.Key)
	}
	if len(deleted) > 0 {
		a.opts.Logger.Info("archive: swept orphans", slog.String("partition", tp.String()), slog.Int("objects", len(deleted)))
	}
	return deleted, nil
}
