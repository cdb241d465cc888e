package vfs

import (
	"maps"
	"math/rand/v2"
	"slices"
	"syscall"
)

// maxScribble bounds how many bytes at the end of a torn tail Crash may
// replace with zeros or garbage.
const maxScribble = 8

// Crash returns a new MemFS holding what a power loss at this instant
// would leave on disk:
//
//   - only durable directory entries exist, followed from the root: an
//     entry created, renamed or removed since its parent's last SyncDir is
//     reverted (a renamed file is back under its old name if that entry
//     was durable, with its durable content);
//   - a file's content is its durable content (as of its last Sync), so
//     unsynced overwrites and truncations are lost;
//   - when rng says so, a file whose current content extends past its
//     durable length keeps a torn tail: a random-length prefix of those
//     unsynced bytes, whose last few (at most 8) bytes may additionally be
//     zeroed or replaced by random garbage;
//   - no file is locked (Lock): a power loss releases every lock.
//
// With rng nil, Crash is CrashStrict. The same state and the same rng
// sequence give the same result. Everything in the result is durable.
//
// The result shares nothing with m: m and its open Files keep working and
// cannot affect it. If a directory is reachable twice through durable
// entries (a cross-directory rename with only one parent synced), only
// its first occurrence in sorted path order is kept; a file reachable
// twice becomes one file with two names.
func (m *MemFS) Crash(rng *rand.Rand) *MemFS {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c := crasher{rng: rng, files: make(map[*memNode]*memNode), dirs: make(map[*memNode]bool)}
	return &MemFS{root: c.dir(m.root)}
}

// CrashStrict returns a new MemFS holding exactly the durable state: no
// torn tails. See Crash.
func (m *MemFS) CrashStrict() *MemFS {
	return m.Crash(nil)
}

type crasher struct {
	rng   *rand.Rand
	files map[*memNode]*memNode
	dirs  map[*memNode]bool
}

func (c *crasher) dir(n *memNode) *memNode {
	c.dirs[n] = true
	d := newMemDir(n.mode)
	d.modTime = n.modTime
	// Sorted, so that rng is consumed in a reproducible order.
	for _, name := range slices.Sorted(maps.Keys(n.durable)) {
		child := n.durable[name]
		var cc *memNode
		switch {
		case !child.isDir:
			cc = c.file(child)
		case c.dirs[child]:
			continue
		default:
			cc = c.dir(child)
		}
		d.children[name] = cc
		d.durable[name] = cc
	}
	return d
}

func (c *crasher) file(n *memNode) *memNode {
	if f, ok := c.files[n]; ok {
		return f
	}
	data := slices.Clone(n.synced)
	if c.rng != nil && len(n.data) > len(n.synced) {
		data = append(data, c.tornTail(n.data[len(n.synced):])...)
	}
	f := &memNode{mode: n.mode, modTime: n.modTime, data: data, synced: slices.Clone(data), dirtyFrom: len(data)}
	c.files[n] = f
	return f
}

// tornTail picks what survives of the unsynced bytes past the durable
// length: nothing half the time, else a non-empty prefix, a quarter of
// which end in up to maxScribble zeroed or random bytes.
func (c *crasher) tornTail(tail []byte) []byte {
	if c.rng.IntN(2) == 0 {
		return nil
	}
	kept := slices.Clone(tail[:1+c.rng.IntN(len(tail))])
	if c.rng.IntN(4) == 0 {
		junk := kept[len(kept)-1-c.rng.IntN(min(len(kept), maxScribble)):]
		if c.rng.IntN(2) == 0 {
			clear(junk)
		} else {
			for i := range junk {
				junk[i] = byte(c.rng.Uint32())
			}
		}
	}
	return kept
}

// ReadFile returns a copy of the named file's current content.
func (m *MemFS) ReadFile(name string) ([]byte, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n, err := m.walk(split(name))
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	if n.isDir {
		return nil, pathErr("read", name, syscall.EISDIR)
	}
	return slices.Clone(n.data), nil
}

// WriteFile creates or replaces the named file with data and makes both
// the content and its directory entry durable, as if written, synced and
// its parent dir-synced (other pending entries of the parent stay
// pending). The parent directory must exist.
func (m *MemFS) WriteFile(name string, data []byte) error {
	parts := split(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parent(parts)
	if err != nil {
		return pathErr("open", name, err)
	}
	n := dir.children[base]
	if n == nil {
		n = newMemFile()
		dir.children[base] = n
	} else if n.isDir {
		return pathErr("open", name, syscall.EISDIR)
	}
	n.resize(0)
	n.writeAt(data, 0)
	n.sync()
	dir.durable[base] = n
	return nil
}

// Corrupt overwrites the named file's bytes at off with b in both its
// current and its durable content, as media corruption would: the damage
// survives Sync and Crash. The range must lie within the current content;
// it changes durable content only where that is long enough.
func (m *MemFS) Corrupt(name string, off int64, b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.walk(split(name))
	if err != nil {
		return pathErr("corrupt", name, err)
	}
	if n.isDir {
		return pathErr("corrupt", name, syscall.EISDIR)
	}
	if off < 0 || off+int64(len(b)) > int64(len(n.data)) {
		return pathErr("corrupt", name, syscall.EINVAL)
	}
	copy(n.data[off:], b)
	if off < int64(len(n.synced)) {
		copy(n.synced[off:], b)
	}
	return nil
}
