package commitlog

import "time"

// Metrics receives observations of a log's data fsyncs, so that the owner
// can export them without this package depending on a metrics library.
// One Metrics may be shared by every log of a node; its functions must be
// safe for concurrent use. A nil *Metrics, or a nil field, records nothing.
type Metrics struct {
	// FsyncDuration observes how long each data fdatasync took (group
	// commits, and the syncs at roll and close).
	FsyncDuration func(time.Duration)
	// GroupCommitRecords observes how many records one fdatasync made
	// durable: the size of the group commit (0 for a sync that only
	// re-covered durable data).
	GroupCommitRecords func(records int64)
}

func (m *Metrics) observe(took time.Duration, records int64) {
	if m == nil {
		return
	}
	if m.FsyncDuration != nil {
		m.FsyncDuration(took)
	}
	if m.GroupCommitRecords != nil {
		m.GroupCommitRecords(max(records, 0))
	}
}
