package server

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// faultProxy is a reverse proxy in front of the S3 server that injects
// the object store's faults: answers 5xx to a share of the requests,
// delays them, or is down altogether (connections refused).
type faultProxy struct {
	t     *testing.T
	addr  string
	proxy *httputil.ReverseProxy

	failRate atomic.Uint64 // math.Float64bits share answered 5xx
	delay    atomic.Int64  // added before each request, ns

	requests, injected atomic.Int64

	mu  sync.Mutex
	srv *http.Server
}

func startFaultProxy(t *testing.T, target string) *faultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &faultProxy{t: t, proxy: httputil.NewSingleHostReverseProxy(u)}
	// The request's Host stays the proxy's: the client signed it (SigV4)
	// and the server checks the signature against it.
	f.proxy.ErrorLog = nil
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.serve(ln)
	t.Cleanup(f.down)
	return f
}

func (f *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	if d := time.Duration(f.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	if rate := math.Float64frombits(f.failRate.Load()); rate > 0 && rand.Float64() < rate {
		f.injected.Add(1)
		code, s3code := http.StatusServiceUnavailable, "SlowDown"
		if rand.IntN(2) == 0 {
			code, s3code = http.StatusInternalServerError, "InternalError"
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(code)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by the test</Message></Error>`, s3code)
		return
	}
	f.proxy.ServeHTTP(w, r)
}

// faults sets the share of requests answered 5xx and the delay added to each.
func (f *faultProxy) faults(failRate float64, delay time.Duration) {
	f.failRate.Store(math.Float64bits(failRate))
	f.delay.Store(int64(delay))
}

func (f *faultProxy) serve(ln net.Listener) {
	f.mu.Lock()
	defer f.mu.Unlock()
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	f.srv = srv
	go func() { _ = srv.Serve(ln) }()
}

// down closes the listener and every connection: the store is unreachable.
func (f *faultProxy) down() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.srv != nil {
		_ = f.srv.Close()
		f.srv = nil
	}
}

// up listens again on the same address.
func (f *faultProxy) up() {
	f.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", f.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		f.t.Fatalf("proxy up again on %s: %v", f.addr, err)
	}
	f.serve(ln)
}

// archiveOutage is how long TestArchiveS3Faults keeps the store away:
// 10 s, WEIRTEST_ARCHIVE_OUTAGE (make soak: 60s) for the full
// minute.
func archiveOutage(t *testing.T) time.Duration {
	d := 10 * time.Second
	if v := os.Getenv("WEIRTEST_ARCHIVE_OUTAGE"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 {
			t.Fatalf("WEIRTEST_ARCHIVE_OUTAGE=%q: want a positive duration", v)
		}
	}
	return d
}

// readyz returns /readyz's status and body.
func readyz(t *testing.T, s *Server, query string) (int, string) {
	t.Helper()
	return get(t, "http://"+s.HTTPAddr()+"/readyz"+query)
}

// TestArchiveS3Faults puts a fault-injecting proxy between the broker and
// a real S3 server (MinIO). With a third of the requests answered 5xx and
// the rest delayed, produce keeps working and nothing is lost; once the
// faults stop, the uploads catch up. Then the store is unreachable for a
// while (archiveOutage): produce keeps working, local segments stay past
// local.retention.bytes, /readyz fails its archive check once segments
// have waited longer than --archive-max-lag (2 s here), naming it, and
// passes with ?exclude=archive; once the store is back every record
// reads from offset 0, the archive verifies clean and /readyz passes.
func TestArchiveS3Faults(t *testing.T) {
	m := startMinio(t)
	px := startFaultProxy(t, "http://"+m.Addr)
	env := m.env()
	env[0] = "AWS_ENDPOINT_URL_S3=http://" + px.addr
	node := tierNode{dir: t.TempDir(), archive: "s3://" + minioBucket + "/faults", env: env, maxLag: 2 * time.Second}
	s := node.start(t)
	createTiered(t, s)
	produceTiered(t, s, 0, 600)
	waitArchived(t, s, 60*time.Second)

	// 5xx and slow answers.
	px.faults(0.35, 50*time.Millisecond)
	before := px.injected.Load()
	produceTiered(t, s, 600, 2000)
	waitForIn(t, 30*time.Second, "injected faults", func() bool { return px.injected.Load() > before+5 })
	px.faults(0, 0)
	checkTiered(t, s, 2000)
	t.Logf("5xx phase: %d of %d requests failed by the proxy; %v upload failures", px.injected.Load(), px.requests.Load(),
		scrapeMetrics(t, s).value(t, "weir_archive_upload_failures_total"))
	if code, body := readyz(t, s, ""); code != http.StatusOK || !strings.Contains(body, "[+]archive ok") {
		t.Fatalf("/readyz after the faults: %d\n%s", code, body)
	}

	// The store unreachable.
	outage := archiveOutage(t)
	p := waitArchived(t, s, 60*time.Second)
	_, archivedLast, _ := p.ArchivedRange()
	px.down()
	start := time.Now()
	n := 2000
	for time.Since(start) < outage {
		produceTiered(t, s, n, n+100)
		n += 100
		time.Sleep(100 * time.Millisecond)
	}
	// Local retention may still delete segments archived before the
	// outage, never one past them.
	if got := p.LocalLogStartOffset(); got > archivedLast+1 {
		t.Fatalf("local log start moved to %d, past the archive's end %d, while the archive was unreachable", got, archivedLast)
	}
	if p.Size() <= tierLocal+2*tierSegment {
		t.Fatalf("local size %d: segments past local retention were not kept", p.Size())
	}
	code, body := readyz(t, s, "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "[-]archive failed: ") ||
		!strings.Contains(body, "[+]storage ok") {
		t.Fatalf("/readyz during the outage: %d\n%s", code, body)
	}
	t.Logf("/readyz during the outage:\n%s", body)
	if code, body := readyz(t, s, "?exclude=archive"); code != http.StatusOK || !strings.Contains(body, "[+]archive excluded: ok") {
		t.Errorf("/readyz?exclude=archive during the outage: %d\n%s", code, body)
	}
	if code, _ := readyz(t, s, "/archive"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz/archive during the outage: %d", code)
	}
	if code, _ := readyz(t, s, "/storage"); code != http.StatusOK {
		t.Errorf("/readyz/storage during the outage: %d", code)
	}
	if sc := scrapeMetrics(t, s); sc.value(t, "weir_archive_pending_seconds") < 2 {
		t.Errorf("weir_archive_pending_seconds %v during the outage", sc.value(t, "weir_archive_pending_seconds"))
	}

	px.up()
	back := time.Now()
	checkTiered(t, s, n)
	t.Logf("outage of %v with %d records written; caught up %v after the store came back",
		outage, n-2000, time.Since(back).Round(time.Millisecond))
	waitForIn(t, 10*time.Second, "/readyz to pass", func() bool {
		code, _ := readyz(t, s, "")
		return code == http.StatusOK
	})
	if code, body := readyz(t, s, "/nope"); code != http.StatusNotFound {
		t.Errorf("/readyz/nope: %d %s", code, body)
	}
}
