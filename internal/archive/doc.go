// Package archive is Weir's tiered storage layer (KIP-405 semantics): sealed
// partition segments are copied to an object store, a manifest per
// partition records which offsets the archive holds, and a reader below the
// local log start is served from there. This package is the archive on its
// own; the broker drives it through an interface the broker declares.
//
// # Backends
//
// A Backend stores whole objects under slash-separated keys: Put (from a
// reader with its size; the object appears complete or not at all and
// replaces any object of that key), Get (a byte range), Stat, List (by key
// prefix) and Delete (a missing key is not an error). Open chooses one from
// a URL:
//
//   - file://DIR: files under DIR through internal/vfs (vfs.NewMem in
//     tests). Put writes a hidden temporary ".NAME.part" beside the object,
//     fsyncs it, renames it over the object and fsyncs the directory, so a
//     crash leaves either the old object, the new one, or an invisible
//     temporary that the next Put of that key truncates. UploadSegment of
//     a reader that is a local file of the same filesystem (LocalFile: a
//     sealed segment) hard-links the file into that temporary instead of
//     copying it (vfs.LinkFile; link.go says why that is safe), fsyncs it
//     and renames it likewise; file://DIR?link=false, another filesystem or
//     a failed link copies.
//   - s3://BUCKET/PREFIX: an S3-compatible store through aws-sdk-go-v2,
//     configured from AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL),
//     AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN and
//     AWS_REGION (or AWS_DEFAULT_REGION; default us-east-1), passed to Open
//     as data: only cmd/weir reads the process environment. A custom
//     endpoint is addressed path-style (MinIO, SeaweedFS, Ceph). A single
//     PUT is atomic on S3, so Put needs no temporary.
//
// Open probes the backend (file: write and remove a temporary; S3:
// HeadBucket and a one-key List under the prefix) and fails with a clear
// error for wrong credentials, a missing bucket or an unreachable
// endpoint: a misconfigured archive is never a silent no-archive.
//
// # Layout
//
// Keys are relative to the URL's DIR or PREFIX. TOPIC is the topic name or,
// better, its topic ID (a topic deleted and created again under the same
// name must not inherit the old archive); both are Kafka-legal names.
//
//	TOPIC/PARTITION/00000000000000000000-00000000000000000099.log       segment: base-last, 20 digits each
//	TOPIC/PARTITION/00000000000000000000-00000000000000000099.txnindex  its transaction index (when not empty)
//	TOPIC/PARTITION/00000000000000000100-00000000000000000250.log
//	TOPIC/PARTITION/manifest                                            the partition's manifest
//
// A segment object holds the segment's bytes exactly as the local log has
// them (Kafka record batches); the archive neither parses nor rewrites them.
// A transaction index object (txnindex.go) holds the aborted transactions
// that overlap the segment, in the broker's format (internal/broker,
// tier_txn.go, draws and checks it): Kafka's .txnindex, which KIP-405
// uploads with each segment, so read_committed reads of archived offsets
// learn which records to skip after the broker's in-memory index is gone.
// The archive stores its bytes opaquely and verifies the size and CRC-32C
// the manifest records. An empty index (no aborted transaction overlaps
// the segment; every segment of a topic without transactions) is recorded
// in the manifest without an object.
//
// # Manifest
//
// One object per partition, replaced whole with each change (a new
// generation is written with Put, which is atomic on both backends: rename
// on file://, a single PUT on S3). Big-endian:
//
//	0       4       6       8              16             24        28
//	+-------+-------+-------+--------------+--------------+---------+
//	|"WARM" |version| flags |  generation  | start offset |  count  |  header, 28 bytes
//	+-------+-------+-------+--------------+--------------+---------+
//	| count segment entries of 72 bytes each, by base offset:        |
//	| +-----------+-----------+---------+---------+------+------+------+-----------+
//	| |base offset|last offset|first ts |max ts   |size  |crc32c|zero  |upload time|
//	| |  int64    |  int64    |int64 ms |int64 ms |int64 |uint32|uint32|int64 ms   |
//	| +-----------+-----------+---------+---------+------+------+------+-----------+
//	| |txn index size|txn index crc32c|entry flags|                   (version 2 only)
//	| |    int64     |     uint32     |  uint32   |
//	| +--------------+----------------+-----------+
//	+---------------------------------------------------------------+
//	| crc32c (Castagnoli) of every byte before it, uint32            |  trailer, 4 bytes
//	+---------------------------------------------------------------+
//
// version is 2; flags and the zero word are 0. Entry flags bit 0 says the
// entry records its transaction index (size 0: no object); without it the
// size and CRC are 0. Version 1 manifests, written before transaction
// indexes, have 56-byte entries (no last row) and are still read: their
// segments record no transaction index (Segment.TxnIndex false), which
// tells the broker it must not take their aborted transactions from the
// archive (it falls back to its in-memory index, which after a restart
// knows none of them: see internal/broker, tier_txn.go). The next change
// to such a partition stores version 2, so a Weir that predates version 2
// cannot read it any more. The generation rises by one
// with every change. A decoder accepts only a manifest that satisfies the
// invariants Add keeps: entries contiguous (each base is the previous last
// + 1: no gap, no overlap), base <= last, size >= 0, and when there are
// entries, first.base <= start offset <= first.last. The readable range is
// [start offset, last entry's last offset].
//
// # Uploads
//
// UploadSegment checks that the segment may be added (Manifest.Add) before
// it sends a byte, writes the segment's transaction index object (when
// given and not empty), writes (or links) the segment object while
// computing its CRC-32C (of a link: by reading the file once it is in
// place), and only once both objects are complete writes the next
// manifest generation that names them. A crash or error in between leaves an orphan object that
// the retry overwrites (same key) or Sweep removes; the manifest never
// names an incomplete object and never has a gap or an overlap. A gap is
// accepted only when the caller says, through SegmentMeta.LogStartOffset,
// that the local log start moved past it (retention or DeleteRecords): the
// manifest then restarts at the new start offset.
//
// ReadSegment returns a reader that verifies the size and CRC-32C from the
// manifest as it reaches the end: a corrupted or truncated object ends in
// an error wrapping ErrCorrupt, never in io.EOF. ReadTxnIndex reads a
// transaction index whole (bounded by Options.MaxTxnIndexBytes) and checks
// it the same way. Trim deletes the transaction indexes of the segments it
// drops; Sweep keeps those the manifest names and deletes orphans.
//
// # Concurrency
//
// An Archive and every Backend are safe for concurrent use. Changes to one
// partition (UploadSegment, Trim, Sweep) are serialised inside the Archive;
// across processes, one owner (the partition leader) may change a
// partition's archive at a time. Every call is bounded by its context.
//
// # Imports
//
// archive is storage: it imports internal/vfs and internal/batch of Weir
// (enforced by internal/archtest), plus the AWS SDK, and nothing of the
// broker or the Kafka protocol.
package archive
