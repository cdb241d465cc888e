package broker

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// MaxPartitions bounds the partitions of one topic.
const MaxPartitions = 100000

func (b *Broker) metaPath(name string) string { return filepath.Join(b.topicsDir(), name+".json") }

func (b *Broker) persist(t *Topic, partitions int32, configs map[string]string) error {
	m := topicMeta{Name: t.Name, ID: hex.EncodeToString(t.ID[:]), Partitions: partitions, Configs: configs}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := writeDurable(b.opts.FS, b.metaPath(t.Name), raw); err != nil {
		return fmt.Errorf("%w: write topic metadata: %w", ErrStorage, err)
	}
	return nil
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
	if err := b.opts.FS.Remove(b.metaPath(name)); err != nil {
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
