// Package miniotest starts a real MinIO server on loopback for tests that
// need an S3 server (tiered storage's s3:// backend): the binary
// scripts/setup-test-deps installs, a temporary data directory, the test
// credentials, one bucket. It is imported by tests only.
//
// Without the binary a test skips, except under CI (the CI variable set),
// where it fails: CI must run every S3 test.
package miniotest

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
)

// The credentials the server starts with.
const (
	User   = "weirtest"
	Secret = "weirtest-secret-key"
)

// InCI reports whether the CI variable asks for every test to run.
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "0" && v != "false"
}

// Bin finds the MinIO server: on PATH or in GOBIN / GOPATH/bin. Without
// it the test skips, or fails under CI.
func Bin(t testing.TB) string {
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
	if InCI() {
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

// FreeAddr returns a loopback address no one listens on (at the time).
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Server is a MinIO process on Addr, killed when the test ends.
type Server struct {
	Addr string

	t    testing.TB
	bin  string
	dir  string
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs *lockedWriter
}

// Start starts MinIO with the test credentials and creates bucket.
func Start(t testing.TB, bucket string) *Server {
	t.Helper()
	m := &Server{t: t, bin: Bin(t), dir: t.TempDir(), Addr: FreeAddr(t)}
	m.Start()
	t.Cleanup(m.Kill)
	c := s3.New(s3.Options{
		BaseEndpoint: aws.String("http://" + m.Addr), Region: "us-east-1", UsePathStyle: true,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: User, SecretAccessKey: Secret}, nil
		}),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// MinIO may answer its health check before its object layer is up
	// (503 XMinioServerNotInitialized): retry until the bucket exists.
	for {
		_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(bucket)})
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "XMinioServerNotInitialized") || ctx.Err() != nil {
			t.Fatalf("create bucket: %v\n%s", err, m.Logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return m
}

// Start (re)starts the server on the same address and data directory and
// waits until it answers its cluster health check.
func (m *Server) Start() {
	t := m.t
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	cmd := exec.Command(m.bin, "server", filepath.Join(m.dir, "data"),
		"--address", m.Addr, "--console-address", "127.0.0.1:0", "--certs-dir", filepath.Join(m.dir, "certs"), "--quiet")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + m.dir,
		"MINIO_ROOT_USER=" + User, "MINIO_ROOT_PASSWORD=" + Secret,
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
		resp, err := http.Get("http://" + m.Addr + "/minio/health/cluster")
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
			t.Fatalf("minio not ready on %s after 60s:\n%s", m.Addr, m.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL (no clean shutdown) and waits for it.
func (m *Server) Kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.done
	m.cmd = nil
}

// Logs returns what the server printed since it last started (at most
// about 1 MiB).
func (m *Server) Logs() string {
	m.mu.Lock()
	l := m.logs
	m.mu.Unlock()
	if l == nil {
		return ""
	}
	return l.String()
}

// Env is the environment an s3:// archive on this server is opened with,
// with the given credentials.
func (m *Server) Env(user, secret string) []string {
	return []string{
		"AWS_ENDPOINT_URL_S3=http://" + m.Addr,
		"AWS_ACCESS_KEY_ID=" + user,
		"AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_REGION=us-east-1",
	}
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
