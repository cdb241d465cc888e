package server

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weirhq/weir/internal/config"
	"github.com/weirhq/weir/internal/metrics"
)

// A real MinIO on loopback for the tiering tests, as internal/archive's
// tests start it (minio_test.go there): installed by
// scripts/setup-test-deps; without it the tests skip, except under CI.

const (
	minioUser   = "weirtest"
	minioSecret = "weirtest-secret-key"
	minioBucket = "weir-tier"
)

func minioBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		var dirs []string
		if len(lines) >= 1 && strings.TrimSpace(lines[0]) != "" {
			dirs = append(dirs, strings.TrimSpace(lines[0]))
		}
		if len(lines) >= 2 {
			for _, p := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(p, "bin"))
			}
		}
		for _, d := range dirs {
			if fi, err := os.Stat(filepath.Join(d, "minio")); err == nil && !fi.IsDir() {
				return filepath.Join(d, "minio")
			}
		}
	}
	msg := "minio is not available (run scripts/setup-test-deps)"
	if v := os.Getenv("CI"); v != "" && v != "0" && v != "false" {
		t.Fatal(msg + "; CI is set, so this is a failure")
	}
	t.Skip(msg + "; set CI=true to make this a failure")
	return ""
}

type minio struct {
	t    *testing.T
	bin  string
	dir  string
	addr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func startMinio(t *testing.T) *minio {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	m := &minio{t: t, bin: minioBin(t), dir: t.TempDir(), addr: addr}
	m.start()
	t.Cleanup(m.kill)
	c := s3.New(s3.Options{
		BaseEndpoint: aws.String("http://" + m.addr), Region: "us-east-1", UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: minioUser, SecretAccessKey: minioSecret}, nil
		}),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// MinIO may answer /minio/health/ready before its object layer is up
	// (503 XMinioServerNotInitialized): retry until the bucket exists.
	for {
		_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(minioBucket)})
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "XMinioServerNotInitialized") || ctx.Err() != nil {
			t.Fatalf("create bucket: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return m
}

func (m *minio) start() {
	t := m.t
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	cmd := exec.Command(m.bin, "server", filepath.Join(m.dir, "data"),
		"--address", m.addr, "--console-address", "127.0.0.1:0", "--certs-dir", filepath.Join(m.dir, "certs"), "--quiet")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + m.dir,
		"MINIO_ROOT_USER=" + minioUser, "MINIO_ROOT_PASSWORD=" + minioSecret,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1",
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start minio: %v", err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(m.done)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + m.addr + "/minio/health/cluster")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-m.done:
			t.Fatal("minio exited at start")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("minio not ready on %s after 60s", m.addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill stops the server with SIGKILL and waits for it.
func (m *minio) kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
}

func (m *minio) env() []string {
	return []string{"AWS_ENDPOINT_URL_S3=http://" + m.addr, "AWS_ACCESS_KEY_ID=" + minioUser,
		"AWS_SECRET_ACCESS_KEY=" + minioSecret, "AWS_REGION=us-east-1"}
}

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
