package vfs_test

import (
	"bytes"
	"io/fs"
	"maps"
	"math/rand/v2"
	"path"
	"syscall"
	"testing"

	"github.com/weirhq/weir/internal/vfs"
)

// dump maps every path in m to its content; directories map to "/".
func dump(t *testing.T, m *vfs.MemFS) map[string]string {
	t.Helper()
	out := make(map[string]string)
	var walk func(dir string)
	walk = func(dir string) {
		names, err := m.List(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			p := path.Join(dir, n)
			fi, err := m.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if fi.IsDir() {
				out[p] = "/"
				walk(p)
				continue
			}
			b, err := m.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			out[p] = string(b)
		}
	}
	walk("/")
	return out
}

func wantTree(t *testing.T, m *vfs.MemFS, want map[string]string) {
	t.Helper()
	if got := dump(t, m); !maps.Equal(got, want) {
		t.Fatalf("tree:\n got  %q\n want %q", got, want)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustCreate(t *testing.T, m vfs.FS, name string) vfs.File {
	t.Helper()
	f, err := m.Create(name)
	must(t, err)
	return f
}

func TestCrashFileData(t *testing.T) {
	m := vfs.NewMem()
	f := mustCreate(t, m, "/f")
	must(t, m.SyncDir("/"))
	mustWrite(t, f, "abc", 0)
	wantTree(t, m.CrashStrict(), map[string]string{"/f": ""}) // unsynced data vanishes

	must(t, f.Sync())
	mustWrite(t, f, "def", 3)
	wantTree(t, m.CrashStrict(), map[string]string{"/f": "abc"}) // synced data survives, the append does not

	mustWrite(t, f, "X", 0)
	must(t, f.Truncate(2))
	wantTree(t, m.CrashStrict(), map[string]string{"/f": "abc"}) // unsynced overwrite and truncate revert
	must(t, f.Sync())
	wantTree(t, m.CrashStrict(), map[string]string{"/f": "Xb"})

	// Create's truncation is a data change too.
	g := mustCreate(t, m, "/f")
	mustWrite(t, g, "new", 0)
	wantTree(t, m.CrashStrict(), map[string]string{"/f": "Xb"})
	must(t, g.Sync())
	wantTree(t, m.CrashStrict(), map[string]string{"/f": "new"})
	wantTree(t, m, map[string]string{"/f": "new"})
}

func TestCrashDirEntries(t *testing.T) {
	m := vfs.NewMem()
	must(t, m.MkdirAll("/d/e", 0o755))
	f := mustCreate(t, m, "/d/e/f")
	mustWrite(t, f, "data", 0)
	must(t, f.Sync()) // data durable, entries not
	wantTree(t, m.CrashStrict(), map[string]string{})

	must(t, m.SyncDir("/"))
	wantTree(t, m.CrashStrict(), map[string]string{"/d": "/"})
	must(t, m.SyncDir("/d/e")) // e itself is not yet durable in d
	wantTree(t, m.CrashStrict(), map[string]string{"/d": "/"})
	must(t, m.SyncDir("/d"))
	wantTree(t, m.CrashStrict(), map[string]string{"/d": "/", "/d/e": "/", "/d/e/f": "data"})

	// fsync of a directory handle syncs its entries, as on Linux.
	mustCreate(t, m, "/d/g").Close()
	wantTree(t, m.CrashStrict(), map[string]string{"/d": "/", "/d/e": "/", "/d/e/f": "data"})
	d, err := m.Open("/d")
	must(t, err)
	must(t, d.Sync())
	must(t, d.Close())
	wantTree(t, m.CrashStrict(), map[string]string{"/d": "/", "/d/e": "/", "/d/e/f": "data", "/d/g": ""})
}

func TestCrashRenameReverts(t *testing.T) {
	m := vfs.NewMem()
	must(t, m.WriteFile("/a", []byte("A")))
	must(t, m.WriteFile("/b", []byte("B")))
	must(t, m.Rename("/a", "/b"))
	wantTree(t, m, map[string]string{"/b": "A"})
	wantTree(t, m.CrashStrict(), map[string]string{"/a": "A", "/b": "B"})

	// The renamed file carries its content: data synced through the new
	// name is durable under the old one while the rename is not.
	f, err := m.OpenReadWrite("/b")
	must(t, err)
	mustWrite(t, f, "A2", 0)
	must(t, f.Sync())
	wantTree(t, m.CrashStrict(), map[string]string{"/a": "A2", "/b": "B"})
	must(t, m.SyncDir("/"))
	wantTree(t, m.CrashStrict(), map[string]string{"/b": "A2"})

	// Across directories each parent needs its own SyncDir.
	must(t, m.MkdirAll("/src", 0o755))
	must(t, m.MkdirAll("/dst", 0o755))
	must(t, m.SyncDir("/"))
	must(t, m.WriteFile("/src/f", []byte("F")))
	must(t, m.Rename("/src/f", "/dst/f"))
	must(t, m.SyncDir("/src"))
	wantTree(t, m.CrashStrict(), map[string]string{"/b": "A2", "/src": "/", "/dst": "/"})
	must(t, m.SyncDir("/dst"))
	wantTree(t, m.CrashStrict(), map[string]string{"/b": "A2", "/src": "/", "/dst": "/", "/dst/f": "F"})

	// Only the destination synced: both entries are durable, naming one file.
	must(t, m.WriteFile("/src/h", []byte("H")))
	must(t, m.Rename("/src/h", "/dst/h"))
	must(t, m.SyncDir("/dst"))
	c := m.CrashStrict()
	wantTree(t, c, map[string]string{"/b": "A2", "/src": "/", "/dst": "/", "/dst/f": "F", "/src/h": "H", "/dst/h": "H"})
	h, err := c.OpenReadWrite("/src/h")
	must(t, err)
	mustWrite(t, h, "h", 0)
	wantContent(t, c, "/dst/h", "h")
}

func TestCrashRemoveReverts(t *testing.T) {
	m := vfs.NewMem()
	must(t, m.MkdirAll("/d", 0o755))
	must(t, m.SyncDir("/"))
	must(t, m.WriteFile("/d/f", []byte("F")))
	must(t, m.WriteFile("/g", []byte("G")))
	must(t, m.Remove("/g"))
	must(t, m.RemoveAll("/d"))
	wantTree(t, m, map[string]string{})
	want := map[string]string{"/d": "/", "/d/f": "F", "/g": "G"}
	wantTree(t, m.CrashStrict(), want)
	must(t, m.SyncDir("/"))
	wantTree(t, m.CrashStrict(), map[string]string{})
}

// TestCrashTornTail checks, over many seeds, that a crash keeps durable
// content intact and at most a prefix of the unsynced bytes past it, and
// that every kind of outcome actually occurs.
func TestCrashTornTail(t *testing.T) {
	m := vfs.NewMem()
	f := mustCreate(t, m, "/log")
	must(t, m.SyncDir("/"))
	durable := []byte("durable-")
	mustWrite(t, f, string(durable), 0)
	must(t, f.Sync())
	tail := bytes.Repeat([]byte("0123456789"), 10)
	mustWrite(t, f, string(tail), int64(len(durable)))
	mustWrite(t, f, "X", 0) // unsynced overwrite below the durable length
	must(t, m.WriteFile("/other", []byte("other")))

	var none, exact, scribbled, full int
	for seed := range uint64(2000) {
		c := m.Crash(rand.New(rand.NewPCG(seed, 1)))
		got, err := c.ReadFile("/log")
		must(t, err)
		if !bytes.HasPrefix(got, durable) || len(got) > len(durable)+len(tail) {
			t.Fatalf("seed %d: %q is not durable content plus a bounded tail", seed, got)
		}
		torn := got[len(durable):]
		if n := len(torn); n == 0 {
			none++
		} else if bytes.Equal(torn, tail[:n]) {
			exact++
			if n == len(tail) {
				full++
			}
		} else {
			scribbled++
			keep := max(n-8, 0) // only the last 8 bytes may differ
			if !bytes.Equal(torn[:keep], tail[:keep]) {
				t.Fatalf("seed %d: torn tail %q differs from %q before its last 8 bytes", seed, torn, tail[:n])
			}
		}
		if o, err := c.ReadFile("/other"); err != nil || string(o) != "other" {
			t.Fatalf("seed %d: /other = %q, %v", seed, o, err)
		}
		// What the crash kept is durable in the new filesystem.
		if again, _ := c.CrashStrict().ReadFile("/log"); !bytes.Equal(again, got) {
			t.Fatalf("seed %d: crash state not durable: %q then %q", seed, got, again)
		}
	}
	if none == 0 || exact == 0 || scribbled == 0 || full == 0 {
		t.Fatalf("outcomes: none %d, exact prefix %d (full %d), scribbled %d; want all > 0", none, exact, full, scribbled)
	}
	if got, _ := m.CrashStrict().ReadFile("/log"); !bytes.Equal(got, durable) {
		t.Fatalf("CrashStrict kept %q, want %q", got, durable)
	}
}

func TestCrashDeterministic(t *testing.T) {
	m := vfs.NewMem()
	must(t, m.MkdirAll("/p", 0o755))
	must(t, m.SyncDir("/"))
	for _, n := range []string{"/p/a", "/p/b", "/p/c", "/p/d"} {
		f := mustCreate(t, m, n)
		mustWrite(t, f, "synced|", 0)
		must(t, f.Sync())
		mustWrite(t, f, "unsynced bytes of "+n, 7)
	}
	must(t, m.SyncDir("/p"))
	differ := false
	for seed := range uint64(20) {
		a := dump(t, m.Crash(rand.New(rand.NewPCG(seed, 2))))
		b := dump(t, m.Crash(rand.New(rand.NewPCG(seed, 2))))
		if !maps.Equal(a, b) {
			t.Fatalf("seed %d: two crashes differ:\n%q\n%q", seed, a, b)
		}
		differ = differ || !maps.Equal(a, dump(t, m.CrashStrict()))
	}
	if !differ {
		t.Fatal("no seed kept any torn tail")
	}
}

func TestCrashIndependent(t *testing.T) {
	m := vfs.NewMem()
	must(t, m.WriteFile("/f", []byte("one")))
	old, err := m.OpenReadWrite("/f")
	must(t, err)
	c := m.CrashStrict()

	// The old filesystem and its handles keep working without touching c.
	mustWrite(t, old, "ONE", 0)
	must(t, old.Sync())
	must(t, m.WriteFile("/g", []byte("g")))
	must(t, m.Corrupt("/f", 0, []byte("!")))
	wantTree(t, m, map[string]string{"/f": "!NE", "/g": "g"})
	wantTree(t, c, map[string]string{"/f": "one"})

	// And the crashed one is a working filesystem of its own.
	cf, err := c.OpenReadWrite("/f")
	must(t, err)
	mustWrite(t, cf, "two", 0)
	must(t, cf.Close())
	must(t, c.Remove("/f"))
	wantTree(t, m, map[string]string{"/f": "!NE", "/g": "g"})
	wantTree(t, c.CrashStrict(), map[string]string{"/f": "one"})
}

// TestCrashDirectoryCycle builds durable entries that, followed naively,
// form a cycle (/x/y moved to /y, then /x moved into /y, each dir-synced
// only on one side). Crash must terminate and keep each directory once.
func TestCrashDirectoryCycle(t *testing.T) {
	m := vfs.NewMem()
	must(t, m.MkdirAll("/x/y", 0o755))
	must(t, m.SyncDir("/"))
	must(t, m.SyncDir("/x"))
	must(t, m.Rename("/x/y", "/y"))
	must(t, m.SyncDir("/"))
	must(t, m.Rename("/x", "/y/x"))
	must(t, m.SyncDir("/y"))
	wantTree(t, m, map[string]string{"/y": "/", "/y/x": "/"})
	wantTree(t, m.CrashStrict(), map[string]string{"/x": "/", "/x/y": "/"})
}

func TestMemHelpers(t *testing.T) {
	m := vfs.NewMem()
	_, err := m.ReadFile("/missing")
	wantErrIs(t, "ReadFile", err, fs.ErrNotExist)
	wantErrIs(t, "WriteFile in missing dir", m.WriteFile("/missing/f", nil), fs.ErrNotExist)
	_, err = m.ReadFile("/")
	wantErrIs(t, "ReadFile of a directory", err, syscall.EISDIR)

	must(t, m.WriteFile("/f", []byte("0123456789")))
	f, err := m.OpenReadWrite("/f")
	must(t, err)
	mustWrite(t, f, "ab", 10) // unsynced: current length 12, durable 10
	must(t, m.Corrupt("/f", 8, []byte("XYZ")))
	wantErrIs(t, "Corrupt past the end", m.Corrupt("/f", 11, []byte("XY")), syscall.EINVAL)
	wantTree(t, m, map[string]string{"/f": "01234567XYZb"})
	wantTree(t, m.CrashStrict(), map[string]string{"/f": "01234567XY"})

	// Paths are rooted at "/" whatever their spelling.
	wantContent(t, m, "f", "01234567XYZb")
	wantContent(t, m, "/./x/../f", "01234567XYZb")
}
