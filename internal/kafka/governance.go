package kafka

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/weirhq/weir/internal/broker"
)

// errorRecords returns the produce response's per-record errors (v8+) for
// err, nil unless the broker's gate refused individual records.
func errorRecords(err error) []kmsg.ProduceResponseTopicPartitionErrorRecord {
	var re *broker.RecordErrors
	if !errors.As(err, &re) {
		return nil
	}
	out := make([]kmsg.ProduceResponseTopicPartitionErrorRecord, 0, len(re.Records))
	for _, r := range re.Records {
		er := kmsg.NewProduceResponseTopicPartitionErrorRecord()
		er.RelativeOffset = r.Index
		msg := r.Message
		er.ErrorMessage = &msg
		out = append(out, er)
	}
	return out
}
