package main

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/embedded"
)

// TestConsumeIsolation: consume reads committed data by default, as a
// read_committed Kafka consumer; --isolation read_uncommitted opts out and
// anything else is refused in one line before connecting.
func TestConsumeIsolation(t *testing.T) {
	t.Parallel()
	root := newRootCmdEnv(func(string) string { return "" })
	cmd, _, err := root.Find([]string{"consume"})
	if err != nil {
		t.Fatal(err)
	}
	if f := cmd.Flags().Lookup("isolation"); f == nil || f.DefValue != readCommitted {
		t.Fatalf("--isolation flag %+v, want default %s", f, readCommitted)
	}
	for _, tc := range []struct {
		committed bool
		want      int8 // Kafka's isolation levels
	}{{true, 1}, {false, 0}} {
		cl, err := kgo.NewClient(append(isolationOpts(tc.committed), kgo.SeedBrokers("127.0.0.1:1"))...)
		if err != nil {
			t.Fatal(err)
		}
		got := cl.OptValue(kgo.FetchIsolationLevel).(int8)
		keep := cl.OptValue(kgo.KeepControlRecords).(bool)
		cl.Close()
		if got != tc.want || !keep {
			t.Fatalf("committed %v: isolation level %v (want %v), control records kept %v", tc.committed, got, tc.want, keep)
		}
	}

	b := startBroker(t, embedded.Options{})
	c := newCLI(t, b)
	if r := c.runLine(`printf 'one\ntwo\n' | weir produce iso`); r.err != nil {
		t.Fatal(r.message())
	}
	for _, line := range []string{
		"weir consume iso -e",
		"weir consume iso -e --isolation read_committed",
		"weir consume iso -e --isolation read_uncommitted",
		"weir consume iso -e -g readers",
	} {
		if r := c.runLine(line); r.err != nil || r.stdout != "one\ntwo\n" {
			t.Fatalf("%s: %q %s", line, r.stdout, r.message())
		}
	}
	r := c.runLine("weir consume iso -e --isolation dirty")
	const want = `weir: --isolation "dirty": want read_committed or read_uncommitted`
	if r.err == nil || r.message() != want {
		t.Fatalf("--isolation dirty: %q, want %q", r.message(), want)
	}
}
