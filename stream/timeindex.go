package stream

import "slices"

// timeIndex is an in-memory index of store entries by time (window starts,
// timer times) and encoded key, so that closing windows or firing timers
// does not scan the store. Rebuilt from the store after a restore.
type timeIndex struct {
	at    map[int64]map[string]struct{}
	times []int64 // the keys of at, ascending
}

func newTimeIndex() *timeIndex { return &timeIndex{at: map[int64]map[string]struct{}{}} }

// add records key k at time t.
func (x *timeIndex) add(t int64, k []byte) {
	keys, ok := x.at[t]
	if !ok {
		keys = map[string]struct{}{}
		x.at[t] = keys
		i, _ := slices.BinarySearch(x.times, t)
		x.times = slices.Insert(x.times, i, t)
	}
	keys[string(k)] = struct{}{}
}

// remove forgets key k at time t.
func (x *timeIndex) remove(t int64, k []byte) {
	keys, ok := x.at[t]
	if !ok {
		return
	}
	delete(keys, string(k))
	if len(keys) == 0 {
		delete(x.at, t)
		if i, found := slices.BinarySearch(x.times, t); found {
			x.times = slices.Delete(x.times, i, i+1)
		}
	}
}

// first returns the earliest time indexed.
func (x *timeIndex) first() (int64, bool) {
	if len(x.times) == 0 {
		return 0, false
	}
	return x.times[0], true
}

// popFirst removes the earliest time and returns its keys in order.
func (x *timeIndex) popFirst() (int64, []string) {
	t := x.times[0]
	keys := make([]string, 0, len(x.at[t]))
	for k := range x.at[t] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	delete(x.at, t)
	x.times = x.times[1:]
	return t, keys
}
