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
//     every 100 ms while the membership changes. m2 joins, then m3; after
//     each join the test waits until kadm sees the group Stable with
//     exactly those members (by client id), every partition assigned once
//     and each member owning one, and the new member has consumed. m2
//     stops gracefully (commit, LeaveGroup). m3 consumes some more, then
//     crashes: Go members commit what they processed and have their
//     connections cut, so Close cannot send LeaveGroup; process members
//     get SIGKILL. Only the 6 s session expiry removes it (checked: the
//     rebalance must not come sooner). m4 joins.
//  3. The producer stops; every record produced must be consumed, at the
//     partition and offset its producer was told. Clients that commit
//     before releasing partitions must consume each record exactly once;
//     at-least-once clients may repeat records after a rebalance or a
//     crash (counted and logged) but never lose one. kadm Lag then sees
//     the group Stable with m1 and m4 and lag 0 on every partition; once
//     they stop, Empty with lag 0.
//  4. Twice (SIGTERM restart, then SIGKILL restart): 60 more records are
//     produced, the broker restarts, kadm sees exactly 10 records of lag
//     per partition (the commits survived), and a new member of the same
//     group consumes exactly those 60 records, once each: a member that
//     resumed before the committed offsets would have consumed older
//     records of the same partition first.

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

// missing returns how many records of want were not consumed yet, and a
// description of the first few with the deliveries around the first.
func (l *grpLedger) missing(want map[string]grpRec) (int, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var miss []string
	for v := range want {
		if len(l.seen[v]) == 0 {
			miss = append(miss, v)
		}
	}
	if len(miss) == 0 {
		return 0, ""
	}
	sort.Strings(miss) // values sort in production order
	first := want[miss[0]]
	var around []string
	for off := first.Offset - 3; off <= first.Offset+3; off++ {
		for v, r := range want {
			if r.Partition == first.Partition && r.Offset == off {
				around = append(around, fmt.Sprintf("%d:%v", off, l.seen[v]))
			}
		}
	}
	for i, v := range miss[:min(len(miss), 10)] {
		miss[i] = fmt.Sprintf("%s@%d/%d", v, want[v].Partition, want[v].Offset)
	}
	return len(miss), fmt.Sprintf("missing %v; partition %d around the first: %v", miss[:min(len(miss), 10)], first.Partition, around)
}

func (l *grpLedger) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.summaryLocked()
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
	opts  []kgo.Opt
	mu    sync.Mutex
	seq   int
	all   map[string]grpRec
}

// produce writes n records with a fresh franz-go client and returns them.
func (p *grpProducer) produce(t *testing.T, addr string, n int) map[string]grpRec {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner())}, p.opts...)...)
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
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr), kgo.RecordPartitioner(kgo.ManualPartitioner())}, p.opts...)...)
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
	// quiesce: pause the producer and let the group catch up before a
	// member is stopped while others keep consuming (see TestGroupsKcat).
	quiesce bool
	// produce are extra options for the franz-go producer (kafkajs
	// cannot decompress franz-go's default, snappy).
	produce []kgo.Opt
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

	mu     sync.Mutex
	broken string // set when a member died on its own; polls fail fast
}

// breakf records that the scenario cannot succeed any more (a member
// process exited by itself); the next poll fails with it.
func (sc *grpScenario) breakf(format string, args ...any) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.broken == "" {
		sc.broken = fmt.Sprintf(format, args...)
	}
}

// runGroupScenario runs the scenario (see the top of this file) for one
// client.
func runGroupScenario(t *testing.T, name string, c grpClient) {
	w := StartWeir(t, "", grpWeirFlags...)
	topic, group := "grp-"+name, "grp-"+name+"-group"
	admCl := extKgoClient(t, w)
	sc := &grpScenario{t: t, w: w, topic: topic, group: group, adm: kadm.NewClient(admCl),
		prod: &grpProducer{topic: topic, all: map[string]grpRec{}, opts: c.produce}, ledger: newGrpLedger()}
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

	// live holds the running members by name (their client ids).
	live := map[string]grpMember{}
	defer func() {
		// Members still running after a failure: stop them so their
		// goroutines and processes end with the test.
		for _, m := range live {
			m.stop(t)
		}
	}()
	start := func(name string, l *grpLedger) {
		step("start %s", name)
		live[name] = c.start(sc, name, l)
	}
	stop := func(name string) {
		step("stop %s (LeaveGroup)", name)
		m := live[name]
		delete(live, name)
		m.stop(t)
	}
	names := func() []string {
		ns := make([]string, 0, len(live))
		for n := range live {
			ns = append(ns, n)
		}
		sort.Strings(ns)
		return ns
	}

	start("m1", sc.ledger)
	sc.waitStable(names())
	stopBG := sc.prod.background(t, w.Addr)
	for _, n := range []string{"m2", "m3"} {
		start(n, sc.ledger)
		sc.waitStable(names())
		sc.waitConsumed(n)
	}
	if c.quiesce {
		stopBG()
		step("producer paused; waiting for the group to catch up before stopping m2")
		sc.waitAll(sc.ledger, sc.prod.snapshot())
	}
	stop("m2")
	sc.waitStable(names())
	if c.quiesce {
		stopBG = sc.prod.background(t, w.Addr)
	}
	if c.crash {
		// Crash with work done in this generation (for at-least-once
		// clients, possibly not committed yet).
		sc.waitConsumed("m3")
		step("crash m3 (no LeaveGroup; session timeout %v)", grpSession)
		crashed := time.Now()
		m3 := live["m3"]
		delete(live, "m3")
		m3.crash(t)
		sc.waitStable(names())
		// Only the session timeout removes a member that never left; a
		// quicker rebalance means the "crash" sent a LeaveGroup.
		if d := time.Since(crashed); d < grpSession/2 {
			t.Errorf("the group dropped the crashed member after %v, before its %v session could expire", d, grpSession)
		}
		start("m4", sc.ledger)
		sc.waitStable(names())
		sc.waitConsumed("m4")
	}
	stopBG()
	want := sc.prod.snapshot()
	step("producer stopped after %d records; waiting for the group to consume them", len(want))
	sc.waitAll(sc.ledger, want)
	sc.waitLag("Stable", names(), 0)
	for _, n := range names() {
		stop(n)
	}
	sc.waitLag("Empty", nil, 0)
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
		sc.waitLag("Empty", nil, grpResumeRecords/grpParts)
		l := newGrpLedger()
		start(name, l)
		sc.waitAll(l, more)
		stop(name)
		sc.waitLag("Empty", nil, 0)
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
		sc.mu.Lock()
		broken := sc.broken
		sc.mu.Unlock()
		if broken != "" {
			sc.t.Fatalf("%s: %s (last state: %s)", what, broken, last)
		}
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

// clientIDs returns the members' client ids, sorted.
func clientIDs(ms []kadm.DescribedGroupMember) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.ClientID
	}
	sort.Strings(ids)
	return ids
}

// waitStable waits until the group is Stable with exactly the members
// named (by client id), each assigned at least one partition, and every
// partition of the topic assigned once.
func (sc *grpScenario) waitStable(names []string) {
	sc.t.Helper()
	sc.poll(fmt.Sprintf("group Stable with members %v", names), grpWait, func(ctx context.Context) (bool, string) {
		d, err := sc.describe(ctx)
		if err != nil {
			return false, err.Error()
		}
		detail := fmt.Sprintf("state %s protocol %q, %d members:", d.State, d.Protocol, len(d.Members))
		assigned := map[int32]int{}
		ok := d.State == "Stable" && slices.Equal(clientIDs(d.Members), names)
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

// waitConsumed waits until member has consumed two more rounds of the
// background producer's records from the partitions it is assigned.
func (sc *grpScenario) waitConsumed(member string) {
	sc.t.Helper()
	base := sc.ledger.consumedBy(member)
	sc.poll(member+" consumes", grpWait, func(context.Context) (bool, string) {
		n := sc.ledger.consumedBy(member) - base
		return n >= 2*grpParts, fmt.Sprintf("%d more records consumed by %s", n, member)
	})
}

// waitAll waits until l holds every record of want.
func (sc *grpScenario) waitAll(l *grpLedger, want map[string]grpRec) {
	sc.t.Helper()
	sc.poll(fmt.Sprintf("all %d records consumed", len(want)), grpWait, func(context.Context) (bool, string) {
		n, detail := l.missing(want)
		return n == 0, fmt.Sprintf("%d missing (%s); this phase: %s", n, detail, l.summary())
	})
}

// waitLag waits until kadm's Lag reports the group in state with exactly
// the members named and lag records of lag on every partition of the
// topic.
func (sc *grpScenario) waitLag(state string, members []string, lag int64) {
	sc.t.Helper()
	what := fmt.Sprintf("group %s with members %v and lag %d per partition", state, members, lag)
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
		detail := fmt.Sprintf("state %s, members %v, lag:", l.State, clientIDs(l.Members))
		ok = l.State == state && slices.Equal(clientIDs(l.Members), members)
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
