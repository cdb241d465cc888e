package stream

import (
	"fmt"
)

// Checkpoints of on-disk stores (CheckpointStore). The owner of an Engine
// drives them:
//
//	OpenTask ─▶ RestoreFrom(changelog partition) ─▶ Restore … RestoredTo(next) … ─▶ Process …
//	                   │ checkpoint within the partition's offsets: start there,
//	                   │ else wipe the store and start at the partition's start
//	Commit ─▶ produce its records ─▶ they are durable (exactly-once: the transaction committed)
//	       ─▶ Committed(offset after the last changelog record written, per changelog partition)
//
// Between Commit and Committed no record may be processed: Committed
// persists everything the stores hold.

// restoringStore returns the store a changelog partition restores, of an
// open task still restoring.
func (e *Engine) restoringStore(topic string, partition int32) (*task, *loggedStore, error) {
	ref, ok := e.plan.changelogs[topic]
	if !ok {
		return nil, nil, fmt.Errorf("stream: %s is not a changelog", topic)
	}
	t := e.tasks[TaskID{ref.sub.id, partition}]
	if t == nil || !t.restoring {
		return nil, nil, fmt.Errorf("stream: restore %s/%d: task not open or already running", topic, partition)
	}
	return t, t.storeOf[ref.node], nil
}

// RestoreFrom returns the offset of a changelog partition from which its
// task's store must be restored, given the partition's start and end
// offsets: the checkpoint of a CheckpointStore that holds one between
// them, else start, the store wiped first (a checkpoint outside them
// belongs to an older incarnation of the topic).
func (e *Engine) RestoreFrom(topic string, partition int32, start, end int64) (int64, error) {
	t, s, err := e.restoringStore(topic, partition)
	if err != nil {
		return 0, err
	}
	cs, ok := s.Store.(CheckpointStore)
	if !ok {
		return start, nil
	}
	off, ok, err := cs.Checkpoint()
	if err != nil {
		return 0, fmt.Errorf("stream: task %s: store checkpoint: %w", t.id, err)
	}
	if ok && off >= start && off <= end {
		return off, nil
	}
	if ok {
		e.log.Warn("stream: store checkpoint outside its changelog; wiping", "task", t.id.String(), "changelog", topic,
			"checkpoint", off, "start", start, "end", end)
		if err := cs.Wipe(); err != nil {
			return 0, err
		}
	}
	return start, nil
}

// RestoredTo tells the engine that a changelog partition has been
// restored up to next (exclusive): a CheckpointStore persists the
// restored state with that checkpoint, so a restore cut short resumes
// there.
func (e *Engine) RestoredTo(topic string, partition int32, next int64) error {
	_, s, err := e.restoringStore(topic, partition)
	if err != nil {
		return err
	}
	if cs, ok := s.Store.(CheckpointStore); ok {
		return cs.Commit(next)
	}
	return nil
}

// Committed tells the engine that the records of the last Commit are
// durable (under exactly-once: their transaction committed), with, per
// changelog topic and partition, the offset after the last record written
// there. CheckpointStores persist their state with that offset. It also
// updates the state-size metrics.
func (e *Engine) Committed(changelogs map[string]map[int32]int64) error {
	for _, id := range e.Tasks() {
		t := e.tasks[id]
		for _, s := range t.stores {
			if off, ok := changelogs[s.changelog][id.Partition]; ok {
				if cs, ok := s.Store.(CheckpointStore); ok {
					if err := cs.Commit(off); err != nil {
						return fmt.Errorf("stream: task %s: checkpoint %s: %w", id, s.changelog, err)
					}
				}
			}
			if sz, ok := s.Store.(StoreSize); ok && e.m != nil {
				entries, bytes := sz.Size()
				e.m.stateSize(id, e.plan.changelogs[s.changelog].node.store, entries, bytes)
			}
		}
	}
	return nil
}

// storeName returns the store name of a changelog topic.
func (e *Engine) storeName(changelog string) string {
	if ref, ok := e.plan.changelogs[changelog]; ok {
		return ref.node.store
	}
	return changelog
}
