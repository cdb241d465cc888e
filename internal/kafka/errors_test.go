package kafka

import (
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

func TestErrorCode(t *testing.T) {
	errTest := errors.New("test: no such topic")
	saved := errorCodes
	t.Cleanup(func() { errorCodes = saved })
	errorCodes = append(errorCodes[:len(errorCodes):len(errorCodes)], struct {
		target error
		code   int16
	}{errTest, kerr.UnknownTopicOrPartition.Code})

	for _, tc := range []struct {
		err  error
		want int16
	}{
		{nil, 0},
		{errTest, kerr.UnknownTopicOrPartition.Code},
		{fmt.Errorf("produce orders-0: %w", errTest), kerr.UnknownTopicOrPartition.Code},
		{kerr.NotLeaderForPartition, kerr.NotLeaderForPartition.Code},
		{fmt.Errorf("wrapped: %w", kerr.RequestTimedOut), kerr.RequestTimedOut.Code},
		{errors.New("disk on fire"), kerr.UnknownServerError.Code},
	} {
		if got := errorCode(tc.err); got != tc.want {
			t.Errorf("errorCode(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
