package server

import (
	"strings"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/config"
	"github.com/weirhq/weir/internal/metrics"
	"github.com/weirhq/weir/internal/testutil/miniotest"
)

// A real MinIO on loopback for the tiering tests (miniotest): installed by
// scripts/setup-test-deps; without it the tests skip, except under CI.

const minioBucket = "weir-tier"

type minio struct{ *miniotest.Server }

func startMinio(t *testing.T) *minio { return &minio{miniotest.Start(t, minioBucket)} }

func (m *minio) start()        { m.Start() }
func (m *minio) kill()         { m.Kill() }
func (m *minio) env() []string { return m.Env(miniotest.User, miniotest.Secret) }

// TestArchiveS3 is TestArchiveFile against a real S3 server (MinIO).
func TestArchiveS3(t *testing.T) {
	const n = 4000
	m := startMinio(t)
	node := tierNode{dir: t.TempDir(), archive: "s3://" + minioBucket + "/node", env: m.env()}
	s := node.start(t)
	createTiered(t, s)
	produceTiered(t, s, 0, n)
	checkTiered(t, s, n)
}

// TestArchiveS3WrongCredentials: a wrong secret fails start-up with one
// line naming the archive.
func TestArchiveS3WrongCredentials(t *testing.T) {
	m := startMinio(t)
	env := m.env()
	env[2] = "AWS_SECRET_ACCESS_KEY=wrong"
	node := tierNode{dir: t.TempDir(), archive: "s3://" + minioBucket + "/node", env: env}
	cfg := config.Defaults()
	cfg.DataDir = node.dir
	cfg.KafkaAddr, cfg.HTTPAddr, cfg.RegistryAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Archive = node.archive
	_, err := Start(cfg, Options{Logger: quiet, Metrics: metrics.New(), Environ: env})
	if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "archive") {
		t.Fatalf("start with a wrong secret: %v", err)
	}
	t.Logf("start-up error: %v", err)
}

// TestArchiveS3Outage: with the object store down, produce keeps working
// and local segments stay past local.retention.bytes; once it is back the
// uploads resume and every record reads from offset 0.
func TestArchiveS3Outage(t *testing.T) {
	const half = 1500
	m := startMinio(t)
	node := tierNode{dir: t.TempDir(), archive: "s3://" + minioBucket + "/node", env: m.env()}
	s := node.start(t)
	createTiered(t, s)
	produceTiered(t, s, 0, half)
	p := waitArchived(t, s, 60*time.Second)

	m.kill()
	// Local retention may still delete segments archived before the
	// outage, never one past them.
	_, archivedLast, _ := p.ArchivedRange()
	produceTiered(t, s, half, 2*half)
	// Wait for the uploader to fail on the new segments.
	waitForIn(t, 30*time.Second, "failed uploads", func() bool {
		return scrapeMetrics(t, s).value(t, "weir_archive_upload_failures_total") > 0 && s.Broker().ArchiveLag() > 0
	})
	if got := p.LocalLogStartOffset(); got > archivedLast+1 {
		t.Fatalf("local log start moved to %d, past the archive's end %d, while the archive was down", got, archivedLast)
	}
	if p.Size() <= tierLocal+2*tierSegment {
		t.Fatalf("local size %d: segments past local retention were not kept", p.Size())
	}
	if sc := scrapeMetrics(t, s); sc.value(t, "weir_archive_lag_segments") == 0 || sc.value(t, "weir_archive_lag_seconds") <= 0 {
		t.Errorf("archive lag not reported")
	}

	m.start()
	checkTiered(t, s, 2*half)
}

// waitForIn polls cond until it holds or timeout passes.
func waitForIn(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
