package group

import (
	"context"
	"time"
)

// StartCommit applies an OffsetCommit on the coordinator goroutine now
// (so later requests from the same connection see it) and returns a
// function that waits until the commit is durable and yields the result.
// The Kafka adapter calls StartCommit while handling the request and the
// returned function when writing the response.
func (s *Service) StartCommit(ctx context.Context, req CommitRequest) func(ctx context.Context) ([]error, error) {
	return s.persistThen(ctx, func(now time.Time) ([]error, []Record, error) { return s.m.Commit(now, req) })
}

// persistThen runs change on the coordinator goroutine now and appends
// the records it returns to the store; the returned function waits until
// they are durable (or the service stops) and yields change's results.
func (s *Service) persistThen(ctx context.Context, change func(now time.Time) ([]error, []Record, error)) func(ctx context.Context) ([]error, error) {
	type res struct {
		errs []error
		wait func(context.Context) error
		err  error
	}
	r, err := call(s, ctx, func(now time.Time) res {
		errs, recs, err := change(now)
		if err != nil || len(recs) == 0 || s.opts.Store == nil {
			return res{errs: errs, err: err}
		}
		wait, err := s.opts.Store.Append(recs)
		return res{errs: errs, wait: wait, err: err}
	})
	return func(ctx context.Context) ([]error, error) {
		switch {
		case err != nil:
			return nil, err
		case r.err != nil:
			return nil, r.err
		case r.wait != nil:
			if err := s.durable(ctx, r.wait); err != nil {
				return nil, err
			}
		}
		return r.errs, nil
	}
}
