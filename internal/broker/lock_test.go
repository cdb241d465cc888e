package broker

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/weirhq/weir/internal/vfs"
)

// TestDirLockedInProcess: a second Open of an open data directory fails at
// once with ErrDirLocked, on the OS filesystem (flock locks are per open
// file description, so one process conflicts with itself) as in memory;
// Close, and an Open that fails after locking, release the directory.
func TestDirLockedInProcess(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   vfs.FS
		dir  string
	}{
		{"os", vfs.OS(), filepath.Join(t.TempDir(), "weir-data")},
		{"mem", vfs.NewMem(), "/data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{FS: tc.fs, Dir: tc.dir, Logger: quiet()}
			b, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.CreateTopic("t", 1, nil, false); err != nil {
				t.Fatal(err)
			}
			_, err = Open(opts)
			if !errors.Is(err, ErrDirLocked) {
				t.Fatalf("second Open: %v, want ErrDirLocked", err)
			}
			want := fmt.Sprintf("broker: data directory %s is already open in this process (pid %d)", tc.dir, os.Getpid())
			if err.Error() != want {
				t.Fatalf("second Open: %q, want %q", err, want)
			}
			if raw, err := readAll(tc.fs, filepath.Join(tc.dir, lockName)); err != nil || string(raw) != fmt.Sprintf("%d\n", os.Getpid()) {
				t.Fatalf("lock file: %q, %v; want this pid", raw, err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}

			// An Open that fails after taking the lock gives it back.
			bad := filepath.Join(tc.dir, "topics", "bad.json")
			writeFile(t, tc.fs, bad, "{")
			if _, err := Open(opts); err == nil || errors.Is(err, ErrDirLocked) {
				t.Fatalf("Open with damaged topic metadata: %v, want the damage reported", err)
			}
			if err := tc.fs.Remove(bad); err != nil {
				t.Fatal(err)
			}
			b, err = Open(opts)
			if err != nil {
				t.Fatalf("Open after Close and a failed Open: %v", err)
			}
			if _, err := b.Topic("t"); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func writeFile(t *testing.T, fsys vfs.FS, name, data string) {
	t.Helper()
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(data), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// lockChildEnv names the data directory a re-executed test binary opens
// and holds (TestDirLockedAcrossProcesses).
const lockChildEnv = "WEIR_TEST_LOCK_HOLDER_DIR"

// TestDirLockedAcrossProcesses: while another process (this test binary,
// re-executed) has the data directory open, Open fails at once with
// ErrDirLocked naming that process's pid; once it is killed with SIGKILL,
// and so never closes anything, the kernel has released the lock and Open
// succeeds.
func TestDirLockedAcrossProcesses(t *testing.T) {
	if dir := os.Getenv(lockChildEnv); dir != "" {
		holdDir(dir)
		return
	}
	dir := filepath.Join(t.TempDir(), "weir-data")
	cmd := exec.Command(os.Args[0], "-test.run=^TestDirLockedAcrossProcesses$", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // the child exits when this closes
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "holding\n" {
		t.Fatalf("child: %q, %v; want it to report holding the directory", line, err)
	}

	opts := Options{Dir: dir, Logger: quiet()}
	_, err = Open(opts)
	if !errors.Is(err, ErrDirLocked) {
		t.Fatalf("Open while another process holds the directory: %v, want ErrDirLocked", err)
	}
	want := fmt.Sprintf("broker: data directory %s is in use by another Weir process (pid %d)", dir, cmd.Process.Pid)
	if err.Error() != want {
		t.Fatalf("Open while another process holds the directory: %q, want %q", err, want)
	}

	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no Close, no cleanup
		t.Fatal(err)
	}
	_ = cmd.Wait()
	killed = true
	b, err := Open(opts)
	if err != nil {
		t.Fatalf("Open after the holder was killed: %v", err)
	}
	defer b.Close()
	if _, err := b.Topic("held"); err != nil {
		t.Fatalf("the killed holder's topic: %v", err)
	}
}

// holdDir is the child of TestDirLockedAcrossProcesses: it opens dir,
// creates a topic, says so on stdout and holds the directory until its
// stdin closes (or it is killed).
func holdDir(dir string) {
	b, err := Open(Options{Dir: dir, Logger: quiet()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "lock holder:", err)
		os.Exit(2)
	}
	if _, err := b.CreateTopic("held", 1, nil, false); err != nil {
		fmt.Fprintln(os.Stderr, "lock holder:", err)
		os.Exit(2)
	}
	fmt.Println("holding")
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = b.Close()
	os.Exit(0)
}
