package broker

import (
	"bufio"
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

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
	// ReadSegment opens the archived segment with base offset base for
	// one sequential read. The reader verifies the object as it streams:
	// damage (a wrong size or checksum) is an error from its last Read
	// instead of io.EOF, so bytes read are the segment's only once the
	// reader has reached io.EOF. The caller closes it.
	ReadSegment(ctx context.Context, rp RemotePartition, base int64) (io.ReadCloser, error)
	// Trim raises the partition's start offset to start, deleting the
	// segments wholly below it (with their transaction indexes), and
	// returns the manifest after it.
	Trim(ctx context.Context, rp RemotePartition, start int64) (RemoteManifest, error)
	// ReadTxnIndex returns the transaction index uploaded with the
	// archived segment with base offset base (seg.TxnIndexData of its
	// Upload), verified against the size and checksum its manifest entry
	// records: damage or a missing object is an error, never other bytes.
	// It is called only for segments whose entry has TxnIndexSize > 0.
	ReadTxnIndex(ctx context.Context, rp RemotePartition, base int64) ([]byte, error)
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
	// TxnIndex reports that the segment's transaction index (tier_txn.go)
	// was uploaded with it, TxnIndexSize bytes (0: no aborted transaction
	// overlaps the segment, and no object) with checksum TxnIndexCRC32C.
	// False for segments uploaded before Weir wrote them.
	TxnIndex       bool
	TxnIndexSize   int64
	TxnIndexCRC32C uint32 // set by the store
	// TxnIndexData is the index to upload (Upload only; the uploader sets
	// it and TxnIndex).
	TxnIndexData []byte
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

// setManifest caches m unless the cached manifest is newer (further on
// or starting later), and returns the one cached. Only uploads and trims
// move an archive, each forward, so a load that raced one of them (the
// operators' status and verify) must not take the partition back: with a
// manifest ending before the local log start, LogStartOffset would skip
// to the local start and consumers reset there would miss the offsets
// between.
func (p *Partition) setManifest(m RemoteManifest) *RemoteManifest {
	for {
		cur := p.remote.Load()
		if cur != nil && (m.NextOffset() < cur.NextOffset() || m.StartOffset < cur.StartOffset) {
			return cur
		}
		if p.remote.CompareAndSwap(cur, &m) {
			return &m
		}
	}
}

// loadManifest loads and caches p's manifest.
func (p *Partition) loadManifest(ctx context.Context) (*RemoteManifest, error) {
	m, err := p.broker.opts.Remote.Manifest(ctx, p.remotePartition())
	if err != nil {
		return nil, err
	}
	return p.setManifest(m), nil
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

// manifestNow returns the partition's archive manifest, loading it from
// the archive if the node has not yet.
func (p *Partition) manifestNow() (*RemoteManifest, error) {
	if m := p.remoteManifest(); m != nil {
		return m, nil
	}
	ctx, cancel := remoteCtx()
	defer cancel()
	m, err := p.loadManifest(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: %s-%d: archive manifest: %w", ErrStorage, p.topic.Name, p.index, err)
	}
	return m, nil
}

// readRemote serves a read below the local log start from the archive:
// whole batches of one archived segment from the one holding offset, up to
// maxBytes (at least that first batch), copied into alloc's buffer.
func (p *Partition) readRemote(offset int64, maxBytes int, alloc func(int) []byte) ([]byte, error) {
	m, err := p.manifestNow()
	if err != nil {
		return nil, err
	}
	seg, ok := m.find(offset)
	if !ok {
		return nil, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, p.LogStartOffset(), p.log.HighWatermark())
	}
	cs, err := p.cachedSegment(seg)
	if err != nil {
		return nil, err
	}
	defer p.broker.remoteCache.release(cs)
	buf, err := cs.read(p.broker.remoteCache.crc, offset, maxBytes, alloc)
	if err != nil {
		if errors.Is(err, ErrLogCorrupt) {
			p.broker.remoteCache.drop(cs) // downloaded again by the next read
		}
		return nil, err
	}
	p.broker.tier.remoteRead.Add(float64(len(buf)))
	return buf, nil
}

// cachedSegment returns seg from the remote read cache, downloading it on
// first use; the caller releases it.
func (p *Partition) cachedSegment(seg RemoteSegment) (*cachedSegment, error) {
	rp := p.remotePartition()
	cs, err := p.broker.remoteCache.acquire(segmentKey{rp: rp, base: seg.BaseOffset}, seg.Size,
		func(ctx context.Context) (io.ReadCloser, error) {
			return p.broker.opts.Remote.ReadSegment(ctx, rp, seg.BaseOffset)
		})
	if err != nil {
		if errors.Is(err, ErrLogCorrupt) || errors.Is(err, ErrStorage) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %s-%d: archived segment %d: %w", ErrStorage, p.topic.Name, p.index, seg.BaseOffset, err)
	}
	return cs, nil
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
		o, rts, found, err := p.segmentOffsetForTimestamp(seg, ts, m.StartOffset, local)
		if err != nil || found {
			return o, rts, found, err
		}
	}
	return 0, 0, false, nil
}

// segmentOffsetForTimestamp looks ts up in one archived segment, among
// the offsets in [start, local).
func (p *Partition) segmentOffsetForTimestamp(seg RemoteSegment, ts, start, local int64) (offset, recordTs int64, found bool, err error) {
	cs, err := p.cachedSegment(seg)
	if err != nil {
		return 0, 0, false, err
	}
	defer p.broker.remoteCache.release(cs)
	hdr := make([]byte, batch.HeaderSize)
	for pos := int64(0); pos < cs.size; {
		h, err := cs.readHeaderAt(pos, hdr)
		if err != nil {
			return 0, 0, false, err
		}
		if h.MaxTimestamp < ts || h.LastOffset() < start {
			pos += int64(h.Size())
			continue
		}
		one, err := cs.readAt(p.broker.remoteCache.crc, pos, h.Size(), h.Size(), nil)
		if err != nil {
			return 0, 0, false, err
		}
		hh, recs, err := batch.RecordsCompacted(one, maxDecompressedBatch)
		if err != nil {
			return 0, 0, false, fmt.Errorf("%w: archived segment %d: %w", ErrLogCorrupt, seg.BaseOffset, err)
		}
		for _, r := range recs {
			if o, rts := r.Offset(hh), r.Timestamp(hh); o >= start && o < local && rts >= ts {
				return o, rts, true, nil
			}
		}
		pos += int64(h.Size())
	}
	return 0, 0, false, nil
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
		// The local start first: local retention deletes only what the
		// archive holds, so a manifest loaded after it reaches it (read
		// the other way round, an upload and a local deletion in between
		// look like a gap).
		local, hw := p.log.LogStartOffset(), p.log.HighWatermark()
		m, err := p.loadManifest(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: %s-%d: %w", ErrStorage, topic, p.index, err)
		}
		out = append(out, ArchiveStatus{Partition: p.index, LogStartOffset: p.LogStartOffset(), LocalStartOffset: local,
			HighWatermark: hw, Manifest: *m})
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
			if msg, err := verifyTxnIndex(ctx, b.opts.Remote, rp, seg); err != nil || msg != "" {
				if ctx.Err() != nil {
					return segments, bytes, problems, ctx.Err()
				}
				problems = append(problems, VerifyProblem{s.Partition, seg.BaseOffset, cmp.Or(msg, fmt.Sprint(err))})
			}
			n, msg, err := verifySegment(ctx, b.opts.Remote, rp, seg)
			if err != nil {
				if ctx.Err() != nil {
					return segments, bytes, problems, ctx.Err()
				}
				problems = append(problems, VerifyProblem{s.Partition, seg.BaseOffset, err.Error()})
				continue
			}
			segments++
			bytes += n
			if msg != "" {
				problems = append(problems, VerifyProblem{s.Partition, seg.BaseOffset, msg})
			}
		}
	}
	return segments, bytes, problems, nil
}

// verifySegment reads an archived segment through the store's verifying
// reader, checking its batches as they stream past (one batch in memory
// at a time). err is the store's (a damaged object), msg a batch problem
// in an object that checked out.
func verifySegment(ctx context.Context, store RemoteStorage, rp RemotePartition, seg RemoteSegment) (n int64, msg string, err error) {
	rc, err := store.ReadSegment(ctx, rp, seg.BaseOffset)
	if err != nil {
		return 0, "", err
	}
	defer rc.Close()
	r := &countingReader{r: bufio.NewReaderSize(rc, remoteCopyBuffer)}
	msg = checkSegmentBatches(r, seg)
	// Read to the end: the store's verdict on the object comes first.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return r.n, "", err
	}
	return r.n, msg, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// checkSegmentBatches checks that r holds whole, CRC-valid batches with
// contiguous offsets from seg's base to its last offset.
func checkSegmentBatches(r io.Reader, seg RemoteSegment) string {
	next := seg.BaseOffset
	buf := make([]byte, batch.HeaderSize)
	for {
		_, err := io.ReadFull(r, buf[:batch.HeaderSize])
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Sprintf("batch at offset %d: %v", next, err)
		}
		h, err := batch.ParseHeader(buf)
		if err != nil {
			return fmt.Sprintf("batch at offset %d: %v", next, err)
		}
		if int64(h.Size()) > seg.Size {
			return fmt.Sprintf("batch at offset %d: %d bytes, more than the segment's %d", next, h.Size(), seg.Size)
		}
		if h.Size() > cap(buf) {
			buf = append(buf[:batch.HeaderSize], make([]byte, h.Size()-batch.HeaderSize)...)
		}
		buf = buf[:h.Size()]
		if _, err := io.ReadFull(r, buf[batch.HeaderSize:]); err != nil {
			return fmt.Sprintf("batch at offset %d: %v", next, err)
		}
		if _, err := batch.VerifyCompacted(buf); err != nil {
			return fmt.Sprintf("batch at offset %d: %v", next, err)
		}
		if h.BaseOffset != next {
			return fmt.Sprintf("batch at offset %d, want %d", h.BaseOffset, next)
		}
		next = h.LastOffset() + 1
	}
	if next != seg.LastOffset+1 {
		return fmt.Sprintf("batches end at %d, the manifest says %d", next-1, seg.LastOffset)
	}
	return ""
}

// deleteArchivedTimeout bounds the removal of one deleted topic's archive.
const deleteArchivedTimeout = 2 * time.Minute

// deleteArchived removes, in the background, the archived segments of t, a
// tiered topic just deleted (Kafka deletes a deleted topic's remote
// segments too): each partition is trimmed past its end, which deletes
// every segment object (the small manifest stays, keyed by the old topic
// ID, which no new topic reuses). A failure or a stop of the node leaves
// objects behind and is logged; nothing else depends on them.
func (b *Broker) deleteArchived(t *Topic) {
	if b.opts.Remote == nil || !t.remote.Load() {
		return
	}
	var rps []RemotePartition
	for _, p := range t.Partitions() {
		rps = append(rps, p.remotePartition())
	}
	b.archiveDeletes.Add(1)
	go func() {
		defer b.archiveDeletes.Done()
		ctx, cancel := context.WithTimeout(context.Background(), deleteArchivedTimeout)
		defer cancel()
		go func() {
			select {
			case <-b.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		for _, rp := range rps {
			b.remoteCache.forget(rp, math.MaxInt64)
			if _, err := b.opts.Remote.Trim(ctx, rp, math.MaxInt64); err != nil {
				b.opts.Logger.Warn("broker: deleting a deleted topic's archived segments", "topic", t.Name,
					"partition", rp.Partition, "err", err)
				return
			}
		}
		b.opts.Logger.Info("broker: deleted a deleted topic's archived segments", "topic", t.Name, "partitions", len(rps))
	}()
}
