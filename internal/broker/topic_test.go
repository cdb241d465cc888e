package broker

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/vfs"
)

// TestLongTopicName: a topic with a 249-character name (Kafka's limit) is
// created, written, reconfigured, reopened and read back on the real
// filesystem, whose 255-byte file names could not hold
// "<name>.json.tmp", and in memory.
func TestLongTopicName(t *testing.T) {
	name := strings.Repeat("a.b_c-D9", 32)[:249]
	for _, tc := range []struct {
		name string
		fs   vfs.FS
		dir  string
	}{
		{"os", vfs.OS(), t.TempDir()},
		{"mem", vfs.NewMem(), "/data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{FS: tc.fs, Dir: tc.dir, Logger: quiet()}
			b, err := Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			tp, err := b.CreateTopic(name, 2, map[string]string{"retention.ms": "3600000"}, false)
			if err != nil {
				t.Fatal(err)
			}
			id := tp.ID
			p, _ := b.Partition(name, 1)
			raw := mkBatch(t, 3, batch.BuildOptions{})
			if _, err := p.Produce(slices.Clone(raw)); err != nil {
				t.Fatal(err)
			}
			if err := b.IncrementalAlterConfigs(name, []ConfigOp{{Name: "cleanup.policy", Op: OpSet, Value: "compact"}}, false); err != nil {
				t.Fatal(err)
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			wantMetaFiles(t, tc.fs, tc.dir, hex.EncodeToString(id[:])+".json")

			b, err = Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			tp, err = b.Topic(name)
			if err != nil {
				t.Fatal(err)
			}
			if tp.ID != id || len(tp.Partitions()) != 2 {
				t.Fatalf("reopened topic: id %x, %d partitions; want %x and 2", tp.ID, len(tp.Partitions()), id)
			}
			if c := tp.Configs(); c["retention.ms"] != "3600000" || c["cleanup.policy"] != "compact" {
				t.Fatalf("reopened topic's configs: %v", c)
			}
			p, _ = b.Partition(name, 1)
			got, err := p.Read(0, 1<<20)
			if err != nil || p.HighWatermark() != 3 {
				t.Fatalf("read back: %v, high watermark %d", err, p.HighWatermark())
			}
			if h, err := batch.Verify(got); err != nil || h.NumRecords != 3 {
				t.Fatalf("read back %d bytes: %v", len(got), err)
			}
			if err := b.DeleteTopic(name); err != nil {
				t.Fatal(err)
			}
			wantMetaFiles(t, tc.fs, tc.dir)
		})
	}
}

// wantMetaFiles checks the files in dir's topics directory.
func wantMetaFiles(t *testing.T, fsys vfs.FS, dir string, want ...string) {
	t.Helper()
	got, err := fsys.List(filepath.Join(dir, "topics"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) && (len(got) != 0 || len(want) != 0) {
		t.Fatalf("topics directory holds %q, want %q", got, want)
	}
}

// legacyDir makes, in memory, the data directory of the previous version
// holding topic "orders" (2 partitions, a config, 3 records in partition
// 1): its metadata file is topics/orders.json, written by hand. It returns
// the topic's id in hex.
func legacyDir(t *testing.T) (*vfs.MemFS, string) {
	t.Helper()
	mem := vfs.NewMem()
	b := openMem(t, mem)
	tp, err := b.CreateTopic("orders", 2, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := b.Partition("orders", 1)
	if _, err := p.Produce(mkBatch(t, 3, batch.BuildOptions{})); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(tp.ID[:])
	if err := mem.Remove("/data/topics/" + id + ".json"); err != nil {
		t.Fatal(err)
	}
	if err := mem.SyncDir("/data/topics"); err != nil {
		t.Fatal(err)
	}
	legacy := fmt.Sprintf(`{"name":"orders","id":%q,"partitions":2,"configs":{"retention.ms":"60000"}}`, id)
	if err := mem.WriteFile("/data/topics/orders.json", []byte(legacy)); err != nil {
		t.Fatal(err)
	}
	return mem, id
}

// checkOrders checks that fsys holds topic "orders" as legacyDir made it
// (with the given retention.ms), under topics/<id>.json only, durably.
func checkOrders(t *testing.T, mem *vfs.MemFS, id, retention string) {
	t.Helper()
	b := openMem(t, mem)
	defer b.Close()
	tp, err := b.Topic("orders")
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(tp.ID[:]) != id || len(tp.Partitions()) != 2 || tp.Configs()["retention.ms"] != retention {
		t.Fatalf("topic orders: id %x, %d partitions, configs %v", tp.ID, len(tp.Partitions()), tp.Configs())
	}
	if p, _ := b.Partition("orders", 1); p.HighWatermark() != 3 {
		t.Fatalf("partition 1 holds %d records, want 3", p.HighWatermark())
	}
	wantMetaFiles(t, mem, "/data", id+".json")
	wantMetaFiles(t, mem.CrashStrict(), "/data", id+".json")
}

// TestLegacyTopicMetadataMigrates: a data directory of the previous
// version, with topics/<name>.json, opens with its topics, configs and
// records, and leaves topics/<id>.json only, durably.
func TestLegacyTopicMetadataMigrates(t *testing.T) {
	mem, id := legacyDir(t)
	checkOrders(t, mem, id, "60000")
}

// TestLegacyTopicMetadataBothFiles: both files of one topic, as a crash in
// the middle of the move leaves them, resolve to <id>.json with the old
// file's content (the same, or newer: written by the previous version).
func TestLegacyTopicMetadataBothFiles(t *testing.T) {
	for _, tc := range []struct{ name, current, want string }{
		{"same", "60000", "60000"},
		{"older id file", "1000", "60000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, id := legacyDir(t)
			raw, err := mem.ReadFile("/data/topics/orders.json")
			if err != nil {
				t.Fatal(err)
			}
			cur := strings.Replace(string(raw), "60000", tc.current, 1)
			if err := mem.WriteFile("/data/topics/"+id+".json", []byte(cur)); err != nil {
				t.Fatal(err)
			}
			checkOrders(t, mem, id, tc.want)
		})
	}
}

// TestLegacyTopicMetadataCrash: a power loss at any filesystem operation
// of the first open of a previous version's directory leaves one that
// opens with the topic intact.
func TestLegacyTopicMetadataCrash(t *testing.T) {
	mem, id := legacyDir(t)
	var (
		mu     sync.Mutex // partitions open in parallel
		images []*vfs.MemFS
	)
	fsys := vfs.NewErrorFS(mem, vfs.InjectorFunc(func(vfs.Op, string) error {
		mu.Lock()
		defer mu.Unlock()
		images = append(images, mem.CrashStrict())
		return nil
	}))
	b, err := Open(Options{FS: fsys, Dir: "/data", Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if len(images) < 10 {
		t.Fatalf("only %d crash points", len(images))
	}
	for i, img := range images {
		t.Run(fmt.Sprint(i), func(t *testing.T) { checkOrders(t, img, id, "60000") })
	}
}

// TestTopicMetadataDuplicateName: two metadata files naming one topic are
// damage, reported at open rather than guessed at.
func TestTopicMetadataDuplicateName(t *testing.T) {
	mem, id := legacyDir(t)
	other := strings.Repeat("ab", 16)
	if id == other {
		other = strings.Repeat("cd", 16)
	}
	raw := fmt.Sprintf(`{"name":"orders","id":%q,"partitions":1}`, other)
	if err := mem.WriteFile("/data/topics/"+other+".json", []byte(raw)); err != nil {
		t.Fatal(err)
	}
	_, err := Open(Options{FS: mem, Dir: "/data", Logger: quiet()})
	if err == nil || errors.Is(err, ErrDirLocked) || !strings.Contains(err.Error(), `both name topic "orders"`) {
		t.Fatalf("Open: %v, want the duplicate reported", err)
	}
}
