// Package e2e runs the built weir binary on loopback and drives it with
// real Kafka clients: franz-go, sarama, segmentio/kafka-go, kcat and
// kafkajs.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	weirBin   string
	buildErr  error
)

// repoRoot is the module root (two levels above this file).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// binary builds ./cmd/weir once per test process.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "weir-e2e-bin-*")
		if err != nil {
			buildErr = err
			return
		}
		weirBin = filepath.Join(dir, "weir")
		cmd := exec.Command("go", "build", "-race", "-o", weirBin, "./cmd/weir")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return weirBin
}

// Weir is one running weir process.
type Weir struct {
	t       testing.TB
	DataDir string
	Addr    string // Kafka host:port
	// HTTP and Registry are the gateway/metrics and schema registry
	// listeners' host:port, as the process logged them.
	HTTP, Registry string
	args           []string
	cmd            *exec.Cmd
	exited         chan struct{}
	logMu          sync.Mutex
	logs           strings.Builder
}

var listenRE = regexp.MustCompile(`msg="weir: serving" kafka=([0-9.:]+) .*http=([0-9.:]+) registry=([0-9.:]+)`)

// StartWeir runs `weir serve` on a free loopback port with a fresh data
// directory (or dataDir when non-empty) and waits until it listens. It is
// stopped (SIGTERM) when the test ends.
func StartWeir(t testing.TB, dataDir string, extra ...string) *Weir {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	w := &Weir{t: t, DataDir: dataDir, args: extra}
	w.start("127.0.0.1:0")
	t.Cleanup(func() { w.Stop() })
	return w
}

func (w *Weir) start(addr string) {
	w.t.Helper()
	args := append([]string{"serve", "--data-dir", w.DataDir, "--kafka-addr", addr, "--http-addr", "127.0.0.1:0", "--registry-addr", "127.0.0.1:0", "--log-level", "debug"}, w.args...)
	cmd := exec.Command(binary(w.t), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	w.cmd = cmd
	w.exited = make(chan struct{})
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			w.logMu.Lock()
			w.logs.WriteString(line + "\n")
			w.logMu.Unlock()
			if m := listenRE.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[1:]:
				default:
				}
			}
		}
	}()
	go func() {
		_ = cmd.Wait()
		close(w.exited)
	}()
	select {
	case a := <-found:
		w.Addr, w.HTTP, w.Registry = a[0], a[1], a[2]
	case <-w.exited:
		w.t.Fatalf("weir exited before listening:\n%s", w.Logs())
	case <-time.After(60 * time.Second):
		w.t.Fatalf("weir did not listen within 60s:\n%s", w.Logs())
	}
}

// Logs returns what the process has logged so far.
func (w *Weir) Logs() string {
	w.logMu.Lock()
	defer w.logMu.Unlock()
	return w.logs.String()
}

// Stop sends SIGTERM and waits for a clean exit.
func (w *Weir) Stop() {
	if w.cmd == nil {
		return
	}
	select {
	case <-w.exited:
	default:
		_ = w.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-w.exited:
		case <-time.After(30 * time.Second):
			_ = w.cmd.Process.Kill()
			<-w.exited
			w.t.Errorf("weir did not stop within 30s after SIGTERM:\n%s", w.Logs())
		}
	}
	if code := w.cmd.ProcessState.ExitCode(); code != 0 && code != -1 {
		w.t.Errorf("weir exited with %d:\n%s", code, w.Logs())
	}
	w.cmd = nil
}

// Kill sends SIGKILL (a crash) and waits for the process to go.
func (w *Weir) Kill() {
	if w.cmd == nil {
		return
	}
	_ = w.cmd.Process.Kill()
	<-w.exited
	w.cmd = nil
}

// Restart stops (or, with kill, crashes) the broker and starts it again on
// the same data directory and port.
func (w *Weir) Restart(kill bool) {
	w.t.Helper()
	if kill {
		w.Kill()
	} else {
		w.Stop()
	}
	w.start(w.Addr)
}

// ctx returns a context bounded for one e2e step.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}
