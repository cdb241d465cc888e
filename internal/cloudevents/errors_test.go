package cloudevents

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/vfs"
)

// syncLog is a goroutine-safe log destination.
type syncLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestErrorBodiesHidePaths: a storage failure answers 503 with a body
// naming the partition but none of the server's files, which the broker's
// log has; other errors lose the data directory from their text.
func TestErrorBodiesHidePaths(t *testing.T) {
	toggle := vfs.NewToggle(vfs.OpSync)
	logs := &syncLog{}
	e := newEnv(t, withFS(func(fs vfs.FS) vfs.FS { return vfs.NewErrorFS(fs, toggle) }),
		withBroker(func(o *broker.Options) { o.Logger = slog.New(slog.NewTextHandler(logs, nil)) }))
	e.mustAccept(e.postBinary("disk", "ok", "x"))
	toggle.Set(syscall.EIO)
	r := e.postBinary("disk", "lost", "x")
	if r.status != http.StatusServiceUnavailable {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	want := "storage refused the request: storage error on this broker in partition disk-0; the broker's log has the details"
	if ae := r.apiErr(t); ae.Message != want || strings.Contains(string(r.body), "/data") {
		t.Fatalf("body %s, want the message %q", r.body, want)
	}
	if l := logs.String(); !strings.Contains(l, "/data/logs/") || !strings.Contains(l, "input/output error") {
		t.Fatalf("the storage error is not in the broker log:\n%s", l)
	}

	rec := httptest.NewRecorder()
	e.gw.writeError(rec, errors.New("open /data/topics/x: permission denied"))
	r = response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
	if ae := r.apiErr(t); ae.Code != codeInternal || ae.Message != "open <data-dir>/topics/x: permission denied" {
		t.Fatalf("internal error body %s", r.body)
	}
}
