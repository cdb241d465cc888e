package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Exactly-once consume-transform-produce under crashes: a franz-go
// GroupTransactSession member, run as its own process, copies every
// record of eos-in/p to eos-out/p, each poll's records and the group's
// offsets in one transaction.
const (
	eosMemberEnv = "WEIRTEST_EOS_MEMBER"
	eosIn        = "eos-in"
	eosOut       = "eos-out"
	eosGroup     = "eos-kill"
	eosTxnID     = "eos-kill-txn"
	eosParts     = 4
	eosRecords   = 1200
)

// TestExactlyOnceSurvivesKills runs the member against the built binary
// while the broker is killed (SIGKILL) and restarted twice and the member
// process is killed mid-stream and replaced by a new one with the same
// transactional id (which fences the old epoch and aborts its open
// transaction). When the group has committed the end of the input, a
// read_committed reader of eos-out must find every input record exactly
// once, in order, per partition: no loss, no duplicate from a transaction
// that was retried after a crash.
func TestExactlyOnceSurvivesKills(t *testing.T) {
	t.Parallel()
	w := StartWeir(t, "")
	adm := kadm.NewClient(extKgoClient(t, w))
	for _, topic := range []string{eosIn, eosOut} {
		if _, err := adm.CreateTopic(ctx(t), eosParts, 1, nil, topic); err != nil {
			t.Fatal(err)
		}
	}
	p := extKgoClient(t, w, kgo.DefaultProduceTopic(eosIn), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var wg sync.WaitGroup
	for i := range eosRecords {
		part := i % eosParts
		wg.Add(1)
		p.Produce(ctx(t), &kgo.Record{Value: fmt.Appendf(nil, "%d-%d", part, i/eosParts), Partition: int32(part)},
			func(_ *kgo.Record, err error) {
				defer wg.Done()
				if err != nil {
					t.Errorf("produce input: %v", err)
				}
			})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	m := startEOSMember(t, w.Addr)
	defer func() { m.kill() }()
	progress := func() int64 {
		offs, err := adm.FetchOffsets(ctx(t), eosGroup)
		if err != nil {
			return -1 // the broker is restarting
		}
		var n int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == eosIn && o.Err == nil {
				n += o.At
			}
		})
		return n
	}
	waitProgress := func(want int64) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			n := progress()
			if n >= want {
				return
			}
			if m.exited() {
				t.Logf("member exited (%s); starting another", m.tail())
				m = startEOSMember(t, w.Addr)
			}
			if time.Now().After(deadline) {
				t.Fatalf("group progress %d of %d records after 90s\nmember:\n%s\nbroker:\n%s", n, want, m.tail(), extLogTail(w, 60))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	waitProgress(eosRecords / 4)
	w.Restart(true) // broker kill -9 mid-stream
	waitProgress(eosRecords / 2)
	t.Logf("first member's failed transactions:\n%s", m.tail())
	m.kill() // member kill -9, possibly inside a transaction
	m = startEOSMember(t, w.Addr)
	waitProgress(eosRecords * 3 / 4)
	w.Restart(true)
	waitProgress(eosRecords)
	t.Logf("second member's failed transactions:\n%s", m.tail())
	m.kill()

	rd := extKgoClient(t, w, kgo.ConsumeTopics(eosOut), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	got := map[int32][]string{}
	n := 0
	for idle := 0; idle < 10 && !(n >= eosRecords && idle > 0); {
		pctx, stop := context.WithTimeout(ctx(t), 500*time.Millisecond)
		fs := rd.PollFetches(pctx)
		stop()
		idle++
		fs.EachError(func(topic string, p int32, err error) {
			if err != context.DeadlineExceeded {
				t.Fatalf("fetch %s/%d: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			n, idle = n+1, 0
			got[r.Partition] = append(got[r.Partition], string(r.Value))
		})
	}
	for p := range int32(eosParts) {
		recs := got[p]
		want := eosRecords / eosParts
		if len(recs) != want {
			t.Errorf("eos-out/%d holds %d committed records, want %d exactly once", p, len(recs), want)
		}
		for i, v := range recs {
			if exp := fmt.Sprintf("%d-%d", p, i); v != exp {
				t.Fatalf("eos-out/%d record %d is %q, want %q: a record lost or repeated", p, i, v, exp)
			}
		}
	}
}

// eosMember is one member process (the test binary re-run with
// eosMemberEnv set).
type eosMember struct {
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  []string
}

func startEOSMember(t *testing.T, addr string) *eosMember {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), eosMemberEnv+"="+addr)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	m := &eosMember{cmd: cmd, done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			m.mu.Lock()
			m.log = append(m.log, sc.Text())
			if len(m.log) > 40 {
				m.log = m.log[len(m.log)-40:]
			}
			m.mu.Unlock()
		}
		_ = cmd.Wait()
		close(m.done)
	}()
	t.Cleanup(m.kill)
	return m
}

func (m *eosMember) exited() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

func (m *eosMember) kill() {
	_ = m.cmd.Process.Kill()
	<-m.done
}

func (m *eosMember) tail() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return strings.Join(m.log, "\n")
}

// runEOSMember is the member process: poll, copy, commit, until killed.
// Transactions that did not commit are logged on stderr for the test's
// log.
func runEOSMember(addr string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(addr),
		kgo.TransactionalID(eosTxnID), kgo.TransactionTimeout(5*time.Second),
		kgo.ConsumerGroup(eosGroup), kgo.ConsumeTopics(eosIn), kgo.SessionTimeout(6*time.Second),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DefaultProduceTopic(eosOut), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		fmt.Fprintln(os.Stderr, "member:", err)
		return 1
	}
	defer sess.Close()
	done := 0
	for ctx.Err() == nil {
		fs := sess.PollRecords(ctx, 40)
		fs.EachError(func(topic string, p int32, err error) { fmt.Fprintf(os.Stderr, "fetch %s/%d: %v\n", topic, p, err) })
		if err := sess.Begin(); err != nil {
			fmt.Fprintln(os.Stderr, "begin:", err)
			return 1
		}
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			sess.Produce(ctx, &kgo.Record{Value: r.Value, Partition: r.Partition}, func(_ *kgo.Record, err error) {
				if err != nil {
					fmt.Fprintln(os.Stderr, "produce:", err)
				}
			})
		})
		committed, err := sess.End(ctx, kgo.TryCommit)
		if committed {
			done++
		}
		if !committed || err != nil {
			fmt.Fprintf(os.Stderr, "end: %d records not committed (%d transactions committed before): %v\n", n, done, err)
		}
		if err != nil && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond) // back off while the broker restarts
		}
	}
	return 0
}
