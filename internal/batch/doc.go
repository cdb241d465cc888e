// Package batch views a Kafka RecordBatch (magic v2) as bytes.
//
// Storage keeps batches exactly as producers sent them, so on the hot path
// this package never re-encodes a whole batch: it reads the fixed header in
// place ([ParseHeader]), checks a batch end to end ([Verify]), cuts a
// concatenation into batches ([Split]) and patches the few fields a broker
// owns ([SetBaseOffset], [SetPartitionLeaderEpoch], [SetLogAppendTime]).
// Reading records ([Records]) decompresses within a hard bound, and
// [Builder] writes new batches for internal topics and tests.
//
// # Batch layout
//
// All integers are big-endian. BatchLength counts the bytes after its own
// field, so a whole batch is BatchLength+12 bytes. The CRC is CRC-32C
// (Castagnoli) over everything from Attributes to the end, which is why
// BaseOffset and PartitionLeaderEpoch can be rewritten without touching it.
//
//	 offset  size  field
//	+------+-----+---------------------------+
//	|    0 |   8 | BaseOffset                |  int64
//	|    8 |   4 | BatchLength               |  int32, bytes after this field
//	|   12 |   4 | PartitionLeaderEpoch      |  int32
//	|   16 |   1 | Magic (= 2)               |  int8
//	|   17 |   4 | CRC                       |  uint32, CRC-32C of [21, end)
//	+------+-----+---------------------------+ <- CRC coverage starts
//	|   21 |   2 | Attributes                |  int16, bits below
//	|   23 |   4 | LastOffsetDelta           |  int32
//	|   27 |   8 | BaseTimestamp             |  int64, ms
//	|   35 |   8 | MaxTimestamp              |  int64, ms
//	|   43 |   8 | ProducerId                |  int64, -1 = none
//	|   51 |   2 | ProducerEpoch             |  int16
//	|   53 |   4 | BaseSequence              |  int32
//	|   57 |   4 | NumRecords                |  int32
//	+------+-----+---------------------------+
//	|   61 |   * | Records, compressed as a  |
//	|      |     | whole when codec != none  |
//	+------+-----+---------------------------+
//
//	Attributes: bit 15 ............ 6   5   4   3   2 1 0
//	                    unused      |   |   |   |   codec: 0 none, 1 gzip,
//	                    (6: delete  |   |   |   |   2 snappy, 3 lz4, 4 zstd
//	                    horizon)    |   |   |   timestamp type: 1 = LogAppendTime
//	                                |   |   transactional
//	                                |   control
//
// Each record is a varint-framed body. Varints are zigzag encoded as in
// protobuf; a length of -1 means null.
//
//	+---------------------+------------------------------------------+
//	| length         vint | bytes of the record after this field     |
//	| attributes     int8 | unused                                   |
//	| timestampDelta vlong| from BaseTimestamp                       |
//	| offsetDelta    vint | from BaseOffset                          |
//	| keyLen         vint | -1 = null key                            |
//	| key                 |                                          |
//	| valueLen       vint | -1 = null value                          |
//	| value               |                                          |
//	| headerCount    vint |                                          |
//	| headers             | headerCount times:                       |
//	|   keyLen       vint |   never null                             |
//	|   key               |                                          |
//	|   valueLen     vint |   -1 = null value                        |
//	|   value             |                                          |
//	+---------------------+------------------------------------------+
//
// # Concurrency
//
// Functions hold no state between calls and are safe for concurrent use on
// distinct buffers; the setters write into the caller's buffer. A [Builder]
// belongs to one goroutine. Decoders and encoders are pooled internally.
//
// # Dependencies
//
// batch imports the standard library and the codec modules only
// (klauspost/compress, pierrec/lz4); it must not import any other
// weir/internal package.
package batch
