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
	"strings"
	"testing"
)

const module = "github.com/weirhq/weir"

// rules: a package (by path under the module) must not import any of the
// listed prefixes. "internal/" alone means every other internal package.
var rules = map[string][]string{
	"internal/vfs":       {module + "/internal/"},
	"internal/batch":     {module + "/internal/"},
	"internal/metrics":   {module + "/internal/"},
	"internal/config":    {module + "/internal/"},
	"internal/commitlog": {module + "/internal/broker", module + "/internal/group", module + "/internal/kafka", module + "/internal/cloudevents", module + "/internal/schema", module + "/internal/console", module + "/internal/server", "net", "net/http", "github.com/twmb/franz-go"},
	"internal/broker":    {module + "/internal/kafka", module + "/internal/cloudevents", module + "/internal/schema", module + "/internal/console", module + "/internal/server", "github.com/twmb/franz-go", "net/http"},
	"internal/group":     {module + "/internal/broker", module + "/internal/kafka", module + "/internal/server", "github.com/twmb/franz-go"},
	"internal/schema":    {module + "/internal/broker", module + "/internal/kafka", module + "/internal/server", "github.com/twmb/franz-go"},
	"internal/kafka":     {module + "/internal/cloudevents", module + "/internal/schema", module + "/internal/console", module + "/internal/server"},
	// The gateway is an adapter beside kafka: onto broker and group only.
	"internal/cloudevents": {module + "/internal/kafka", module + "/internal/schema", module + "/internal/console", module + "/internal/server"},
	"stream":               {module + "/internal/"},
	// The benchmark ceiling shares no code path with what it bounds.
	"internal/nullbroker": {module + "/internal/"},
}

// allowedSelf lists internal packages a leaf may still import (itself).
func violates(pkg, imp string, banned []string) bool {
	for _, b := range banned {
		if strings.HasSuffix(b, "/") {
			if strings.HasPrefix(imp, b) && imp != module+"/"+pkg && !strings.HasPrefix(imp, module+"/"+pkg+"/") {
				return true
			}
			continue
		}
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
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(f[0], module), "/")
		banned, ok := rules[rel]
		if !ok {
			continue
		}
		checked++
		for _, imp := range f[1:] {
			if violates(rel, imp, banned) {
				t.Errorf("%s imports %s, which the architecture forbids", rel, imp)
			}
		}
	}
	if checked < 3 {
		t.Fatalf("only %d packages checked; go list output looks wrong", checked)
	}
}

func TestViolatesDetects(t *testing.T) {
	if !violates("internal/commitlog", module+"/internal/broker", rules["internal/commitlog"]) {
		t.Fatal("commitlog → broker not detected")
	}
	if !violates("internal/vfs", module+"/internal/batch", rules["internal/vfs"]) {
		t.Fatal("vfs → batch not detected")
	}
	if violates("internal/commitlog", module+"/internal/vfs", rules["internal/commitlog"]) {
		t.Fatal("commitlog → vfs wrongly flagged")
	}
	if !violates("internal/broker", "github.com/twmb/franz-go/pkg/kmsg", rules["internal/broker"]) {
		t.Fatal("broker → kmsg not detected")
	}
}

// TestFileSizeBudget keeps files of one concept each: none past 1,500 lines.
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
		if n := bytes.Count(b, []byte("\n")); n > 1500 {
			t.Errorf("%s has %d lines; split it (budget 1,500)", p, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
