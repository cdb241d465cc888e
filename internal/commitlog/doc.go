// Package commitlog is one partition's durable, append-only log of Kafka
// record batches: segments, a sparse offset index and a time index,
// group-committed fdatasync, recovery after a crash, retention and
// DeleteRecords.
//
// It knows nothing of the Kafka protocol beyond the RecordBatch bytes it
// stores (package batch), and reaches the disk only through package vfs so
// that crash and fault tests run on an in-memory filesystem.
//
// # On-disk layout
//
// One directory per partition:
//
//	<dir>/
//	  00000000000000000000.log        record batches exactly as produced
//	  00000000000000000000.index      sparse offset index  (sealed segments)
//	  00000000000000000000.timeindex  sparse time index    (sealed segments)
//	  00000000000000004096.log        the active segment (the highest base)
//	  log-start-offset                checkpoint written by DeleteRecords
//	  .clean                          present only after a clean Close
//
// A segment's file name is its base offset, 20 zero-padded digits. The .log
// file is a concatenation of Kafka RecordBatch v2 values; only the base
// offset (bytes 0-7) and, for LogAppendTime topics, the timestamps are
// rewritten by the log:
//
//	+-------------+-------------+-------------------------------------+
//	| baseOffset  | batchLength | leaderEpoch, magic=2, crc, ... recs |
//	|  int64 BE   |  int32 BE   |  batchLength bytes (CRC-32C checked) |
//	+-------------+-------------+-------------------------------------+
//
// Index files are written when a segment is sealed (rolled) and at clean
// close; the active segment's indexes live in memory and are rebuilt by
// scanning after a crash. Both index files end in a trailer whose CRC-32C
// covers the whole file, so a torn or damaged index is detected and rebuilt
// from the .log file:
//
//	.index:      N x { relOffset uint32 | position uint32 }            (8 B)
//	             trailer { nextOffset int64 | size int64 |
//	                       maxTimestamp int64 | count uint32 | crc uint32 }
//	.timeindex:  N x { timestamp int64 | relOffset uint32 }            (12 B)
//	             trailer { count uint32 | crc uint32 }
//
// The log-start-offset file is { offset int64 | crc uint32 }, replaced
// atomically (write temp, fsync, rename, fsync dir).
//
// # Durability
//
// With DurabilityAlways an append is durable only after fdatasync; one
// syncer goroutine per log fsyncs whatever has been written since its last
// fsync, so concurrent appenders share one fdatasync (group commit). The
// high watermark (what readers see) advances only to durable data, so a
// consumer never reads a record that a crash could take back. A failed
// fsync is never retried: the log fails permanently with ErrStorage and
// nothing after the last good fsync is reported durable.
// DurabilityInterval and DurabilityNever make data visible on write and
// are explicit opt-ins that can lose acknowledged data on power loss.
//
// A roll fsyncs the sealed segment and the directory before the new segment
// takes data, so only the active segment can have a torn tail. Recovery
// truncates the active segment at the first invalid batch; damage in a
// sealed segment is reported as ErrCorrupt, never truncated away.
//
// An append rolls when the active segment would pass segment.bytes or is
// segment.ms old. RollIfDue makes the segment.ms roll without an append,
// so the owner's periodic retention check can seal an idle partition's
// records; EnforceRetention then deletes sealed segments past retention.ms
// or retention.bytes, and the active segment itself (rolled first) once
// it and everything before it are past retention.ms, as Kafka does.
//
// The active segment reserves disk space ahead of its appends where the
// filesystem can (vfs.Preallocate: fallocate with KEEP_SIZE), 1 to 16 MiB
// at a time. The reservation lies past the file's size, so the format is
// unchanged: readers and recovery go by the size, which counts only bytes
// written. Sealing and closing a segment release what it did not use.
//
// # Concurrency
//
// Appends are serialised by one mutex per log. Readers never take it: they
// load an immutable snapshot of the segment list and the high-watermark
// mark atomically and read with positional reads. Segments removed by
// retention are closed when their last reader releases them. A sealed
// segment's file is never written again (a tiered-storage archive on the
// same filesystem may hard-link it). Whatever removes sealed segments
// (retention, DeleteRecords) holds a second mutex, taken before the append
// mutex; a Clean holds it while it swaps its cleaned file in (renames and
// directory fsyncs), taking the append mutex only to check and then to
// install the new segment list, so appends never wait for the cleaner's
// I/O. The cleaner yields its processor every 256 KiB it decodes.
//
// commitlog imports only vfs, batch and the standard library; it must not
// import broker, group, kafka or any network package.
package commitlog
