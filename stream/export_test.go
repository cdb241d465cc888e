package stream

import "github.com/cockroachdb/pebble/v2/vfs"

// AbortTransactions makes the App's exactly-once commits abort instead
// whenever fn returns true, to test the abort path.
func AbortTransactions(a *App, fn func() bool) { a.abortTxn = fn }

// PebbleStoreFS is PebbleStore on a pebble filesystem (in memory, with
// crash simulation, in tests).
func PebbleStoreFS(dir string, fs vfs.FS) func(StoreSpec) (Store, error) {
	return pebbleStoreFS(dir, fs)
}

// SetPebbleSpill sets the bytes a pebble store buffers before spilling,
// returning a function restoring the default.
func SetPebbleSpill(n int) (restore func()) {
	old := pebbleSpillBytes
	pebbleSpillBytes = n
	return func() { pebbleSpillBytes = old }
}
