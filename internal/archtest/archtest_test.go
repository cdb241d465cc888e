// Package archtest holds the project's rules as tests: import direction
// between packages and the file-size budget.
package archtest

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/weirhq/weir"

// pkgRule says what one package of the module may import from the module:
// imports for its code and tests alike, testImports for its tests only.
// Every package must have one (a new package is added here, so the layer
// picture in docs/architecture.md and the code cannot drift apart), and
// every rule must name an existing package.
type pkgRule struct {
	imports     []string
	testImports []string
}

// allowed is the allow-list, layer by layer from the leaves up (see
// docs/architecture.md and ../shared/DESIGN.md).
var allowed = map[string]pkgRule{
	// Leaves.
	"internal/vfs":     {},
	"internal/batch":   {},
	"internal/metrics": {},
	"internal/config":  {},
	// The benchmark ceiling shares no code path with what it bounds.
	"internal/nullbroker": {},
	// Storage.
	"internal/commitlog": {imports: []string{"internal/batch", "internal/vfs"}},
	// Tiered storage: segments and manifests on file:// or S3. The broker
	// reaches it through an interface of its own (broker.RemoteStorage),
	// which the composition root adapts: storage does not import storage.
	"internal/archive": {imports: []string{"internal/batch", "internal/vfs"}, testImports: []string{"internal/testutil/miniotest"}},
	// Core. The power-loss suite drives the group coordinator and its
	// store on the broker, so the tests reach up; the code never does.
	"internal/broker": {
		imports:     []string{"internal/batch", "internal/commitlog", "internal/metrics", "internal/vfs"},
		testImports: []string{"internal/group", "internal/kafka"},
	},
	"internal/group": {},
	"internal/txn":   {imports: []string{"internal/metrics"}},
	// Adapters: onto the core, never past it into storage.
	"internal/schema": {},
	"internal/kafka": {
		imports:     []string{"internal/batch", "internal/broker", "internal/group", "internal/metrics", "internal/txn"},
		testImports: []string{"internal/vfs"},
	},
	"internal/cloudevents": {
		imports:     []string{"internal/batch", "internal/broker", "internal/group"},
		testImports: []string{"internal/kafka", "internal/vfs"},
	},
	// Composition root.
	"internal/server": {imports: []string{"internal/archive", "internal/batch", "internal/broker", "internal/cloudevents", "internal/commitlog",
		"internal/config", "internal/group", "internal/kafka", "internal/metrics", "internal/schema", "internal/txn",
		"internal/vfs"}, testImports: []string{"internal/testutil/miniotest"}},
	"embedded": {imports: []string{"internal/config", "internal/server"}},
	"cmd/weir": {imports: []string{"embedded", "internal/config", "internal/server", "stream", "stream/nexmark",
		"stream/nexmark/queries"}},
	"cmd/weir-benchcompare": {imports: []string{"internal/config", "internal/nullbroker", "internal/server"}},
	// The stream-processing library is public and talks only the Kafka
	// protocol: nothing of the module, save its tests' embedded broker.
	"stream":            {testImports: []string{"embedded", "stream/streamtest"}},
	"stream/streamtest": {imports: []string{"stream"}},
	// Schema-registry and CloudEvents serdes: public, over franz-go's sr.
	"stream/serde": {imports: []string{"stream"}, testImports: []string{"embedded", "stream/streamtest"}},
	// The NEXMark data side (events, generator, reference queries) stands
	// alone, not even on the stream library it checks.
	"stream/nexmark": {},
	// The NEXMark queries written with the library: an example of its
	// public API, checked against the reference.
	"stream/nexmark/queries": {imports: []string{"stream", "stream/nexmark"}, testImports: []string{"stream/streamtest"}},
	// Examples: public APIs only; their tests run against embedded Weir.
	"examples/exactlyonce": {testImports: []string{"embedded"}},
	// Tests only.
	"internal/archtest": {},
	"test/e2e":          {},
	// Test helpers (imported by tests only): a real MinIO on loopback.
	"internal/testutil/miniotest": {},
}

// banned lists outside packages a layer must not import: storage and the
// core know nothing of protocols.
var banned = map[string][]string{
	"internal/commitlog": {"net", "net/http", "github.com/twmb/franz-go"},
	"internal/archive":   {"github.com/twmb/franz-go"},
	"internal/broker":    {"net/http", "github.com/twmb/franz-go"},
	"internal/group":     {"github.com/twmb/franz-go"},
	"internal/txn":       {"github.com/twmb/franz-go"},
	"internal/schema":    {"github.com/twmb/franz-go"},
}

// violates reports whether imp is one of the banned prefixes.
func violates(imp string, bans []string) bool {
	for _, b := range bans {
		if imp == b || strings.HasPrefix(imp, b+"/") {
			return true
		}
	}
	return false
}

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func TestImportDirection(t *testing.T) {
	cmd := exec.Command("go", "list", "-f",
		"{{.ImportPath}}|{{join .Imports \" \"}}|{{join .TestImports \" \"}} {{join .XTestImports \" \"}}", "./...")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) != 3 {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(f[0], module), "/")
		seen[rel] = true
		rule, ok := allowed[rel]
		if !ok {
			t.Errorf("package %s is not in the allow-list; add it to archtest with what it may import", rel)
			continue
		}
		check := func(imps string, ok []string, what string) {
			for _, imp := range strings.Fields(imps) {
				if violates(imp, banned[rel]) {
					t.Errorf("%s %s %s, which the architecture forbids", rel, what, imp)
				}
				dep, inModule := strings.CutPrefix(imp, module+"/")
				if !inModule || dep == rel {
					continue
				}
				if !slices.Contains(ok, dep) {
					t.Errorf("%s %s %s, which its allow-list entry does not name", rel, what, dep)
				}
			}
		}
		check(f[1], rule.imports, "imports")
		check(f[2], append(slices.Clone(rule.imports), rule.testImports...), "tests import")
	}
	if len(seen) < 10 {
		t.Fatalf("only %d packages listed; go list output looks wrong", len(seen))
	}
	for pkg := range allowed {
		if !seen[pkg] {
			t.Errorf("the allow-list has a rule for %s, which does not exist", pkg)
		}
	}
}

func TestViolatesDetects(t *testing.T) {
	if !violates("github.com/twmb/franz-go/pkg/kmsg", banned["internal/broker"]) {
		t.Fatal("broker → kmsg not detected")
	}
	if violates("network", banned["internal/commitlog"]) {
		t.Fatal("a name sharing a prefix with net wrongly flagged")
	}
	if slices.Contains(allowed["internal/kafka"].imports, "internal/commitlog") {
		t.Fatal("kafka may not reach past broker into commitlog")
	}
}

// TestFileSizeBudget keeps files of one concept each: none past 800 lines.
func TestFileSizeBudget(t *testing.T) {
	root := repoRoot(t)
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if n := bytes.Count(b, []byte("\n")); n > 800 {
			t.Errorf("%s has %d lines; split it (budget 800)", p, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
