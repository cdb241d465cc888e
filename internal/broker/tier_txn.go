package broker

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"
	"time"
)

// Transactions on archived segments. The aborted-transactions index
// (txn_log.go) lives in memory and is rebuilt at open from the local log
// only, so on its own it forgets, at a restart, the aborted transactions
// of offsets that only the archive holds; a read_committed consumer would
// then read their records as committed. As Kafka does (KIP-405 uploads a
// .txnindex with each segment), the uploader therefore uploads with every
// segment its transaction index: the aborted transactions that overlap
// the segment's offsets, drawn below. internal/archive stores it as an
// object beside the segment, written before the manifest generation that
// names both, and records its size and CRC-32C in the segment's manifest
// entry; an empty index (every segment of a topic without transactions)
// is recorded without an object.
//
// A segment is uploaded only once every transaction in it is decided: its
// last offset below the last stable offset (Kafka's rule too). So its
// index is complete when it goes up — an abort marker written later can
// only end a transaction that began after the segment — and a transaction
// still open at a restart never has batches that only the archive holds.
// A long transaction holds back uploads (and so local retention) until it
// ends or times out.
//
// Reads load the indexes lazily, per archived segment: a read_committed
// read that returns archived batches takes the aborted transactions of its
// range from the in-memory index (which, while the node runs, still holds
// those of the archived offsets above the log start) and from the index of
// each archived segment it covers, fetched on first use, checked, and kept
// in a cache bounded by entries (remoteTxnCacheEntries, least recently
// used out first; an index larger than the bound serves its read and is
// not kept). Loading every index at open instead would cost a request per
// archived segment with aborts before the first read, for data few
// consumers may read; lazily, the cost is one small request per segment a
// read_committed consumer reaches, next to the download of the segment
// itself, and memory stays bounded whatever the archive holds. An index
// that cannot be read (missing, damaged, failing its checks) fails the
// read with ErrLogCorrupt or ErrStorage — never a read that serves aborted
// records as committed — and is logged, then retried after
// txnIndexRetryDelay.
//
// A segment uploaded before Weir wrote transaction indexes (a manifest
// entry without one) has only the in-memory index: its aborted
// transactions are known while the node that uploaded it runs, and lost at
// a restart, as before.
//
// Producer state is not uploaded (Kafka uploads a producer snapshot per
// segment, for replicas that rebuild a log from the archive): Weir rebuilds
// it from the local log at open, keeps no snapshots locally either, and
// has no replicas yet. A producer whose only batches are archived has been
// idle for as long as local retention took to delete them; after a
// restart it is an unknown producer, whose next batch is accepted at any
// sequence (KIP-360, as Kafka does once producer.id.expiration.ms passes).
// What is lost is the detection of a duplicate retried after that restart
// of a batch local retention already deleted: far beyond any producer's
// delivery timeout. docs/retention.md says the same.
//
// The transaction index format, big-endian, Castagnoli CRC-32C:
//
//	0       4       6       8              16             24        28
//	+-------+-------+-------+--------------+--------------+---------+
//	|"WTXI" |version| flags | base offset  | last offset  |  count  |  header, 28 bytes
//	+-------+-------+-------+--------------+--------------+---------+
//	| count entries of 24 bytes, ordered by first offset:            |
//	| +-------------+--------------+-----------------------------+   |
//	| | producer id | first offset | last offset (abort marker)  |   |
//	| |    int64    |    int64     |           int64             |   |
//	| +-------------+--------------+-----------------------------+   |
//	+---------------------------------------------------------------+
//	| crc32c of every byte before it, uint32                         |  trailer, 4 bytes
//	+---------------------------------------------------------------+
//
// version is 1 and flags 0; base and last offset are the segment's. The
// decoder takes the bytes as untrusted (they come from the object store):
// it checks the checksum, the length against count, that the offsets are
// the segment's, and that every entry is an aborted transaction that
// overlaps the segment (producer id >= 0, 0 <= first <= last, last >=
// base, first <= the segment's last), in order; it allocates in proportion
// to its input.

const (
	txnIndexMagic      = "WTXI"
	txnIndexVersion    = 1
	txnIndexHeaderLen  = 28
	txnIndexEntryLen   = 24
	txnIndexTrailerLen = 4
	// maxTxnIndexBytes bounds an uploaded index (about 2.8 million
	// aborted transactions, more than a segment of the largest
	// segment.bytes holds); internal/archive refuses larger ones on read.
	maxTxnIndexBytes = 64 << 20
	// remoteTxnCacheEntries bounds the archived segments' aborted
	// transactions kept in memory (24 MiB of entries).
	remoteTxnCacheEntries = 1 << 20
	// txnIndexRetryDelay is how long a failed index load is answered from
	// its failure before the store is asked again.
	txnIndexRetryDelay = 5 * time.Second
)

var txnIndexCRC = crc32.MakeTable(crc32.Castagnoli)

// encodeTxnIndex encodes the index of segment base-last; nil when aborted
// is empty (no object is uploaded).
func encodeTxnIndex(base, last int64, aborted []AbortedTxn) []byte {
	if len(aborted) == 0 {
		return nil
	}
	b := make([]byte, 0, txnIndexHeaderLen+len(aborted)*txnIndexEntryLen+txnIndexTrailerLen)
	b = append(b, txnIndexMagic...)
	b = binary.BigEndian.AppendUint16(b, txnIndexVersion)
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint64(b, uint64(base))
	b = binary.BigEndian.AppendUint64(b, uint64(last))
	b = binary.BigEndian.AppendUint32(b, uint32(len(aborted)))
	for _, a := range aborted {
		b = binary.BigEndian.AppendUint64(b, uint64(a.ProducerID))
		b = binary.BigEndian.AppendUint64(b, uint64(a.FirstOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(a.LastOffset))
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, txnIndexCRC))
}

// decodeTxnIndex decodes the index of segment base-last, refusing (with an
// error wrapping ErrLogCorrupt) any that fails a check of the format
// comment.
func decodeTxnIndex(b []byte, base, last int64) ([]AbortedTxn, error) {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: transaction index of archived segment %d-%d: "+format,
			append([]any{ErrLogCorrupt, base, last}, args...)...)
	}
	if len(b) < txnIndexHeaderLen+txnIndexTrailerLen {
		return nil, corrupt("%d bytes is shorter than a header", len(b))
	}
	if string(b[:4]) != txnIndexMagic {
		return nil, corrupt("bad magic %q", b[:4])
	}
	body := b[:len(b)-txnIndexTrailerLen]
	if got, want := crc32.Checksum(body, txnIndexCRC), binary.BigEndian.Uint32(b[len(body):]); got != want {
		return nil, corrupt("checksum %08x, want %08x", got, want)
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != txnIndexVersion {
		return nil, corrupt("unsupported version %d", v)
	}
	if f := binary.BigEndian.Uint16(b[6:]); f != 0 {
		return nil, corrupt("unknown flags %#x", f)
	}
	if gb, gl := int64(binary.BigEndian.Uint64(b[8:])), int64(binary.BigEndian.Uint64(b[16:])); gb != base || gl != last {
		return nil, corrupt("made for segment %d-%d", gb, gl)
	}
	count := uint64(binary.BigEndian.Uint32(b[24:]))
	if uint64(len(body)-txnIndexHeaderLen) != count*txnIndexEntryLen {
		return nil, corrupt("%d entries do not fill %d bytes", count, len(body)-txnIndexHeaderLen)
	}
	out := make([]AbortedTxn, 0, count)
	for e := body[txnIndexHeaderLen:]; len(e) > 0; e = e[txnIndexEntryLen:] {
		a := AbortedTxn{
			ProducerID:  int64(binary.BigEndian.Uint64(e[0:])),
			FirstOffset: int64(binary.BigEndian.Uint64(e[8:])),
			LastOffset:  int64(binary.BigEndian.Uint64(e[16:])),
		}
		switch {
		case a.ProducerID < 0 || a.FirstOffset < 0 || a.LastOffset < a.FirstOffset:
			return nil, corrupt("invalid entry %+v", a)
		case a.LastOffset < base || a.FirstOffset > last:
			return nil, corrupt("entry %+v outside the segment", a)
		case len(out) > 0 && a.FirstOffset < out[len(out)-1].FirstOffset:
			return nil, corrupt("entry %+v out of order", a)
		}
		out = append(out, a)
	}
	return out, nil
}

// txnsDecided reports whether every transaction with batches at or below
// last is decided, so the segment ending at last may be uploaded (its
// transaction index is then final).
func (p *Partition) txnsDecided(last int64) bool { return last < p.LastStableOffset() }

// withTxnIndex returns seg with its transaction index set for upload. An
// index over maxTxnIndexBytes (never seen: it takes millions of aborted
// transactions in one segment) is left out, as uploads before
// transaction indexes did, and logged.
func (p *Partition) withTxnIndex(seg RemoteSegment) RemoteSegment {
	data := encodeTxnIndex(seg.BaseOffset, seg.LastOffset, p.AbortedTransactions(seg.BaseOffset, seg.LastOffset+1))
	if len(data) > maxTxnIndexBytes {
		p.broker.opts.Logger.Warn("broker: transaction index too large to archive; read_committed reads of the segment "+
			"depend on the in-memory index, lost at a restart", "topic", p.topic.Name, "partition", p.index,
			"base", seg.BaseOffset, "bytes", len(data))
		return seg
	}
	seg.TxnIndex, seg.TxnIndexData = true, data
	return seg
}

// abortedTxnsFor returns the aborted transactions overlapping [from, to),
// the range of batches a read_committed read returns: from the in-memory
// index and, for archived offsets below the local log start, from the
// transaction indexes of their segments.
func (p *Partition) abortedTxnsFor(from, to int64) ([]AbortedTxn, error) {
	out := p.AbortedTransactions(from, to)
	local := p.log.LogStartOffset()
	if from >= local || !p.remoteEnabled() {
		return out, nil
	}
	m, err := p.manifestNow()
	if err != nil {
		return nil, err
	}
	merged := false
	for off := from; off < min(to, local); {
		seg, ok := m.find(off)
		if !ok {
			// Trimmed since the batches were read: their aborted
			// transactions may be gone with them.
			return nil, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, off, p.LogStartOffset(), p.log.HighWatermark())
		}
		if seg.TxnIndexSize > 0 {
			st, err := p.segmentTxns(seg)
			if err != nil {
				return nil, err
			}
			out = append(out, overlapping(st.aborted, st.maxSpan, from, to)...)
			merged = true
		}
		off = seg.LastOffset + 1
	}
	if merged {
		out = mergeAborted(out)
	}
	return out, nil
}

// mergeAborted orders entries by first offset, one per abort marker: the
// in-memory index and a segment's transaction index may both hold an
// entry, the former with a later first offset when the transaction began
// in a segment only the archive held at open.
func mergeAborted(out []AbortedTxn) []AbortedTxn {
	slices.SortFunc(out, func(a, b AbortedTxn) int {
		return cmp.Or(cmp.Compare(a.LastOffset, b.LastOffset), cmp.Compare(a.ProducerID, b.ProducerID),
			cmp.Compare(a.FirstOffset, b.FirstOffset))
	})
	out = slices.CompactFunc(out, func(a, b AbortedTxn) bool {
		return a.LastOffset == b.LastOffset && a.ProducerID == b.ProducerID
	})
	slices.SortStableFunc(out, func(a, b AbortedTxn) int { return cmp.Compare(a.FirstOffset, b.FirstOffset) })
	return out
}

// segmentTxns returns the aborted transactions of archived segment seg,
// from the cache or its transaction index.
func (p *Partition) segmentTxns(seg RemoteSegment) (*segmentTxns, error) {
	c := &p.broker.remoteCache.txns
	key := segmentKey{rp: p.remotePartition(), base: seg.BaseOffset}
	now := p.broker.opts.Now()
	if st, err := c.get(key, now); st != nil || err != nil {
		return st, err
	}
	ctx, cancel := remoteCtx()
	data, err := p.broker.opts.Remote.ReadTxnIndex(ctx, key.rp, seg.BaseOffset)
	cancel()
	var aborted []AbortedTxn
	if err == nil {
		aborted, err = decodeTxnIndex(data, seg.BaseOffset, seg.LastOffset)
	} else {
		err = fmt.Errorf("%w: %s-%d: transaction index of archived segment %d-%d: %w", ErrStorage, p.topic.Name, p.index,
			seg.BaseOffset, seg.LastOffset, err)
	}
	if err != nil {
		p.broker.opts.Logger.Warn("broker: archived transaction index unreadable; read_committed reads of its segment fail",
			"topic", p.topic.Name, "partition", p.index, "base", seg.BaseOffset, "err", err)
		c.fail(key, err, now.Add(txnIndexRetryDelay))
		return nil, err
	}
	st := &segmentTxns{aborted: aborted}
	for _, a := range aborted {
		st.maxSpan = max(st.maxSpan, a.LastOffset-a.FirstOffset)
	}
	c.put(key, st)
	return st, nil
}

// segmentTxns is one archived segment's aborted transactions.
type segmentTxns struct {
	aborted []AbortedTxn // by first offset
	maxSpan int64
	used    uint64
}

// txnCacheFailure is a failed load, answered until retryAt.
type txnCacheFailure struct {
	err     error
	retryAt time.Time
}

// txnIndexCache holds archived segments' aborted transactions, bounded by
// remoteTxnCacheEntries, least recently used out first. Its zero value is
// empty and ready.
type txnIndexCache struct {
	mu     sync.Mutex
	n      int // entries held
	tick   uint64
	items  map[segmentKey]*segmentTxns
	failed map[segmentKey]txnCacheFailure
}

// get returns key's cached entries, or the failure of its last load until
// its retry time; both nil on a miss.
func (c *txnIndexCache) get(key segmentKey, now time.Time) (*segmentTxns, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.items[key]; st != nil {
		c.tick++
		st.used = c.tick
		return st, nil
	}
	if f, ok := c.failed[key]; ok {
		if now.Before(f.retryAt) {
			return nil, f.err
		}
		delete(c.failed, key)
	}
	return nil, nil
}

// put caches st for key, evicting the least recently used beyond the
// bound; an index larger than the bound is not kept.
func (c *txnIndexCache) put(key segmentKey, st *segmentTxns) {
	if len(st.aborted) > remoteTxnCacheEntries {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = map[segmentKey]*segmentTxns{}
	}
	if old := c.items[key]; old != nil {
		c.n -= len(old.aborted)
	}
	c.tick++
	st.used = c.tick
	c.items[key] = st
	c.n += len(st.aborted)
	delete(c.failed, key)
	for c.n > remoteTxnCacheEntries {
		var oldest segmentKey
		var o *segmentTxns
		for k, s := range c.items {
			if o == nil || s.used < o.used {
				oldest, o = k, s
			}
		}
		delete(c.items, oldest)
		c.n -= len(o.aborted)
	}
}

// fail remembers a failed load of key until retryAt.
func (c *txnIndexCache) fail(key segmentKey, err error, retryAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.failed == nil {
		c.failed = map[segmentKey]txnCacheFailure{}
	}
	c.failed[key] = txnCacheFailure{err: err, retryAt: retryAt}
}

// forget drops a partition's entries below start (all when start is
// math.MaxInt64).
func (c *txnIndexCache) forget(rp RemotePartition, start int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, s := range c.items {
		if k.rp == rp && k.base < start {
			delete(c.items, k)
			c.n -= len(s.aborted)
		}
	}
	for k := range c.failed {
		if k.rp == rp && k.base < start {
			delete(c.failed, k)
		}
	}
}

// verifyTxnIndex reads and checks an archived segment's transaction index
// for VerifyArchive: err is the store's (a damaged or missing object),
// msg a problem of an object that checked out there.
func verifyTxnIndex(ctx context.Context, store RemoteStorage, rp RemotePartition, seg RemoteSegment) (msg string, err error) {
	if seg.TxnIndexSize == 0 {
		return "", nil
	}
	data, err := store.ReadTxnIndex(ctx, rp, seg.BaseOffset)
	if err != nil {
		return "", fmt.Errorf("transaction index: %w", err)
	}
	if _, err := decodeTxnIndex(data, seg.BaseOffset, seg.LastOffset); err != nil {
		return err.Error(), nil
	}
	return "", nil
}
