package archive

import (
	"fmt"
	"testing"

	"github.com/weirhq/weir/internal/testutil/miniotest"
)

const (
	minioUser   = miniotest.User
	minioSecret = miniotest.Secret
	minioBucket = "weir-archive"
)

// minioServer is a real MinIO on 127.0.0.1 (miniotest) with the test
// bucket, and what these tests open archives on it with.
type minioServer struct{ *miniotest.Server }

func freePort(t *testing.T) string { return miniotest.FreeAddr(t) }

// startMinio starts MinIO with the test credentials and creates the test
// bucket; without the binary the test skips (fails under CI).
func startMinio(t *testing.T) *minioServer {
	t.Helper()
	return &minioServer{miniotest.Start(t, minioBucket)}
}

func (m *minioServer) start()      { m.Start() }
func (m *minioServer) stop()       { m.Kill() }
func (m *minioServer) log() string { return m.Logs() }

// env is the environment an s3:// archive on this server is opened with.
func (m *minioServer) env(user, secret string) []string { return m.Env(user, secret) }

// url is an s3:// URL under a fresh prefix of the test bucket.
func (m *minioServer) url(prefix string) string {
	return fmt.Sprintf("s3://%s/%s", minioBucket, prefix)
}
