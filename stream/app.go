package stream

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Guarantee is a processing guarantee.
type Guarantee int

const (
	// AtLeastOnce: outputs and changelogs are flushed before the input
	// offsets that produced them are committed, so a crash loses nothing
	// but may repeat the outputs (and, rarely, updates of state) of the
	// records since the last commit.
	AtLeastOnce Guarantee = iota
	// ExactlyOnce: each commit interval is one Kafka transaction of the
	// instance (Kafka Streams' EOS v2) holding the outputs, the changelog
	// and repartition records and the input offsets, so a crash or an
	// aborted transaction repeats nothing that a read_committed consumer
	// sees, and state is rolled back to the last commit.
	ExactlyOnce
)

// Config configures an App. Brokers and ApplicationID are required; the
// zero value of every other field is a documented default.
type Config struct {
	// Brokers are the seed brokers of any Kafka-protocol cluster.
	Brokers []string
	// ApplicationID is the consumer group id and the prefix of the internal
	// topics (<app>-<name>-repartition, <app>-<store>-changelog). Instances
	// with the same id share the work.
	ApplicationID string
	// Guarantee; default AtLeastOnce.
	Guarantee Guarantee
	// InstanceID names this instance among those of the application.
	// Under ExactlyOnce the transactional id is <ApplicationID>-<InstanceID>:
	// it must be unique among the running instances, and should be stable
	// across restarts of one instance, because a restart with the same id
	// fences the previous incarnation and aborts its open transaction at
	// once, where a new id leaves that transaction open until
	// TransactionTimeout (delaying whoever takes its tasks). Default: a
	// random id per App.
	InstanceID string
	// TransactionTimeout (ExactlyOnce) is how long the cluster keeps an
	// instance's transaction open without an end before aborting it: the
	// longest a crashed instance with no successor of the same InstanceID
	// holds up its tasks. Default 10s; it must exceed CommitInterval. It
	// also bounds one commit (either guarantee): a stop (Run's context
	// ending) waits for a commit under way at most this long.
	TransactionTimeout time.Duration
	// CommitInterval between commits; default 1s. Shorter: fewer
	// repeats after a crash and fresher downstream watermarks, more
	// commit traffic.
	CommitInterval time.Duration
	// Bounded makes Run read every input partition up to the end offset
	// seen at start, then close every window, flush, commit and return nil.
	// It is meant for one instance.
	Bounded bool
	// ReplicationFactor of the internal topics; default the broker's.
	ReplicationFactor int16
	// NewStore opens state stores; default in memory (NewMemoryStore).
	// PebbleStore(dir) keeps them on disk, restoring after a restart only
	// the changelog written since the last commit.
	NewStore func(StoreSpec) (Store, error)
	// Registerer receives the metrics; nil: none.
	Registerer prometheus.Registerer
	// Logger; default: discarded.
	Logger *slog.Logger
	// ClientOptions are appended to the Kafka client's options (TLS,
	// SASL, ...).
	ClientOptions []kgo.Opt
}

// App runs a topology against a Kafka-protocol cluster.
type App struct {
	topo *Topology
	cfg  Config
	log  *slog.Logger
	// abortTxn, set by tests, turns a commit into an abort when it
	// returns true.
	abortTxn func() bool
}

// TransactionalID returns the transactional id the App uses under
// ExactlyOnce: <ApplicationID>-<InstanceID>.
func (a *App) TransactionalID() string { return a.cfg.ApplicationID + "-" + a.cfg.InstanceID }

// New checks the topology and configuration; Run starts the work.
func New(t *Topology, cfg Config) (*App, error) {
	if err := t.Err(); err != nil {
		return nil, err
	}
	if len(cfg.Brokers) == 0 || cfg.ApplicationID == "" {
		return nil, errors.New("stream: Config.Brokers and Config.ApplicationID are required")
	}
	if cfg.Guarantee != AtLeastOnce && cfg.Guarantee != ExactlyOnce {
		return nil, fmt.Errorf("stream: unknown Guarantee %d", cfg.Guarantee)
	}
	cfg.CommitInterval = cmp.Or(cfg.CommitInterval, time.Second)
	cfg.TransactionTimeout = cmp.Or(cfg.TransactionTimeout, 10*time.Second)
	if cfg.Guarantee == ExactlyOnce && cfg.TransactionTimeout <= cfg.CommitInterval {
		return nil, fmt.Errorf("stream: TransactionTimeout %v must exceed CommitInterval %v", cfg.TransactionTimeout, cfg.CommitInterval)
	}
	if cfg.InstanceID == "" {
		cfg.InstanceID = strings.ToLower(rand.Text())
	}
	if cfg.ReplicationFactor == 0 {
		cfg.ReplicationFactor = -1
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &App{topo: t, cfg: cfg, log: log}, nil
}

// Run joins the application's consumer group and processes records until
// ctx ends (then it commits what it processed, leaves the group and
// returns nil) or, in a bounded run, until the input is done. It returns
// the first processing, produce or commit error. Call Run once per App.
func (a *App) Run(ctx context.Context) error {
	admCl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(a.cfg.Brokers...)}, a.cfg.ClientOptions...)...)
	if err != nil {
		return err
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	r := &runner{app: a, adm: adm, offsets: map[string]map[int32]kgo.EpochOffset{}, assigned: map[TaskID]map[string]bool{}}
	var lookupErr error
	e, err := NewEngine(a.topo, EngineConfig{
		ApplicationID: a.cfg.ApplicationID, NewStore: a.cfg.NewStore, Registerer: a.cfg.Registerer, Logger: a.log,
		Partitions: func(topic string) (int32, bool) {
			td, err := adm.ListTopics(ctx, topic)
			if err != nil {
				lookupErr = err
				return 0, false
			}
			d, ok := td[topic]
			if !ok || d.Err != nil {
				return 0, false
			}
			return int32(len(d.Partitions)), true
		},
	})
	if err != nil {
		return errors.Join(err, lookupErr)
	}
	r.e = e
	topics := e.Topics()
	if err := r.createInternalTopics(ctx, topics); err != nil {
		return err
	}
	if a.cfg.Bounded {
		if err := r.boundedOffsets(ctx, topics.Sources); err != nil {
			return err
		}
	}
	consume := slices.Clone(topics.Sources)
	for t := range topics.Repartition {
		consume = append(consume, t)
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(a.cfg.Brokers...),
		kgo.ConsumerGroup(a.cfg.ApplicationID),
		kgo.ConsumeTopics(consume...),
		kgo.Balancers(TaskBalancer(e.TaskFor), kgo.CooperativeStickyBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Only committed input; commit and abort markers are delivered as
		// control records so a bounded run sees its last offset reached.
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(r.onAssigned),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onLost),
		kgo.RecordPartitioner(partitioner{kgo.StickyKeyPartitioner(nil)}),
		kgo.ProducerLinger(5 * time.Millisecond),
		kgo.AllowAutoTopicCreation(), // sink topics, where the cluster allows it
	}, a.cfg.ClientOptions...)
	if a.cfg.Guarantee == ExactlyOnce {
		var sess *kgo.GroupTransactSession
		sess, err = kgo.NewGroupTransactSession(append(opts,
			kgo.TransactionalID(a.TransactionalID()),
			kgo.TransactionTimeout(a.cfg.TransactionTimeout),
			kgo.OnPartitionsCallbackBlocked(r.onBlocked))...)
		if err != nil {
			return err
		}
		r.sess, r.cl = sess, sess.Client()
		err = r.loopEOS(ctx)
		if err != nil && r.inTxn {
			// Abort what is open rather than leave it to the timeout.
			actx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, _ = sess.End(actx, kgo.TryAbort)
			cancel()
		}
	} else {
		r.cl, err = kgo.NewClient(opts...)
		if err != nil {
			return err
		}
		err = r.loop(ctx)
		if ctx.Err() != nil && err == nil {
			// Stopped: commit what was processed, with a fresh deadline.
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			r.mu.Lock()
			err = r.commit(fctx)
			r.mu.Unlock()
			cancel()
		}
	}
	r.cl.AllowRebalance()
	r.cl.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range e.Tasks() {
		err = errors.Join(err, e.CloseTask(id))
	}
	return err
}

// createInternalTopics creates the repartition and (compacted) changelog
// topics, or checks the partition counts of those already there.
//
// Repartition topics keep their records without a time limit
// (retention.ms -1, as Kafka Streams sets them): the records carry their
// event time as timestamp, and a broker's time retention (7 days by
// default, counted from the newest timestamp of a segment, the active one
// included) would delete the records of old event times, replayed or
// backfilled, before the downstream task reads them.
func (r *runner) createInternalTopics(ctx context.Context, ts Topics) error {
	compact, forever := "compact", "-1"
	create := func(topic string, n int32, configs map[string]*string) error {
		_, err := r.adm.CreateTopic(ctx, n, r.app.cfg.ReplicationFactor, configs, topic)
		if err == nil {
			return nil
		}
		if !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("stream: create %s: %w", topic, err)
		}
		td, err := r.adm.ListTopics(ctx, topic)
		if err != nil {
			return err
		}
		if got := int32(len(td[topic].Partitions)); got != n {
			return fmt.Errorf("stream: internal topic %s has %d partitions, want %d (the input's partition count changed?)", topic, got, n)
		}
		return nil
	}
	for t, n := range ts.Repartition {
		if err := create(t, n, map[string]*string{"retention.ms": &forever}); err != nil {
			return err
		}
	}
	for t, n := range ts.Changelogs {
		if err := create(t, n, map[string]*string{"cleanup.policy": &compact}); err != nil {
			return err
		}
	}
	return r.createUpsertSinks(ctx, ts.Compacted)
}

// createUpsertSinks creates the missing topics of ToTable sinks as
// compacted topics; those already there are left as they are.
func (r *runner) createUpsertSinks(ctx context.Context, sinks map[string]int32) error {
	compact := "compact"
	for t, n := range sinks {
		_, err := r.adm.CreateTopic(ctx, n, r.app.cfg.ReplicationFactor, map[string]*string{"cleanup.policy": &compact}, t)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("stream: create %s: %w", t, err)
		}
	}
	return nil
}

// partitioner sends a record with a partition set (changelogs, repartition
// topics) there, and others by key as Kafka's default partitioner does.
type partitioner struct{ byKey kgo.Partitioner }

func (p partitioner) ForTopic(t string) kgo.TopicPartitioner {
	return topicPartitioner{p.byKey.ForTopic(t)}
}

type topicPartitioner struct{ byKey kgo.TopicPartitioner }

func (p topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return r.Partition >= 0 || p.byKey.RequiresConsistency(r)
}

func (p topicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Partition >= 0 {
		return int(r.Partition)
	}
	return p.byKey.Partition(r, n)
}

// runner is one Run: the engine, the client and the offsets processed
// but not committed. mu guards all of it: the loop holds it while
// processing, the group callbacks while they restore or commit.
type runner struct {
	app      *App
	adm      *kadm.Client
	cl       *kgo.Client
	e        *Engine
	mu       sync.Mutex
	offsets  map[string]map[int32]kgo.EpochOffset // next offset to commit
	assigned map[TaskID]map[string]bool           // open tasks' assigned input partitions, by topic
	end      map[string]map[int32]int64           // bounded: end offsets of the sources at start
	prodErr  error
	written  map[string]map[int32]int64 // under prodMu: changelog partitions' offsets after the records produced
	prodMu   sync.Mutex
	fatal    error // an error met in a group callback; the loop returns it

	// Exactly-once (eos.go). inTxn, paused and pastEnd belong to the loop.
	sess       *kgo.GroupTransactSession
	inTxn      bool                       // a transaction is open: work since the last commit
	revoked    bool                       // under mu: partitions revoked or lost since the last End
	blocked    atomic.Bool                // a rebalance waits for the loop to end its transaction
	pollMu     sync.Mutex                 //
	pollCancel context.CancelFunc         // under pollMu: cuts the loop's poll short
	pastEnd    map[string]map[int32]int64 // bounded: partitions polled past their end, to rewind
	paused     map[string][]int32         // bounded: partitions read to their end, not fetched
}
