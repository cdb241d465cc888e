// Package broker is Weir's core: topics and their partitions, produce
// (offsets, acks, idempotent producer sequences), fetch (high watermark,
// long-poll notification), list offsets, delete records and topic configs
// with Kafka's names.
//
// It stores data through commitlog and metadata through vfs, and knows
// nothing of the wire protocol: the kafka adapter translates requests into
// calls here and maps the sentinel errors below to Kafka error codes.
//
// # The write gate
//
// Every append enters through Produce (client writes, whatever the
// protocol), an InternalLog (the node's own state: consumer offsets,
// schemas, subscriptions) or WriteMarker (transaction markers, written for
// the transaction coordinator through MarkerWriter), and all end in one
// function, gate (gate.go),
// which applies every protection in one order: reserved topics, topic and
// partition existence, record checks (framing, max.message.bytes, control
// batches, compressed records, compression.type, timestamp bounds), the
// installed RecordValidator, idempotent-producer sequences, and the
// per-topic traffic counters. Partition has no exported append, so no
// write path can skip the gate from outside this package. Topic creation
// by clients (CreateTopic, EnsureTopic, TopicForWrite) applies Kafka's
// naming rules, the reserved names and the installed TopicPolicy.
//
// Each reserved topic is owned by one InternalLog (internal_log.go), which
// fixes its configs, creates it at start-up, repairs a pre-existing one,
// replays it and alone writes it.
//
// Control batches reach a log only through the gate's marker path: the
// gate refuses them from clients, and WriteMarker builds each marker
// itself (Kafka's format, drawn in txn_log.go). Markers may go to any
// partition, reserved ones included (transactional offset commits end in
// __consumer_offsets), and are checked against the producer's epoch and
// the coordinator epoch the partition last saw.
//
// # Transactions on the log
//
// A transactional batch opens its producer's transaction on the
// partition; a marker closes it, and an abort marker adds it to the
// partition's aborted-transactions index. The last stable offset
// (LastStableOffset) is the first offset of the oldest transaction not yet
// decided durably, at most the high watermark; read_committed readers
// (ReadCommittedBuf, ListOffsetAt) stop there and get the aborted
// transactions of their range from the index (AbortedTransactions). Both
// are in memory, rebuilt at open by the walk over the log that rebuilds
// idempotent-producer state (txn_log.go says what it costs), and the index
// is pruned below the log start by retention and DeleteRecords. A
// partition without transactions pays one atomic load for its LSO. For
// offsets only the archive holds, the aborted transactions come from the
// transaction index uploaded with each segment (below).
//
// # Tiered storage
//
// With Options.Remote set, topics with remote.storage.enable=true are
// tiered (tier.go, uploader.go): one uploader goroutine copies sealed
// segments to the RemoteStorage in offset order, local.retention.* deletes
// only segments the archive holds, retention.* trims the archive, and
// reads below the local log start (Read, ReadBuf, ReadCommittedBuf,
// ListOffset) are served from local copies of archived segments, each
// downloaded once into a byte-bounded on-disk cache (remote_cache.go).
// LogStartOffset is then the archive's start; LocalLogStartOffset
// the local one. The broker declares RemoteStorage; internal/server adapts
// internal/archive to it, so broker never imports archive.
//
// Each segment is uploaded, once every transaction in it is decided (its
// last offset below the LSO), with its transaction index: the aborted
// transactions overlapping it, in a checksummed format drawn in
// tier_txn.go, which the archive stores beside the segment and records in
// its manifest entry. read_committed reads of archived offsets load it
// lazily, per segment, into a bounded cache, so they skip aborted records
// after a restart too; a damaged index fails the read, never serves
// aborted records as committed. Producer snapshots are not uploaded
// (tier_txn.go says why).
//
// # On-disk layout (under Options.Dir)
//
//	topics/<topic-id>.json    one file per topic: name, id, partitions, configs
//	                          (replaced atomically: temp, fsync, rename, fsync dir)
//	logs/<topic-id>/<p>/      one commitlog directory per partition
//	producer-ids              next free producer id block { int64 | crc32c }
//	cluster-id                the cluster id (22 characters, base64url)
//	lock                      locked (flock) while a broker has the directory
//	remote-cache/             local copies of archived segments for reads below
//	                          the local log start (a cache: wiped at open)
//	                          open; holds its pid, for a second Open's error
//
// Open locks the directory first and Close releases it last, so two
// brokers never share one: a second Open, in this process or another,
// fails at once with ErrDirLocked. A killed broker's lock goes with its
// process.
//
// A topic exists once its metadata file is durable; log directories without
// one (an interrupted create or delete) are removed at open. Topic deletion
// removes the metadata file first, so a crash never resurrects a topic.
// Files are named by the topic's id (32 hex digits), never its name, which
// may be 249 bytes long. Earlier versions wrote topics/<name>.json; Open
// moves such a file to <topic-id>.json (the new file durable first, then
// the old one removed), and a crash part-way leaves both, which the next
// Open resolves the same way.
//
// # Concurrency
//
// The topic table is guarded by one RWMutex; each partition serialises its
// idempotence checks and appends with its own mutex, and readers go
// straight to the commitlog, which never blocks them on appends.
//
// broker must not import kafka, server, archive, franz-go or net/http.
package broker
