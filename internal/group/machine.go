package group

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

type member struct {
	id               string
	instanceID       *string
	clientID         string
	clientHost       string
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	protocols        []Protocol
	assignment       []byte
	lastSeen         time.Time
	joinSeq          uint64 // order of first join, for deterministic choices
	joinReply        func(JoinResponse)
	syncReply        func(SyncResponse)
}

func (m *member) metadataFor(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

type group struct {
	id           string
	state        State
	generation   int32
	protocolType string
	protocol     string
	leader       string
	members      map[string]*member
	static       map[string]string    // instance id -> member id
	pending      map[string]time.Time // KIP-394 member ids awaiting their second join
	offsets      map[TopicPartition]Offset
	// txnOffsets holds the offsets committed in transactions not yet
	// resolved (TxnOffsetCommit), by producer id: invisible to
	// Committed until the transaction commits.
	txnOffsets map[int64]map[TopicPartition]Offset
	// rebalanceDeadline ends PreparingRebalance: members that have not
	// rejoined by then are removed. initialUntil holds the first
	// rebalance of an empty group open for more joiners.
	rebalanceDeadline time.Time
	initialUntil      time.Time
	stateSince        time.Time
	emptySince        time.Time
}

func (g *group) setState(s State, now time.Time) {
	if s == Empty && g.state != Empty {
		g.emptySince = now
	}
	g.state, g.stateSince = s, now
}

// sortedMembers returns the members in join order.
func (g *group) sortedMembers() []*member {
	ms := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].joinSeq < ms[j].joinSeq })
	return ms
}

// Machine is the coordinator state machine. It is not safe for concurrent
// use: one goroutine (Service) owns it.
type Machine struct {
	cfg     Config
	groups  map[string]*group
	seq     uint64
	newID   func(clientID string) string
	persist func([]Record)
}

// NewMachine returns a coordinator. newID makes member ids (tests pass a
// deterministic one); persist receives group metadata records to write
// (offset records are returned by Commit instead, so their durability can
// gate the reply).
func NewMachine(cfg Config, newID func(clientID string) string, persist func([]Record)) *Machine {
	cfg.fill()
	if persist == nil {
		persist = func([]Record) {}
	}
	return &Machine{cfg: cfg, groups: map[string]*group{}, newID: newID, persist: persist}
}

func (m *Machine) group(id string, now time.Time, create bool) *group {
	g := m.groups[id]
	if g == nil && create {
		g = &group{id: id, members: map[string]*member{}, static: map[string]string{}, pending: map[string]time.Time{},
			offsets: map[TopicPartition]Offset{}, txnOffsets: map[int64]map[TopicPartition]Offset{}, stateSince: now, emptySince: now}
		m.groups[id] = g
	}
	return g
}

// checkMember validates the sender of a request as Kafka's
// validateCurrentMember does: an instance id must be known (else
// ErrUnknownMemberID) and held by memberID (else ErrFencedInstanceID);
// memberID must be in the group.
func checkMember(g *group, memberID string, instanceID *string) error {
	if instanceID != nil {
		cur, ok := g.static[*instanceID]
		switch {
		case !ok:
			return ErrUnknownMemberID
		case cur != memberID:
			return ErrFencedInstanceID
		}
	}
	if g.members[memberID] == nil {
		return ErrUnknownMemberID
	}
	return nil
}

// full reports whether the group cannot take another member.
func (m *Machine) full(g *group) bool {
	return m.cfg.MaxGroupSize > 0 && len(g.members) >= m.cfg.MaxGroupSize
}

// Join handles JoinGroup. reply is called now or when the rebalance
// completes.
func (m *Machine) Join(now time.Time, req JoinRequest, reply func(JoinResponse)) {
	fail := func(err error) { reply(JoinResponse{Err: err, MemberID: req.MemberID, Generation: -1}) }
	switch {
	case req.Group == "":
		fail(ErrInvalidGroupID)
		return
	case req.SessionTimeout < m.cfg.MinSessionTimeout || req.SessionTimeout > m.cfg.MaxSessionTimeout:
		fail(fmt.Errorf("%w: %v not in [%v, %v]", ErrInvalidSessionTimeout, req.SessionTimeout, m.cfg.MinSessionTimeout, m.cfg.MaxSessionTimeout))
		return
	case req.ProtocolType == "" || len(req.Protocols) == 0:
		fail(fmt.Errorf("%w: protocol type and protocols are required", ErrInconsistentProtocol))
		return
	}
	if req.RebalanceTimeout <= 0 {
		req.RebalanceTimeout = req.SessionTimeout
	}
	g := m.group(req.Group, now, req.MemberID == "")
	if g == nil {
		fail(ErrUnknownMemberID)
		return
	}
	if len(g.members) > 0 || g.state != Empty {
		if req.ProtocolType != g.protocolType || !m.supported(g, req.Protocols) {
			fail(fmt.Errorf("%w: group %q uses %q with protocols the member does not support", ErrInconsistentProtocol, g.id, g.protocolType))
			return
		}
	}

	if req.MemberID == "" {
		if req.InstanceID != nil {
			if old, ok := g.static[*req.InstanceID]; ok && g.members[old] != nil {
				m.replaceStatic(now, g, old, req, reply)
				return
			}
		}
		// Kafka checks the size on both steps of a KIP-394 join.
		if m.full(g) {
			fail(ErrGroupMaxSizeReached)
			return
		}
		id := m.newID(req.ClientID)
		if req.InstanceID == nil && req.RequireKnownMemberID {
			g.pending[id] = now.Add(req.SessionTimeout)
			reply(JoinResponse{Err: ErrMemberIDRequired, MemberID: id, Generation: -1})
			return
		}
		m.addMember(now, g, id, req, reply)
		return
	}
	if _, ok := g.pending[req.MemberID]; ok {
		delete(g.pending, req.MemberID)
		if m.full(g) {
			fail(ErrGroupMaxSizeReached)
			m.maybeCompleteJoin(now, g) // it no longer holds the rebalance
			return
		}
		m.addMember(now, g, req.MemberID, req, reply)
		return
	}
	if err := checkMember(g, req.MemberID, req.InstanceID); err != nil {
		fail(err)
		return
	}
	m.rejoin(now, g, g.members[req.MemberID], req, reply)
}

// supported reports whether the group's members all support at least one
// of protocols (with the joining member's protocols included).
func (m *Machine) supported(g *group, protocols []Protocol) bool {
	for _, p := range protocols {
		ok := true
		for _, mem := range g.members {
			if !slices.ContainsFunc(mem.protocols, func(x Protocol) bool { return x.Name == p.Name }) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func (m *Machine) addMember(now time.Time, g *group, id string, req JoinRequest, reply func(JoinResponse)) {
	m.seq++
	mem := &member{id: id, instanceID: req.InstanceID, clientID: req.ClientID, clientHost: req.ClientHost,
		sessionTimeout: req.SessionTimeout, rebalanceTimeout: req.RebalanceTimeout, protocols: req.Protocols,
		lastSeen: now, joinSeq: m.seq, joinReply: reply}
	g.members[id] = mem
	if req.InstanceID != nil {
		g.static[*req.InstanceID] = id
	}
	if len(g.members) == 1 {
		g.protocolType = req.ProtocolType
	}
	if g.leader == "" || g.members[g.leader] == nil {
		g.leader = id
	}
	if g.state == PreparingRebalance {
		if !g.initialUntil.IsZero() {
			// Each new member extends the initial delay, within the
			// rebalance timeout.
			g.initialUntil = minTime(now.Add(m.cfg.InitialRebalanceDelay), g.rebalanceDeadline)
		}
		m.maybeCompleteJoin(now, g)
		return
	}
	m.prepareRebalance(now, g)
}

// rejoin handles a JoinGroup from a known member.
func (m *Machine) rejoin(now time.Time, g *group, mem *member, req JoinRequest, reply func(JoinResponse)) {
	mem.lastSeen = now
	same := sameProtocols(mem.protocols, req.Protocols)
	// update takes the request's protocols and timeouts, as Kafka's
	// updateMember does, and parks the reply until the join completes.
	update := func() {
		mem.protocols, mem.sessionTimeout, mem.rebalanceTimeout = req.Protocols, req.SessionTimeout, req.RebalanceTimeout
		mem.joinReply = reply
	}
	switch g.state {
	case PreparingRebalance:
		if mem.joinReply != nil {
			// A second JoinGroup while the first waits: answer the first
			// so its connection is not left hanging.
			mem.joinReply(JoinResponse{Err: ErrRebalanceInProgress, MemberID: mem.id, Generation: -1})
		}
		update()
		m.maybeCompleteJoin(now, g)
	case CompletingRebalance:
		if same {
			// The member lost its JoinGroup response: send it again.
			reply(m.joinResponse(g, mem))
			return
		}
		update()
		m.prepareRebalance(now, g)
	case Stable:
		if mem.id == g.leader || !same {
			update()
			m.prepareRebalance(now, g)
			return
		}
		reply(m.joinResponse(g, mem))
	default:
		reply(JoinResponse{Err: ErrUnknownMemberID, MemberID: mem.id, Generation: -1})
	}
}

// replaceStatic gives a restarted static member (same instance id, new
// member id) the old member's place, fencing the old id (KIP-345).
func (m *Machine) replaceStatic(now time.Time, g *group, oldID string, req JoinRequest, reply func(JoinResponse)) {
	old := g.members[oldID]
	currentLeader := g.leader
	newID := m.newID(req.ClientID)
	delete(g.members, oldID)
	if old.joinReply != nil {
		old.joinReply(JoinResponse{Err: ErrFencedInstanceID, MemberID: oldID, Generation: -1})
		old.joinReply = nil
	}
	if old.syncReply != nil {
		old.syncReply(SyncResponse{Err: ErrFencedInstanceID})
		old.syncReply = nil
	}
	old.id = newID
	old.clientID, old.clientHost = req.ClientID, req.ClientHost
	old.sessionTimeout, old.rebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
	old.lastSeen = now
	g.members[newID] = old
	g.static[*req.InstanceID] = newID
	if g.leader == oldID {
		g.leader = newID
	}
	switch {
	case g.state == Stable && sameProtocols(old.protocols, req.Protocols):
		// Same subscription: no rebalance; the member syncs to get its
		// current assignment back. As Kafka does without SkipAssignment
		// (JoinGroup < v9), the reply names the leader as it was before
		// the replacement and lists no members, so a restarted leader
		// syncs as a follower instead of computing an assignment the
		// Stable group would ignore.
		m.persist([]Record{m.snapshotRecord(g, now)})
		reply(JoinResponse{Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol,
			Leader: currentLeader, MemberID: newID})
	case g.state == CompletingRebalance:
		// The leader may be assigning under the old member id, which
		// would leave the new id without an assignment: rebalance.
		old.protocols, old.joinReply = req.Protocols, reply
		m.prepareRebalance(now, g)
	default:
		m.rejoin(now, g, old, req, reply)
	}
}

func (m *Machine) prepareRebalance(now time.Time, g *group) {
	if g.state == CompletingRebalance {
		for _, mem := range g.sortedMembers() {
			if r := mem.syncReply; r != nil {
				// A member waiting on us was not expected to heartbeat:
				// its session restarts with the reply, as in Kafka.
				mem.syncReply, mem.lastSeen = nil, now
				r(SyncResponse{Err: ErrRebalanceInProgress})
			}
		}
	}
	timeout := g.rebalanceTimeout()
	g.initialUntil = time.Time{}
	if g.state == Empty && m.cfg.InitialRebalanceDelay > 0 && len(g.members) > 0 {
		g.initialUntil = now.Add(min(m.cfg.InitialRebalanceDelay, timeout))
	}
	g.rebalanceDeadline = now.Add(timeout)
	g.setState(PreparingRebalance, now)
	m.maybeCompleteJoin(now, g)
}

func (m *Machine) maybeCompleteJoin(now time.Time, g *group) {
	if g.state != PreparingRebalance {
		return
	}
	if !g.initialUntil.IsZero() && now.Before(g.initialUntil) && now.Before(g.rebalanceDeadline) {
		return
	}
	for _, mem := range g.members {
		if mem.joinReply == nil {
			return
		}
	}
	if len(g.pending) > 0 && now.Before(g.rebalanceDeadline) {
		return
	}
	m.completeJoin(now, g)
}

// completeJoin starts the next generation with the members that joined.
// As in Kafka, dynamic members that did not rejoin are removed, while
// static ones stay (KIP-345) until their session expires; they rejoin the
// new generation later. Pending KIP-394 members stay pending.
func (m *Machine) completeJoin(now time.Time, g *group) {
	joined := 0
	for _, mem := range g.sortedMembers() {
		switch {
		case mem.joinReply != nil:
			joined++
		case mem.instanceID == nil:
			m.removeMember(g, mem.id)
		}
	}
	if len(g.members) > 0 && joined == 0 {
		// Only static members that have not rejoined are left: wait
		// another rebalance timeout for them to rejoin or expire.
		g.rebalanceDeadline = now.Add(g.rebalanceTimeout())
		return
	}
	if l := g.members[g.leader]; l == nil || l.joinReply == nil {
		for _, mem := range g.sortedMembers() {
			if mem.joinReply != nil {
				g.leader = mem.id
				break
			}
		}
	}
	g.generation++
	g.initialUntil = time.Time{}
	if len(g.members) == 0 {
		g.protocol, g.leader = "", ""
		g.setState(Empty, now)
		m.persist([]Record{m.snapshotRecord(g, now)})
		return
	}
	g.protocol = m.chooseProtocol(g)
	g.setState(CompletingRebalance, now)
	for _, mem := range g.sortedMembers() {
		mem.assignment = nil
		mem.lastSeen = now
		if r := mem.joinReply; r != nil {
			mem.joinReply = nil
			r(m.joinResponse(g, mem))
		}
	}
}

// rebalanceTimeout is the longest rebalance timeout of the members.
func (g *group) rebalanceTimeout() time.Duration {
	var timeout time.Duration
	for _, mem := range g.members {
		timeout = max(timeout, mem.rebalanceTimeout)
	}
	return timeout
}

func (m *Machine) joinResponse(g *group, mem *member) JoinResponse {
	resp := JoinResponse{Generation: g.generation, ProtocolType: g.protocolType, Protocol: g.protocol, Leader: g.leader, MemberID: mem.id}
	if mem.id == g.leader {
		resp.Members = m.joinMembers(g)
	}
	return resp
}

func (m *Machine) joinMembers(g *group) []JoinMember {
	var out []JoinMember
	for _, x := range g.sortedMembers() {
		out = append(out, JoinMember{MemberID: x.id, InstanceID: x.instanceID, Metadata: x.metadataFor(g.protocol)})
	}
	return out
}

// chooseProtocol picks, among the protocols every member supports, the
// one most members prefer (ties go to the leader's order), as Kafka does.
func (m *Machine) chooseProtocol(g *group) string {
	ms := g.sortedMembers()
	var candidates []string
	for _, p := range ms[0].protocols {
		all := true
		for _, x := range ms[1:] {
			if !slices.ContainsFunc(x.protocols, func(q Protocol) bool { return q.Name == p.Name }) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	votes := map[string]int{}
	for _, x := range ms {
		for _, p := range x.protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	order := candidates
	if l := g.members[g.leader]; l != nil {
		order = nil
		for _, p := range l.protocols {
			if slices.Contains(candidates, p.Name) {
				order = append(order, p.Name)
			}
		}
	}
	best := ""
	for _, c := range order {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func (m *Machine) removeMember(g *group, id string) {
	mem := g.members[id]
	if mem == nil {
		return
	}
	delete(g.members, id)
	if mem.instanceID != nil && g.static[*mem.instanceID] == id {
		delete(g.static, *mem.instanceID)
	}
	if mem.joinReply != nil {
		mem.joinReply(JoinResponse{Err: ErrUnknownMemberID, MemberID: id, Generation: -1})
	}
	if mem.syncReply != nil {
		mem.syncReply(SyncResponse{Err: ErrUnknownMemberID})
	}
	if g.leader == id {
		g.leader = ""
		if ms := g.sortedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// memberGone removes a member that left or expired and rebalances.
func (m *Machine) memberGone(now time.Time, g *group, id string) {
	m.removeMember(g, id)
	switch g.state {
	case PreparingRebalance:
		m.maybeCompleteJoin(now, g)
	case CompletingRebalance, Stable:
		m.prepareRebalance(now, g)
	}
}

// Sync handles SyncGroup. reply is called now or when the leader syncs.
func (m *Machine) Sync(now time.Time, req SyncRequest, reply func(SyncResponse)) {
	g := m.groups[req.Group]
	if g == nil {
		reply(SyncResponse{Err: ErrUnknownMemberID})
		return
	}
	if err := checkMember(g, req.MemberID, req.InstanceID); err != nil {
		reply(SyncResponse{Err: err})
		return
	}
	mem := g.members[req.MemberID]
	switch {
	case req.Generation != g.generation:
		reply(SyncResponse{Err: ErrIllegalGeneration})
		return
	case req.ProtocolType != nil && *req.ProtocolType != g.protocolType,
		req.Protocol != nil && *req.Protocol != g.protocol:
		reply(SyncResponse{Err: ErrInconsistentProtocol})
		return
	}
	mem.lastSeen = now
	switch g.state {
	case PreparingRebalance:
		reply(SyncResponse{Err: ErrRebalanceInProgress})
	case CompletingRebalance:
		mem.syncReply = reply
		if mem.id != g.leader {
			return
		}
		for id, x := range g.members {
			x.assignment = req.Assignments[id]
		}
		g.setState(Stable, now)
		m.persist([]Record{m.snapshotRecord(g, now)})
		for _, x := range g.sortedMembers() {
			if r := x.syncReply; r != nil {
				// Its session restarts with the reply (see prepareRebalance).
				x.syncReply, x.lastSeen = nil, now
				r(SyncResponse{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: x.assignment})
			}
		}
	case Stable:
		reply(SyncResponse{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: mem.assignment})
	default:
		reply(SyncResponse{Err: ErrUnknownMemberID})
	}
}

// Heartbeat handles Heartbeat.
func (m *Machine) Heartbeat(now time.Time, req HeartbeatRequest) error {
	g := m.groups[req.Group]
	if g == nil {
		return ErrUnknownMemberID
	}
	if err := checkMember(g, req.MemberID, req.InstanceID); err != nil {
		return err
	}
	mem := g.members[req.MemberID]
	if req.Generation != g.generation {
		return ErrIllegalGeneration
	}
	mem.lastSeen = now
	if g.state == PreparingRebalance {
		return ErrRebalanceInProgress
	}
	return nil
}

// Leave handles LeaveGroup; it returns one error per member (v3+ batch).
// As in Kafka, members of an unknown group each get ErrUnknownMemberID.
func (m *Machine) Leave(now time.Time, groupID string, members []LeaveMember) (errs []error, err error) {
	errs = make([]error, len(members))
	g := m.groups[groupID]
	if g == nil {
		for i := range errs {
			errs[i] = ErrUnknownMemberID
		}
		return errs, nil
	}
	left, pendingLeft := false, false
	for i, lm := range members {
		id := lm.MemberID
		if lm.InstanceID != nil {
			cur, ok := g.static[*lm.InstanceID]
			switch {
			case !ok:
				errs[i] = ErrUnknownMemberID
				continue
			case id != "" && cur != id:
				errs[i] = ErrFencedInstanceID
				continue
			}
			id = cur
		}
		if g.members[id] == nil {
			if _, ok := g.pending[id]; ok {
				delete(g.pending, id)
				pendingLeft = true
				continue
			}
			errs[i] = ErrUnknownMemberID
			continue
		}
		m.removeMember(g, id)
		left = true
	}
	switch {
	case left && (g.state == CompletingRebalance || g.state == Stable):
		m.prepareRebalance(now, g)
	case (left || pendingLeft) && g.state == PreparingRebalance:
		// The rebalance may have been waiting for a pending member.
		m.maybeCompleteJoin(now, g)
	}
	return errs, nil
}

// Tick expires sessions, pending members and rebalance timeouts, and old
// offsets of empty groups. Call it regularly with the current time.
func (m *Machine) Tick(now time.Time) {
	ids := make([]string, 0, len(m.groups))
	for id := range m.groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		g := m.groups[id]
		for pid, deadline := range g.pending {
			if !now.Before(deadline) {
				delete(g.pending, pid)
			}
		}
		for _, mem := range g.sortedMembers() {
			if g.members[mem.id] != mem || mem.joinReply != nil || mem.syncReply != nil {
				continue // gone already, or waiting on us and not expected to heartbeat
			}
			if !now.Before(mem.lastSeen.Add(mem.sessionTimeout)) {
				m.memberGone(now, g, mem.id)
			}
		}
		if g.state == PreparingRebalance {
			if !now.Before(g.rebalanceDeadline) {
				m.completeJoin(now, g)
			} else {
				m.maybeCompleteJoin(now, g)
			}
		}
		m.expireOffsets(now, g)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
