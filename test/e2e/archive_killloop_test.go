package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestKillLoopArchive is the kill loop (killloop_test.go) on a tiered topic
// of a node with a file:// archive: 16 KiB segments, 32 KiB kept locally,
// so segments are sealed, uploaded and deleted locally all the time, and
// the broker is SIGKILLed at random moments of that (up to 1.5 s after an
// acknowledgement, the uploader running every second). At the end, once
// every sealed segment is archived and the local log starts above 0,
// every acknowledged record reads back exactly once from offset 0, most
// of them from the archive, and `weir archive verify` finds no damaged
// object, gap or overlap. 8 cycles in CI; a fifth of WEIRTEST_SOAK_CYCLES
// (make soak) for more (each cycle is longer than TestKillLoop's).
func TestKillLoopArchive(t *testing.T) {
	cycles := 8
	if os.Getenv("WEIRTEST_SOAK_CYCLES") != "" {
		cycles = max(cycles, killLoopCycles(t)/5)
	}
	dir := filepath.Join(t.TempDir(), "archive")
	killLoopWith(t, killLoopSpec{
		cycles:       cycles,
		extra:        []string{"--archive", "file://" + dir},
		maxKillDelay: 1500 * time.Millisecond,
		configs: map[string]string{
			"remote.storage.enable": "true", "segment.bytes": "16384",
			"local.retention.bytes": "32768", "retention.ms": "-1",
		},
		beforeRead: func(t *testing.T, w *Weir, topic string, partitions int32) {
			local := archWaitTiered(t, w, topic, partitions, time.Minute)
			t.Logf("archived; local logs start at %v", local)
		},
		check: func(t *testing.T, w *Weir, topic string, _ int32) {
			out := weirCLI(t, w, time.Minute, "archive", "verify", topic)
			t.Logf("weir archive verify: %s", strings.TrimSpace(out))
		},
	})
}
