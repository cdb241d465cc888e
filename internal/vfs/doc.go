// Package vfs is the filesystem seam every durable byte in Weir goes
// through. Storage code (commitlog, raft storage) talks to an FS, never to
// package os, so that the same code runs against the real disk in
// production and against an in-memory filesystem with crash simulation and
// fault injection in tests.
//
// # Implementations
//
//   - OS (also Default): the operating system's filesystem. File.Sync is
//     fdatasync(2) on Linux and File.Sync elsewhere; SyncDir opens the
//     directory and fsyncs it.
//   - MemFS (NewMem): an in-memory filesystem that models POSIX durability
//     precisely enough for crash tests. Crash and CrashStrict return the
//     filesystem a power loss at that instant would leave behind.
//   - NewErrorFS: wraps any FS and fails chosen operations (EIO, ENOSPC,
//     ErrInjected) as an Injector decides.
//
// # Durability model
//
// Data written to a file becomes durable when File.Sync on that file
// returns nil; until then a crash loses it. A directory entry (the result
// of Create, OpenReadWrite creating a file, Rename, Remove, RemoveAll or
// MkdirAll) becomes durable when SyncDir on its parent directory returns
// nil; until then a crash reverts it. Directories are entries like any
// other: a directory created by MkdirAll survives a crash only if its
// parent was synced afterwards, so MkdirAll("a/b") followed by writes into
// a/b needs SyncDir(".") for a and SyncDir("a") for b.
//
// MemFS crash states, for a file reachable through durable entries:
//
//	after Sync            after more writes        after Crash
//	+----------------+    +----------------+----+  +----------------+--+
//	| durable        |    | durable        |tail|  | durable        |  | torn tail: a prefix of
//	+----------------+    +----------------+----+  +----------------+--+ tail, last bytes maybe
//	                                                                      zeroed or scribbled
//
// Writes that overwrite bytes below the durable length, and truncations,
// are lost wholesale by a crash unless synced. CrashStrict never keeps a
// torn tail.
//
// # Locks
//
// Lock (the optional Locker interface) takes an exclusive, advisory lock
// on a file without waiting, so that one data directory has one owner.
// The OS filesystem uses flock(2) on Linux: the lock belongs to the open
// file description, so a second Lock conflicts in the same process as in
// another, and the kernel releases it when the holder dies. Elsewhere it
// is a best effort that only keeps out other holders in this process.
// MemFS keeps locks per file and drops them all in a crash image; ErrorFS
// locks through the filesystem it wraps and never injects a fault there.
//
// # Links
//
// LinkFile (the optional FileLinker interface) gives an open file a second
// name, a hard link to the descriptor's file (linkat of /proc/self/fd/N
// on Linux; unsupported elsewhere), so the tiered-storage archive can keep
// a sealed segment without copying it. A file with no name left, or one of
// another filesystem, is refused; the caller copies instead. MemFS links
// share the file node; ErrorFS injects OpLink.
//
// # Concurrency
//
// Every FS and File in this package is safe for concurrent use. Reads and
// writes are positional (ReadAt, WriteAt), so one appender and many
// readers can share a File without a shared cursor.
//
// # Imports
//
// vfs is a leaf: it imports only the standard library and no other Weir
// package (enforced by internal/archtest).
package vfs
