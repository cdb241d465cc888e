package e2e

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A real MinIO on loopback (installed by scripts/setup-test-deps, as for
// internal/archive's and internal/server's tests) for the s3:// variants.

const (
	e2eMinioUser   = "weirtest"
	e2eMinioSecret = "weirtest-secret-key"
	e2eMinioBucket = "weir-e2e"
)

// startMinioE2E starts MinIO with a fresh bucket and returns the AWS_*
// environment that points weir at it.
func startMinioE2E(t *testing.T) []string {
	t.Helper()
	bin, err := exec.LookPath("minio")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		p := filepath.Join(strings.TrimSpace(string(gopath)), "bin", "minio")
		if _, err := os.Stat(p); err != nil {
			extRequireTool(t, "minio", "run scripts/setup-test-deps")
		}
		bin = p
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	dir := t.TempDir()
	// The bucket is a directory of the single-drive data directory.
	if err := os.MkdirAll(filepath.Join(dir, "data", e2eMinioBucket), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "server", filepath.Join(dir, "data"), "--address", addr,
		"--console-address", "127.0.0.1:0", "--certs-dir", filepath.Join(dir, "certs"), "--quiet")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir,
		"MINIO_ROOT_USER=" + e2eMinioUser, "MINIO_ROOT_PASSWORD=" + e2eMinioSecret,
		"MINIO_BROWSER=off", "MINIO_UPDATE=off", "MINIO_CI_CD=1"}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start minio: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-done:
			t.Fatal("minio exited at start")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("minio not ready on %s after 60s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return []string{"AWS_ENDPOINT_URL_S3=http://" + addr, "AWS_ACCESS_KEY_ID=" + e2eMinioUser,
		"AWS_SECRET_ACCESS_KEY=" + e2eMinioSecret, "AWS_REGION=us-east-1"}
}

// TestArchiveReadThroughS3 is TestArchiveReadThrough with an s3:// archive
// on a real S3 server (MinIO).
func TestArchiveReadThroughS3(t *testing.T) {
	env := startMinioE2E(t)
	archiveReadThrough(t, "s3://"+e2eMinioBucket+"/node", env)
}
