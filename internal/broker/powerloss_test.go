package broker_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weirhq/weir/internal/batch"
	"github.com/weirhq/weir/internal/broker"
	"github.com/weirhq/weir/internal/commitlog"
	"github.com/weirhq/weir/internal/group"
	"github.com/weirhq/weir/internal/kafka"
	"github.com/weirhq/weir/internal/vfs"
)

// The power-loss test runs one broker on an in-memory filesystem through a
// seeded random workload (topic creation and deletion, partition growth,
// concurrent acks=all appends with segment rolls, retention, group offset
// commits, producer ids) and, at random filesystem operations anywhere in
// it (the FS is wrapped so that every operation may be a crash point), takes
// the state a power loss at that instant would leave (MemFS.Crash, with
// torn tails). Each crash image is then recovered with a fresh broker and
// group coordinator and checked against what had been acknowledged before
// the crash:
//
//   - the broker opens without error and every partition log is readable;
//   - no acknowledged topic is lost, no acknowledged deletion is undone and
//     no topic appears that was not being created; partition counts are
//     the acknowledged ones (or the one being set);
//   - every acknowledged record is there, at the offset it was given, and
//     the log is gap-free; the recovered end is at least the high
//     watermark any reader saw before the crash (readers see a prefix);
//     records are missing only below the log start, and only if retention
//     was allowed to delete them;
//   - committed group offsets are never behind an acknowledged commit;
//   - no producer id handed out before the crash is handed out again.

// powerLossSeed is WEIRTEST_POWERLOSS_SEED or a fixed default, so a failure
// replays (the workload and the crash points are drawn from it; only the
// interleaving of the concurrent appends varies between runs).
func powerLossSeed(t *testing.T) uint64 {
	if s := os.Getenv("WEIRTEST_POWERLOSS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("WEIRTEST_POWERLOSS_SEED=%q: %v", s, err)
		}
		return v
	}
	return 20260101
}

// plClock is the injected broker clock; the workload advances it.
type plClock struct{ ms atomic.Int64 }

func (c *plClock) now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *plClock) advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

const (
	plRetentionMs = 60_000
	plGroup       = "pl-group"
	plCommitTopic = "committed"
)

// plRec is one record the workload appended.
type plRec struct {
	value string
	ts    int64
}

// plPartition is the live model of one partition. written is filled when
// Append returns (before the record is durable) and never changes.
type plPartition struct {
	written  map[int64]plRec
	ackedEnd int64 // every offset below it was acknowledged durable
	hwSeen   int64 // the largest high watermark a reader saw
}

// plTopic is one incarnation of a topic name.
type plTopic struct {
	name  string
	id    [16]byte
	parts []*plPartition
}

// plModel is what the workload has been told, guarded by mu.
type plModel struct {
	mu      sync.Mutex
	live    map[string]*plTopic   // acknowledged, by name
	deleted map[[16]byte]string   // acknowledged deletions
	pending map[string]bool       // names with a create/delete/grow in flight
	growTo  map[string]int        // partition count being set
	byID    map[[16]byte]*plTopic // every incarnation ever acknowledged
	// retentionNow is the clock when the latest retention run began.
	retentionNow int64
	// commits: acknowledged and attempted offsets per committed partition.
	ackedCommit map[int32]int64
	triedCommit map[int32]int64
	maxPID      int64
	// groupsReady is set once the offsets topic and coordinator are up.
	groupsReady bool
}

// plView is the part of the model copied at a crash point.
type plView struct {
	live         map[string][16]byte
	parts        map[[16]byte]int
	ackedEnd     map[[16]byte][]int64
	hwSeen       map[[16]byte][]int64
	deleted      map[[16]byte]string
	pending      map[string]bool
	growTo       map[string]int
	retentionNow int64
	ackedCommit  map[int32]int64
	triedCommit  map[int32]int64
	maxPID       int64
	groupsReady  bool
}

func (m *plModel) view() plView {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := plView{
		live: map[string][16]byte{}, parts: map[[16]byte]int{}, ackedEnd: map[[16]byte][]int64{}, hwSeen: map[[16]byte][]int64{},
		deleted: maps.Clone(m.deleted), pending: maps.Clone(m.pending), growTo: maps.Clone(m.growTo),
		retentionNow: m.retentionNow, ackedCommit: maps.Clone(m.ackedCommit), triedCommit: maps.Clone(m.triedCommit),
		maxPID: m.maxPID, groupsReady: m.groupsReady,
	}
	for name, t := range m.live {
		v.live[name] = t.id
		v.parts[t.id] = len(t.parts)
		for _, p := range t.parts {
			v.ackedEnd[t.id] = append(v.ackedEnd[t.id], p.ackedEnd)
			v.hwSeen[t.id] = append(v.hwSeen[t.id], p.hwSeen)
		}
	}
	return v
}

// plCrash is one crash image with the model as of just before it.
type plCrash struct {
	point int64 // filesystem operation number
	view  plView
	fs    *vfs.MemFS
}

// plEnvInt reads a positive integer from the environment, or def.
func plEnvInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return v
}

// TestPowerLoss runs the power-loss workload for one seed, or for
// WEIRTEST_POWERLOSS_SEEDS consecutive seeds (make soak), of
// WEIRTEST_POWERLOSS_STEPS steps each.
func TestPowerLoss(t *testing.T) {
	seed := powerLossSeed(t)
	seeds := plEnvInt(t, "WEIRTEST_POWERLOSS_SEEDS", 1)
	steps := plEnvInt(t, "WEIRTEST_POWERLOSS_STEPS", 400)
	if testing.Short() {
		steps = min(steps, 120)
	}
	if seeds == 1 {
		powerLoss(t, seed, steps)
		return
	}
	for i := range uint64(seeds) {
		t.Run(fmt.Sprintf("seed=%d", seed+i), func(t *testing.T) { powerLoss(t, seed+i, steps) })
	}
}

func powerLoss(t *testing.T, seed uint64, steps int) {
	t.Logf("seed %d (WEIRTEST_POWERLOSS_SEED), %d workload steps", seed, steps)

	mem := vfs.NewMem()
	clock := &plClock{}
	clock.ms.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	model := &plModel{live: map[string]*plTopic{}, deleted: map[[16]byte]string{}, pending: map[string]bool{},
		growTo: map[string]int{}, byID: map[[16]byte]*plTopic{}, ackedCommit: map[int32]int64{}, triedCommit: map[int32]int64{}, maxPID: -1}

	// Crash points: each filesystem operation is one with probability 1/6,
	// drawn from the seed. Images are checked by a pool of checkers while
	// the workload goes on.
	var (
		opCount  atomic.Int64
		pickMu   sync.Mutex
		pick     = rand.New(rand.NewPCG(seed, 1))
		crashes  = make(chan plCrash, 4)
		checked  atomic.Int64
		failures atomic.Int64
		reports  sync.Map // kind -> *atomic.Int64
	)
	count := func(kind string) {
		v, _ := reports.LoadOrStore(kind, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	inj := vfs.InjectorFunc(func(op vfs.Op, path string) error {
		n := opCount.Add(1)
		pickMu.Lock()
		hit := pick.IntN(6) == 0
		pickMu.Unlock()
		if hit {
			v := model.view() // before the image: everything in it was acknowledged before the crash
			img := mem.Crash(rand.New(rand.NewPCG(seed, uint64(n))))
			count("op:" + op.String())
			crashes <- plCrash{point: n, view: v, fs: img}
		}
		return nil
	})
	fsys := vfs.NewErrorFS(mem, inj)

	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range crashes {
				if err := checkCrash(c, model, clock); err != nil {
					if failures.Add(1) <= 5 {
						t.Errorf("crash at filesystem operation %d: %v", c.point, err)
					}
				}
				checked.Add(1)
			}
		}()
	}

	start := time.Now()
	w := &plWorkload{t: t, rng: rand.New(rand.NewPCG(seed, 2)), fs: fsys, mem: mem, clock: clock, model: model}
	w.run(steps)
	close(crashes)
	wg.Wait()

	var kinds []string
	reports.Range(func(k, v any) bool {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, v.(*atomic.Int64).Load()))
		return true
	})
	slices.Sort(kinds)
	t.Logf("%d filesystem operations, %d crash images recovered and checked (%d failed) in %v; crash points by operation: %s",
		opCount.Load(), checked.Load(), failures.Load(), time.Since(start).Round(time.Millisecond), strings.Join(kinds, " "))
	t.Logf("workload: %d records acknowledged, %d topics created, %d deleted, %d partition growths, %d retention runs (%d segments removed), %d rolls, %d group commits acknowledged",
		w.acked, w.created, w.deletedN, w.grown, w.retentions, w.segmentsRemoved, w.rolls, w.commits)
	if checked.Load() < 50 {
		t.Errorf("only %d crash images checked", checked.Load())
	}
	if w.acked == 0 || w.deletedN == 0 || w.retentions == 0 || w.commits == 0 || w.segmentsRemoved == 0 {
		if steps >= 300 {
			t.Error("the workload did not exercise every kind of operation")
		} else {
			t.Log("this short workload did not exercise every kind of operation")
		}
	}
}

// TestPowerLossWeakerModes pins down what the opt-in durability modes may
// lose: under never and interval an append is acknowledged on write, so a
// power loss can take back acknowledged records written since the last
// fsync (and their offsets are then given to new records); sealed
// segments, fsynced at every roll, always survive, and what an interval
// fsync covered survives.
func TestPowerLossWeakerModes(t *testing.T) {
	for _, mode := range []commitlog.Durability{commitlog.Never, commitlog.Interval} {
		t.Run(mode.String(), func(t *testing.T) {
			mem := vfs.NewMem()
			// hold stalls data fsyncs, so that the interval syncer cannot
			// cover the last appends before the crash image is taken.
			var hold atomic.Bool
			release := make(chan struct{})
			fsys := vfs.NewErrorFS(mem, vfs.InjectorFunc(func(op vfs.Op, _ string) error {
				if op == vfs.OpSync && hold.Load() {
					<-release
				}
				return nil
			}))
			opts := broker.Options{FS: fsys, Dir: "/data", Logger: quietLogger(), Durability: mode,
				SyncInterval: 20 * time.Millisecond, SegmentBytes: 1024}
			b, err := broker.Open(opts)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = b.Close() }()
			defer close(release)
			if _, err := b.CreateTopic("t", 1, nil, false); err != nil {
				t.Fatal(err)
			}
			p, _ := b.Partition("t", 0)
			appendN := func(from, n int) (end int64) {
				for i := from; i < from+n; i++ {
					raw, err := batch.Build(batch.BuildOptions{BaseTimestamp: 1}, []batch.Record{{Value: fmt.Appendf(nil, "r%d-%s", i, strings.Repeat("v", 60))}})
					if err != nil {
						t.Fatal(err)
					}
					a, err := p.Produce(raw)
					if err != nil {
						t.Fatal(err)
					}
					// Acknowledged at once: the wait does not wait.
					ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
					err = p.WaitDurable(ctx, a.LastOffset+1)
					cancel()
					if err != nil {
						t.Fatalf("acknowledgement under %s waited for fsync: %v", mode, err)
					}
					end = a.LastOffset + 1
				}
				return end
			}
			// Enough to seal segments, then (interval) time for a sync.
			sealedEnd := appendN(0, 30)
			if mode == commitlog.Interval {
				time.Sleep(200 * time.Millisecond) // several interval fsyncs
			}
			hold.Store(true)
			written := appendN(30, 3)
			img := mem.CrashStrict() // power loss right after three acknowledged appends
			b2, err := broker.Open(broker.Options{FS: img, Dir: "/data", Logger: quietLogger(), Durability: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = b2.Close() }()
			q, _ := b2.Partition("t", 0)
			end := q.HighWatermark()
			t.Logf("%s: %d records acknowledged, %d survived the power loss", mode, written, end)
			// What survives is a prefix of what was written.
			vals := 0
			broker.EachStoredBatch(t, q, func(h batch.Header, recs []batch.Record) {
				if want := fmt.Sprintf("r%d-", h.BaseOffset); !strings.HasPrefix(string(recs[0].Value), want) {
					t.Fatalf("offset %d holds %q", h.BaseOffset, recs[0].Value)
				}
				vals++
			})
			if mode == commitlog.Interval && end < sealedEnd {
				t.Fatalf("interval: %d records survived, but %d were fsynced by the interval before the crash", end, sealedEnd)
			}
			if end >= written {
				t.Fatalf("%s: nothing acknowledged was lost; this test expects the unsynced tail to go", mode)
			}
			// The lost offsets are handed out again.
			raw, _ := batch.Build(batch.BuildOptions{BaseTimestamp: 1}, []batch.Record{{Value: []byte("new")}})
			a, err := q.Produce(raw)
			if err != nil {
				t.Fatal(err)
			}
			if a.BaseOffset != end {
				t.Fatalf("next offset after recovery %d, want %d", a.BaseOffset, end)
			}
		})
	}
}

// plWorkload drives the broker under test.
type plWorkload struct {
	t     *testing.T
	rng   *rand.Rand
	fs    vfs.FS
	mem   *vfs.MemFS // the same files, without crash points (for reporting)
	clock *plClock
	model *plModel

	b      *broker.Broker
	groups *group.Service
	nextID int // topic name counter
	seq    int // record counter

	acked, created, deletedN, grown, retentions, segmentsRemoved, rolls, commits int
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func plOptions(fs vfs.FS, clock *plClock) broker.Options {
	return broker.Options{
		FS: fs, Dir: "/data", Logger: quietLogger(), Now: clock.now,
		SegmentBytes: 2048, RetentionMs: plRetentionMs, RetentionCheckInterval: time.Hour,
	}
}

func plGroups(b *broker.Broker, clock *plClock) (*group.Service, error) {
	store, err := kafka.OpenGroupStore(b)
	if err != nil {
		return nil, err
	}
	return group.NewService(group.ServiceOptions{Store: store, Now: clock.now, Logger: quietLogger(),
		Config: group.Config{}})
}

func (w *plWorkload) run(steps int) {
	t := w.t
	m := w.model
	b, err := broker.Open(plOptions(w.fs, w.clock))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	w.b = b
	m.mu.Lock()
	m.pending[kafka.OffsetsTopic] = true
	m.mu.Unlock()
	if w.groups, err = plGroups(b, w.clock); err != nil {
		t.Fatalf("groups: %v", err)
	}
	m.mu.Lock()
	delete(m.pending, kafka.OffsetsTopic)
	m.groupsReady = true
	m.mu.Unlock()
	defer func() {
		w.groups.Close()
		if err := w.b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()

	for i := 0; i < 3; i++ {
		w.createTopic()
	}
	for step := 0; step < steps; step++ {
		w.clock.advance(time.Duration(500+w.rng.IntN(1500)) * time.Millisecond)
		switch r := w.rng.IntN(100); {
		case r < 55:
			w.appendBurst()
		case r < 63:
			w.createTopic()
		case r < 69:
			w.deleteTopic()
		case r < 72:
			w.growTopic()
		case r < 82:
			w.retention()
		case r < 95:
			w.commit()
		default:
			w.producerID()
		}
	}
}

func (w *plWorkload) liveNames() []string {
	w.model.mu.Lock()
	defer w.model.mu.Unlock()
	return slices.Sorted(maps.Keys(w.model.live))
}

func (w *plWorkload) createTopic() {
	m := w.model
	name := fmt.Sprintf("t%d", w.nextID%6) // names come back after deletion
	w.nextID++
	m.mu.Lock()
	_, exists := m.live[name]
	if !exists {
		m.pending[name] = true
	}
	m.mu.Unlock()
	if exists {
		return
	}
	parts := 1 + w.rng.IntN(3)
	tp, err := w.b.CreateTopic(name, int32(parts), map[string]string{"retention.ms": strconv.Itoa(plRetentionMs)}, false)
	if err != nil {
		w.t.Fatalf("create %s: %v", name, err)
	}
	m.mu.Lock()
	pt := &plTopic{name: name, id: tp.ID}
	for range parts {
		pt.parts = append(pt.parts, &plPartition{written: map[int64]plRec{}})
	}
	m.live[name] = pt
	m.byID[tp.ID] = pt
	delete(m.pending, name)
	m.mu.Unlock()
	w.created++
}

func (w *plWorkload) deleteTopic() {
	names := w.liveNames()
	if len(names) < 2 {
		return
	}
	name := names[w.rng.IntN(len(names))]
	m := w.model
	m.mu.Lock()
	id := m.live[name].id
	m.pending[name] = true
	m.mu.Unlock()
	if err := w.b.DeleteTopic(name); err != nil {
		w.t.Fatalf("delete %s: %v", name, err)
	}
	m.mu.Lock()
	delete(m.live, name)
	m.deleted[id] = name
	delete(m.pending, name)
	m.mu.Unlock()
	w.deletedN++
}

func (w *plWorkload) growTopic() {
	names := w.liveNames()
	if len(names) == 0 {
		return
	}
	name := names[w.rng.IntN(len(names))]
	m := w.model
	m.mu.Lock()
	pt := m.live[name]
	total := len(pt.parts) + 1
	if total > 4 {
		m.mu.Unlock()
		return
	}
	m.pending[name] = true
	m.growTo[name] = total
	m.mu.Unlock()
	if err := w.b.CreatePartitions(name, int32(total), false); err != nil {
		w.t.Fatalf("grow %s: %v", name, err)
	}
	m.mu.Lock()
	pt.parts = append(pt.parts, &plPartition{written: map[int64]plRec{}})
	delete(m.pending, name)
	delete(m.growTo, name)
	m.mu.Unlock()
	w.grown++
}

// appendBurst runs 1-4 concurrent appenders, each appending a few batches
// to random partitions and waiting for them to be durable, as acks=all
// produce requests do; a reader notes the high watermarks it sees.
func (w *plWorkload) appendBurst() {
	names := w.liveNames()
	if len(names) == 0 {
		return
	}
	type job struct {
		p     *broker.Partition
		model *plPartition
		batch []byte
		recs  []plRec
	}
	var jobs [][]job
	for g := 0; g < 1+w.rng.IntN(4); g++ {
		var js []job
		for k := 0; k < 1+w.rng.IntN(4); k++ {
			name := names[w.rng.IntN(len(names))]
			w.model.mu.Lock()
			pt := w.model.live[name]
			pi := w.rng.IntN(len(pt.parts))
			pm := pt.parts[pi]
			w.model.mu.Unlock()
			p, err := w.b.Partition(name, int32(pi))
			if err != nil {
				w.t.Fatalf("partition %s-%d: %v", name, pi, err)
			}
			n := 1 + w.rng.IntN(3)
			ts := w.clock.now().UnixMilli()
			var recs []batch.Record
			var pr []plRec
			for i := 0; i < n; i++ {
				w.seq++
				v := fmt.Sprintf("%x/%d/%d/%s", pt.id[:4], pi, w.seq, strings.Repeat("x", w.rng.IntN(200)))
				recs = append(recs, batch.Record{OffsetDelta: int32(i), Key: []byte(strconv.Itoa(w.seq)), Value: []byte(v)})
				pr = append(pr, plRec{value: v, ts: ts})
			}
			raw, err := batch.Build(batch.BuildOptions{BaseTimestamp: ts}, recs)
			if err != nil {
				w.t.Fatal(err)
			}
			js = append(js, job{p: p, model: pm, batch: raw, recs: pr})
		}
		jobs = append(jobs, js)
	}
	segsBefore := w.segments()
	var wg sync.WaitGroup
	var acked atomic.Int64
	errs := make(chan error, len(jobs)+1)
	for _, js := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, j := range js {
				a, err := j.p.Produce(j.batch)
				if err != nil {
					errs <- fmt.Errorf("append: %w", err)
					return
				}
				w.model.mu.Lock()
				for i, r := range j.recs {
					j.model.written[a.BaseOffset+int64(i)] = r
				}
				w.model.mu.Unlock()
				if err := j.p.WaitDurable(context.Background(), a.LastOffset+1); err != nil {
					errs <- fmt.Errorf("wait durable: %w", err)
					return
				}
				w.model.mu.Lock()
				j.model.ackedEnd = max(j.model.ackedEnd, a.LastOffset+1)
				w.model.mu.Unlock()
				acked.Add(int64(len(j.recs)))
			}
		}()
	}
	// A reader: whatever high watermark it observes must survive a crash.
	done := make(chan struct{})
	var rg sync.WaitGroup
	rg.Add(1)
	go func() {
		defer rg.Done()
		for {
			for _, js := range jobs {
				for _, j := range js {
					hw := j.p.HighWatermark()
					w.model.mu.Lock()
					j.model.hwSeen = max(j.model.hwSeen, hw)
					w.model.mu.Unlock()
				}
			}
			select {
			case <-done:
				return
			default:
				runtime.Gosched()
			}
		}
	}()
	wg.Wait()
	close(done)
	rg.Wait()
	close(errs)
	for err := range errs {
		w.t.Fatal(err)
	}
	w.acked += int(acked.Load())
	if after := w.segments(); after > segsBefore {
		w.rolls += after - segsBefore
	}
}

// segments counts the .log files of the live topics, to report rolls.
func (w *plWorkload) segments() int {
	n := 0
	for _, tp := range w.b.Topics() {
		for _, p := range tp.Partitions() {
			names, _ := w.mem.List(fmt.Sprintf("/data/logs/%s/%d", hex.EncodeToString(tp.ID[:]), p.Index()))
			for _, name := range names {
				if strings.HasSuffix(name, ".log") {
					n++
				}
			}
		}
	}
	return n
}

func (w *plWorkload) retention() {
	before := w.segments()
	w.model.mu.Lock()
	w.model.retentionNow = w.clock.now().UnixMilli()
	w.model.mu.Unlock()
	w.b.EnforceRetention()
	w.retentions++
	if after := w.segments(); after < before {
		w.segmentsRemoved += before - after
	}
}

func (w *plWorkload) commit() {
	m := w.model
	p := int32(w.rng.IntN(3))
	m.mu.Lock()
	v := max(m.triedCommit[p], m.ackedCommit[p]) + 1 + int64(w.rng.IntN(10))
	m.triedCommit[p] = v
	m.mu.Unlock()
	req := group.CommitRequest{Group: plGroup, Generation: -1, Offsets: []group.OffsetCommit{{
		TopicPartition: group.TopicPartition{Topic: plCommitTopic, Partition: p},
		Offset:         group.Offset{Offset: v, LeaderEpoch: -1},
	}}}
	errs, err := w.groups.Commit(context.Background(), req)
	if err == nil {
		err = errors.Join(errs...)
	}
	if err != nil {
		w.t.Fatalf("commit: %v", err)
	}
	m.mu.Lock()
	m.ackedCommit[p] = v
	m.mu.Unlock()
	w.commits++
}

func (w *plWorkload) producerID() {
	id, _, err := w.b.InitProducerID()
	if err != nil {
		w.t.Fatalf("init producer id: %v", err)
	}
	w.model.mu.Lock()
	w.model.maxPID = max(w.model.maxPID, id)
	w.model.mu.Unlock()
}
