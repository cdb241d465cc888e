package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weirhq/weir/embedded"
	"github.com/weirhq/weir/stream/nexmark"
)

// killGuarantee is the --guarantee of the killed runs. Set it to
// at_least_once by hand to see the test fail: the outputs repeated after
// each kill show up as unexpected records.
const killGuarantee = "exactly_once"

// nexmarkChild is `weir nexmark run` as its own process: the test binary
// re-executed as the CLI (TestMain, WEIR_TEST_MAIN=1), so SIGKILL hits a
// real process and the broker, in this one, survives it.
type nexmarkChild struct {
	cmd            *exec.Cmd
	stdout, stderr syncBuffer
	done           chan struct{}
	err            error
}

func startNexmarkChild(t *testing.T, addr string, args ...string) *nexmarkChild {
	t.Helper()
	c := &nexmarkChild{cmd: exec.Command(os.Args[0], append([]string{"nexmark", "run"}, args...)...), done: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), "WEIR_TEST_MAIN=1", "WEIR_BROKERS="+addr)
	c.cmd.Stdout, c.cmd.Stderr = &c.stdout, &c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	t.Cleanup(c.kill)
	return c
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *nexmarkChild) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

func (c *nexmarkChild) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// killProbe reads a run's progress off the broker.
type killProbe struct {
	ctx            context.Context
	adm            *kadm.Client
	group, in, out string
}

// committed sums the group's committed offsets on the input: -1 if
// unknown.
func (p *killProbe) committed() int64 {
	offs, err := p.adm.FetchOffsets(p.ctx, p.group)
	if err != nil {
		return -1
	}
	var n int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == p.in && o.Err == nil {
			n += max(o.At, 0)
		}
	})
	return n
}

// openTransaction: the output holds decided records (a stable offset above
// zero) and records of a transaction still open (a partition's last stable
// offset below its high watermark); it returns how many of those.
func (p *killProbe) openTransaction() (int64, bool) {
	stable, err := p.adm.ListCommittedOffsets(p.ctx, p.out)
	if err != nil || stable.Error() != nil {
		return 0, false
	}
	ends, err := p.adm.ListEndOffsets(p.ctx, p.out)
	if err != nil || ends.Error() != nil {
		return 0, false
	}
	var decided, open int64
	ends.Each(func(e kadm.ListedOffset) {
		if s, ok := stable.Lookup(p.out, e.Partition); ok {
			decided += s.Offset
			open += e.Offset - s.Offset
		}
	})
	return open, decided > 0 && open > 0
}

// uncommittedOutput (at_least_once): the output grew while the committed
// input offsets stood still; it returns by how many records.
func (p *killProbe) uncommittedOutput() (int64, bool) {
	end := func() int64 {
		ends, err := p.adm.ListEndOffsets(p.ctx, p.out)
		if err != nil || ends.Error() != nil {
			return -1
		}
		var n int64
		ends.Each(func(e kadm.ListedOffset) { n += e.Offset })
		return n
	}
	c0, e0 := p.committed(), end()
	time.Sleep(5 * time.Millisecond)
	e1, c1 := end(), p.committed()
	return e1 - e0, e0 > 0 && e1 > e0 && c0 == c1
}

// TestNexmarkRunSurvivesKill9 runs q1 (stateless), q4 (an updating result
// through keyed state, timers and a repartition) and q5 (hopping windows,
// two repartitions) as `weir nexmark run` child processes while their
// input is being written, SIGKILLs each twice mid-run (after output has
// been committed, while a transaction holding output records is open),
// restarts it with the same instance ID each time, and lets a last,
// bounded run finish. Each output, read read_committed, must equal the
// reference output of an uninterrupted run: nothing lost, nothing twice.
func TestNexmarkRunSurvivesKill9(t *testing.T) {
	b := startBroker(t, embedded.Options{})
	const (
		n     = 4000
		parts = 4
		lag   = 400 // how far the input may run ahead of the committed offsets
	)
	events, err := nexmark.Generate(nexmark.Config{Seed: 9, Events: n, Partitions: parts, Rate: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"q1", "q4", "q5"} {
		t.Run(q, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			in, out, group := "kill-in-"+q, "kill-out-"+q, "kill-"+q
			cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.DefaultProduceTopic(in),
				kgo.RecordPartitioner(kgo.ManualPartitioner()))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			adm := kadm.NewClient(cl)
			if _, err := adm.CreateTopic(ctx, parts, -1, nil, in); err != nil {
				t.Fatal(err)
			}
			p := &killProbe{ctx: ctx, adm: adm, group: group, in: in, out: out}

			// The feeder writes the events in generator order, event i to
			// partition i mod parts, at most lag ahead of the committed
			// offsets while a killed run is wanted and no further than
			// limit: each run is killed while its input is still coming.
			var (
				mu    sync.Mutex
				limit = int64(n * 6 / 10)
				gated = true
			)
			feedErr := make(chan error, 1)
			go func() {
				for fed := int64(0); fed < n; {
					mu.Lock()
					upTo := limit
					if gated {
						upTo = min(upTo, p.committed()+lag)
					}
					mu.Unlock()
					if upTo <= fed {
						select {
						case <-ctx.Done():
							feedErr <- ctx.Err()
							return
						case <-time.After(20 * time.Millisecond):
						}
						continue
					}
					next := min(fed+40, upTo)
					var recs []*kgo.Record
					for i := fed; i < next; i++ {
						v, err := nexmark.Marshal(&events[i])
						if err != nil {
							feedErr <- err
							return
						}
						recs = append(recs, &kgo.Record{Partition: int32(i % parts), Value: v})
					}
					if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
						feedErr <- err
						return
					}
					fed = next
				}
				feedErr <- nil
			}()

			args := []string{"--query", q, "--input", in, "--output", out, "--application-id", group,
				"--guarantee", killGuarantee, "--instance-id", "kill-test"}
			for i, at := range []int64{n / 4, n * 6 / 10} {
				ch := startNexmarkChild(t, b.Addr(), args...)
				for p.committed() < at {
					if ch.exited() || ctx.Err() != nil {
						t.Fatalf("run %d: committed %d of %d input records, no progress: %v\n%s", i+1, p.committed(), at, ch.err, ch.stderr.String())
					}
					time.Sleep(5 * time.Millisecond)
				}
				// Kill with output written since the last commit: under
				// exactly_once, records of the open transaction; under
				// at_least_once, records the committed offsets do not
				// cover yet.
				inFlight := int64(0)
				for ok := false; !ok; {
					if ch.exited() || ctx.Err() != nil {
						t.Fatalf("run %d: no output in flight on %s: %v\n%s", i+1, out, ch.err, ch.stderr.String())
					}
					if killGuarantee == "exactly_once" {
						inFlight, ok = p.openTransaction()
					} else {
						inFlight, ok = p.uncommittedOutput()
					}
				}
				ch.kill()
				t.Logf("run %d killed with %d input records committed, %d output records written since its last commit", i+1, p.committed(), inFlight)
				mu.Lock()
				limit, gated = int64(n*(i+9)/10), i == 0 // 90%, then all at once
				mu.Unlock()
			}
			if err := <-feedErr; err != nil {
				t.Fatalf("write the input: %v", err)
			}
			if c := p.committed(); c >= n {
				t.Fatalf("all %d input records were committed before the last kill: the kills came too late", c)
			}

			last := startNexmarkChild(t, b.Addr(), append(args, "--bounded")...)
			select {
			case <-last.done:
			case <-ctx.Done():
				t.Fatalf("bounded run did not finish:\n%s", last.stderr.String())
			}
			if last.err != nil || !strings.HasPrefix(last.stdout.String(), "ran "+q+" over ") {
				t.Fatalf("bounded run: %v\nstdout %q\nstderr %q", last.err, last.stdout.String(), last.stderr.String())
			}
			want, err := nexmark.Reference(q, events)
			if err != nil {
				t.Fatal(err)
			}
			got := readTopic(t, b.Addr(), out)
			if d := nexmark.Compare(want, got, nexmark.ModeOf(q)); !d.Equal() {
				t.Fatal(d.Format(10))
			}
			if !strings.Contains(last.stdout.String(), fmt.Sprintf("holds %d records\n", len(got))) {
				t.Errorf("summary %q, read %d records", last.stdout.String(), len(got))
			}
			t.Logf("%s: %d output records equal the reference", q, len(got))
		})
	}
}
