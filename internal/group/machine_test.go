package group

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestMachine runs the scripts in testdata against a Machine with a fake
// clock and member ids clientID-N. Regenerate the expected output with
//
//	go test ./internal/group -run TestMachine -rewrite
//
// Commands (group defaults to g; durations use time.ParseDuration):
//
//	config initial-delay=0 [min-session=6s max-session=30m max-size=0 retention=168h max-metadata=4096]
//	    a fresh Machine, clock at +0s, empty log; initial-delay is required
//	join [group member client=c host protocols=name[:meta],… type=consumer session=10s rebalance=30s v=3 instance=]
//	    v>=4 sets RequireKnownMemberID; a protocol's metadata defaults to the client id
//	sync member= gen= [group instance= type= protocol= assign=member:bytes,…]
//	heartbeat member= gen= [group instance=]
//	leave members=id|instance:i|id@i,… [group]
//	commit [group gen=-1 member= instance= offsets=t/0=5[:metadata],… metadata= epoch=-1]
//	fetch [group partitions=t/0,…]
//	describe [group]
//	list [states=Empty,Stable,…]
//	delete [group]
//	delete-offsets partitions=t/0,… [group subscribed=topic,…]
//	advance <duration>   move the clock, then Tick
//	restore              a new Machine restored from every record persisted so far
//
// Each command prints its immediate result, then every delayed reply and
// persisted record, in the order they happen. Join and sync requests are
// tagged jN and sN; a request still waiting when its command ends prints
// "waiting", and its reply shows up under the command that releases it.
func TestMachine(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		h := &harness{}
		datadriven.RunTest(t, path, h.run)
	})
}

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

type harness struct {
	cfg  Config
	m    *Machine
	now  time.Time
	ids  int
	reqs int
	log  []Record // every record persisted, in order
	out  strings.Builder
}

func (h *harness) newMachine() *Machine {
	return NewMachine(h.cfg, func(clientID string) string {
		h.ids++
		return clientID + "-" + strconv.Itoa(h.ids)
	}, h.persist)
}

func (h *harness) persist(recs []Record) {
	for _, r := range recs {
		h.log = append(h.log, r)
		h.out.WriteString(h.formatRecord(r))
	}
}

func (h *harness) run(t *testing.T, d *datadriven.TestData) string {
	h.out.Reset()
	if d.Cmd != "config" && h.m == nil {
		d.Fatalf(t, "config must come first")
	}
	a := args{t: t, d: d}
	g := a.str("group", "g")
	switch d.Cmd {
	case "config":
		h.cfg = Config{
			InitialRebalanceDelay: a.dur("initial-delay", -2),
			MinSessionTimeout:     a.dur("min-session", 0),
			MaxSessionTimeout:     a.dur("max-session", 0),
			MaxGroupSize:          a.int("max-size", 0),
			OffsetsRetention:      a.dur("retention", 0),
			MaxMetadataBytes:      a.int("max-metadata", 0),
		}
		if h.cfg.InitialRebalanceDelay == -2 {
			d.Fatalf(t, "config needs initial-delay")
		}
		h.now, h.ids, h.reqs, h.log = epoch, 0, 0, nil
		h.m = h.newMachine()
		h.out.WriteString("ok\n")

	case "join":
		client := a.str("client", "c")
		req := JoinRequest{
			Group: g, MemberID: a.str("member", ""), InstanceID: a.ptr("instance"),
			ClientID: client, ClientHost: a.str("host", "/10.0.0.1"), ProtocolType: a.str("type", "consumer"),
			SessionTimeout: a.dur("session", 10*time.Second), RebalanceTimeout: a.dur("rebalance", 30*time.Second),
			RequireKnownMemberID: a.int("v", 3) >= 4,
		}
		for _, p := range a.list("protocols", "range") {
			name, meta, ok := strings.Cut(p, ":")
			if !ok {
				meta = client
			}
			req.Protocols = append(req.Protocols, Protocol{Name: name, Metadata: []byte(meta)})
		}
		h.reqs++
		tag := fmt.Sprintf("j%d %s", h.reqs, client)
		if req.MemberID != "" {
			tag = fmt.Sprintf("j%d %s", h.reqs, req.MemberID)
		}
		done := false
		h.m.Join(h.now, req, func(r JoinResponse) {
			done = true
			fmt.Fprintf(&h.out, "%s: %s", tag, formatJoin(r))
		})
		if !done {
			fmt.Fprintf(&h.out, "%s: waiting\n", tag)
		}

	case "sync":
		req := SyncRequest{Group: g, MemberID: a.str("member", ""), Generation: int32(a.int("gen", -1)),
			InstanceID: a.ptr("instance"), ProtocolType: a.ptr("type"), Protocol: a.ptr("protocol")}
		if a.has("assign") {
			req.Assignments = map[string][]byte{}
			for _, x := range a.list("assign", "") {
				id, as, _ := strings.Cut(x, ":")
				req.Assignments[id] = []byte(as)
			}
		}
		h.reqs++
		tag := fmt.Sprintf("s%d %s", h.reqs, req.MemberID)
		done := false
		h.m.Sync(h.now, req, func(r SyncResponse) {
			done = true
			fmt.Fprintf(&h.out, "%s: %s\n", tag, formatSync(r))
		})
		if !done {
			fmt.Fprintf(&h.out, "%s: waiting\n", tag)
		}

	case "heartbeat":
		err := h.m.Heartbeat(h.now, HeartbeatRequest{Group: g, MemberID: a.str("member", ""),
			Generation: int32(a.int("gen", -1)), InstanceID: a.ptr("instance")})
		fmt.Fprintf(&h.out, "heartbeat: %s\n", errName(err))

	case "leave":
		var ms []LeaveMember
		for _, x := range a.list("members", "") {
			var lm LeaveMember
			switch id, inst, ok := strings.Cut(x, "@"); {
			case strings.HasPrefix(x, "instance:"):
				inst := strings.TrimPrefix(x, "instance:")
				lm.InstanceID = &inst
			case ok:
				lm.MemberID, lm.InstanceID = id, &inst
			default:
				lm.MemberID = x
			}
			ms = append(ms, lm)
		}
		// The replies a leave triggers come before its result, which is
		// printed once Leave returns.
		errs, err := h.m.Leave(h.now, g, ms)
		if err != nil {
			fmt.Fprintf(&h.out, "leave: %s\n", errName(err))
			break
		}
		for i, x := range a.list("members", "") {
			fmt.Fprintf(&h.out, "leave %s: %s\n", x, errName(errs[i]))
		}

	case "commit":
		req := CommitRequest{Group: g, Generation: int32(a.int("gen", -1)), MemberID: a.str("member", ""),
			InstanceID: a.ptr("instance")}
		for _, x := range a.list("offsets", "") {
			tpStr, offStr, _ := strings.Cut(x, "=")
			offStr, meta, ok := strings.Cut(offStr, ":")
			if !ok {
				meta = a.str("metadata", "")
			}
			off, err := strconv.ParseInt(offStr, 10, 64)
			if err != nil {
				d.Fatalf(t, "offset %q: %v", x, err)
			}
			req.Offsets = append(req.Offsets, OffsetCommit{TopicPartition: parseTP(t, d, tpStr),
				Offset: Offset{Offset: off, LeaderEpoch: int32(a.int("epoch", -1)), Metadata: meta}})
		}
		errs, recs, err := h.m.Commit(h.now, req)
		if err != nil {
			fmt.Fprintf(&h.out, "commit: %s\n", errName(err))
			break
		}
		for i, o := range req.Offsets {
			fmt.Fprintf(&h.out, "commit %s/%d: %s\n", o.Topic, o.Partition, errName(errs[i]))
		}
		h.persist(recs)

	case "txn-commit":
		req := TxnCommitRequest{Group: g, ProducerID: int64(a.int("pid", 1)), Generation: int32(a.int("gen", -1)),
			MemberID: a.str("member", ""), InstanceID: a.ptr("instance")}
		for _, x := range a.list("offsets", "") {
			tpStr, offStr, _ := strings.Cut(x, "=")
			off, err := strconv.ParseInt(offStr, 10, 64)
			if err != nil {
				d.Fatalf(t, "offset %q: %v", x, err)
			}
			req.Offsets = append(req.Offsets, OffsetCommit{TopicPartition: parseTP(t, d, tpStr),
				Offset: Offset{Offset: off, LeaderEpoch: -1, Metadata: a.str("metadata", "")}})
		}
		req.Epoch = int16(a.int("epoch", 0))
		errs, recs, err := h.m.TxnCommit(h.now, req)
		if err != nil {
			fmt.Fprintf(&h.out, "txn-commit: %s\n", errName(err))
			break
		}
		for i, o := range req.Offsets {
			fmt.Fprintf(&h.out, "txn-commit %s/%d: %s\n", o.Topic, o.Partition, errName(errs[i]))
		}
		h.persist(recs)

	case "txn-resolve":
		recs := h.m.ResolveTxn(h.now, int64(a.int("pid", 1)), int16(a.int("epoch", 0)), a.str("outcome", "commit") == "commit")
		if len(recs) == 0 {
			h.out.WriteString("nothing to persist\n")
		}
		h.persist(recs)

	case "unstable":
		var tps []TopicPartition
		for _, x := range a.list("partitions", "") {
			tps = append(tps, parseTP(t, d, x))
		}
		un := h.m.Unstable(g, tps)
		if len(un) == 0 {
			h.out.WriteString("stable\n")
		}
		var keys []string
		for tp := range un {
			keys = append(keys, fmt.Sprintf("%s/%d", tp.Topic, tp.Partition))
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&h.out, "unstable %s\n", k)
		}

	case "fetch":
		var tps []TopicPartition
		for _, x := range a.list("partitions", "") {
			tps = append(tps, parseTP(t, d, x))
		}
		offs := h.m.Committed(g, tps)
		if len(offs) == 0 {
			h.out.WriteString("no offsets\n")
		}
		for _, tp := range sortedTPs(offs) {
			o := offs[tp]
			fmt.Fprintf(&h.out, "%s/%d: %d epoch=%d metadata=%q committed=%s\n", tp.Topic, tp.Partition,
				o.Offset, o.LeaderEpoch, o.Metadata, h.since(o.CommitTime))
		}

	case "describe":
		desc, ok := h.m.Describe(g)
		fmt.Fprintf(&h.out, "%s: state=%s", desc.Group, desc.State)
		if !ok {
			h.out.WriteString(" (unknown)\n")
			break
		}
		fmt.Fprintf(&h.out, " type=%s protocol=%s gen=%d\n", desc.ProtocolType, desc.Protocol, desc.Generation)
		for _, m := range desc.Members {
			fmt.Fprintf(&h.out, "  %s%s client=%s host=%s meta=%q assignment=%q\n", m.MemberID, formatInstance(m.InstanceID),
				m.ClientID, m.ClientHost, m.Metadata, m.Assignment)
		}

	case "list":
		var states []State
		for _, x := range a.list("states", "") {
			s := slices.IndexFunc([]State{Empty, PreparingRebalance, CompletingRebalance, Stable, Dead},
				func(s State) bool { return s.String() == x })
			if s < 0 {
				d.Fatalf(t, "unknown state %q", x)
			}
			states = append(states, State(s))
		}
		ls := h.m.List(states)
		if len(ls) == 0 {
			h.out.WriteString("no groups\n")
		}
		for _, l := range ls {
			fmt.Fprintf(&h.out, "%s: state=%s type=%s\n", l.Group, l.State, l.ProtocolType)
		}

	case "delete":
		recs, err := h.m.Delete(g)
		fmt.Fprintf(&h.out, "delete: %s\n", errName(err))
		h.persist(recs)

	case "delete-offsets":
		var tps []TopicPartition
		for _, x := range a.list("partitions", "") {
			tps = append(tps, parseTP(t, d, x))
		}
		subscribed := a.list("subscribed", "")
		errs, recs, err := h.m.DeleteOffsets(g, tps, func(topic string) bool { return slices.Contains(subscribed, topic) })
		if err != nil {
			fmt.Fprintf(&h.out, "delete-offsets: %s\n", errName(err))
			break
		}
		for i, tp := range tps {
			fmt.Fprintf(&h.out, "delete-offsets %s/%d: %s\n", tp.Topic, tp.Partition, errName(errs[i]))
		}
		h.persist(recs)

	case "advance":
		if len(d.CmdArgs) != 1 {
			d.Fatalf(t, "advance <duration>")
		}
		dur, err := time.ParseDuration(d.CmdArgs[0].Key)
		if err != nil {
			d.Fatalf(t, "%v", err)
		}
		h.now = h.now.Add(dur)
		fmt.Fprintf(&h.out, "now %s\n", h.since(h.now))
		h.m.Tick(h.now)

	case "restore":
		h.m = h.newMachine()
		for _, r := range h.log {
			h.m.Restore(h.now, r)
		}
		fmt.Fprintf(&h.out, "restored %d records\n", len(h.log))
		for _, id := range slices.Sorted(maps.Keys(h.m.groups)) {
			gr := h.m.groups[id]
			var ms []string
			for _, m := range gr.sortedMembers() {
				ms = append(ms, m.id)
			}
			fmt.Fprintf(&h.out, "%s: state=%s gen=%d leader=%s members=[%s] offsets=%d\n", id, gr.state, gr.generation,
				gr.leader, strings.Join(ms, " "), len(gr.offsets))
			for _, pid := range slices.Sorted(maps.Keys(gr.txnOffsets)) {
				fmt.Fprintf(&h.out, "  pid %d stages %d offsets\n", pid, len(gr.txnOffsets[pid]))
			}
		}

	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	a.checkUsed()
	if h.out.Len() == 0 {
		return "ok\n"
	}
	return h.out.String()
}

func (h *harness) since(t time.Time) string {
	return "+" + t.Sub(epoch).String()
}

func (h *harness) formatRecord(r Record) string {
	var b strings.Builder
	switch {
	case r.TxnEnd != nil:
		outcome := "abort"
		if r.TxnEnd.Commit {
			outcome = "commit"
		}
		fmt.Fprintf(&b, "persist txn-end pid=%d epoch=%d %s\n", r.TxnEnd.ProducerID, r.TxnEnd.Epoch, outcome)
	case r.IsOffset && r.Txn != nil:
		fmt.Fprintf(&b, "persist txn-offset pid=%d epoch=%d %s %s/%d: %d epoch=%d metadata=%q committed=%s\n", r.Txn.ProducerID, r.Txn.Epoch,
			r.Group, r.Topic, r.Partition, r.Offset.Offset, r.Offset.LeaderEpoch, r.Offset.Metadata, h.since(r.Offset.CommitTime))
	case r.IsOffset && r.Offset == nil:
		fmt.Fprintf(&b, "persist offset %s %s/%d: tombstone\n", r.Group, r.Topic, r.Partition)
	case r.IsOffset:
		fmt.Fprintf(&b, "persist offset %s %s/%d: %d epoch=%d metadata=%q committed=%s\n", r.Group, r.Topic, r.Partition,
			r.Offset.Offset, r.Offset.LeaderEpoch, r.Offset.Metadata, h.since(r.Offset.CommitTime))
	case r.Meta == nil:
		fmt.Fprintf(&b, "persist group %s: tombstone\n", r.Group)
	default:
		s := r.Meta
		fmt.Fprintf(&b, "persist group %s: gen=%d type=%s protocol=%s leader=%s time=%s\n", r.Group, s.Generation,
			s.ProtocolType, s.Protocol, s.Leader, h.since(s.StateTime))
		for _, m := range s.Members {
			fmt.Fprintf(&b, "  %s%s session=%s rebalance=%s subscription=%q assignment=%q\n", m.MemberID,
				formatInstance(m.InstanceID), m.SessionTimeout, m.RebalanceTimeout, m.Subscription, m.Assignment)
		}
	}
	return b.String()
}

func formatJoin(r JoinResponse) string {
	if r.Err != nil {
		return fmt.Sprintf("%s member=%s gen=%d\n", errName(r.Err), r.MemberID, r.Generation)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "ok member=%s gen=%d leader=%s protocol=%s/%s\n", r.MemberID, r.Generation, r.Leader, r.ProtocolType, r.Protocol)
	for _, m := range r.Members {
		fmt.Fprintf(&b, "  %s%s meta=%q\n", m.MemberID, formatInstance(m.InstanceID), m.Metadata)
	}
	return b.String()
}

func formatSync(r SyncResponse) string {
	if r.Err != nil {
		return errName(r.Err)
	}
	return fmt.Sprintf("ok protocol=%s/%s assignment=%q", r.ProtocolType, r.Protocol, r.Assignment)
}

func formatInstance(id *string) string {
	if id == nil {
		return ""
	}
	return " instance=" + *id
}

var errNames = []struct {
	err  error
	name string
}{
	{ErrInvalidGroupID, "INVALID_GROUP_ID"},
	{ErrUnknownMemberID, "UNKNOWN_MEMBER_ID"},
	{ErrMemberIDRequired, "MEMBER_ID_REQUIRED"},
	{ErrIllegalGeneration, "ILLEGAL_GENERATION"},
	{ErrRebalanceInProgress, "REBALANCE_IN_PROGRESS"},
	{ErrInconsistentProtocol, "INCONSISTENT_GROUP_PROTOCOL"},
	{ErrInvalidSessionTimeout, "INVALID_SESSION_TIMEOUT"},
	{ErrFencedInstanceID, "FENCED_INSTANCE_ID"},
	{ErrGroupNotFound, "GROUP_ID_NOT_FOUND"},
	{ErrNonEmptyGroup, "NON_EMPTY_GROUP"},
	{ErrOffsetMetadataTooLarge, "OFFSET_METADATA_TOO_LARGE"},
	{ErrGroupMaxSizeReached, "GROUP_MAX_SIZE_REACHED"},
	{ErrGroupSubscribedToTopic, "GROUP_SUBSCRIBED_TO_TOPIC"},
	{ErrCoordinatorNotAvailable, "COORDINATOR_NOT_AVAILABLE"},
}

func errName(err error) string {
	if err == nil {
		return "ok"
	}
	for _, e := range errNames {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	return "unexpected error: " + err.Error()
}

func parseTP(t *testing.T, d *datadriven.TestData, s string) TopicPartition {
	topic, p, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(p)
	if !ok || err != nil {
		d.Fatalf(t, "partition %q: want topic/N", s)
	}
	return TopicPartition{Topic: topic, Partition: int32(n)}
}

func sortedTPs(m map[TopicPartition]Offset) []TopicPartition {
	tps := make([]TopicPartition, 0, len(m))
	for tp := range m {
		tps = append(tps, tp)
	}
	sort.Slice(tps, func(i, j int) bool {
		return tps[i].Topic < tps[j].Topic || tps[i].Topic == tps[j].Topic && tps[i].Partition < tps[j].Partition
	})
	return tps
}

// args reads a command's key=value arguments and fails on unused ones, so
// a typo cannot silently fall back to a default.
type args struct {
	t    *testing.T
	d    *datadriven.TestData
	used map[string]bool
}

func (a *args) val(key string) (string, bool) {
	if a.used == nil {
		a.used = map[string]bool{}
	}
	arg, ok := a.d.Arg(key)
	if !ok {
		return "", false
	}
	a.used[key] = true
	if len(arg.Vals) != 1 {
		a.d.Fatalf(a.t, "%s: want one value (lists are comma-separated, without parentheses)", key)
	}
	return arg.Vals[0], true
}

func (a *args) has(key string) bool {
	_, ok := a.val(key)
	return ok
}

func (a *args) str(key, def string) string {
	if v, ok := a.val(key); ok {
		return v
	}
	return def
}

func (a *args) ptr(key string) *string {
	if v, ok := a.val(key); ok {
		return &v
	}
	return nil
}

func (a *args) list(key, def string) []string {
	v := a.str(key, def)
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

func (a *args) int(key string, def int) int {
	v, ok := a.val(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		a.d.Fatalf(a.t, "%s: %v", key, err)
	}
	return n
}

func (a *args) dur(key string, def time.Duration) time.Duration {
	v, ok := a.val(key)
	if !ok {
		return def
	}
	dur, err := time.ParseDuration(v)
	if err != nil {
		a.d.Fatalf(a.t, "%s: %v", key, err)
	}
	return dur
}

func (a *args) checkUsed() {
	if a.d.Cmd == "advance" {
		return
	}
	for _, arg := range a.d.CmdArgs {
		if !a.used[arg.Key] {
			a.d.Fatalf(a.t, "unknown argument %q", arg.Key)
		}
	}
}
