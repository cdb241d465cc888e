package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/commitlog"
	"github.com/weirhq/weir/internal/vfs"
)

// TestClientMessageStorage: a storage error a client gets says which
// partition failed and nothing of the server's files; the operator finds
// the whole error in the log, once a minute per error text.
func TestClientMessageStorage(t *testing.T) {
	const dir = "/srv/weir-data"
	var full atomic.Bool
	fsys := vfs.NewErrorFS(vfs.NewMem(), vfs.InjectorFunc(func(op vfs.Op, path string) error {
		if op == vfs.OpWrite && full.Load() && strings.Contains(path, "/logs/") {
			return syscall.ENOSPC
		}
		return nil
	}))
	now := time.Unix(1_700_000_000, 0)
	var clock atomic.Pointer[time.Time]
	clock.Store(&now)
	logs := &faultLog{}
	b, err := Open(Options{FS: fsys, Dir: dir, Logger: slog.New(slog.NewTextHandler(logs, nil)),
		Now: func() time.Time { return *clock.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	tp, err := b.CreateTopic("t", 2, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := b.Partition("t", 1)
	full.Store(true)
	_, err = p.Produce(faultBatch(t, "lost", 1))
	if !errors.Is(err, ErrStorage) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("append on a full disk: %v, want ErrStorage naming the segment", err)
	}
	want := "storage error on this broker in partition t-1; the broker's log has the details"
	logged := func() int { return strings.Count(logs.String(), "without its details") }
	for i := range 3 {
		if got := b.ClientMessage(err); got != want {
			t.Fatalf("ClientMessage: %q, want %q", got, want)
		}
		if n := logged(); n != 1 {
			t.Fatalf("after %d messages the error is logged %d times, want once", i+1, n)
		}
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "no space left on device") {
		t.Fatalf("the withheld error is not in the log:\n%s", logs)
	}
	later := now.Add(withheldLogEvery)
	clock.Store(&later)
	b.ClientMessage(err)
	if n := logged(); n != 2 {
		t.Fatalf("a minute later the error is logged %d times in all, want twice", n)
	}

	seg := filepath.Join(dir, "logs", fmt.Sprintf("%x", tp.ID), "0", "00000000000000000000.log")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("%w: checksum mismatch in %s at 12", commitlog.ErrCorrupt, seg),
			"corrupt data on this broker in partition t-0; the broker's log has the details"},
		{fmt.Errorf("broker: open t-0: %w", fmt.Errorf("%w: scan %s: %w", commitlog.ErrStorage, seg, syscall.EIO)),
			"storage error on this broker in partition t-0; the broker's log has the details"},
		{fmt.Errorf("%w: write topic metadata: open %s/topics/x.json.tmp: %w", ErrStorage, dir, syscall.EIO),
			"storage error on this broker; the broker's log has the details"},
		{fmt.Errorf("%w: %s/logs/%032x/0: %w", ErrStorage, dir, 7, syscall.EIO), // no such topic
			"storage error on this broker; the broker's log has the details"},
	} {
		if got := b.ClientMessage(tc.err); got != tc.want {
			t.Errorf("ClientMessage(%q) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestClientMessageRedactsDataDir: any other error's text keeps its words
// but not the data directory, as configured or absolute.
func TestClientMessageRedactsDataDir(t *testing.T) {
	wd, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir, text, want string
	}{
		{"/srv/weir-data", "open /srv/weir-data/topics: permission denied", "open <data-dir>/topics: permission denied"},
		{"/srv/weir-data/", "stat /srv/weir-data: no such file", "stat <data-dir>: no such file"},
		{"/srv/weir-data", `"/srv/weir-data" and /srv/weir-data-old/x and /x/srv/weir-data/y`,
			`"<data-dir>" and /srv/weir-data-old/x and /x/srv/weir-data/y`},
		{"weir-data", "open weir-data/logs/x: denied; the weir-data folder", "open <data-dir>/logs/x: denied; the weir-data folder"},
		{"./weir-data", "open weir-data/logs and ./weir-data/topics", "open <data-dir>/logs and <data-dir>/topics"},
		{"weir-data", "open " + filepath.Join(wd, "weir-data", "lock") + ": denied", "open <data-dir>/lock: denied"},
		{"data", "invalid record data: data/x", "invalid record data: <data-dir>/x"},
		{".", "open " + wd + "/topics: denied", "open <data-dir>/topics: denied"},
		{"/srv/weir-data", "broker: unknown topic or partition: \"orders\"", "broker: unknown topic or partition: \"orders\""},
	} {
		b := &Broker{dataDirs: dataDirForms(tc.dir)}
		if got := b.ClientMessage(errors.New(tc.text)); got != tc.want {
			t.Errorf("dir %q: ClientMessage(%q) = %q, want %q", tc.dir, tc.text, got, tc.want)
		}
	}
	if got := (&Broker{}).ClientMessage(nil); got != "" {
		t.Errorf("ClientMessage(nil) = %q", got)
	}
}
