package broker

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"github.com/weirhq/weir/internal/vfs"
)

// MaxPartitions bounds the partitions of one topic.
const MaxPartitions = 100000

// metaPath is the metadata file of the topic with id id. Files are named
// by id, not name: a name may have 249 bytes, and "<name>.json.tmp" would
// not fit in a 255-byte file name.
func (b *Broker) metaPath(id [16]byte) string {
	return filepath.Join(b.topicsDir(), hex.EncodeToString(id[:])+".json")
}

func (b *Broker) persist(t *Topic, partitions int32, configs map[string]string) error {
	m := topicMeta{Name: t.Name, ID: hex.EncodeToString(t.ID[:]), Partitions: partitions, Configs: configs}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := writeDurable(b.opts.FS, b.metaPath(t.ID), raw); err != nil {
		return fmt.Errorf("%w: write topic metadata: %w", ErrStorage, err)
	}
	return nil
}

// metaFile is one topic metadata file found at load.
type metaFile struct {
	file string // name in the topics directory
	raw  []byte
	meta topicMeta
	id   [16]byte
}

// loadMetas reads the metadata of every topic, with m.ID in canonical
// form. It removes the temporary files of interrupted writes, and moves
// files of the previous layout, named <name>.json, to <id>.json: first
// the new file is made durable, then the old one is removed, so a crash
// in between leaves both, with the same content, and the next load
// finishes the move. (A <name>.json that differs from its <id>.json was
// written later, by the previous version: its content wins.)
func (b *Broker) loadMetas() ([]topicMeta, error) {
	fsys, dir := b.opts.FS, b.topicsDir()
	names, err := fsys.List(dir)
	if err != nil {
		return nil, fmt.Errorf("broker: list topics: %w", err)
	}
	var (
		current = map[[16]byte]*metaFile{} // <id>.json
		legacy  = map[[16]byte]*metaFile{} // <name>.json
		order   [][16]byte
		stale   []string // legacy files to remove
	)
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			_ = fsys.Remove(filepath.Join(dir, n))
			continue
		}
		if !strings.HasSuffix(n, ".json") {
			continue
		}
		f, err := readMeta(fsys, dir, n)
		if err != nil {
			return nil, err
		}
		if current[f.id] == nil && legacy[f.id] == nil {
			order = append(order, f.id)
		}
		switch {
		case n == f.meta.ID+".json":
			current[f.id] = f
		case legacy[f.id] != nil:
			stale = append(stale, n) // two old files of one topic: keep the first
		default:
			legacy[f.id] = f
		}
	}
	metas := make([]topicMeta, 0, len(order))
	byName := map[string]string{}
	for _, id := range order {
		f, old := current[id], legacy[id]
		if old != nil {
			if f == nil || !bytes.Equal(f.raw, old.raw) {
				if err := writeDurable(fsys, b.metaPath(id), old.raw); err != nil {
					return nil, fmt.Errorf("%w: move topic metadata %s to %s.json: %w", ErrStorage, old.file, old.meta.ID, err)
				}
			}
			f = old
			stale = append(stale, old.file)
		}
		if other, dup := byName[f.meta.Name]; dup {
			return nil, fmt.Errorf("broker: topic metadata %s and %s both name topic %q", other, f.file, f.meta.Name)
		}
		byName[f.meta.Name] = f.file
		metas = append(metas, f.meta)
	}
	if len(stale) == 0 {
		return metas, nil
	}
	for _, n := range stale {
		if err := fsys.Remove(filepath.Join(dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: remove old topic metadata %s: %w", ErrStorage, n, err)
		}
	}
	if err := fsys.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("%w: sync topics dir: %w", ErrStorage, err)
	}
	b.opts.Logger.Info("broker: topic metadata files renamed to <topic id>.json", "files", len(stale))
	return metas, nil
}

// readMeta reads and checks one topic metadata file.
func readMeta(fsys vfs.FS, dir, n string) (*metaFile, error) {
	raw, err := readAll(fsys, filepath.Join(dir, n))
	if err != nil {
		return nil, fmt.Errorf("broker: read topic %s: %w", n, err)
	}
	f := &metaFile{file: n, raw: raw}
	if err := json.Unmarshal(raw, &f.meta); err != nil {
		return nil, fmt.Errorf("broker: topic metadata %s is damaged: %w", n, err)
	}
	f.id, err = parseID(f.meta.ID)
	if err != nil || f.meta.Partitions < 1 || f.meta.Name == "" {
		return nil, fmt.Errorf("broker: topic metadata %s is damaged", n)
	}
	f.meta.ID = hex.EncodeToString(f.id[:])
	return f, nil
}

func validateConfigs(configs map[string]string) error {
	for k, v := range configs {
		if err := ValidateConfig(k, v); err != nil {
			return err
		}
	}
	return nil
}

// CreateTopic creates a topic for a client with partitions partitions (-1
// = default) and explicit configs. With validateOnly it only checks the
// request. Reserved names are refused and the installed TopicPolicy
// applies; internal topics are created by their InternalLog.
func (b *Broker) CreateTopic(name string, partitions int32, configs map[string]string, validateOnly bool) (*Topic, error) {
	if err := b.checkCreate(name, configs); err != nil {
		return nil, err
	}
	return b.createTopic(name, partitions, configs, validateOnly)
}

func (b *Broker) createTopic(name string, partitions int32, configs map[string]string, validateOnly bool) (*Topic, error) {
	if err := ValidateTopicName(name); err != nil {
		return nil, err
	}
	if partitions == -1 {
		partitions = b.opts.DefaultPartitions
	}
	if partitions < 1 || partitions > MaxPartitions {
		return nil, fmt.Errorf("%w: %d (want 1..%d)", ErrInvalidPartitions, partitions, MaxPartitions)
	}
	if err := validateConfigs(configs); err != nil {
		return nil, err
	}
	if err := b.checkCombined(nil, configs); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, ErrClosed
	}
	if _, ok := b.topics[name]; ok {
		return nil, fmt.Errorf("%w: %q", ErrTopicExists, name)
	}
	if validateOnly {
		return &Topic{Name: name, configs: configs}, nil
	}
	id, err := newID()
	if err != nil {
		return nil, fmt.Errorf("broker: topic id: %w", err)
	}
	t := &Topic{Name: name, ID: id, metrics: b.traffic.topic(name)}
	own := make(map[string]string, len(configs))
	for k, v := range configs {
		own[k] = v
	}
	b.setConfigs(t, own)
	for p := int32(0); p < partitions; p++ {
		part, err := b.openPartition(t, p)
		if err != nil {
			b.discard(t)
			return nil, err
		}
		t.partitions = append(t.partitions, part)
	}
	// The topic exists once its metadata is durable.
	if err := b.persist(t, partitions, t.configs); err != nil {
		b.discard(t)
		return nil, err
	}
	b.topics[name] = t
	b.opts.Logger.Info("broker: created topic", "topic", name, "partitions", partitions)
	return t, nil
}

// discard closes and removes the logs of a topic that never became durable.
func (b *Broker) discard(t *Topic) {
	for _, p := range t.partitions {
		_ = p.log.Close()
	}
	_ = b.opts.FS.RemoveAll(filepath.Join(b.logsDir(), hex.EncodeToString(t.ID[:])))
}

// DeleteTopic deletes a topic and its data.
func (b *Broker) DeleteTopic(name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	t, ok := b.topics[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopicOrPartition, name)
	}
	if IsReservedTopic(name) {
		return errReserved(ErrInvalidRequest, name, "delete")
	}
	if err := b.opts.FS.Remove(b.metaPath(t.ID)); err != nil {
		return fmt.Errorf("%w: remove topic metadata: %w", ErrStorage, err)
	}
	if err := b.opts.FS.SyncDir(b.topicsDir()); err != nil {
		return fmt.Errorf("%w: sync topics dir: %w", ErrStorage, err)
	}
	delete(b.topics, name)
	b.traffic.forget(name)
	for _, p := range t.Partitions() {
		_ = p.log.Close()
	}
	b.deleteArchived(t)
	// Leftover logs are orphans the next open removes if this fails.
	if err := b.opts.FS.RemoveAll(filepath.Join(b.logsDir(), hex.EncodeToString(t.ID[:]))); err != nil {
		b.opts.Logger.Warn("broker: removing deleted topic's logs", "topic", name, "err", err)
	}
	b.opts.Logger.Info("broker: deleted topic", "topic", name)
	return nil
}

// CreatePartitions raises a topic's partition count to total.
func (b *Broker) CreatePartitions(name string, total int32, validateOnly bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	t, ok := b.topics[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopicOrPartition, name)
	}
	if IsReservedTopic(name) {
		return errReserved(ErrInvalidRequest, name, "add partitions to")
	}
	cur := int32(len(t.Partitions()))
	if total <= cur {
		return fmt.Errorf("%w: topic %q has %d partitions; the new count %d must be larger", ErrInvalidPartitions, name, cur, total)
	}
	if total > MaxPartitions {
		return fmt.Errorf("%w: %d (at most %d)", ErrInvalidPartitions, total, MaxPartitions)
	}
	if validateOnly {
		return nil
	}
	added := make([]*Partition, 0, total-cur)
	for p := cur; p < total; p++ {
		part, err := b.openPartition(t, p)
		if err != nil {
			for _, a := range added {
				_ = a.log.Close()
			}
			return err
		}
		added = append(added, part)
	}
	if err := b.persist(t, total, t.Configs()); err != nil {
		for _, a := range added {
			_ = a.log.Close()
		}
		return err
	}
	t.mu.Lock()
	t.partitions = append(append([]*Partition(nil), t.partitions...), added...)
	t.mu.Unlock()
	return nil
}

// DescribeConfigs lists every topic config with its value and source.
func (b *Broker) DescribeConfigs(name string) ([]ConfigEntry, error) {
	t, err := b.Topic(name)
	if err != nil {
		return nil, err
	}
	return b.describeConfigs(t.Configs()), nil
}

// ConfigOp is one incremental config change.
type ConfigOp struct {
	Name  string
	Op    OpType
	Value string
}

// OpType is Kafka's IncrementalAlterConfigs operation.
type OpType int8

// Operations, numbered as Kafka numbers them.
const (
	OpSet      OpType = 0
	OpDelete   OpType = 1
	OpAppend   OpType = 2
	OpSubtract OpType = 3
)

// AlterConfigs replaces a topic's whole explicit config set (the legacy
// AlterConfigs semantics: names not given revert to defaults).
func (b *Broker) AlterConfigs(name string, configs map[string]string, validateOnly bool) error {
	if err := validateConfigs(configs); err != nil {
		return err
	}
	return b.updateConfigs(name, validateOnly, func(map[string]string) (map[string]string, error) {
		out := map[string]string{}
		for k, v := range configs {
			out[k] = v
		}
		return out, nil
	})
}

// IncrementalAlterConfigs applies set/delete operations to a topic.
func (b *Broker) IncrementalAlterConfigs(name string, ops []ConfigOp, validateOnly bool) error {
	return b.updateConfigs(name, validateOnly, func(cur map[string]string) (map[string]string, error) {
		for _, op := range ops {
			if findDef(op.Name) == nil {
				return nil, fmt.Errorf("%w: unknown topic config %q", ErrInvalidConfig, op.Name)
			}
			switch op.Op {
			case OpSet:
				if err := ValidateConfig(op.Name, op.Value); err != nil {
					return nil, err
				}
				cur[op.Name] = op.Value
			case OpDelete:
				delete(cur, op.Name)
			case OpAppend, OpSubtract:
				if findDef(op.Name).typ != TypeList {
					return nil, fmt.Errorf("%w: %s is not a list config", ErrInvalidConfig, op.Name)
				}
				cur[op.Name] = editList(b.effective(cur, op.Name), op.Value, op.Op == OpAppend)
				if err := ValidateConfig(op.Name, cur[op.Name]); err != nil {
					return nil, err
				}
			default:
				return nil, fmt.Errorf("%w: unknown operation %d", ErrInvalidRequest, op.Op)
			}
		}
		return cur, nil
	})
}

func (b *Broker) updateConfigs(name string, validateOnly bool, edit func(map[string]string) (map[string]string, error)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return ErrClosed
	}
	t, ok := b.topics[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopicOrPartition, name)
	}
	if IsReservedTopic(name) {
		return errReserved(ErrPolicyViolation, name, "reconfigure")
	}
	return b.setTopicConfigs(t, validateOnly, edit)
}

// setTopicConfigs persists and applies edited configs; b.mu is held.
func (b *Broker) setTopicConfigs(t *Topic, validateOnly bool, edit func(map[string]string) (map[string]string, error)) error {
	prev := t.Configs()
	next, err := edit(t.Configs())
	if err != nil {
		return err
	}
	if err := b.checkCombined(prev, next); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	if err := b.persist(t, int32(len(t.Partitions())), next); err != nil {
		return err
	}
	b.setConfigs(t, next)
	lim := b.limits(next)
	var errs []error
	for _, p := range t.Partitions() {
		if err := p.log.SetLimits(lim); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// editList appends the comma-separated items of val to the list cur, or
// subtracts them from it, keeping each item once, as Kafka's APPEND and
// SUBTRACT do.
func editList(cur, val string, add bool) string {
	vals := splitList(val)
	var items []string
	for _, s := range splitList(cur) {
		if !add && slices.Contains(vals, s) || slices.Contains(items, s) {
			continue
		}
		items = append(items, s)
	}
	if add {
		for _, v := range vals {
			if !slices.Contains(items, v) {
				items = append(items, v)
			}
		}
	}
	return strings.Join(items, ",")
}

func splitList(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if item := strings.TrimSpace(s[start:i]); item != "" {
				out = append(out, item)
			}
			start = i + 1
		}
	}
	return out
}
