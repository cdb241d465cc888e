package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// harness starts brokers and runs `weir bench` against them.
type harness struct {
	self    string // this binary, run as "peer"
	base    string // a build of this command from older sources, for "base:" targets; "" for none
	weir    string // the weir CLI, for `weir bench`
	tmp     string // parent of the per-run data directories
	profile string // directory for CPU and allocation profiles of Weir; "" for none
	log     io.Writer
}

// proc is a broker process.
type proc struct {
	kind  string
	cmd   *exec.Cmd
	addr  string
	http  string // Weir's HTTP address (/metrics); "" for other kinds
	dir   string
	ready time.Duration // from exec to "ready"
	exit  chan error
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// start runs a broker of kind on addr ("" for a free port) with data in
// dir, and waits until it serves. tag names its profiles. A free port can
// be taken by another process between freeAddr and the broker's listen:
// a start on a port of its own choosing is tried up to three times.
func (h *harness) start(kind, dir, addr, tag string) (*proc, error) {
	if addr != "" {
		return h.startOn(kind, dir, addr, tag)
	}
	var err error
	for range 3 {
		var a string
		if a, err = freeAddr(); err != nil {
			return nil, err
		}
		var p *proc
		if p, err = h.startOn(kind, dir, a, tag); err == nil {
			return p, nil
		}
	}
	return nil, err
}

func (h *harness) startOn(kind, dir, addr, tag string) (*proc, error) {
	bin := h.self
	if k, ok := strings.CutPrefix(kind, "base:"); ok {
		if h.base == "" {
			return nil, fmt.Errorf("%s: no -base binary", kind)
		}
		bin, kind = h.base, k
	}
	args := []string{"peer", "-kind", kind, "-addr", addr, "-dir", dir}
	if h.profile != "" && strings.HasPrefix(kind, "weir") && tag != "" {
		args = append(args, "-cpuprofile", filepath.Join(h.profile, tag+".cpu.pprof"),
			"-memprofile", filepath.Join(h.profile, tag+".allocs.pprof"))
	}
	cmd := exec.Command(bin, args...)
	cmd.Stderr = h.log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{kind: kind, cmd: cmd, dir: dir, exit: make(chan error, 1)}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case line <- sc.Text():
			default:
			}
		}
	}()
	go func() { p.exit <- cmd.Wait() }()
	select {
	case l := <-line:
		a, web, err := parseReady(l)
		if err != nil {
			p.kill()
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
		p.addr, p.http, p.ready = a, web, time.Since(begin)
	case err := <-p.exit:
		p.exit <- err
		return nil, fmt.Errorf("%s exited before serving: %v", kind, err)
	case <-time.After(5 * time.Minute):
		p.kill()
		return nil, fmt.Errorf("%s did not start within 5 minutes", kind)
	}
	return p, nil
}

// parseReady reads a peer's first line: "ready ADDR", from Weir "ready
// ADDR http=HTTPADDR" (a peer built from older sources prints the first
// form for Weir too).
func parseReady(l string) (addr, http string, err error) {
	rest, ok := strings.CutPrefix(l, "ready ")
	f := strings.Fields(rest)
	if !ok || len(f) == 0 {
		return "", "", fmt.Errorf("unexpected output %q", l)
	}
	for _, kv := range f[1:] {
		v, ok := strings.CutPrefix(kv, "http=")
		if !ok {
			return "", "", fmt.Errorf("unexpected output %q", l)
		}
		http = v
	}
	return f[0], http, nil
}

// stop ends p gracefully (SIGTERM), killing it after a minute.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exit:
	case <-time.After(time.Minute):
		p.kill()
	}
}

// kill ends p with SIGKILL, as a crash would.
func (p *proc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.exit
}

// cpu returns the user+system CPU seconds p has used so far.
func (p *proc) cpu() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which may hold spaces: state is
	// field 3, utime 14 and stime 15.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

// readBytes returns the bytes p has read through read(2) and pread(2)
// so far, from the page cache or the disk (rchar of /proc/<pid>/io); -1
// when it cannot be read.
func (p *proc) readBytes() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", p.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	return parseRchar(string(b))
}

// parseRchar reads the rchar line of /proc/<pid>/io; -1 without one.
func parseRchar(s string) int64 {
	for l := range strings.SplitSeq(s, "\n") {
		if v, ok := strings.CutPrefix(l, "rchar:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return -1
			}
			return n
		}
	}
	return -1
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// memory returns p's resident set and its peak, in bytes.
func (p *proc) memory() (rss, hwm int64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		}
	}
	return rss, hwm
}

// benchReport is the part of `weir bench --format json` compared here.
type benchReport struct {
	Produce  *benchPhase   `json:"produce"`
	Consume  *benchPhase   `json:"consume"`
	EndToEnd *benchLatency `json:"end_to_end_latency_ms"`
	Delivery *struct {
		Lost       int64 `json:"lost"`
		Duplicates int64 `json:"duplicates"`
		Reordered  int64 `json:"reordered"`
	} `json:"delivery"`
}

type benchPhase struct {
	Records       int64         `json:"records"`
	Bytes         int64         `json:"bytes"`
	Seconds       float64       `json:"seconds"`
	RecordsPerSec float64       `json:"records_per_sec"`
	MBPerSec      float64       `json:"mb_per_sec"`
	Errors        int64         `json:"errors"`
	FirstError    string        `json:"first_error"`
	Latency       *benchLatency `json:"latency_ms"`
	Transactions  *struct {
		Committed     int64         `json:"committed"`
		Aborted       int64         `json:"aborted"`
		CommitLatency *benchLatency `json:"commit_latency_ms"`
	} `json:"transactions"`
}

type benchLatency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
}

// bench runs `weir -b addr --format json bench args…`.
func (h *harness) bench(ctx context.Context, addr string, args ...string) (*benchReport, error) {
	full := append([]string{"-b", addr, "--format", "json", "bench"}, args...)
	full = append(full, "--no-progress")
	cmd := exec.CommandContext(ctx, h.weir, full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3 && stdout.Len() > 0) {
		return nil, fmt.Errorf("weir bench %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	var r benchReport
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("weir bench %s: %v", strings.Join(args, " "), err)
	}
	for _, p := range []*benchPhase{r.Produce, r.Consume} {
		if p != nil && p.Errors > 0 {
			return &r, fmt.Errorf("weir bench %s: %d errors, first: %s", strings.Join(args, " "), p.Errors, p.FirstError)
		}
	}
	if d := r.Delivery; d != nil && d.Lost+d.Duplicates+d.Reordered > 0 {
		return &r, fmt.Errorf("weir bench %s: lost %d, duplicated %d, reordered %d", strings.Join(args, " "), d.Lost, d.Duplicates, d.Reordered)
	}
	return &r, nil
}

// newDir makes a fresh, empty data directory.
func (h *harness) newDir(name string) (string, error) {
	d := filepath.Join(h.tmp, name)
	if err := os.RemoveAll(d); err != nil {
		return "", err
	}
	return d, os.MkdirAll(d, 0o755)
}
