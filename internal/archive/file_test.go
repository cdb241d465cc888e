package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/weirhq/weir/internal/vfs"
)

// TestFileCrashAtEveryPoint uploads a segment onto an archive of two, with
// the filesystem failing from its k-th operation on (the process dies
// there), for every k until the upload completes untouched. After a power
// loss at that point (CrashStrict: nothing unsynced survives), the
// manifest is the old one or the new one, every segment it lists reads
// back verified, and a retry completes the upload.
func TestFileCrashAtEveryPoint(t *testing.T) {
	ctx := context.Background()
	for k := 1; ; k++ {
		mem := vfs.NewMem()
		base, err := Open(ctx, "file:///arch", nil, Options{FS: mem})
		if err != nil {
			t.Fatal(err)
		}
		a := newArchive(t, base)
		for _, s := range [][2]int64{{0, 9}, {10, 19}} {
			if err := upload(ctx, a, tp0, s[0], s[1], 0); err != nil {
				t.Fatal(err)
			}
		}
		n := 0
		dead := vfs.InjectorFunc(func(op vfs.Op, path string) error {
			n++
			if n >= k {
				return vfs.ErrInjected
			}
			return nil
		})
		be := newFileBackend(vfs.NewErrorFS(mem, dead), "/arch")
		err = upload(ctx, newArchive(t, be), tp0, 20, 29, 0)
		if err == nil {
			if k < 3 {
				t.Fatalf("upload completed with a fault at operation %d", k)
			}
			t.Logf("crash points covered: %d", k-1)
			return
		}
		crashed := mem.CrashStrict()
		rb, err := Open(ctx, "file:///arch", nil, Options{FS: crashed})
		if err != nil {
			t.Fatalf("k=%d: reopen after crash: %v", k, err)
		}
		ra := newArchive(t, rb)
		m, err := ra.Manifest(ctx, tp0)
		if err != nil {
			t.Fatalf("k=%d: manifest after crash: %v", k, err)
		}
		got := ranges(m)
		if got != "start 0: 0-9 10-19" && got != "start 0: 0-9 10-19 20-29" {
			t.Fatalf("k=%d: manifest after crash: %s", k, got)
		}
		for _, s := range m.Segments {
			checkRead(t, ra, tp0, s.BaseOffset)
		}
		if err := upload(ctx, ra, tp0, 20, 29, 0); err != nil {
			t.Fatalf("k=%d: retry after crash: %v", k, err)
		}
		if got := ranges(mustManifest(t, ra, tp0)); got != "start 0: 0-9 10-19 20-29" {
			t.Fatalf("k=%d: after retry: %s", k, got)
		}
		checkRead(t, ra, tp0, 20)
		if _, err := ra.Sweep(ctx, tp0); err != nil {
			t.Fatal(err)
		}
		objs, err := rb.List(ctx, "")
		if err != nil || len(objs) != 4 {
			t.Fatalf("k=%d: objects after retry and sweep: %s %v", k, keys(objs), err)
		}
		if k > 200 {
			t.Fatal("the upload never completed")
		}
	}
}

// TestFileTempInvisible: the temporary of an interrupted Put is neither
// listed nor readable, and the next Put of the key truncates it.
func TestFileTempInvisible(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	be, err := Open(ctx, "file:///arch", nil, Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	body := randBytes(3, 5000)
	if err := be.Put(ctx, "p/seg", &failingReader{r: bytes.NewReader(body), n: 4000}, 5000); err == nil {
		t.Fatal("put from a failing reader succeeded")
	}
	// Leave a temporary behind as a crash would.
	if err := mem.MkdirAll("/arch/p", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := mem.WriteFile("/arch/p/.seg.part", body[:100]); err != nil {
		t.Fatal(err)
	}
	objs, err := be.List(ctx, "")
	if err != nil || len(objs) != 0 {
		t.Fatalf("list shows %q, %v", keys(objs), err)
	}
	if _, err := be.Stat(ctx, "p/seg"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("stat: %v", err)
	}
	put(t, be, "p/seg", body)
	if got := getAll(t, be, "p/seg"); !bytes.Equal(got, body) {
		t.Fatal("object differs")
	}
	if names, _ := mem.List("/arch/p"); fmt.Sprint(names) != "[seg]" {
		t.Fatalf("directory holds %v", names)
	}
}

func TestFileOpenErrors(t *testing.T) {
	ctx := context.Background()
	mem := vfs.NewMem()
	if err := mem.WriteFile("/file", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, "file:///file", nil, Options{FS: mem}); err == nil {
		t.Fatal("a regular file accepted as the archive directory")
	}
	if _, err := Open(ctx, "file://", nil, Options{FS: mem}); err == nil {
		t.Fatal("an empty directory name accepted")
	}
	ro := vfs.NewErrorFS(mem, vfs.InjectorFunc(func(op vfs.Op, _ string) error {
		if op == vfs.OpCreate {
			return vfs.ErrInjected
		}
		return nil
	}))
	if _, err := Open(ctx, "file:///ro", nil, Options{FS: ro}); err == nil {
		t.Fatal("an unwritable directory accepted")
	}
}
