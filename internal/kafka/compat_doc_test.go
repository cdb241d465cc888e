package kafka

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// TestCompatLedgerMatchesRegistry keeps docs/compat.md true: every API in
// the registry is listed with exactly its advertised version range, and
// the ledger lists nothing the broker does not serve.
func TestCompatLedgerMatchesRegistry(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "compat.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile(`(?m)^\| (\d+) \| \w+ \| (\d+)(?:–(\d+))? \|`)
	listed := map[int16][2]int16{}
	for _, m := range row.FindAllStringSubmatch(string(raw), -1) {
		key, _ := strconv.Atoi(m[1])
		lo, _ := strconv.Atoi(m[2])
		hi := lo
		if m[3] != "" {
			hi, _ = strconv.Atoi(m[3])
		}
		listed[int16(key)] = [2]int16{int16(lo), int16(hi)}
	}
	if len(listed) == 0 {
		t.Fatal("no API rows found in docs/compat.md; did the table format change?")
	}
	for key, a := range apis {
		got, ok := listed[key]
		switch {
		case !ok:
			t.Errorf("docs/compat.md does not list API key %d (served %d–%d)", key, a.MinVersion, a.MaxVersion)
		case got != [2]int16{a.MinVersion, a.MaxVersion}:
			t.Errorf("docs/compat.md lists key %d as %d–%d; the broker serves %d–%d", key, got[0], got[1], a.MinVersion, a.MaxVersion)
		}
	}
	for key := range listed {
		if _, ok := apis[key]; !ok {
			t.Errorf("docs/compat.md lists key %d, which the broker does not serve", key)
		}
	}
}
