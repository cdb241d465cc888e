package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// posKind is what a --from/--to position names.
type posKind int

const (
	posStart  posKind = iota // the log start offset
	posEnd                   // the high watermark: only new records
	posOffset                // an absolute offset, clamped to the log
	posTime                  // the first record at or after a time
	posShift                 // relative to the committed offset (seek only)
)

// position is a parsed --from (consume) or --to (group seek).
type position struct {
	kind   posKind
	offset int64 // posOffset, posShift
	millis int64 // posTime
}

// positionHelp documents the forms parsePosition accepts.
const positionHelp = `beginning (or start, earliest, oldest), end (or latest, newest), an offset (42), ` +
	`a time (RFC 3339 "2025-01-02T15:04:05Z", a date "2025-01-02", Unix milliseconds "@1735830245000", ` +
	`or a duration ago "-10m")`

// parsePosition parses s; allowShift admits "+N" and "-N", relative to the
// group's committed offset.
func parsePosition(s string, now time.Time, allowShift bool) (position, error) {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "beginning", "start", "earliest", "oldest", "first":
		return position{kind: posStart}, nil
	case "end", "latest", "newest", "last":
		return position{kind: posEnd}, nil
	}
	if strings.HasPrefix(s, "@") {
		ms, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil || ms < 0 {
			return position{}, fmt.Errorf("position %q: want @<Unix milliseconds>", s)
		}
		return position{kind: posTime, millis: ms}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
			if !allowShift {
				return position{}, fmt.Errorf("position %q: want %s", s, positionHelp)
			}
			return position{kind: posShift, offset: n}, nil
		}
		return position{kind: posOffset, offset: n}, nil
	}
	if strings.HasPrefix(s, "-") {
		if d, err := time.ParseDuration(s[1:]); err == nil {
			return position{kind: posTime, millis: now.Add(-d).UnixMilli()}, nil
		}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return position{kind: posTime, millis: t.UnixMilli()}, nil
		}
	}
	want := positionHelp
	if allowShift {
		want += `, or a shift from the committed offset ("+5", "-5")`
	}
	return position{}, fmt.Errorf("position %q: want %s", s, want)
}

// partitionBounds are a partition's log start offset and high watermark.
type partitionBounds struct{ start, end int64 }

// listBounds lists start and end offsets of topics' partitions.
func listBounds(ctx context.Context, a *app, adm *kadm.Client, topics ...string) (map[string]map[int32]partitionBounds, error) {
	return listBoundsAt(ctx, a, adm, false, topics...)
}

// listBoundsAt is listBounds for a reader that reads committed data only
// when committed: the end is then each partition's last stable offset.
func listBoundsAt(ctx context.Context, a *app, adm *kadm.Client, committed bool, topics ...string) (map[string]map[int32]partitionBounds, error) {
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return nil, a.explain("list offsets", err)
	}
	list := adm.ListEndOffsets
	if committed {
		list = adm.ListCommittedOffsets
	}
	ends, err := list(ctx, topics...)
	if err != nil {
		return nil, a.explain("list offsets", err)
	}
	out := map[string]map[int32]partitionBounds{}
	var ferr error
	starts.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			if ferr == nil {
				ferr = topicError(o.Topic, o.Err, "")
			}
			return
		}
		e, ok := ends.Lookup(o.Topic, o.Partition)
		if !ok || e.Err != nil {
			if ferr == nil {
				ferr = topicError(o.Topic, e.Err, "")
			}
			return
		}
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]partitionBounds{}
		}
		out[o.Topic][o.Partition] = partitionBounds{o.Offset, e.Offset}
	})
	return out, ferr
}

// resolve turns pos into one offset per partition of topic, within the log.
// committed (may be nil) holds the group's offsets for posShift.
func (pos position) resolve(ctx context.Context, a *app, adm *kadm.Client, topic string,
	bounds map[int32]partitionBounds, committed map[int32]int64) (map[int32]int64, error) {
	out := make(map[int32]int64, len(bounds))
	var atTime kadm.ListedOffsets
	if pos.kind == posTime {
		var err error
		if atTime, err = adm.ListOffsetsAfterMilli(ctx, pos.millis, topic); err != nil {
			return nil, a.explain("list offsets by time", err)
		}
	}
	for p, b := range bounds {
		var o int64
		switch pos.kind {
		case posStart:
			o = b.start
		case posEnd:
			o = b.end
		case posOffset:
			o = pos.offset
		case posTime:
			o = b.end
			if l, ok := atTime.Lookup(topic, p); ok && l.Err == nil && l.Offset >= 0 {
				o = l.Offset
			}
		case posShift:
			c, ok := committed[p]
			if !ok {
				c = b.start
			}
			o = c + pos.offset
		}
		out[p] = min(max(o, b.start), b.end)
	}
	return out, nil
}
