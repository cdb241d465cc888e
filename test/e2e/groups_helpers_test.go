package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Consumer groups end to end: every client runs the same scenario
// (runGroupScenario) against the real binary.
//
//  1. A 6-partition topic gets 300 records; member m1 starts and takes all
//     six partitions.
//  2. A background producer keeps writing 6 records (one per partition)
//     every 100 ms while the membership changes: m2 joins, m3 joins (each
//     waits until the group is Stable with the new member assigned and the
//     new member has consumed), m2 stops gracefully (LeaveGroup) and, for
//     clients that support it, m3 crashes: it stops processing, its
//     connections are cut and it never sends LeaveGroup, so the group only
//     rebalances once its 6 s session expires. m4 then joins.
//  3. The producer stops; every record produced must be consumed, with
//     exactly-once clients (commit before releasing partitions) exactly
//     once; at-least-once clients may repeat records after a rebalance or
//     a crash (counted and logged) but never lose one. kadm then sees the
//     group Stable with its two members, every partition assigned and lag
//     0; once they stop, Empty with lag 0.
//  4. Twice (SIGTERM restart, then SIGKILL restart): 60 more records are
//     produced, the broker restarts, kadm sees exactly 10 records of lag
//     per partition (the commits survived), and a new member of the same
//     group consumes exactly those 60 records — nothing from before the
//     committed offsets — and commits them.

const (
	grpParts         = 6
	grpSession       = 6 * time.Second
	grpHeartbeat     = 500 * time.Millisecond
	grpRebalance     = 20 * time.Second
	grpInitial       = 300 // records before the first member starts
	grpResumeRecords = 60  // records per broker restart
	grpWait          = 25 * time.Second
)

// grpWeirFlags make the first member's rebalance immediate and
// auto-created topics 6 partitions wide.
var grpWeirFlags = []string{"--group-initial-rebalance-delay=0s", "--default-partitions=6"}

// grpRec is where the producer's acknowledgement put a record.
type grpRec struct {
	Partition int32
	Offset    int64
}

// grpSeen is one delivery of a record to a member.
type grpSeen struct {
	Member    string
	Partition int32
	Offset    int64
}

// grpLedger collects what the members consumed, by record value.
type grpLedger struct {
	mu        sync.Mutex
	seen      map[string][]grpSeen
	perMember map[string]int
	notes     []string // client errors worth reporting
}

func newGrpLedger() *grpLedger {
	return &grpLedger{seen: map[string][]grpSeen{}, perMember: map[string]int{}}
}

func (l *grpLedger) add(member string, partition int32, offset int64, value string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen[value] = append(l.seen[value], grpSeen{member, partition, offset})
	l.perMember[member]++
}

// note records a client-side error (commit failures and the like).
func (l *grpLedger) note(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.notes) < 50 {
		l.notes = append(l.notes, fmt.Sprintf(format, args...))
	}
}

func (l *grpLedger) consumedBy(member string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.perMember[member]
}

// missing returns how many records of want were not consumed yet.
func (l *grpLedger) missing(want map[string]grpRec) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for v := range want {
		if len(l.seen[v]) == 0 {
			n++
		}
	}
	return n
}

func (l *grpLedger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	names := make([]string, 0, len(l.perMember))
	for m := range l.perMember {
		names = append(names, m)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, m := range names {
		parts[i] = fmt.Sprintf("%s=%d", m, l.perMember[m])
	}
	return strings.Join(parts, " ")
}

// check compares the deliveries with want: every record consumed, at the
// partition and offset it was produced at, and nothing else. With exact,
// a record consumed twice is an error; otherwise duplicates are counted
// and returned.
func (l *grpLedger) check(t *testing.T, what string, want map[string]grpRec, exact bool) (dups int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var lost, twice, wrong, extra []string
	for v, r := range want {
		ss := l.seen[v]
		if len(ss) == 0 {
			lost = append(lost, fmt.Sprintf("%s@%d/%d", v, r.Partition, r.Offset))
			continue
		}
		if len(ss) > 1 {
			dups += len(ss) - 1
			twice = append(twice, fmt.Sprintf("%s@%d/%d by %v", v, r.Partition, r.Offset, ss))
		}
		for _, s := range ss {
			if s.Partition != r.Partition || s.Offset != r.Offset {
				wrong = append(wrong, fmt.Sprintf("%s produced at %d/%d, %s consumed it at %d/%d", v, r.Partition, r.Offset, s.Member, s.Partition, s.Offset))
			}
		}
	}
	for v, ss := range l.seen {
		if _, ok := want[v]; !ok {
			extra = append(extra, fmt.Sprintf("%s by %v", v, ss))
		}
	}
	for _, s := range [][]string{lost, twice, wrong, extra} {
		sort.Strings(s)
	}
	first := func(s []string) []string { return s[:min(len(s), 10)] }
	if len(lost) > 0 {
		t.Errorf("%s: %d of %d records never consumed, e.g. %v", what, len(lost), len(want), first(lost))
	}
	if len(wrong) > 0 {
		t.Errorf("%s: %d deliveries at the wrong partition/offset, e.g. %v", what, len(wrong), first(wrong))
	}
	if len(extra) > 0 {
		t.Errorf("%s: %d records consumed that this phase should not see (before the committed offsets?), e.g. %v", what, len(extra), first(extra))
	}
	if len(twice) > 0 {
		report := t.Logf
		if exact {
			report = t.Errorf
		}
		report("%s: %d records consumed more than once (%d extra deliveries), e.g. %v", what, len(twice), dups, first(twice))
	}
	if len(l.notes) > 0 {
		t.Logf("%s: client errors: %s", what, strings.Join(l.notes, "; "))
	}
	t.Logf("%s: %d records, %d duplicate deliveries; consumed per member: %s", what, len(want), dups, l.summaryLocked())
	return dups
}

func (l *grpLedger) summaryLocked() string {
	names := make([]string, 0, len(l.perMember))
	for m := range l.perMember {
		names = append(names, m)
	}
	sort.Strings(names)
	for i, m := range names {
		names[i] = fmt.Sprintf("%s=%d", m, l.perMember[m])
	}
	return strings.Join(names, " ")
}

// grpProducer writes sequenced records "<topic>-<seq>" round-robin over the
// partitions and remembers where each landed.
type grpProducer struct {
	topic string
	mu    sync.Mutex
	seq   int
	all   map[string]grpRec
}

// produce writes n records with a fresh franz-go client and returns them.
func (p *grpProducer) produce(t *testing.T, addr string, n int) map[string]grpRec {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	c, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	out, err := p.produceWith(c, cl, n)
	if err != nil {
		t.Fatalf("produce %d records: %v", n, err)
	}
	return out
}

func (p *grpProducer) produceWith(ctx context.Context, cl *kgo.Client, n int) (map[string]grpRec, error) {
	p.mu.Lock()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		v := fmt.Sprintf("%s-%06d", p.topic, p.seq)
		recs[i] = &kgo.Record{Topic: p.topic, Partition: int32(p.seq % grpParts), Key: []byte(v), Value: []byte(v)}
		p.seq++
	}
	p.mu.Unlock()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return nil, err
	}
	out := make(map[string]grpRec, n)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range recs {
		out[string(r.Value)] = grpRec{r.Partition, r.Offset}
		p.all[string(r.Value)] = grpRec{r.Partition, r.Offset}
	}
	return out, nil
}

// background produces grpParts records every 100 ms until the returned
// stop function is called; stop reports a produce error.
func (p *grpProducer) background(t *testing.T, addr string) (stop func()) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	quit := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				done <- nil
				return
			case <-tick.C:
			}
			c, cancel := context.WithTimeout(context.Background(), stepTimeout)
			_, err := p.produceWith(c, cl, grpParts)
			cancel()
			if err != nil {
				done <- err
				return
			}
		}
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			close(quit)
			err := <-done
			cl.Close()
			if err != nil {
				t.Errorf("background producer: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func (p *grpProducer) snapshot() map[string]grpRec {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]grpRec, len(p.all))
	for k, v := range p.all {
		out[k] = v
	}
	return out
}

// grpMember is one running group member.
type grpMember interface {
	// stop commits what the member consumed, leaves the group and waits
	// for the client to finish.
	stop(t *testing.T)
	// crash stops the member without LeaveGroup: the coordinator only
	// notices when its session expires.
	crash(t *testing.T)
}

// grpClient describes how a client runs group members.
type grpClient struct {
	// exact: the client commits what it consumed before it releases a
	// partition (rebalance, leave), so no record is consumed twice, and
	// crash (when supported) commits what was processed first.
	exact bool
	// crash: the client supports crash.
	crash bool
	start func(sc *grpScenario, name string, l *grpLedger) grpMember
}

// grpScenario is one run of the scenario against one broker.
type grpScenario struct {
	t      *testing.T
	w      *Weir
	topic  string
	group  string
	adm    *kadm.Client
	prod   *grpProducer
	ledger *grpLedger
}

// runGroupScenario runs the scenario (see the top of this file) for one
// client.
func runGroupScenario(t *testing.T, name string, c grpClient) {
	w := StartWeir(t, "", grpWeirFlags...)
	topic, group := "grp-"+name, "grp-"+name+"-group"
	admCl := extKgoClient(t, w)
	sc := &grpScenario{t: t, w: w, topic: topic, group: group, adm: kadm.NewClient(admCl),
		prod: &grpProducer{topic: topic, all: map[string]grpRec{}}, ledger: newGrpLedger()}
	defer func() {
		if t.Failed() {
			t.Logf("weir log tail:\n%s", extLogTail(w, 120))
		}
	}()
	step := func(format string, args ...any) {
		t.Logf("%s: "+format, append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}

	c0, cancel := context.WithTimeout(context.Background(), stepTimeout)
	resp, err := sc.adm.CreateTopic(c0, grpParts, 1, nil, topic)
	cancel()
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	sc.prod.produce(t, w.Addr, grpInitial)

	var live []grpMember
	defer func() {
		// Members still running after a failure: stop them so their
		// goroutines and processes end with the test.
		for _, m := range live {
			m.stop(t)
		}
	}()
	startMember := func(name string) grpMember {
		step("start %s", name)
		m := c.start(sc, name, sc.ledger)
		live = append(live, m)
		return m
	}
	remove := func(m grpMember) {
		live = slices.DeleteFunc(live, func(x grpMember) bool { return x == m })
	}

	startMember("m1")
	sc.waitStable(1)
	stopBG := sc.prod.background(t, w.Addr)
	for _, n := range []string{"m2", "m3"} {
		startMember(n)
		sc.waitStable(len(live))
		sc.waitConsumed(n)
	}
	m2 := live[1]
	step("stop m2 (LeaveGroup)")
	m2.stop(t)
	remove(m2)
	sc.waitStable(2)
	if c.crash {
		m3 := live[1]
		step("crash m3 (no LeaveGroup; session timeout %v)", grpSession)
		crashed := time.Now()
		m3.crash(t)
		remove(m3)
		sc.waitStable(1)
		// Only the session timeout removes a member that never left; a
		// quicker rebalance means the "crash" sent a LeaveGroup.
		if d := time.Since(crashed); d < grpSession/2 {
			t.Errorf("the group dropped the crashed member after %v, before its %v session could expire", d, grpSession)
		}
		startMember("m4")
		sc.waitStable(2)
		sc.waitConsumed("m4")
	}
	stopBG()
	want := sc.prod.snapshot()
	step("producer stopped after %d records; waiting for the group to consume them", len(want))
	sc.waitAll(sc.ledger, want)
	sc.waitLag("Stable", len(live), 0)
	step("stop the remaining members")
	for _, m := range slices.Clone(live) {
		m.stop(t)
		remove(m)
	}
	sc.waitLag("Empty", 0, 0)
	dups := sc.ledger.check(t, "membership changes", want, c.exact)
	if !c.exact && dups > 0 {
		t.Logf("%d duplicate deliveries: this client is at-least-once across rebalances", dups)
	}
	if t.Failed() {
		return
	}

	// Committed offsets survive a clean restart and a crash of the broker.
	for _, kill := range []bool{false, true} {
		name := map[bool]string{false: "r-sigterm", true: "r-sigkill"}[kill]
		more := sc.prod.produce(t, w.Addr, grpResumeRecords)
		step("broker restart (kill=%v) with %d new records", kill, len(more))
		w.Restart(kill)
		sc.waitLag("Empty", 0, grpResumeRecords/grpParts)
		l := newGrpLedger()
		m := c.start(sc, name, l)
		live = append(live, m)
		sc.waitAll(l, more)
		m.stop(t)
		remove(m)
		sc.waitLag("Empty", 0, 0)
		l.check(t, "resume after restart (kill="+fmt.Sprint(kill)+")", more, true)
	}
}

// poll calls cond until it reports done, failing the test with its last
// detail after timeout.
func (sc *grpScenario) poll(what string, timeout time.Duration, cond func(ctx context.Context) (bool, string)) {
	sc.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ok, detail := cond(c)
		cancel()
		if ok {
			return
		}
		last = detail
		if time.Now().After(deadline) {
			sc.t.Fatalf("%s: not reached within %v: %s (consumed so far: %s)", what, timeout, last, sc.ledger.summary())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// describe returns the group as kadm describes it.
func (sc *grpScenario) describe(ctx context.Context) (kadm.DescribedGroup, error) {
	ds, err := sc.adm.DescribeGroups(ctx, sc.group)
	if err != nil {
		return kadm.DescribedGroup{}, err
	}
	d, ok := ds[sc.group]
	if !ok {
		return kadm.DescribedGroup{}, errors.New("group missing from DescribeGroups")
	}
	return d, d.Err
}

// waitStable waits until the group is Stable with n members, each assigned
// at least one partition, and every partition of the topic assigned once.
func (sc *grpScenario) waitStable(n int) {
	sc.t.Helper()
	sc.poll(fmt.Sprintf("group Stable with %d members", n), grpWait, func(ctx context.Context) (bool, string) {
		d, err := sc.describe(ctx)
		if err != nil {
			return false, err.Error()
		}
		detail := fmt.Sprintf("state %s protocol %q, %d members:", d.State, d.Protocol, len(d.Members))
		assigned := map[int32]int{}
		ok := d.State == "Stable" && len(d.Members) == n
		for _, m := range d.Members {
			a, decoded := m.Assigned.AsConsumer()
			if !decoded {
				ok = false
				detail += fmt.Sprintf(" %s: undecodable assignment;", m.ClientID)
				continue
			}
			var ps []int32
			for _, tp := range a.Topics {
				if tp.Topic == sc.topic {
					ps = append(ps, tp.Partitions...)
				}
			}
			for _, p := range ps {
				assigned[p]++
			}
			if len(ps) == 0 {
				ok = false
			}
			detail += fmt.Sprintf(" %s %v;", m.ClientID, ps)
		}
		for p := int32(0); p < grpParts; p++ {
			if assigned[p] != 1 {
				ok = false
			}
		}
		return ok, detail
	})
}

// waitConsumed waits until member has consumed at least one record.
func (sc *grpScenario) waitConsumed(member string) {
	sc.t.Helper()
	sc.poll(member+" consumes", grpWait, func(context.Context) (bool, string) {
		return sc.ledger.consumedBy(member) > 0, "nothing consumed by " + member
	})
}

// waitAll waits until l holds every record of want.
func (sc *grpScenario) waitAll(l *grpLedger, want map[string]grpRec) {
	sc.t.Helper()
	sc.poll(fmt.Sprintf("all %d records consumed", len(want)), grpWait, func(context.Context) (bool, string) {
		n := l.missing(want)
		return n == 0, fmt.Sprintf("%d missing; this phase: %s", n, l.summary())
	})
}

// waitLag waits until kadm's Lag reports the group in state with members
// members and exactly lag records of lag on every partition of the topic.
func (sc *grpScenario) waitLag(state string, members int, lag int64) {
	sc.t.Helper()
	what := fmt.Sprintf("group %s with %d members and lag %d per partition", state, members, lag)
	sc.poll(what, grpWait, func(ctx context.Context) (bool, string) {
		ls, err := sc.adm.Lag(ctx, sc.group)
		if err != nil {
			return false, err.Error()
		}
		l, ok := ls[sc.group]
		if !ok {
			return false, "group missing from Lag"
		}
		if err := l.Error(); err != nil {
			return false, err.Error()
		}
		detail := fmt.Sprintf("state %s, %d members, lag:", l.State, len(l.Members))
		ok = l.State == state && len(l.Members) == members
		for p := int32(0); p < grpParts; p++ {
			ml, found := l.Lag.Lookup(sc.topic, p)
			if !found {
				ok = false
				detail += fmt.Sprintf(" %d:none", p)
				continue
			}
			if ml.Err != nil || ml.Lag != lag || ml.Commit.At < 0 {
				ok = false
			}
			detail += fmt.Sprintf(" %d:%d(commit %d end %d)", p, ml.Lag, ml.Commit.At, ml.End.Offset)
		}
		return ok, detail
	})
}

// grpNet dials a member's connections and can cut them all at once, as
// a crashed process would: the broker sees the connections close and
// the member never sends another request (no LeaveGroup).
type grpNet struct {
	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
}

var errGrpNetCut = errors.New("e2e: member crashed (network cut)")

func newGrpNet() *grpNet { return &grpNet{conns: map[net.Conn]struct{}{}} }

func (n *grpNet) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	n.mu.Lock()
	cut := n.cut
	n.mu.Unlock()
	if cut {
		return nil, errGrpNetCut
	}
	c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cut {
		c.Close()
		return nil, errGrpNetCut
	}
	n.conns[c] = struct{}{}
	return c, nil
}

// Dial implements golang.org/x/net/proxy.Dialer (sarama).
func (n *grpNet) Dial(network, addr string) (net.Conn, error) {
	return n.DialContext(context.Background(), network, addr)
}

// Cut closes every connection and fails every later dial.
func (n *grpNet) Cut() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = true
	for c := range n.conns {
		c.Close()
	}
	clear(n.conns)
}

// grpWaitDone waits up to d for done, reporting a hang.
func grpWaitDone(t *testing.T, what string, done <-chan struct{}, d time.Duration) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(d):
		t.Errorf("%s did not finish within %v", what, d)
	}
}
