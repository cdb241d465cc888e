package broker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirhq/weir/internal/commitlog"
	"github.com/weirhq/weir/internal/metrics"
)

// The uploader: one goroutine per broker that, every Options.RemoteInterval,
// goes over the partitions of tiered topics, at most
// Options.RemoteUploadConcurrency at a time, and for each
//
//  1. uploads the sealed segments the manifest does not hold yet, in offset
//     order, each held (commitlog.OpenSegment) while it is read;
//  2. deletes local segments past local.retention.ms/bytes (-2: follow
//     retention.*), only those the manifest holds: with the archive down,
//     segments stay local past local retention, and nothing is lost;
//  3. trims the archive where retention.ms/bytes, which bound the whole
//     log, pass its segments below the local log start (-1 keeps forever).
//
// A partition whose upload fails is retried after a backoff that doubles
// up to maxTierBackoff. A crash mid-upload leaves the manifest without the
// segment (internal/archive commits it only once the object is complete),
// so the next pass uploads it again: no gap, no duplicate.

// Tiering defaults.
const (
	DefaultRemoteInterval          = time.Second
	DefaultRemoteUploadConcurrency = 2
	DefaultRemoteCacheBytes        = 1 << 30
	remoteTimeout                  = 30 * time.Second
	maxTierBackoff                 = 5 * time.Second
)

// remoteCtx bounds one call to the remote store from a request path.
func remoteCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), remoteTimeout)
}

type tierMetrics struct {
	bytes, segments, failures, remoteRead, cacheDownload prometheus.Counter
	lagSegments, lagSeconds, waitSeconds                 prometheus.Gauge
}

func newTierMetrics(r *metrics.Registry) *tierMetrics {
	return &tierMetrics{
		bytes:    r.Counter("weir_archive_bytes_total", "Bytes of sealed segments uploaded to the archive (tiered storage)."),
		segments: r.Counter("weir_archive_segments_total", "Sealed segments uploaded to the archive."),
		failures: r.Counter("weir_archive_upload_failures_total", "Failed segment uploads (each is retried)."),
		remoteRead: r.Counter("weir_archive_remote_read_bytes_total",
			"Record batch bytes served from the archive to reads below the local log start."),
		cacheDownload: r.Counter("weir_archive_cache_download_bytes_total",
			"Bytes of archived segments downloaded into the local read cache (remote-cache under the data directory)."),
		lagSegments: r.Gauge("weir_archive_lag_segments",
			"Sealed segments of tiered topics not yet in the archive, over all partitions."),
		lagSeconds: r.Gauge("weir_archive_lag_seconds",
			"Age of the newest record in the oldest sealed segment not yet in the archive (0 when none lags)."),
		waitSeconds: r.Gauge("weir_archive_pending_seconds",
			"How long the longest-waiting sealed segment not yet in the archive has waited, since the uploader first saw it (0 when none waits)."),
	}
}

// tierState is a partition's uploader bookkeeping, touched only by the
// uploader goroutine's pass.
type tierState struct {
	fails   int
	retryAt time.Time
	// pending are the sealed segments not yet archived as of the last
	// pass, by base offset, each with when a pass first saw it.
	pending []pendingSegment
}

type pendingSegment struct {
	base  int64
	since time.Time
}

// tierError is a failed upload and when it happened.
type tierError struct {
	err error
	at  time.Time
}

func (b *Broker) tierLoop() {
	defer close(b.tierDone)
	if b.opts.Remote == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-b.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(b.opts.RemoteInterval)
	defer t.Stop()
	for {
		b.TierOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// TierOnce runs one pass of the uploader now (see the file comment).
func (b *Broker) TierOnce(ctx context.Context) {
	if b.opts.Remote == nil {
		return
	}
	b.tierMu.Lock()
	defer b.tierMu.Unlock()
	now := b.opts.Now()
	sem := make(chan struct{}, b.opts.RemoteUploadConcurrency)
	var wg sync.WaitGroup
	var parts []*Partition
	for _, t := range b.Topics() {
		if !t.remote.Load() {
			continue
		}
		for _, p := range t.Partitions() {
			parts = append(parts, p)
			if now.Before(p.tierState.retryAt) {
				continue
			}
			wg.Go(func() {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				defer func() { <-sem }()
				err := p.tier(ctx)
				st := &p.tierState
				if err == nil || errors.Is(err, commitlog.ErrClosed) || ctx.Err() != nil {
					st.fails, st.retryAt = 0, time.Time{}
					return
				}
				b.uploadErr.Store(&tierError{err: fmt.Errorf("%s-%d: %w", p.topic.Name, p.index, err), at: b.opts.Now()})
				st.fails++
				st.retryAt = b.opts.Now().Add(min(maxTierBackoff, time.Duration(1<<min(st.fails-1, 10))*100*time.Millisecond))
				if st.fails == 1 || st.fails%50 == 0 {
					b.opts.Logger.Warn("broker: archive", "topic", p.topic.Name, "partition", p.index, "err", err, "failures", st.fails)
				}
			})
		}
	}
	wg.Wait()
	b.updateLag(parts)
}

// updateLag sets the archive lag gauges and how long the longest-waiting
// segment has waited.
func (b *Broker) updateLag(parts []*Partition) {
	var n int
	oldest := int64(math.MaxInt64)
	now := b.opts.Now()
	var since time.Time
	for _, p := range parts {
		m := p.remoteManifest()
		next := int64(0)
		if m != nil {
			next = m.NextOffset()
		}
		st := &p.tierState
		seen := st.pending
		st.pending = st.pending[:0:0]
		for _, s := range p.log.SealedSegments() {
			if s.LastOffset >= next && !p.topic.copyOff.Load() {
				n++
				if s.MaxTimestamp >= 0 && s.MaxTimestamp < oldest {
					oldest = s.MaxTimestamp
				}
				for len(seen) > 0 && seen[0].base < s.BaseOffset {
					seen = seen[1:]
				}
				ps := pendingSegment{base: s.BaseOffset, since: now}
				if len(seen) > 0 && seen[0].base == s.BaseOffset {
					ps.since = seen[0].since
				}
				st.pending = append(st.pending, ps)
				if since.IsZero() || ps.since.Before(since) {
					since = ps.since
				}
			}
		}
	}
	b.lagSegments.Store(int64(n))
	b.tier.lagSegments.Set(float64(n))
	if oldest == math.MaxInt64 {
		b.tier.lagSeconds.Set(0)
	} else {
		b.tier.lagSeconds.Set(max(0, float64(now.UnixMilli()-oldest)/1000))
	}
	if since.IsZero() {
		b.pendingSince.Store(0)
		b.tier.waitSeconds.Set(0)
	} else {
		b.pendingSince.Store(since.UnixNano())
		b.tier.waitSeconds.Set(now.Sub(since).Seconds())
	}
}

// ArchiveHealth reports, as of the uploader's last pass, how many sealed
// segments of tiered topics wait for upload, how long the longest-waiting
// one has waited since a pass first saw it (since the node started, at
// most), and the last upload failure, if any, since then.
func (b *Broker) ArchiveHealth() (segments int, waited time.Duration, lastErr error) {
	segments = int(b.lagSegments.Load())
	ns := b.pendingSince.Load()
	if segments == 0 || ns == 0 {
		return segments, 0, nil
	}
	since := time.Unix(0, ns)
	if e := b.uploadErr.Load(); e != nil && !e.at.Before(since) {
		lastErr = e.err
	}
	return segments, b.opts.Now().Sub(since), lastErr
}

// ArchiveLag returns the sealed segments of tiered topics not yet
// archived, as the last uploader pass counted them.
func (b *Broker) ArchiveLag() int { return int(b.lagSegments.Load()) }

// tier uploads p's unarchived sealed segments and applies its retention.
func (p *Partition) tier(ctx context.Context) error {
	b := p.broker
	m := p.remoteManifest()
	if m == nil {
		var err error
		if m, err = p.loadManifest(ctx); err != nil {
			return err
		}
	}
	if !p.topic.copyOff.Load() {
		var err error
		if m, err = p.upload(ctx, m); err != nil {
			return err
		}
	}
	cfg := p.topic.Configs()
	retMs, retBytes := b.effectiveInt(cfg, "retention.ms"), b.effectiveInt(cfg, "retention.bytes")
	localMs, localBytes := b.effectiveInt(cfg, "local.retention.ms"), b.effectiveInt(cfg, "local.retention.bytes")
	if localMs == -2 {
		localMs = retMs
	}
	if localBytes == -2 {
		localBytes = retBytes
	}
	// With copying disabled (local retention then equals the total, as
	// checkCombined requires), segments go by retention as on any topic:
	// they will never be archived.
	copied := m.NextOffset()
	if p.topic.copyOff.Load() {
		copied = math.MaxInt64
	}
	if n, err := p.log.EnforceLocalRetention(localMs, localBytes, copied); err != nil {
		return err
	} else if n > 0 {
		p.pruneTxns()
		b.opts.Logger.Debug("broker: local retention deleted archived segments", "topic", p.topic.Name, "partition", p.index, "segments", n)
	}
	return p.trimArchive(ctx, m, retMs, retBytes)
}

// upload copies the sealed segments past m, returning the manifest after.
func (p *Partition) upload(ctx context.Context, m *RemoteManifest) (*RemoteManifest, error) {
	b := p.broker
	for _, s := range p.log.SealedSegments() {
		if s.LastOffset < m.NextOffset() {
			continue // archived (or below the archive's start)
		}
		if !p.txnsDecided(s.LastOffset) {
			break // its transaction index is not final yet (tier_txn.go)
		}
		if err := ctx.Err(); err != nil {
			return m, err
		}
		r, err := p.log.OpenSegment(s.BaseOffset)
		if errors.Is(err, commitlog.ErrSegmentGone) {
			continue // deleted meanwhile (DeleteRecords)
		}
		if err != nil {
			return m, err
		}
		first, err := r.FirstTimestamp()
		if err != nil {
			_ = r.Close()
			return m, err
		}
		seg := RemoteSegment{BaseOffset: s.BaseOffset, LastOffset: s.LastOffset, FirstTimestamp: first,
			MaxTimestamp: s.MaxTimestamp, Size: r.Size()}
		seg = p.withTxnIndex(seg)
		// The log start as clients see it, archive included: the local one
		// rises as local retention deletes archived segments, which must
		// not trim the archive.
		nm, err := b.opts.Remote.Upload(ctx, p.remotePartition(), seg, p.LogStartOffset(), r)
		_ = r.Close()
		if err != nil {
			b.tier.failures.Inc()
			return m, fmt.Errorf("upload %d-%d: %w", s.BaseOffset, s.LastOffset, err)
		}
		p.setManifest(nm)
		m = &nm
		b.tier.bytes.Add(float64(seg.Size))
		b.tier.segments.Inc()
	}
	return m, nil
}

// trimArchive deletes archived segments below the local log start that
// retention.ms or retention.bytes (over the whole log: archive and local)
// pass.
func (p *Partition) trimArchive(ctx context.Context, m *RemoteManifest, retMs, retBytes int64) error {
	if m.Empty() || retMs < 0 && retBytes <= 0 {
		return nil
	}
	local := p.log.LogStartOffset()
	total := p.log.Size()
	for _, s := range m.Segments {
		if s.LastOffset < local {
			total += s.Size
		}
	}
	nowMs := p.broker.opts.Now().UnixMilli()
	to := m.StartOffset
	for _, s := range m.Segments {
		if s.LastOffset >= local {
			break
		}
		expired := retMs >= 0 && s.MaxTimestamp >= 0 && s.MaxTimestamp < nowMs-retMs
		byBytes := retBytes > 0 && total-s.Size >= retBytes
		if !expired && !byBytes {
			break
		}
		total -= s.Size
		to = s.LastOffset + 1
	}
	if to <= m.StartOffset {
		return nil
	}
	return p.trimRemote(ctx, to)
}

// trimRemote raises the archive's start offset to start.
func (p *Partition) trimRemote(ctx context.Context, start int64) error {
	nm, err := p.broker.opts.Remote.Trim(ctx, p.remotePartition(), start)
	if err != nil {
		return fmt.Errorf("trim to %d: %w", start, err)
	}
	p.setManifest(nm)
	p.broker.remoteCache.forget(p.remotePartition(), start)
	return nil
}

// loadManifests loads the manifests of every tiered partition at open, so
// reads and ListOffsets see the archive at once; those that fail (the
// store is down) are loaded by the uploader later.
func (b *Broker) loadManifests() {
	if b.opts.Remote == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, t := range b.Topics() {
		if !t.remote.Load() {
			continue
		}
		for _, p := range t.Partitions() {
			if _, err := p.loadManifest(ctx); err != nil {
				b.opts.Logger.Warn("broker: archive manifest not loaded; the uploader retries", "topic", t.Name, "partition", p.index, "err", err)
			}
		}
	}
}

// deleteRecordsTiered is DeleteRecords for a tiered partition: below the
// local log start only the archive moves; otherwise the local log moves
// and the archive follows.
func (p *Partition) deleteRecordsTiered(before int64) (int64, error) {
	ctx, cancel := remoteCtx()
	defer cancel()
	if before >= 0 && before < p.log.LogStartOffset() {
		if before <= p.LogStartOffset() {
			return p.LogStartOffset(), nil
		}
		if err := p.trimRemote(ctx, before); err != nil {
			return -1, fmt.Errorf("%w: %s-%d: archive: %w", ErrStorage, p.topic.Name, p.index, err)
		}
		return p.LogStartOffset(), nil
	}
	low, err := p.log.DeleteRecordsBefore(before)
	p.pruneTxns()
	if err != nil {
		return low, err
	}
	if m := p.remoteManifest(); m == nil || m.StartOffset < low {
		if err := p.trimRemote(ctx, low); err != nil {
			return -1, fmt.Errorf("%w: %s-%d: archive: %w", ErrStorage, p.topic.Name, p.index, err)
		}
	}
	return low, nil
}
