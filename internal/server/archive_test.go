package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/config"
	"github.com/weirhq/weir/internal/metrics"
	"github.com/weirhq/weir/internal/vfs"
)

const (
	tieredTopic   = "tiered"
	tierSegment   = 64 << 10
	tierLocal     = 128 << 10
	tierRecordLen = 1000
)

// tierNode describes a node with an archive for the tiering tests.
type tierNode struct {
	dir     string
	archive string
	env     []string
	fs      vfs.FS
	maxLag  time.Duration // config ArchiveMaxLag when set
}

func (n tierNode) start(t *testing.T) *Server {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = n.dir
	cfg.KafkaAddr, cfg.HTTPAddr, cfg.RegistryAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.GroupInitialRebalanceDelay = 0
	cfg.Archive = n.archive
	cfg.LogRetentionCheckInterval = 100 * time.Millisecond
	if n.maxLag != 0 {
		cfg.ArchiveMaxLag = n.maxLag
	}
	s, err := Start(cfg, Options{Logger: quiet, Metrics: metrics.New(), FS: n.fs, Environ: n.env,
		ArchiveInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// createTiered creates the tiered topic: 64 KiB segments, 128 KiB kept
// locally, the whole log forever.
func createTiered(t *testing.T, s *Server) {
	t.Helper()
	_, err := s.Broker().CreateTopic(tieredTopic, 1, map[string]string{
		"remote.storage.enable": "true", "segment.bytes": fmt.Sprint(tierSegment),
		"local.retention.bytes": fmt.Sprint(tierLocal), "retention.ms": "-1",
	}, false)
	if err != nil {
		t.Fatal(err)
	}
}

// tierRecord is record i: a key naming it and a pseudo-random value.
func tierRecord(i int) (key, value []byte) {
	r := rand.New(rand.NewPCG(uint64(i), 42))
	v := make([]byte, tierRecordLen)
	for j := range v {
		v[j] = byte(r.Uint32())
	}
	return []byte(fmt.Sprintf("key-%06d", i)), v
}

// produceTiered produces records [from, to) with franz-go in small batches
// (a batch must fit in a 64 KiB segment).
func produceTiered(t *testing.T, s *Server, from, to int) {
	t.Helper()
	cl := client(t, s, kgo.ProducerBatchMaxBytes(16<<10), kgo.DefaultProduceTopic(tieredTopic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const chunk = 200
	for i := from; i < to; i += chunk {
		var recs []*kgo.Record
		for j := i; j < min(i+chunk, to); j++ {
			k, v := tierRecord(j)
			recs = append(recs, &kgo.Record{Key: k, Value: v, Partition: 0})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce %d..: %v", i, err)
		}
	}
}

// consumeTiered reads every record from offset 0 with franz-go and checks
// it is record i at offset i, byte for byte.
func consumeTiered(t *testing.T, s *Server, n int) {
	t.Helper()
	cl := client(t, s, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{tieredTopic: {0: kgo.NewOffset().At(0)}}),
		kgo.FetchMaxBytes(256<<10), kgo.FetchMaxPartitionBytes(256<<10))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	next := 0
	for next < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", next, n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s-%d at %d: %v", topic, p, next, err) })
		fs.EachRecord(func(r *kgo.Record) {
			k, v := tierRecord(next)
			if r.Offset != int64(next) || !bytes.Equal(r.Key, k) || !bytes.Equal(r.Value, v) {
				t.Fatalf("record at offset %d (key %q): want record %d", r.Offset, r.Key, next)
			}
			next++
		})
	}
}

// listOffset asks ListOffsets v7 for one special timestamp.
func listOffset(t *testing.T, s *Server, ts int64) int64 {
	t.Helper()
	cl := client(t, s)
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = 9
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = tieredTopic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Timestamp = ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 {
		t.Fatalf("ListOffsets %d: error %d", ts, p.ErrorCode)
	}
	return p.Offset
}

// waitArchived waits until every sealed segment is archived and local
// retention has deleted the local copies it may.
func waitArchived(t *testing.T, s *Server, timeout time.Duration) *broker.Partition {
	t.Helper()
	p, err := s.Broker().Partition(tieredTopic, 0)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	for {
		start, last, ok := p.ArchivedRange()
		done := ok && start == 0 && p.LocalLogStartOffset() > 0 && s.Broker().ArchiveLag() == 0 &&
			last+1 >= p.LocalLogStartOffset() && p.Size() <= tierLocal+2*tierSegment
		if done {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("not archived after %v: archive %d-%d (%v), local start %d, size %d, lag %d",
				timeout, start, last, ok, p.LocalLogStartOffset(), p.Size(), s.Broker().ArchiveLag())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkTiered runs the read checks on a tiered topic holding n records.
func checkTiered(t *testing.T, s *Server, n int) {
	t.Helper()
	p := waitArchived(t, s, 60*time.Second)
	consumeTiered(t, s, n)
	if got := listOffset(t, s, -2); got != 0 {
		t.Errorf("ListOffsets earliest = %d, want 0", got)
	}
	if got := listOffset(t, s, -4); got <= 0 || got != p.LocalLogStartOffset() {
		t.Errorf("ListOffsets earliest-local = %d, want the local log start %d > 0", got, p.LocalLogStartOffset())
	}
	_, last, _ := p.ArchivedRange()
	if got := listOffset(t, s, -5); got != last || last < p.LocalLogStartOffset()-1 {
		t.Errorf("ListOffsets latest-tiered = %d, want %d (local start %d)", got, last, p.LocalLogStartOffset())
	}
	adm := kadm.NewClient(client(t, s))
	starts, err := adm.ListStartOffsets(context.Background(), tieredTopic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := starts.Lookup(tieredTopic, 0); o.Offset != 0 {
		t.Errorf("kadm start offset %d, want 0", o.Offset)
	}
	segs, _, problems, err := s.Broker().VerifyArchive(context.Background(), tieredTopic)
	if err != nil || len(problems) > 0 || segs == 0 {
		t.Errorf("verify: %d segments, problems %v, err %v", segs, problems, err)
	}
}

// TestArchiveFile: about 4 MB through a topic with remote storage on a
// file:// archive; segments are archived and the local copy shrinks to
// local.retention.bytes; every record reads back from offset 0, below
// the local log start from the archive.
func TestArchiveFile(t *testing.T) {
	const n = 4000
	node := tierNode{dir: t.TempDir(), archive: "file://" + filepath.Join(t.TempDir(), "archive")}
	s := node.start(t)
	createTiered(t, s)
	produceTiered(t, s, 0, n)
	checkTiered(t, s, n)
	sc := scrapeMetrics(t, s)
	if sc.value(t, "weir_archive_segments_total") == 0 || sc.value(t, "weir_archive_bytes_total") == 0 ||
		sc.value(t, "weir_archive_remote_read_bytes_total") == 0 {
		t.Errorf("archive metrics not counted")
	}
	// The catch-up read downloaded each archived segment once into the
	// read cache (checkTiered's consumer reads 256 KiB at a time).
	st, err := s.Broker().ArchiveStatus(context.Background(), tieredTopic)
	if err != nil {
		t.Fatal(err)
	}
	if got, archived := sc.value(t, "weir_archive_cache_download_bytes_total"), float64(st[0].Manifest.Bytes()); got == 0 || got > archived {
		t.Errorf("downloaded %v bytes into the read cache for %v archived", got, archived)
	}
	if names, err := vfs.OS().List(filepath.Join(node.dir, "remote-cache")); err != nil || len(names) == 0 {
		t.Errorf("read cache directory: %v, %v", names, err)
	}
	// A restart finds the archive: reads from 0 still work.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = node.start(t)
	checkTiered(t, s, n)
	// Timestamps below the local log start are found in the archive.
	adm := kadm.NewClient(client(t, s))
	res, err := adm.ListOffsetsAfterMilli(context.Background(), 0, tieredTopic)
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := res.Lookup(tieredTopic, 0); o.Offset != 0 {
		t.Errorf("offset for timestamp 0 = %d, want 0", o.Offset)
	}
	// retention.bytes bounds the whole log: the archive is trimmed, the
	// log start moves up, and reads from it still work.
	if err := s.Broker().IncrementalAlterConfigs(tieredTopic, []broker.ConfigOp{{Name: "retention.bytes", Op: broker.OpSet, Value: fmt.Sprint(1 << 20)}}, false); err != nil {
		t.Fatal(err)
	}
	p, _ := s.Broker().Partition(tieredTopic, 0)
	waitForIn(t, 30*time.Second, "the archive trimmed by retention.bytes", func() bool {
		start, _, ok := p.ArchivedRange()
		return ok && start > 0 && p.LogStartOffset() == start
	})
	start := p.LogStartOffset()
	if got := listOffset(t, s, -2); got != start {
		t.Errorf("ListOffsets earliest = %d after the trim, want %d", got, start)
	}
	if size := p.Size(); int64(n-int(start))*tierRecordLen > 1<<20+2*tierSegment+size {
		t.Errorf("kept %d records from %d: more than retention.bytes allows", int64(n)-start, start)
	}
	data, err := p.Read(start, 1<<20)
	if err != nil || len(data) == 0 {
		t.Fatalf("read at the new log start %d: %d bytes, %v", start, len(data), err)
	}
	if _, err := p.Read(start-1, 1<<20); err == nil {
		t.Errorf("read below the trimmed log start succeeded")
	}
}

// TestArchiveRefusesCompact: Kafka refuses compaction with remote storage.
func TestArchiveRefusesCompact(t *testing.T) {
	node := tierNode{dir: t.TempDir(), archive: "file://" + t.TempDir()}
	s := node.start(t)
	_, err := s.Broker().CreateTopic("c", 1, map[string]string{"remote.storage.enable": "true", "cleanup.policy": "compact"}, false)
	if err == nil || !strings.Contains(err.Error(), "compact") {
		t.Fatalf("create compacted tiered topic: %v", err)
	}
}

// TestArchiveBadURL: a wrong archive fails start-up with one line.
func TestArchiveBadURL(t *testing.T) {
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.KafkaAddr, cfg.HTTPAddr, cfg.RegistryAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Archive = "s3://no-such-bucket/x"
	_, err := Start(cfg, Options{Logger: quiet, Metrics: metrics.New(),
		Environ: []string{"AWS_ENDPOINT_URL_S3=http://127.0.0.1:1", "AWS_ACCESS_KEY_ID=a", "AWS_SECRET_ACCESS_KEY=b"}})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "archive") {
		t.Fatalf("start with an unreachable archive: %v", err)
	}
}

// TestArchivePowerLoss cuts the power at every durable step of the
// archive's uploads (each fsync of a segment object, a manifest or their
// directory) on an in-memory node whose file:// archive shares its disk.
// Each image started again must finish the uploads with a manifest
// without gap or overlap that joins the local log, and serve every record
// it acknowledged from offset 0.
func TestArchivePowerLoss(t *testing.T) {
	mem := vfs.NewMem()
	var (
		mu        sync.Mutex
		capturing bool
		images    []*vfs.MemFS
		seq       uint64
	)
	inj := vfs.InjectorFunc(func(op vfs.Op, path string) error {
		if op != vfs.OpSync && op != vfs.OpSyncDir || !strings.HasPrefix(path, "/archive") {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		if capturing {
			seq++
			if seq%5 == 1 {
				images = append(images, mem.Crash(rand.New(rand.NewPCG(11, seq))))
			}
		}
		return nil
	})
	fsys := vfs.NewErrorFS(mem, inj)
	node := tierNode{dir: "/data", archive: "file:///archive", fs: fsys}
	s := node.start(t)
	createTiered(t, s)
	mu.Lock()
	capturing = true
	mu.Unlock()
	produceTiered(t, s, 0, 1200)
	waitArchived(t, s, 60*time.Second)
	mu.Lock()
	capturing = false
	got := images
	mu.Unlock()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(got) < 5 {
		t.Fatalf("only %d crash images", len(got))
	}
	for i, img := range got {
		t.Run(fmt.Sprint("image", i), func(t *testing.T) {
			s := tierNode{dir: "/data", archive: "file:///archive", fs: img}.start(t)
			p, err := s.Broker().Partition(tieredTopic, 0)
			if err != nil {
				t.Fatal(err)
			}
			waitForIn(t, 30*time.Second, "uploads to finish", func() bool {
				start, last, ok := p.ArchivedRange()
				return s.Broker().ArchiveLag() == 0 &&
					ok && start == 0 && last+1 >= p.LocalLogStartOffset()
			})
			segs, _, problems, err := s.Broker().VerifyArchive(context.Background(), tieredTopic)
			if err != nil || len(problems) > 0 || segs == 0 {
				t.Fatalf("verify: %d segments, problems %v, err %v", segs, problems, err)
			}
			consumeTiered(t, s, int(p.HighWatermark()))
		})
	}
}

// TestArchiveCorruptObject: a damaged segment object in the archive fails
// the read below the local log start and leaves nothing in the read cache.
func TestArchiveCorruptObject(t *testing.T) {
	archiveDir := t.TempDir()
	node := tierNode{dir: t.TempDir(), archive: "file://" + archiveDir}
	s := node.start(t)
	createTiered(t, s)
	produceTiered(t, s, 0, 600)
	p := waitArchived(t, s, 60*time.Second)
	var first string
	err := filepath.WalkDir(archiveDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), fmt.Sprintf("%020d-", 0)) && strings.HasSuffix(d.Name(), ".log") {
			first = path
		}
		return err
	})
	if err != nil || first == "" {
		t.Fatalf("the first segment's object: %q, %v", first, err)
	}
	data, err := os.ReadFile(first)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(first, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Read(0, 1<<20); !errors.Is(err, broker.ErrStorage) {
		t.Fatalf("read of a damaged archived segment: %v, want ErrStorage", err)
	}
	if names, err := vfs.OS().List(filepath.Join(node.dir, "remote-cache")); err != nil || len(names) != 0 {
		t.Fatalf("read cache after a damaged download: %v, %v", names, err)
	}
}

// TestArchiveDeletedTopic: deleting a tiered topic deletes its archived
// segments too (in the background), as Kafka does with remote segments.
func TestArchiveDeletedTopic(t *testing.T) {
	archiveDir := filepath.Join(t.TempDir(), "archive")
	node := tierNode{dir: t.TempDir(), archive: "file://" + archiveDir}
	s := node.start(t)
	createTiered(t, s)
	produceTiered(t, s, 0, 2000)
	waitArchived(t, s, 30*time.Second)
	segments := func() int {
		n := 0
		_ = filepath.WalkDir(archiveDir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(path, ".log") {
				n++
			}
			return nil
		})
		return n
	}
	if segments() == 0 {
		t.Fatal("nothing archived before the delete")
	}
	if err := s.Broker().DeleteTopic(tieredTopic); err != nil {
		t.Fatal(err)
	}
	waitForIn(t, 30*time.Second, "the deleted topic's archived segments removed", func() bool { return segments() == 0 })
}
