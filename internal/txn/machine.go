package txn

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// noEpoch and noProducerID are Kafka's "none" values.
const (
	noEpoch      int16 = -1
	noProducerID int64 = -1
)

// epochExhausted reports whether no further bump (beyond the one kept for
// fencing) fits in the epoch: InitProducerId then rotates the producer id.
func epochExhausted(e int16) bool { return e >= math.MaxInt16-1 }

type txnMeta struct {
	Metadata
	parts  map[TopicPartition]struct{}
	groups map[string]struct{}
}

func (t *txnMeta) snapshot() *Metadata {
	md := t.Metadata
	md.Partitions = make([]TopicPartition, 0, len(t.parts))
	for tp := range t.parts {
		md.Partitions = append(md.Partitions, tp)
	}
	slices.SortFunc(md.Partitions, compareTP)
	md.Groups = make([]string, 0, len(t.groups))
	for g := range t.groups {
		md.Groups = append(md.Groups, g)
	}
	slices.Sort(md.Groups)
	return &md
}

func (t *txnMeta) clearTxn() {
	t.parts, t.groups = map[TopicPartition]struct{}{}, map[string]struct{}{}
}

// Machine is the transaction coordinator state machine. It is not safe
// for concurrent use: one goroutine owns it.
type Machine struct {
	cfg  Config
	ids  ProducerIDs
	txns map[string]*txnMeta
}

// NewMachine returns an empty coordinator; ids allocates producer ids.
func NewMachine(cfg Config, ids ProducerIDs) *Machine {
	cfg.fill()
	return &Machine{cfg: cfg, ids: ids, txns: map[string]*txnMeta{}}
}

// fenced is the fencing error for a request version: PRODUCER_FENCED from
// the version that knows it (KIP-588), INVALID_PRODUCER_EPOCH before.
func fenced(version, knowsFenced int16) error {
	if version < knowsFenced {
		return ErrInvalidProducerEpoch
	}
	return ErrProducerFenced
}

// persist returns the record of t's current metadata.
func persist(id string, t *txnMeta) Record { return Record{TxnID: id, Meta: t.snapshot()} }

// completion returns the markers and offset outcomes that end t's
// transaction (t in PrepareCommit or PrepareAbort).
func completion(id string, t *txnMeta) Actions {
	commit := t.State == PrepareCommit
	md := t.snapshot()
	// The markers come even with no partitions (a transaction of offsets
	// only, or an empty one): the owner completes the transaction once
	// they are written, so writing none completes it at once.
	a := Actions{Markers: []MarkerWrite{{TxnID: id, ProducerID: t.ProducerID, Epoch: t.Epoch, Commit: commit,
		Partitions: md.Partitions}}}
	for _, g := range md.Groups {
		a.Offsets = append(a.Offsets, OffsetOutcome{TxnID: id, Group: g, ProducerID: t.ProducerID, Epoch: t.Epoch, Commit: commit})
	}
	return a
}

// InitProducerID handles InitProducerId for a transactional id: it gives
// the id its producer id and a new epoch, fencing older producers of the
// id. An Ongoing transaction is first aborted with a bumped epoch and the
// request answered with ErrConcurrentTransactions, so the client retries
// once the abort completes.
func (m *Machine) InitProducerID(now time.Time, req InitProducerIDRequest) Result {
	fail := func(err error) Result { return Result{Err: err, ProducerID: noProducerID, Epoch: noEpoch} }
	switch {
	case req.TxnID == "":
		return fail(fmt.Errorf("%w: empty transactional id", ErrInvalidRequest))
	case (req.ProducerID == noProducerID) != (req.Epoch == noEpoch):
		return fail(fmt.Errorf("%w: producer id %d with epoch %d", ErrInvalidRequest, req.ProducerID, req.Epoch))
	case req.Timeout <= 0 || req.Timeout > m.cfg.MaxTimeout:
		return fail(fmt.Errorf("%w: %v not in (0, %v]", ErrInvalidTransactionTimeout, req.Timeout, m.cfg.MaxTimeout))
	}
	expected := req.ProducerID != noProducerID
	t := m.txns[req.TxnID]
	if t == nil {
		pid, _, err := m.ids.InitProducerID()
		if err != nil {
			return fail(err)
		}
		t = &txnMeta{Metadata: Metadata{ProducerID: pid, Epoch: noEpoch, LastProducerID: noProducerID, LastEpoch: noEpoch,
			Timeout: req.Timeout, State: Empty, UpdateTime: now}}
		t.clearTxn()
		m.txns[req.TxnID] = t
	}
	// A producer that names its id must hold the current one, be new to
	// a just-created id, or retry after a rotation it never heard of.
	if expected && t.Epoch != noEpoch && req.ProducerID != t.ProducerID &&
		!(req.ProducerID == t.LastProducerID && epochExhausted(req.Epoch)) {
		return fail(fenced(req.Version, 4))
	}
	switch t.State {
	case PrepareCommit, PrepareAbort:
		return fail(ErrConcurrentTransactions)
	case Ongoing:
		return Result{Err: ErrConcurrentTransactions, ProducerID: noProducerID, Epoch: noEpoch, Actions: m.fenceAndAbort(now, req.TxnID, t)}
	}
	// Empty, CompleteCommit, CompleteAbort.
	switch {
	case epochExhausted(t.Epoch) && (!expected || req.Epoch == t.Epoch):
		pid, _, err := m.ids.InitProducerID()
		if err != nil {
			return fail(err)
		}
		t.LastProducerID, t.LastEpoch = t.ProducerID, noEpoch
		if expected {
			t.LastEpoch = t.Epoch
		}
		t.ProducerID, t.Epoch = pid, 0
	case !expected:
		t.Epoch, t.LastEpoch = t.Epoch+1, noEpoch
	case t.Epoch == noEpoch || req.Epoch == t.Epoch:
		t.Epoch, t.LastEpoch = t.Epoch+1, t.Epoch
	case req.Epoch == t.LastEpoch:
		// A retry of the bump that answered it: the same answer.
	default:
		return fail(fenced(req.Version, 4))
	}
	t.State, t.Timeout, t.StartTime, t.UpdateTime = Empty, req.Timeout, time.Time{}, now
	t.clearTxn()
	return Result{ProducerID: t.ProducerID, Epoch: t.Epoch, Actions: Actions{Persist: []Record{persist(req.TxnID, t)}}}
}

// fenceAndAbort fences the producer of t's Ongoing transaction (epoch+1;
// Kafka's PrepareEpochFence, never persisted) and aborts the transaction
// with the new epoch, so the markers outrank anything the old producer
// still writes.
func (m *Machine) fenceAndAbort(now time.Time, id string, t *txnMeta) Actions {
	if t.Epoch < math.MaxInt16 {
		t.Epoch++
	}
	t.LastEpoch = noEpoch
	t.State, t.UpdateTime = PrepareAbort, now
	a := completion(id, t)
	a.Persist = []Record{persist(id, t)}
	return a
}

// check validates the producer of a request on an existing transactional
// id as AddPartitionsToTxn, AddOffsetsToTxn and EndTxn do.
func (m *Machine) check(txnID string, pid int64, epoch, version int16) (*txnMeta, error) {
	if txnID == "" {
		return nil, fmt.Errorf("%w: empty transactional id", ErrInvalidRequest)
	}
	t := m.txns[txnID]
	switch {
	case t == nil:
		return nil, fmt.Errorf("%w: unknown transactional id %q", ErrInvalidProducerIDMapping, txnID)
	case t.ProducerID != pid:
		return nil, fmt.Errorf("%w: %q belongs to producer %d", ErrInvalidProducerIDMapping, txnID, t.ProducerID)
	case t.Epoch != epoch:
		return nil, fenced(version, 2)
	}
	return t, nil
}

// add puts partitions and groups into t's transaction.
func (m *Machine) add(now time.Time, id string, t *txnMeta, parts []TopicPartition, groups []string) Result {
	if t.State == PrepareCommit || t.State == PrepareAbort {
		return Result{Err: ErrConcurrentTransactions}
	}
	n := len(t.parts) + len(t.groups)
	for _, tp := range parts {
		if _, ok := t.parts[tp]; !ok {
			n++
		}
	}
	for _, g := range groups {
		if _, ok := t.groups[g]; !ok {
			n++
		}
	}
	if t.State == Ongoing && n == len(t.parts)+len(t.groups) {
		return Result{} // already in: nothing to persist
	}
	if n > m.cfg.MaxPartitions {
		return Result{Err: fmt.Errorf("%w: %d partitions and groups, at most %d", ErrTooManyPartitions, n, m.cfg.MaxPartitions)}
	}
	if t.State != Ongoing {
		t.clearTxn()
		t.StartTime = now
	}
	for _, tp := range parts {
		t.parts[tp] = struct{}{}
	}
	for _, g := range groups {
		t.groups[g] = struct{}{}
	}
	t.State, t.UpdateTime = Ongoing, now
	return Result{Actions: Actions{Persist: []Record{persist(id, t)}}}
}

// AddPartitions handles AddPartitionsToTxn: the partitions join the
// producer's transaction, starting one if none is Ongoing.
func (m *Machine) AddPartitions(now time.Time, req AddPartitionsRequest) Result {
	t, err := m.check(req.TxnID, req.ProducerID, req.Epoch, req.Version)
	if err != nil {
		return Result{Err: err}
	}
	return m.add(now, req.TxnID, t, req.Partitions, nil)
}

// AddOffsets handles AddOffsetsToTxn: the group's offsets committed by
// the producer (TxnOffsetCommit) become part of the transaction.
func (m *Machine) AddOffsets(now time.Time, req AddOffsetsRequest) Result {
	t, err := m.check(req.TxnID, req.ProducerID, req.Epoch, req.Version)
	if err != nil {
		return Result{Err: err}
	}
	if req.Group == "" {
		return Result{Err: fmt.Errorf("%w: empty group id", ErrInvalidRequest)}
	}
	return m.add(now, req.TxnID, t, nil, []string{req.Group})
}

// EndTxn handles EndTxn: an Ongoing transaction moves to PrepareCommit or
// PrepareAbort, whose record the owner persists before answering, and
// whose markers and offsets it then writes. A retry of a completed end is
// answered with success; one still being completed with
// ErrConcurrentTransactions.
func (m *Machine) EndTxn(now time.Time, req EndTxnRequest) Result {
	t, err := m.check(req.TxnID, req.ProducerID, req.Epoch, req.Version)
	if err != nil {
		return Result{Err: err}
	}
	wrong := fmt.Errorf("%w: %s while %s", ErrInvalidTxnState, endName(req.Commit), t.State)
	switch t.State {
	case Ongoing:
		t.State, t.UpdateTime = PrepareAbort, now
		if req.Commit {
			t.State = PrepareCommit
		}
		a := completion(req.TxnID, t)
		a.Persist = []Record{persist(req.TxnID, t)}
		return Result{Actions: a}
	case CompleteCommit, CompleteAbort:
		if req.Commit == (t.State == CompleteCommit) {
			return Result{}
		}
		return Result{Err: wrong}
	case PrepareCommit, PrepareAbort:
		if req.Commit == (t.State == PrepareCommit) {
			return Result{Err: ErrConcurrentTransactions}
		}
		return Result{Err: wrong}
	}
	return Result{Err: wrong}
}

func endName(commit bool) string {
	if commit {
		return "commit"
	}
	return "abort"
}

// MarkersWritten reports that every marker and offset outcome of the
// producer's prepared transaction is durable: the transaction completes.
// A stale report (another producer, epoch or state) changes nothing and
// returns an error.
func (m *Machine) MarkersWritten(now time.Time, txnID string, pid int64, epoch int16) Result {
	t := m.txns[txnID]
	switch {
	case t == nil || t.ProducerID != pid:
		return Result{Err: ErrInvalidProducerIDMapping}
	case t.Epoch != epoch:
		return Result{Err: ErrProducerFenced}
	case t.State != PrepareCommit && t.State != PrepareAbort:
		return Result{Err: fmt.Errorf("%w: markers written while %s", ErrInvalidTxnState, t.State)}
	}
	if t.State == PrepareCommit {
		t.State = CompleteCommit
	} else {
		t.State = CompleteAbort
	}
	t.UpdateTime = now
	t.clearTxn()
	return Result{Actions: Actions{Persist: []Record{persist(txnID, t)}}}
}

// sortedIDs returns the transactional ids in order, for deterministic
// outputs.
func (m *Machine) sortedIDs() []string {
	ids := make([]string, 0, len(m.txns))
	for id := range m.txns {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Tick applies the deadlines passed at now: an Ongoing transaction older
// than its timeout is aborted with its producer fenced (epoch+1), and an
// id idle in Empty or Complete* for Config.IDExpiration is removed (a
// tombstone to persist).
func (m *Machine) Tick(now time.Time) Actions {
	var a Actions
	for _, id := range m.sortedIDs() {
		t := m.txns[id]
		switch t.State {
		case Ongoing:
			if now.After(t.StartTime.Add(t.Timeout)) {
				a.add(m.fenceAndAbort(now, id, t))
			}
		case Empty, CompleteCommit, CompleteAbort:
			if !now.Before(t.UpdateTime.Add(m.cfg.IDExpiration)) {
				delete(m.txns, id)
				a.Persist = append(a.Persist, Record{TxnID: id})
			}
		}
	}
	return a
}

// Load replaces the machine's state with the replay of recs (oldest
// first; the last record of an id wins, a tombstone removes it) and
// returns the markers and offset outcomes of every prepared transaction,
// which the owner must write again before reporting MarkersWritten.
func (m *Machine) Load(recs []Record) Actions {
	m.txns = map[string]*txnMeta{}
	for _, r := range recs {
		if r.Meta == nil || r.Meta.State == Dead {
			delete(m.txns, r.TxnID)
			continue
		}
		t := &txnMeta{Metadata: *r.Meta}
		t.Partitions, t.Groups = nil, nil
		t.clearTxn()
		for _, tp := range r.Meta.Partitions {
			t.parts[tp] = struct{}{}
		}
		for _, g := range r.Meta.Groups {
			t.groups[g] = struct{}{}
		}
		m.txns[r.TxnID] = t
	}
	var a Actions
	for _, id := range m.sortedIDs() {
		if t := m.txns[id]; t.State == PrepareCommit || t.State == PrepareAbort {
			a.add(completion(id, t))
		}
	}
	return a
}

// Describe returns the transactional id's metadata (DescribeTransactions).
func (m *Machine) Describe(txnID string) (Description, error) {
	t := m.txns[txnID]
	if t == nil {
		return Description{}, fmt.Errorf("%w: %q", ErrTransactionalIDNotFound, txnID)
	}
	return Description{TxnID: txnID, Metadata: *t.snapshot()}, nil
}

// List returns the transactional ids that match f, in order
// (ListTransactions).
func (m *Machine) List(f ListFilter) []Description {
	var out []Description
	for _, id := range m.sortedIDs() {
		t := m.txns[id]
		if len(f.States) > 0 && !slices.Contains(f.States, t.State) ||
			len(f.ProducerIDs) > 0 && !slices.Contains(f.ProducerIDs, t.ProducerID) {
			continue
		}
		out = append(out, Description{TxnID: id, Metadata: *t.snapshot()})
	}
	return out
}

// Open returns how many transactions are open — Ongoing, or prepared
// with their markers not yet written — and the start of the oldest (zero
// when none is).
func (m *Machine) Open() (n int, oldest time.Time) {
	for _, t := range m.txns {
		switch t.State {
		case Ongoing, PrepareCommit, PrepareAbort:
			n++
			if oldest.IsZero() || t.StartTime.Before(oldest) {
				oldest = t.StartTime
			}
		}
	}
	return n, oldest
}

// ProducePartition is one partition of a transactional Produce request,
// with the producer id and epoch of its batch.
type ProducePartition struct {
	Partition  TopicPartition
	ProducerID int64
	Epoch      int16
}

// CheckProduce reports, for each partition of a transactional Produce
// request, whether the producer may write it: nil when the partition is
// in txnID's Ongoing transaction of that producer id and epoch;
// ErrInvalidProducerIDMapping for an unknown id or another producer's,
// ErrInvalidProducerEpoch for another epoch, ErrInvalidTxnState when the
// partition was not added (AddPartitionsToTxn) or no transaction is
// Ongoing. It changes nothing.
func (m *Machine) CheckProduce(txnID string, parts []ProducePartition) []error {
	errs := make([]error, len(parts))
	t := m.txns[txnID]
	for i, p := range parts {
		switch {
		case t == nil || t.ProducerID != p.ProducerID:
			errs[i] = fmt.Errorf("%w: %q is not held by producer %d", ErrInvalidProducerIDMapping, txnID, p.ProducerID)
		case t.Epoch != p.Epoch:
			errs[i] = fmt.Errorf("%w: epoch %d, the coordinator holds %d", ErrInvalidProducerEpoch, p.Epoch, t.Epoch)
		case t.State != Ongoing:
			errs[i] = fmt.Errorf("%w: produce to %s while %s", ErrInvalidTxnState, p.Partition, t.State)
		default:
			if _, ok := t.parts[p.Partition]; !ok {
				errs[i] = fmt.Errorf("%w: %s is not in the transaction", ErrInvalidTxnState, p.Partition)
			}
		}
	}
	return errs
}

// CheckOffsets reports whether a TxnOffsetCommit may stage the group's
// offsets in txnID's transaction: nil when the group was added
// (AddOffsetsToTxn) to the Ongoing transaction of that producer id and
// epoch; otherwise the error as CheckProduce answers it. It changes
// nothing.
func (m *Machine) CheckOffsets(txnID string, producerID int64, epoch int16, group string) error {
	t := m.txns[txnID]
	switch {
	case t == nil || t.ProducerID != producerID:
		return fmt.Errorf("%w: %q is not held by producer %d", ErrInvalidProducerIDMapping, txnID, producerID)
	case t.Epoch != epoch:
		return fmt.Errorf("%w: epoch %d, the coordinator holds %d", ErrInvalidProducerEpoch, epoch, t.Epoch)
	case t.State != Ongoing:
		return fmt.Errorf("%w: offsets for group %q while %s", ErrInvalidTxnState, group, t.State)
	}
	if _, ok := t.groups[group]; !ok {
		return fmt.Errorf("%w: group %q is not in the transaction", ErrInvalidTxnState, group)
	}
	return nil
}
