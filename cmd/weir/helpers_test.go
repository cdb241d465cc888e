package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/embedded"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden and docs/cli.md from the current output")

// TestMain lets a test run the real main (exit status, stderr) by
// re-executing the test binary with WEIR_TEST_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("WEIR_TEST_MAIN") == "1" {
		_ = os.Unsetenv("WEIR_TEST_MAIN") // not a setting weir serve knows
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startBroker starts an in-process broker for one test.
func startBroker(t *testing.T, opts embedded.Options) *embedded.Broker {
	t.Helper()
	opts.NoSync = true
	opts.Dir = t.TempDir()
	b, err := embedded.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// cli runs weir commands in-process against one broker.
type cli struct {
	t   *testing.T
	env map[string]string
}

func newCLI(t *testing.T, b *embedded.Broker) *cli {
	return &cli{t: t, env: map[string]string{"WEIR_BROKERS": b.Addr()}}
}

type result struct {
	stdout, stderr string
	err            error
}

// message is what main prints for the error: one line.
func (r result) message() string {
	if r.err == nil {
		return ""
	}
	return "weir: " + oneLine(r.err)
}

// run executes one command line with stdin.
func (c *cli) run(stdin string, args ...string) result {
	c.t.Helper()
	root := newRootCmdEnv(func(k string) string { return c.env[k] })
	var out, errb bytes.Buffer
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(stdin))
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	return result{out.String(), errb.String(), err}
}

// runLine runs a shell-like command line as a user would type it: weir
// arguments with quotes, optionally fed by "printf …|" or "echo …|" (run by
// sh to produce stdin).
func (c *cli) runLine(line string) result {
	c.t.Helper()
	stdin, args, err := parseLine(line)
	if err != nil {
		c.t.Fatalf("%s: %v", line, err)
	}
	return c.run(stdin, args...)
}

func parseLine(line string) (string, []string, error) {
	var stdin string
	if i := strings.LastIndex(line, "| weir "); i >= 0 {
		out, err := exec.Command("sh", "-c", line[:i]).Output()
		if err != nil {
			return "", nil, fmt.Errorf("stdin command: %v", err)
		}
		stdin, line = string(out), line[i+2:]
	}
	words, err := shellWords(line)
	if err != nil {
		return "", nil, err
	}
	if len(words) == 0 || words[0] != "weir" {
		return "", nil, fmt.Errorf("not a weir command: %q", line)
	}
	return stdin, words[1:], nil
}

// shellWords splits s like a POSIX shell: single quotes are literal,
// double quotes allow \" and \\, and a trailing # comment is dropped.
func shellWords(s string) ([]string, error) {
	var (
		words []string
		cur   strings.Builder
		in    bool
	)
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case ch == '#' && !in:
			i = len(s)
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unclosed ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			in = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, fmt.Errorf("unclosed \" in %q", s)
			}
			in = true
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}

// transcript runs each line and records it as a terminal would show it:
// "$ line", stdout, stderr lines marked "2> ", and the exit status of a
// failure as main reports it.
func (c *cli) transcript(lines ...string) string {
	c.t.Helper()
	var b strings.Builder
	for _, line := range lines {
		r := c.runLine(line)
		fmt.Fprintf(&b, "$ %s\n%s", line, r.stdout)
		for _, l := range strings.SplitAfter(r.stderr, "\n") {
			if l != "" {
				b.WriteString("2> " + l)
			}
		}
		if r.err != nil {
			fmt.Fprintf(&b, "2> %s\n[exit 1]\n", r.message())
		}
	}
	return b.String()
}

// normalizer replaces volatile values (ports, ids, timestamps) with
// placeholders so golden files are stable.
type normalizer struct {
	literal []string // pairs of from, to; replaced in order
	port    *regexp.Regexp
}

var volatile = []struct {
	re   *regexp.Regexp
	repl string
}{
	{regexp.MustCompile(`("timestamp": ?)\d+`), `${1}<ts>`},
	{regexp.MustCompile(`(?m)^ID(\s+)[A-Za-z0-9_-]{22}$`), `ID${1}<topic-id>`},
	{regexp.MustCompile(`"id": "[A-Za-z0-9_-]{22}"`), `"id": "<topic-id>"`},
}

func newNormalizer(t *testing.T, b *embedded.Broker) *normalizer {
	t.Helper()
	_, port, _ := net.SplitHostPort(b.Addr())
	n := &normalizer{literal: []string{b.Addr(), "127.0.0.1:<port>"}, port: regexp.MustCompile(`\b` + port + `\b`)}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n.literal = append(n.literal, m.Cluster, "<cluster-id>")
	return n
}

func (n *normalizer) apply(s string) string {
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.repl)
	}
	for i := 0; i < len(n.literal); i += 2 {
		s = strings.ReplaceAll(s, n.literal[i], n.literal[i+1])
	}
	return n.port.ReplaceAllString(s, "<port>")
}

// checkGolden compares got with testdata/name.golden (rewritten with -update).
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cmd/weir -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (go test ./cmd/weir -run %s -update rewrites it):\n%s", path, t.Name(), lineDiff(string(want), got))
	}
}

// lineDiff shows the first differing lines of want and got.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			lo, hi := max(0, i-3), min(len(g), i+8)
			return fmt.Sprintf("line %d:\n want %q\n  got %q\ngot around it:\n%s", i+1, wl, gl, strings.Join(g[lo:hi], "\n"))
		}
	}
	return "(no line differs)"
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}
