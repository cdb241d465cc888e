package cloudevents

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// kcat (librdkafka) reads the records the gateway stores, with their ce_
// headers and key, and records it produces read back as events. Missing
// kcat skips locally and fails in CI (CI set), where apt installs it.
func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("kcat is not installed; CI is set, so this is a failure (apt-get install kcat)")
		}
		t.Skip("kcat is not installed (apt-get install kcat); set CI=true to make this a failure")
	}
	return p
}

func runKcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, kcatPath(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Run(); err != nil {
		t.Fatalf("kcat %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

func TestKcatReadsStoredEvents(t *testing.T) {
	kcatPath(t)
	e := newEnv(t)
	e.mustAccept(e.postBinary("kc", "kc-1", `{"a":1}`, "Content-Type: application/json", "ce-partitionkey: user-1", "ce-tenant: acme"))
	e.mustAccept(e.do("POST", "/events/kc",
		[]byte(`{"specversion":"1.0","id":"kc-2","source":"/structured","type":"t2","datacontenttype":"text/plain","data":"hello"}`),
		"Content-Type: application/cloudevents+json"))
	out := runKcat(t, "", "-C", "-b", e.kaddr, "-t", "kc", "-o", "beginning", "-e", "-q", "-f", "%k|%h|%s\n")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("kcat read %q", out)
	}
	first := strings.SplitN(lines[0], "|", 3)
	if first[0] != "user-1" || first[2] != `{"a":1}` {
		t.Fatalf("first record %q", lines[0])
	}
	for _, h := range []string{"ce_specversion=1.0", "ce_id=kc-1", "ce_source=/test", "ce_type=test.event",
		"content-type=application/json", "ce_partitionkey=user-1", "ce_tenant=acme"} {
		if !strings.Contains(","+first[1]+",", ","+h+",") {
			t.Errorf("first record headers %q lack %s", first[1], h)
		}
	}
	second := strings.SplitN(lines[1], "|", 3)
	if second[0] != "" || second[2] != "hello" || !strings.Contains(second[1], "ce_id=kc-2") || !strings.Contains(second[1], "content-type=text/plain") {
		t.Fatalf("second record %q", lines[1])
	}
}

func TestKcatProducedRecordsReadAsEvents(t *testing.T) {
	kcatPath(t)
	e := newEnv(t)
	if _, err := e.b.CreateTopic("fromkcat", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	runKcat(t, "plain value\n", "-P", "-b", e.kaddr, "-t", "fromkcat", "-k", "kk")
	runKcat(t, "{\"x\":true}\n", "-P", "-b", e.kaddr, "-t", "fromkcat",
		"-H", "ce_specversion=1.0", "-H", "ce_id=kcat-1", "-H", "ce_source=/kcat", "-H", "ce_type=kcat.event",
		"-H", "content-type=application/json", "-H", "ce_color=blue")
	_, evs := e.pull("/events/fromkcat?group=kc&wait=5s&max=2")
	for len(evs) < 2 {
		_, more := e.pull("/events/fromkcat?group=kc&wait=5s")
		if len(more) == 0 {
			t.Fatalf("only %v", evs)
		}
		evs = append(evs, more...)
	}
	if evs[0]["type"] != RecordType || evs[0]["id"] != "fromkcat/0/0" || evs[0]["partitionkey"] != "kk" || evs[0]["data_base64"] == nil {
		t.Fatalf("plain record as %v", evs[0])
	}
	if evs[1]["type"] != "kcat.event" || evs[1]["id"] != "kcat-1" || evs[1]["color"] != "blue" || evs[1]["datacontenttype"] != "application/json" {
		t.Fatalf("ce record as %v", evs[1])
	}
	if d, ok := evs[1]["data"].(map[string]any); !ok || d["x"] != true {
		t.Fatalf("data %v", evs[1]["data"])
	}
}
