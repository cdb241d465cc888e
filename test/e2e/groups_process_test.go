package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Group members that are separate processes (kcat -G, a kafkajs script):
// each prints the records it consumes on stdout, one per line; stop is
// SIGTERM (the client commits and leaves), crash is SIGKILL.

// TestGroupsKcat runs the group scenario (groups_helpers_test.go) with
// `kcat -G` members (librdkafka 2.0.2 on Debian: JoinGroup v5, SyncGroup
// v3, OffsetCommit v7, LeaveGroup v1).
//
// kcat's balanced consumer lets librdkafka store each message's offset
// when rd_kafka_consumer_poll returns it (enable.auto.offset.store) and
// commits the stored offsets periodically, on revoke and on close (the
// periodic commit came every 5 s here even with -X
// auto.commit.interval.ms=1000, so the test does not set it).
// That is at-least-once: a crash (SIGKILL) loses up to 5 s of commits,
// so the crashed member's records are consumed again by the next owner.
// The scenario requires no loss and counts duplicates; after the broker
// restarts, with everything committed by the SIGTERM stops, the new
// member must resume exactly.
//
// kcat 1.7.1 also loses a record on SIGTERM under load: a message polled
// after the signal has its offset stored, but consume_cb returns early
// once conf.run is 0 and never prints it; rd_kafka_consumer_close then
// commits past it and the next owner of the partition starts after it
// (seen: m2 printed p3 offsets ..64, the group resumed p3 at 66). So
// the producer is paused and the group catches up before m2 is stopped
// (quiesce); the other SIGTERM stops happen with nothing left to fetch.
func TestGroupsKcat(t *testing.T) {
	t.Parallel()
	bin := kcatBin(t)
	runGroupScenario(t, "kcat", grpClient{exact: false, crash: true, quiesce: true,
		start: func(sc *grpScenario, name string, l *grpLedger) grpMember {
			return startProcMember(sc, name, l, parseKcatLine, "", nil, bin,
				"-b", sc.w.Addr, "-G", sc.group, sc.topic,
				"-X", "client.id="+name,
				"-X", "auto.offset.reset=earliest",
				"-X", "session.timeout.ms="+strconv.Itoa(int(grpSession.Milliseconds())),
				"-X", "heartbeat.interval.ms="+strconv.Itoa(int(grpHeartbeat.Milliseconds())),
				"-X", "fetch.wait.max.ms=100",
				"-X", "check.crcs=true",
				"-u", "-f", `%p %o %s\n`)
		}})
}

// parseKcatLine parses `-f '%p %o %s\n'`.
func parseKcatLine(line string) (int32, int64, string, error) {
	f := strings.SplitN(line, " ", 3)
	if len(f) != 3 {
		return 0, 0, "", fmt.Errorf("want 3 fields")
	}
	p, err := strconv.ParseInt(f[0], 10, 32)
	if err != nil {
		return 0, 0, "", err
	}
	o, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, 0, "", err
	}
	return int32(p), o, f[2], nil
}

// TestGroupsKafkajs runs the group scenario (groups_helpers_test.go) with
// kafkajs consumers (test/kafkajs/group.js: JoinGroup v5 with KIP-394,
// SyncGroup, Heartbeat and LeaveGroup v3, OffsetCommit v5, OffsetFetch v4).
//
// kafkajs resolves an offset when eachMessage returns and commits the
// resolved offsets after every batch and before it rejoins a group that
// is rebalancing, but it has no commit-before-revoke guarantee: a batch
// in progress when the member is killed, or processed by one fetcher
// while another already saw the rebalance, is committed late or never.
// It is treated as at-least-once: the scenario requires no loss and
// counts duplicates (none were seen in practice); after the broker
// restarts, with everything committed by the SIGTERM stops, the new
// member must resume exactly.
func TestGroupsKafkajs(t *testing.T) {
	t.Parallel()
	dir, node := kafkajsDir(t)
	level := os.Getenv("KAFKAJS_LOG_LEVEL")
	if level == "" {
		level = "INFO"
	}
	env := []string{"KAFKAJS_LOG_LEVEL=" + level, "KAFKAJS_NO_PARTITIONER_WARNING=1",
		"GROUP_SESSION_TIMEOUT_MS=" + strconv.Itoa(int(grpSession.Milliseconds()))}
	runGroupScenario(t, "kafkajs", grpClient{exact: false, crash: true,
		produce: []kgo.Opt{kgo.ProducerBatchCompression(kgo.GzipCompression())},
		start: func(sc *grpScenario, name string, l *grpLedger) grpMember {
			return startProcMember(sc, name, l, parseKafkajsLine, dir, env, node,
				filepath.Join(dir, "group.js"), sc.w.Addr, sc.topic, sc.group, name)
		}})
}

// parseKafkajsLine parses group.js' {"p":0,"o":"12","v":"..."}.
func parseKafkajsLine(line string) (int32, int64, string, error) {
	var r struct {
		P int32  `json:"p"`
		O string `json:"o"`
		V string `json:"v"`
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return 0, 0, "", err
	}
	o, err := strconv.ParseInt(r.O, 10, 64)
	if err != nil {
		return 0, 0, "", err
	}
	return r.P, o, r.V, nil
}

// procMember is a group member running as a child process.
type procMember struct {
	name     string
	l        *grpLedger
	sc       *grpScenario
	cmd      *exec.Cmd
	done     chan struct{} // closed once the process exited and stdout is drained
	mu       sync.Mutex
	stderr   bytes.Buffer
	stopping bool // stop or crash signalled it
}

func (m *procMember) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stderr.Write(p)
}

// stderrTail returns the last n lines of the member's stderr, without
// kcat's "% Reached end of topic" lines.
func (m *procMember) stderrTail(n int) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	lines := strings.Split(strings.TrimRight(m.stderr.String(), "\n"), "\n")
	lines = slices.DeleteFunc(lines, func(l string) bool { return strings.HasPrefix(l, "% Reached end of topic") })
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startProcMember starts name args... and feeds each stdout line, parsed
// by parse, to l.
func startProcMember(sc *grpScenario, name string, l *grpLedger, parse func(string) (int32, int64, string, error),
	dir string, env []string, bin string, args ...string) *procMember {
	t := sc.t
	m := &procMember{name: name, l: l, sc: sc, done: make(chan struct{})}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stderr = m
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	m.cmd = cmd
	go func() {
		defer close(m.done)
		scan := bufio.NewScanner(stdout)
		scan.Buffer(make([]byte, 64<<10), 1<<20)
		for scan.Scan() {
			p, o, v, err := parse(scan.Text())
			if err != nil {
				l.note("%s: unparsable output %q: %v", name, scan.Text(), err)
				continue
			}
			l.add(name, p, o, v)
		}
		err := cmd.Wait()
		m.mu.Lock()
		stopping := m.stopping
		m.mu.Unlock()
		if !stopping {
			sc.breakf("%s exited by itself (%v); stderr:\n%s", name, err, m.stderrTail(40))
		}
	}()
	t.Cleanup(func() {
		select {
		case <-m.done:
		default:
			m.signal(syscall.SIGKILL)
			<-m.done
		}
		m.mu.Lock()
		warnings := librdkafkaWarning.FindAll(m.stderr.Bytes(), -1)
		m.mu.Unlock()
		if len(warnings) > 0 {
			t.Logf("%s: librdkafka logged %d warnings or errors; stderr:\n%s", name, len(warnings), m.stderrTail(60))
		}
		// GRP_DUMP=1 shows every member's stderr, also when the test passes.
		if t.Failed() || os.Getenv("GRP_DUMP") != "" {
			t.Logf("%s stderr (tail):\n%s", name, m.stderrTail(60))
		}
	})
	return m
}

// stop sends SIGTERM: the client commits, leaves and exits 0.
func (m *procMember) stop(t *testing.T) {
	t.Helper()
	m.signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(20 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
		t.Errorf("%s did not exit within 20s of SIGTERM; stderr:\n%s", m.name, m.stderrTail(40))
		return
	}
	if code := m.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("%s exited with %d after SIGTERM; stderr:\n%s", m.name, code, m.stderrTail(40))
	}
}

// crash sends SIGKILL: no commit, no LeaveGroup.
func (m *procMember) crash(t *testing.T) {
	m.signal(syscall.SIGKILL)
	grpWaitDone(t, m.name+" after SIGKILL", m.done, 10*time.Second)
}

func (m *procMember) signal(sig syscall.Signal) {
	m.mu.Lock()
	m.stopping = true
	m.mu.Unlock()
	_ = m.cmd.Process.Signal(sig)
}
