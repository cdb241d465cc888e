package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weirhq/weir/embedded"
)

// tourStep is one "$ weir …" line of a README console block and the output
// shown under it.
type tourStep struct {
	line, want string
}

// readmeTour extracts the ```console blocks of README.md.
func readmeTour(t *testing.T) []tourStep {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var (
		steps   []tourStep
		inBlock bool
	)
	for _, l := range strings.Split(string(data), "\n") {
		switch {
		case !inBlock && strings.TrimSpace(l) == "```console":
			inBlock = true
		case inBlock && strings.TrimSpace(l) == "```":
			inBlock = false
		case inBlock && strings.HasPrefix(l, "$ "):
			steps = append(steps, tourStep{line: strings.TrimPrefix(l, "$ ")})
		case inBlock:
			if len(steps) == 0 {
				t.Fatalf("README console block has output before any command: %q", l)
			}
			steps[len(steps)-1].want += l + "\n"
		}
	}
	return steps
}

// TestReadmeTour replays the README's five-minute tour against a fresh
// broker, command by command, and checks each shows what the README says.
func TestReadmeTour(t *testing.T) {
	t.Parallel()
	steps := readmeTour(t)
	if len(steps) < 5 {
		t.Fatalf("README tour has %d commands; want the five-minute tour", len(steps))
	}
	var sawGroup, sawLag bool
	for _, s := range steps {
		sawGroup = sawGroup || strings.Contains(s.line, "--group")
		sawLag = sawLag || strings.Contains(s.line, "group describe")
	}
	if !sawGroup || !sawLag {
		t.Fatal("the README tour must consume with a group and show its lag")
	}
	b := startBroker(t, embedded.Options{})
	c := newCLI(t, b)
	for _, s := range steps {
		if !strings.HasPrefix(s.line, "weir ") && !strings.Contains(s.line, "| weir ") {
			t.Fatalf("README tour line is not a weir command: %q", s.line)
		}
		r := c.runLine(s.line)
		if r.err != nil {
			t.Fatalf("$ %s\nfailed: %s", s.line, r.message())
		}
		if got := trimLines(r.stdout + r.stderr); got != trimLines(s.want) {
			t.Errorf("$ %s\nREADME shows:\n%s\nbut weir printed:\n%s", s.line, s.want, r.stdout+r.stderr)
		}
	}
}

func trimLines(s string) string {
	var b bytes.Buffer
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString(strings.TrimRight(l, " ") + "\n")
	}
	return b.String()
}

// TestDocsUpToDate fails when docs/cli.md differs from the cobra commands
// (make docs, or -update, regenerates it).
func TestDocsUpToDate(t *testing.T) {
	t.Parallel()
	var got bytes.Buffer
	if err := genMarkdown(newRootCmdEnv(func(string) string { return "" }), &got); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "docs", "cli.md")
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(want, got.Bytes()) {
		t.Errorf("docs/cli.md is stale; run make docs:\n%s", lineDiff(string(want), got.String()))
	}
}
