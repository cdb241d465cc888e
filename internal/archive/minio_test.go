package archive

import (
	"context"
	"fmt"
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
)

const (
	minioUser   = "weirtest"
	minioSecret = "weirtest-secret-key"
	minioBucket = "weir-archive"
)

// inCI reports whether the CI variable asks for every test to run.
func inCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "0" && v != "false"
}

// minioBin finds the MinIO server that scripts/setup-test-deps installs:
// on PATH or in GOBIN / GOPATH/bin. Without it the S3 tests skip, except
// under CI, where they fail.
func minioBin(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	for _, dir := range goBinDirs() {
		p := filepath.Join(dir, "minio")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	msg := "minio is not available (run scripts/setup-test-deps)"
	if inCI() {
		t.Fatal(msg + "; CI is set, so this is a failure")
	}
	t.Skip(msg + "; set CI=true to make this a failure")
	return ""
}

func goBinDirs() []string {
	var dirs []string
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		if len(lines) >= 1 && strings.TrimSpace(lines[0]) != "" {
			dirs = append(dirs, strings.TrimSpace(lines[0]))
		}
		if len(lines) >= 2 {
			for _, p := range filepath.SplitList(strings.TrimSpace(lines[1])) {
				dirs = append(dirs, filepath.Join(p, "bin"))
			}
		}
	}
	return dirs
}

// minioServer is a real MinIO on 127.0.0.1 with a temporary data directory,
// started by the test and stopped at its end.
type minioServer struct {
	t    *testing.T
	bin  string
	dir  string
	addr string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs *lockedWriter
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startMinio starts MinIO with the test credentials and creates the test
// bucket.
func startMinio(t *testing.T) *minioServer {
	t.Helper()
	m := &minioServer{t: t, bin: minioBin(t), dir: t.TempDir(), addr: freePort(t)}
	m.start()
	t.Cleanup(m.stop)
	cfg := m.config("")
	c := newS3Client(cfg, Options{}.Defaults())
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
			t.Fatalf("create bucket: %v\n%s", err, m.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return m
}

func (m *minioServer) start() {
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
	m.logs = &lockedWriter{}
	cmd.Stdout, cmd.Stderr = m.logs, m.logs
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
			t.Fatalf("minio exited at start:\n%s", m.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("minio not ready on %s after 60s:\n%s", m.addr, m.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop kills the server (SIGKILL: no clean shutdown) and waits for it.
func (m *minioServer) stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
}

func (m *minioServer) log() string { return m.logs.String() }

// env is the environment an s3:// archive on this server is opened with.
func (m *minioServer) env(user, secret string) []string {
	return []string{
		"AWS_ENDPOINT_URL_S3=http://" + m.addr,
		"AWS_ACCESS_KEY_ID=" + user,
		"AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_REGION=us-east-1",
	}
}

func (m *minioServer) config(prefix string) S3Config {
	cfg, err := ParseS3("s3://"+minioBucket+"/"+prefix, m.env(minioUser, minioSecret))
	if err != nil {
		m.t.Fatal(err)
	}
	return cfg
}

// url is an s3:// URL under a fresh prefix of the test bucket.
func (m *minioServer) url(prefix string) string {
	return fmt.Sprintf("s3://%s/%s", minioBucket, prefix)
}

type lockedWriter struct {
	mu sync.Mutex
	b  strings.Builder
}

func (w *lockedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.b.Len() > 1<<20 {
		return len(p), nil
	}
	return w.b.Write(p)
}
