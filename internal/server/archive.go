package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/weirhq/weir/internal/archive"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/vfs"
)

// archiveOpenTimeout bounds the archive's probe at start-up.
const archiveOpenTimeout = 30 * time.Second

// openArchive opens the node's archive (config Archive) and probes it: a
// wrong URL, bucket or credentials fail start-up with one line, never a
// silent no-archive.
func openArchive(url string, env []string, fsys vfs.FS, logger *slog.Logger) (*archive.Archive, error) {
	ctx, cancel := context.WithTimeout(context.Background(), archiveOpenTimeout)
	defer cancel()
	opts := archive.Options{FS: fsys, Logger: logger}
	be, err := archive.Open(ctx, url, env, opts)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err) // names the URL already
	}
	a, err := archive.New(be, opts)
	if err != nil {
		_ = be.Close()
		return nil, fmt.Errorf("server: archive %s: %w", url, err)
	}
	return a, nil
}

// archiveStore adapts an *archive.Archive to the broker's RemoteStorage.
type archiveStore struct{ a *archive.Archive }

var _ broker.RemoteStorage = archiveStore{}

func archiveTP(rp broker.RemotePartition) archive.TopicPartition {
	return archive.TopicPartition{Topic: rp.TopicID, Partition: rp.Partition}
}

func (s archiveStore) Upload(ctx context.Context, rp broker.RemotePartition, seg broker.RemoteSegment, logStart int64, r io.Reader) (broker.RemoteManifest, error) {
	err := s.a.UploadSegment(ctx, archiveTP(rp), archive.SegmentMeta{
		BaseOffset: seg.BaseOffset, LastOffset: seg.LastOffset,
		FirstTimestamp: seg.FirstTimestamp, MaxTimestamp: seg.MaxTimestamp,
		Size: seg.Size, LogStartOffset: logStart,
		HasTxnIndex: seg.TxnIndex, TxnIndex: seg.TxnIndexData,
	}, r)
	if err != nil {
		return broker.RemoteManifest{}, err
	}
	return s.Manifest(ctx, rp)
}

func (s archiveStore) Manifest(ctx context.Context, rp broker.RemotePartition) (broker.RemoteManifest, error) {
	m, err := s.a.Manifest(ctx, archiveTP(rp))
	if err != nil {
		return broker.RemoteManifest{}, err
	}
	out := broker.RemoteManifest{StartOffset: m.StartOffset, Segments: make([]broker.RemoteSegment, len(m.Segments))}
	for i, g := range m.Segments {
		out.Segments[i] = broker.RemoteSegment{BaseOffset: g.BaseOffset, LastOffset: g.LastOffset,
			FirstTimestamp: g.FirstTimestamp, MaxTimestamp: g.MaxTimestamp, Size: g.Size,
			CRC32C: g.CRC32C, UploadTime: g.UploadTime,
			TxnIndex: g.TxnIndex, TxnIndexSize: g.TxnIndexSize, TxnIndexCRC32C: g.TxnIndexCRC32C}
	}
	return out, nil
}

func (s archiveStore) ReadSegment(ctx context.Context, rp broker.RemotePartition, base int64) (io.ReadCloser, error) {
	rc, _, err := s.a.ReadSegment(ctx, archiveTP(rp), base)
	return rc, err
}

func (s archiveStore) Trim(ctx context.Context, rp broker.RemotePartition, start int64) (broker.RemoteManifest, error) {
	if err := s.a.Trim(ctx, archiveTP(rp), start); err != nil {
		return broker.RemoteManifest{}, err
	}
	return s.Manifest(ctx, rp)
}

func (s archiveStore) ReadTxnIndex(ctx context.Context, rp broker.RemotePartition, base int64) ([]byte, error) {
	b, _, err := s.a.ReadTxnIndex(ctx, archiveTP(rp), base)
	return b, err
}
