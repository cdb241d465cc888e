package commitlog

import "errors"

// Sentinel errors; callers classify with errors.Is.
var (
	// ErrInvalidBatch: an appended batch failed validation (format, CRC,
	// counts). Wraps the batch package's error.
	ErrInvalidBatch = errors.New("commitlog: invalid record batch")
	// ErrOffsetOutOfRange: a read or DeleteRecords named an offset outside
	// [log start, high watermark].
	ErrOffsetOutOfRange = errors.New("commitlog: offset out of range")
	// ErrStorage: the log failed (fsync or write error) and refuses appends
	// until reopened.
	ErrStorage = errors.New("commitlog: storage error")
	// ErrCorrupt: damage found where recovery must not truncate (a sealed
	// segment, or a gap in offsets).
	ErrCorrupt = errors.New("commitlog: corrupt log")
	// ErrClosed: the log is closed.
	ErrClosed = errors.New("commitlog: log closed")
	// ErrTooLarge: a batch is larger than a segment can hold.
	ErrTooLarge = errors.New("commitlog: batch larger than segment")
)
