package main

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/embedded"
)

func TestTopicCommands(t *testing.T) {
	t.Parallel()
	b := startBroker(t, embedded.Options{})
	c, n := newCLI(t, b), newNormalizer(t, b)
	got := c.transcript(
		"weir topic create orders -p 3 -c retention.ms=3600000 -c cleanup.policy=delete",
		"weir topic create logs payments",
		"weir topic create dry -p 2 --dry-run",
		"weir topic create orders",
		"weir topic create bad -c retention.ms",
		"weir topic create bad -c retention.ms=forever",
		"weir topic create bad -p 0",
		"weir topic list",
		"weir topic list --format json",
		"weir topic describe orders",
		"weir topic alter-config orders --set retention.ms=60000 --delete cleanup.policy",
		"weir topic alter-config orders --set no.such.config=1",
		"weir topic alter-config orders",
		"weir topic add-partitions orders -n 2",
		"weir topic describe orders --format json",
		"weir topic describe missing",
		"weir topic add-partitions missing",
		"weir topic alter-config missing --set retention.ms=1",
		"weir topic delete logs payments",
		"weir topic delete logs",
		"weir topic delete --format json orders",
		"weir topic list",
	)
	checkGolden(t, "topic", n.apply(got))
}

func TestProduceConsume(t *testing.T) {
	t.Parallel()
	b := startBroker(t, embedded.Options{})
	c, n := newCLI(t, b), newNormalizer(t, b)
	got := c.transcript(
		`printf 'one\ntwo\nthree\n' | weir produce events -v`,
		"weir produce events --value four --key k4 -H source=test -H trace=1 -v",
		`printf 'k5:five\nk6:six\n' | weir produce events -K : --format json -v`,
		`printf 'seven\n' | weir produce events -z gzip`,
		`printf 'eight\r\n' | weir produce events -z zstd --acks leader`,
		`printf 'nine\n' | weir produce events -z snappy`,
		`printf 'ten' | weir produce events -z lz4 -p 0`,
		"weir consume events -e",
		"weir consume events -e -f '%t/%p/%o key=%k value=%v headers=%h (%K+%V bytes)'",
		"weir consume events -e --format json -o 3",
		"weir consume events --from 5 -n 2",
		"weir consume events --from end -e",
		"weir consume events --from @0 -n 1",
		"weir consume events --from 2100-01-01 -e",
		"weir consume events -p 0 -n 1",
		`printf 'lost?\n' | weir produce fire --acks none -v`,
		"weir consume fire -n 1",
		// errors
		"weir consume missing -e",
		"weir consume events --from yesterday",
		"weir consume events --from -3",
		"weir consume events -f '%x'",
		"weir consume events -f '%v' --format json",
		"weir consume events -e -p 7",
		"weir consume events -g grp -p 0",
		"weir produce events -p 7 --value x",
		"weir produce events --key k -K : --value x",
		"weir produce events --acks maybe --value x",
		"weir produce events -z brotli --value x",
		"weir produce events -H novalue --value x",
	)
	checkGolden(t, "produce_consume", n.apply(got))
}

func TestGroupCommands(t *testing.T) {
	t.Parallel()
	b := startBroker(t, embedded.Options{})
	c, n := newCLI(t, b), newNormalizer(t, b)
	got := c.transcript(
		"weir topic create work",
		`printf 'a\nb\nc\nd\n' | weir produce work`,
		"weir consume work -g g1 -n 1",
		"weir group list",
		"weir group describe g1",
		"weir group seek g1 --to beginning",
		"weir group seek g1 --to end --execute",
		"weir group seek g1 --to -3 --execute",
		"weir group describe g1 --format json",
		"weir consume work -g g1 -e",
		"weir consume work -g g1 -e",
		"weir topic create wide -p 2",
		`printf 'k1:a\nk2:b\nk3:c\nk4:d\n' | weir produce wide -K :`,
		"weir group seek g2 --topic wide --to 1 --execute",
		"weir group seek g2 --to 2100-01-01T00:00:00Z --format json",
		"weir group describe g1 g2",
		// errors
		"weir group seek g1",
		"weir group seek g1 --to sideways",
		"weir group seek nobody --to end",
		"weir group seek g1 --to end --topic missing",
		"weir group describe nobody",
		"weir group delete g1 g2",
		"weir group delete g1",
		"weir group list --format json",
	)
	checkGolden(t, "group", n.apply(got))
}

// TestGroupActiveMember describes a group while a consumer is in it, and
// checks that seek and delete refuse to touch a live group.
func TestGroupActiveMember(t *testing.T) {
	t.Parallel()
	b := startBroker(t, embedded.Options{})
	c := newCLI(t, b)
	if r := c.runLine(`printf 'x\ny\n' | weir produce live`); r.err != nil {
		t.Fatal(r.err)
	}
	assigned := make(chan struct{}, 1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ClientID("live-consumer"),
		kgo.ConsumerGroup("live"), kgo.ConsumeTopics("live"),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) {
			select {
			case assigned <- struct{}{}:
			default:
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if cl.PollFetches(ctx).IsClientClosed() {
				return
			}
		}
	}()
	select {
	case <-assigned:
	case <-ctx.Done():
		t.Fatal("consumer never got an assignment")
	}
	r := c.runLine("weir group describe live")
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, want := range []string{"STATE      Stable", "MEMBERS    1", "MEMBER-ID", "live-consumer", "live[0]", "CLIENT-ID", "HOST"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("group describe lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := c.runLine("weir group seek live --to beginning"); r.err != nil || !strings.Contains(r.stderr, "1 active member(s)") {
		t.Errorf("dry run with members: err %v stderr %q", r.err, r.stderr)
	}
	r = c.runLine("weir group seek live --to beginning --execute")
	if want := `weir: group "live" has 1 active member(s); stop its consumers before seeking`; r.message() != want {
		t.Errorf("seek --execute: got %q, want %q", r.message(), want)
	}
	r = c.runLine("weir group delete live")
	if want := `weir: group "live" has active members; stop its consumers first`; r.message() != want {
		t.Errorf("delete: got %q, want %q", r.message(), want)
	}
}

func TestClusterInfoAndVersion(t *testing.T) {
	t.Parallel()
	b := startBroker(t, embedded.Options{})
	c, n := newCLI(t, b), newNormalizer(t, b)
	got := c.transcript(
		"weir topic create a b",
		"weir cluster info",
		"weir cluster info --format json",
		"weir version",
	)
	// The API count and the version guess change as Weir grows APIs.
	got = n.apply(got)
	got = regexp.MustCompile(`(?m)^(0\*\s+127\.0\.0\.1\s+<port>\s+-\s+)\d+(\s+)≈ .*$`).ReplaceAllString(got, "${1}<apis>${2}≈ <guess>")
	got = regexp.MustCompile(`"api_keys": \d+`).ReplaceAllString(got, `"api_keys": <apis>`)
	got = regexp.MustCompile(`"kafka_version_guess": "[^"]*"`).ReplaceAllString(got, `"kafka_version_guess": "<guess>"`)
	checkGolden(t, "cluster", got)
	r := c.run("", "version", "--format", "json")
	if r.err != nil || !strings.Contains(r.stdout, `"version": "`+version+`"`) {
		t.Errorf("version --format json: %v %q", r.err, r.stdout)
	}
}

// TestErrors checks the one-line message of each error path.
func TestErrors(t *testing.T) {
	t.Parallel()
	b := startBroker(t, embedded.Options{})
	c := newCLI(t, b)
	closed := closedPort(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"topic", "list", "-b", closed}, "weir: cannot reach broker at " + closed + ": dial tcp " + closed + ": connect: connection refused"},
		{[]string{"consume", "x", "--brokers", closed}, "weir: cannot reach broker at " + closed + ": dial tcp " + closed + ": connect: connection refused"},
		{[]string{"topic", "list", "--bogus"}, "weir: unknown flag: --bogus (see 'weir topic list --help')"},
		{[]string{"produce", "t", "-p", "x"}, `weir: invalid argument "x" for "-p, --partition" flag: must be an integer (see 'weir produce --help')`},
		{[]string{"tpoic", "list"}, `weir: unknown command "tpoic" for "weir"; did you mean "topic"?`},
		{[]string{"topic", "list", "--format", "yaml"}, `weir: --format "yaml": want text or json`},
		{[]string{"topic", "create", "t", "-c", "retention.ms"}, `weir: bad -c "retention.ms": want key=value`},
		{[]string{"topic", "describe", "nope"}, `weir: topic "nope" does not exist`},
		{[]string{"consume", "nope"}, `weir: topic "nope" does not exist`},
		{[]string{"produce"}, `weir: produce: want one TOPIC, got 0 argument(s) (see 'weir produce --help')`},
		{[]string{"topic", "delete"}, `weir: topic delete: want TOPIC names, got 0 argument(s) (see 'weir topic delete --help')`},
	} {
		start := time.Now()
		r := c.run("", tc.args...)
		if r.message() != tc.want {
			t.Errorf("weir %s:\n got %q\nwant %q", strings.Join(tc.args, " "), r.message(), tc.want)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("weir %s took %v; errors must be quick", strings.Join(tc.args, " "), d)
		}
	}
}

// TestMainExitStatus runs the real main in a child process: errors exit 1
// with exactly one line on stderr and nothing on stdout.
func TestMainExitStatus(t *testing.T) {
	t.Parallel()
	b := startBroker(t, embedded.Options{})
	closed := closedPort(t)
	for _, tc := range []struct {
		args []string
		env  string
		want string
	}{
		{[]string{"topic", "list"}, "WEIR_BROKERS=" + closed, "weir: cannot reach broker at " + closed},
		{[]string{"topic", "describe", "nope"}, "WEIR_BROKERS=" + b.Addr(), `weir: topic "nope" does not exist`},
		{[]string{"consume", "x", "--from"}, "", "weir: flag needs an argument: --from (see 'weir consume --help')"},
	} {
		cmd := exec.Command(os.Args[0], tc.args...)
		cmd.Env = append(os.Environ(), "WEIR_TEST_MAIN=1", tc.env)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 1 {
			t.Errorf("weir %v: exit %v, want status 1", tc.args, err)
		}
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], tc.want) || stdout.Len() > 0 {
			t.Errorf("weir %v: stdout %q stderr %q; want one line starting %q", tc.args, stdout.String(), stderr.String(), tc.want)
		}
	}
	cmd := exec.Command(os.Args[0], "version")
	cmd.Env = append(os.Environ(), "WEIR_TEST_MAIN=1")
	if out, err := cmd.Output(); err != nil || string(out) != "weir "+version+"\n" {
		t.Errorf("weir version: %q %v", out, err)
	}
}

// TestBrokersFlagBeatsEnv: --brokers wins over WEIR_BROKERS, which wins over
// the default.
func TestBrokersFlagBeatsEnv(t *testing.T) {
	t.Parallel()
	b := startBroker(t, embedded.Options{})
	c := &cli{t: t, env: map[string]string{"WEIR_BROKERS": closedPort(t)}}
	if r := c.run("", "topic", "list", "--brokers", b.Addr()); r.err != nil {
		t.Fatalf("--brokers should override WEIR_BROKERS: %v", r.err)
	}
	if r := c.run("", "topic", "list"); r.err == nil || !strings.Contains(r.err.Error(), "cannot reach broker at "+c.env["WEIR_BROKERS"]) {
		t.Fatalf("WEIR_BROKERS ignored: %v", r.err)
	}
}

// TestProduceNoAutoCreate: without auto-creation, producing to an unknown
// topic is one clear error.
func TestProduceNoAutoCreate(t *testing.T) {
	t.Parallel()
	b := startBroker(t, embedded.Options{DisableAutoCreate: true})
	c := newCLI(t, b)
	r := c.runLine(`echo hi | weir produce ghost`)
	if want := `weir: topic "ghost" does not exist (and the broker does not auto-create topics)`; r.message() != want {
		t.Errorf("got %q, want %q", r.message(), want)
	}
}

// TestProduceShowsTheBrokersReason: a record the broker's write gate
// refuses is reported with the broker's own reason (franz-go keeps only the
// code), for a schema-validated topic and for an internal topic.
func TestProduceShowsTheBrokersReason(t *testing.T) {
	t.Parallel()
	b := startBroker(t, embedded.Options{})
	c := newCLI(t, b)
	if r := c.runLine(`weir topic create orders -c weir.value.schema.validation=true`); r.err != nil {
		t.Fatal(r.err)
	}
	r := c.runLine(`echo not-avro | weir produce orders`)
	want := "weir: produce to orders: INVALID_RECORD: invalid record: orders-0 record 0: value does not start with magic byte 0 and a 4-byte schema id"
	if r.message() != want {
		t.Errorf("got %q, want %q", r.message(), want)
	}
	r = c.runLine(`echo x | weir produce _schemas`)
	if msg := r.message(); !strings.Contains(msg, "INVALID_TOPIC_EXCEPTION") || !strings.Contains(msg, "_schemas is written only by the node itself") {
		t.Errorf("produce to _schemas: %q", msg)
	}
	if r := c.runLine(`printf 'a\nb\n' | weir produce plain`); r.err != nil {
		t.Errorf("an ordinary topic after the refusals: %v", r.err)
	}
}

// TestDev starts `weir dev` on a free port, follows its printed next step,
// and stops it.
func TestDev(t *testing.T) {
	t.Parallel()
	root := newRootCmdEnv(func(string) string { return "" })
	var out syncBuffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"dev", "--kafka-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--registry-addr", "127.0.0.1:0", "--data-dir", t.TempDir()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "Ctrl-C stops Weir") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no banner:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	banner := out.String()
	m := regexp.MustCompile(`Kafka API\s+(127\.0\.0\.1:\d+)`).FindStringSubmatch(banner)
	if m == nil {
		t.Fatalf("banner has no Kafka address:\n%s", banner)
	}
	next := regexp.MustCompile(`(?m)^  (echo hello \| weir produce demo -b \S+) && (weir consume demo -b \S+ -n 1)$`).FindStringSubmatch(banner)
	if next == nil || !strings.Contains(next[1], m[1]) {
		t.Fatalf("banner has no copy-paste next step for %s:\n%s", m[1], banner)
	}
	c := &cli{t: t, env: map[string]string{}}
	if r := c.runLine(next[1]); r.err != nil {
		t.Fatal(r.err)
	}
	if r := c.runLine(next[2]); r.err != nil || r.stdout != "hello\n" {
		t.Fatalf("consume: %q %v", r.stdout, r.err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("dev exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("dev did not stop")
	}
}
