package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/weirhq/weir/internal/broker"
)

// The operators' view of the archive, on the HTTP listener, for
// `weir archive ls` and `weir archive verify`:
//
//	GET  /archive/{topic}         per partition: offsets, archived segments
//	POST /archive/{topic}/verify  reads every archived segment, checks it
//
// Errors are JSON {"error": "..."} with a 4xx for the caller's mistakes
// and 503 when the store fails; messages never name server paths.

// archiveVerifyTimeout bounds one verify (it reads the whole archive).
const archiveVerifyTimeout = 30 * time.Minute

// ArchiveSegmentJSON is one archived segment.
type ArchiveSegmentJSON struct {
	BaseOffset     int64  `json:"base_offset"`
	LastOffset     int64  `json:"last_offset"`
	Size           int64  `json:"size"`
	FirstTimestamp int64  `json:"first_timestamp"`
	MaxTimestamp   int64  `json:"max_timestamp"`
	UploadTime     int64  `json:"upload_time"`
	CRC32C         string `json:"crc32c"`
	// TxnIndexBytes is the size of the segment's transaction index (0:
	// no aborted transaction overlaps it); null for a segment archived
	// before Weir uploaded them.
	TxnIndexBytes *int64 `json:"txn_index_bytes"`
}

// ArchivePartitionJSON is one partition of GET /archive/{topic}.
type ArchivePartitionJSON struct {
	Partition           int32                `json:"partition"`
	LogStartOffset      int64                `json:"log_start_offset"`
	LocalLogStartOffset int64                `json:"local_log_start_offset"`
	HighWatermark       int64                `json:"high_watermark"`
	ArchiveStartOffset  int64                `json:"archive_start_offset"`
	ArchiveEndOffset    int64                `json:"archive_end_offset"` // after the last archived offset
	ArchivedBytes       int64                `json:"archived_bytes"`
	Segments            []ArchiveSegmentJSON `json:"segments"`
}

// ArchiveListJSON is the answer of GET /archive/{topic}.
type ArchiveListJSON struct {
	Topic      string                 `json:"topic"`
	Tiered     bool                   `json:"remote_storage_enable"`
	Partitions []ArchivePartitionJSON `json:"partitions"`
}

// ArchiveProblemJSON is one finding of a verify.
type ArchiveProblemJSON struct {
	Partition  int32  `json:"partition"`
	BaseOffset int64  `json:"base_offset"` // -1: the partition as a whole
	Problem    string `json:"problem"`
}

// ArchiveVerifyJSON is the answer of POST /archive/{topic}/verify.
type ArchiveVerifyJSON struct {
	Topic    string               `json:"topic"`
	Segments int64                `json:"segments"`
	Bytes    int64                `json:"bytes"`
	OK       bool                 `json:"ok"`
	Problems []ArchiveProblemJSON `json:"problems"`
}

func (s *Server) addArchiveRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /archive/{topic}", s.serveArchiveList)
	mux.HandleFunc("POST /archive/{topic}/verify", s.serveArchiveVerify)
}

func (s *Server) serveArchiveList(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	ctx, cancel := context.WithTimeout(r.Context(), time.Minute)
	defer cancel()
	st, err := s.broker.ArchiveStatus(ctx, topic)
	if err != nil {
		s.archiveError(w, err)
		return
	}
	t, err := s.broker.Topic(topic)
	if err != nil {
		s.archiveError(w, err)
		return
	}
	out := ArchiveListJSON{Topic: topic, Tiered: strings.EqualFold(t.Configs()["remote.storage.enable"], "true"),
		Partitions: []ArchivePartitionJSON{}}
	for _, p := range st {
		m := p.Manifest
		pj := ArchivePartitionJSON{Partition: p.Partition, LogStartOffset: p.LogStartOffset,
			LocalLogStartOffset: p.LocalStartOffset, HighWatermark: p.HighWatermark,
			ArchiveStartOffset: m.StartOffset, ArchiveEndOffset: m.NextOffset(), ArchivedBytes: m.Bytes(),
			Segments: []ArchiveSegmentJSON{}}
		for _, g := range m.Segments {
			sj := ArchiveSegmentJSON{BaseOffset: g.BaseOffset, LastOffset: g.LastOffset,
				Size: g.Size, FirstTimestamp: g.FirstTimestamp, MaxTimestamp: g.MaxTimestamp, UploadTime: g.UploadTime,
				CRC32C: crcHex(g.CRC32C)}
			if g.TxnIndex {
				sj.TxnIndexBytes = &g.TxnIndexSize
			}
			pj.Segments = append(pj.Segments, sj)
		}
		out.Partitions = append(out.Partitions, pj)
	}
	writeHTTPJSON(w, http.StatusOK, out)
}

func (s *Server) serveArchiveVerify(w http.ResponseWriter, r *http.Request) {
	topic := r.PathValue("topic")
	ctx, cancel := context.WithTimeout(r.Context(), archiveVerifyTimeout)
	defer cancel()
	segs, n, problems, err := s.broker.VerifyArchive(ctx, topic)
	if err != nil {
		s.archiveError(w, err)
		return
	}
	out := ArchiveVerifyJSON{Topic: topic, Segments: segs, Bytes: n, OK: len(problems) == 0, Problems: []ArchiveProblemJSON{}}
	for _, p := range problems {
		out.Problems = append(out.Problems, ArchiveProblemJSON{Partition: p.Partition, BaseOffset: p.BaseOffset,
			Problem: s.scrubPaths(p.Problem)})
	}
	writeHTTPJSON(w, http.StatusOK, out)
}

// archiveError answers err: 404 for an unknown topic, 400 for a request
// the node cannot serve, 503 when the store fails (details in the log).
func (s *Server) archiveError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, broker.ErrUnknownTopicOrPartition):
		writeHTTPJSON(w, http.StatusNotFound, map[string]string{"error": "unknown topic"})
	case errors.Is(err, broker.ErrInvalidRequest):
		writeHTTPJSON(w, http.StatusBadRequest, map[string]string{"error": "this node has no archive (start it with --archive URL)"})
	default:
		s.log.Warn("server: archive request failed", "err", err)
		writeHTTPJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "archive unavailable: " + s.scrubPaths(err.Error())})
	}
}

// scrubPaths replaces the data directory and a file:// archive's
// directory in msg, so that no server path reaches a client.
func (s *Server) scrubPaths(msg string) string {
	if dir, ok := strings.CutPrefix(s.cfg.Archive, "file://"); ok && dir != "" {
		msg = strings.ReplaceAll(msg, dir, "<archive>")
	}
	if s.cfg.DataDir != "" {
		msg = strings.ReplaceAll(msg, s.cfg.DataDir, "<data-dir>")
	}
	return msg
}

func crcHex(v uint32) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b)
}

func writeHTTPJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
