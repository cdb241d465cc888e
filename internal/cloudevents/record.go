package cloudevents

import (
	"encoding/json"
	"fmt"
	"mime"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/weirhq/weir/internal/batch"
)

// Kafka protocol binding names.
const (
	headerPrefix      = "ce_"
	headerContentType = "content-type"
	// PartitionKeyExtension is the partitioning extension whose value
	// becomes the Kafka record key.
	PartitionKeyExtension = "partitionkey"

	// RecordType, and source /topics/{topic}, describe a record produced
	// without ce_ headers.
	RecordType = "weir.record"
)

// eventToRecord maps ev onto a Kafka record in binary content mode. ev has
// passed validation.
func eventToRecord(ev *event.Event) (batch.Record, error) {
	hdrs := make([]batch.RecordHeader, 0, 8+len(ev.Extensions()))
	add := func(k, v string) { hdrs = append(hdrs, batch.RecordHeader{Key: k, Value: []byte(v)}) }
	add(headerPrefix+"specversion", event.CloudEventsVersionV1)
	add(headerPrefix+"id", ev.ID())
	add(headerPrefix+"source", ev.Source())
	add(headerPrefix+"type", ev.Type())
	if s := ev.Subject(); s != "" {
		add(headerPrefix+"subject", s)
	}
	if t := ev.Time(); !t.IsZero() {
		add(headerPrefix+"time", types.FormatTime(t))
	}
	if s := ev.DataSchema(); s != "" {
		add(headerPrefix+"dataschema", s)
	}
	if ct := ev.DataContentType(); ct != "" {
		add(headerContentType, ct)
	}
	exts := ev.Extensions()
	names := make([]string, 0, len(exts))
	for n := range exts {
		names = append(names, n)
	}
	sort.Strings(names)
	var key []byte
	for _, n := range names {
		v, err := types.Format(exts[n])
		if err != nil {
			return batch.Record{}, fmt.Errorf("extension %q: %w", n, err)
		}
		add(headerPrefix+n, v)
		if n == PartitionKeyExtension && v != "" {
			key = []byte(v)
		}
	}
	r := batch.Record{Key: key, Headers: hdrs}
	if ev.DataEncoded != nil {
		r.Value = ev.DataEncoded
	}
	return r, nil
}

// recordToEvent reads a stored record as an event: from its ce_ headers
// when it has a valid set, else as a weir.record event naming its position.
func recordToEvent(topic string, partition int32, offset, timestamp int64, r batch.Record) event.Event {
	if ev, ok := headersToEvent(r); ok {
		return ev
	}
	ev := event.New(event.CloudEventsVersionV1)
	ev.SetID(fmt.Sprintf("%s/%d/%d", topic, partition, offset))
	ev.SetSource("/topics/" + topic)
	ev.SetType(RecordType)
	if timestamp >= 0 {
		ev.SetTime(time.UnixMilli(timestamp))
	}
	ct := ""
	for _, h := range r.Headers {
		if strings.EqualFold(h.Key, headerContentType) && validString(string(h.Value)) {
			if _, _, err := mime.ParseMediaType(string(h.Value)); err == nil {
				ct = string(h.Value)
			}
		}
	}
	if ct != "" {
		ev.SetDataContentType(ct)
	}
	if len(r.Key) > 0 && validString(string(r.Key)) {
		ev.SetExtension(PartitionKeyExtension, string(r.Key))
	}
	setEgressData(&ev, r.Value)
	return ev
}

// headersToEvent builds the event a record's ce_ headers describe; ok is
// false when they are absent or do not make a valid CloudEvents 1.0 event.
func headersToEvent(r batch.Record) (event.Event, bool) {
	attrs := map[string]string{}
	ct, hasCT := "", false
	for _, h := range r.Headers {
		switch {
		case strings.HasPrefix(h.Key, headerPrefix):
			name := h.Key[len(headerPrefix):]
			if _, dup := attrs[name]; dup || h.Value == nil || checkName(name) != nil {
				return event.Event{}, false
			}
			attrs[name] = string(h.Value)
		case strings.EqualFold(h.Key, headerContentType) && h.Value != nil:
			ct, hasCT = string(h.Value), true
		}
	}
	if attrs["specversion"] != event.CloudEventsVersionV1 {
		return event.Event{}, false
	}
	if hasCT {
		attrs["datacontenttype"] = ct
	}
	ev, err := buildEvent(attrs, nil)
	if err != nil {
		return event.Event{}, false
	}
	if _, ok := attrs[PartitionKeyExtension]; !ok && len(r.Key) > 0 && validString(string(r.Key)) {
		ev.SetExtension(PartitionKeyExtension, string(r.Key))
	}
	setEgressData(&ev, r.Value)
	return ev, true
}

// setEgressData sets data so that the JSON format can carry it: JSON data
// inline, text as a string, anything else as data_base64.
func setEgressData(ev *event.Event, data []byte) {
	if data == nil {
		return
	}
	ev.DataEncoded = data
	mt := mediaType(ev.DataContentType())
	switch {
	case (mt == "" || isJSONMedia(mt)) && json.Valid(data):
		ev.DataBase64 = false
	case mt != "" && !isJSONMedia(mt) && isTextMedia(mt) && utf8.Valid(data):
		ev.DataBase64 = false
	default:
		ev.DataBase64 = true
	}
}

// mediaType returns the lower-cased media type of a content type, without
// parameters.
func mediaType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// isJSONMedia reports whether data of media type mt is JSON, as the
// CloudEvents JSON format decides it.
func isJSONMedia(mt string) bool {
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}

// isTextMedia reports whether data of media type mt is text the JSON format
// carries as a string.
func isTextMedia(mt string) bool {
	return strings.HasPrefix(mt, "text/") || mt == "application/xml" || strings.HasSuffix(mt, "+xml")
}

// partitionFor picks the partition of a keyed record as Kafka's default
// partitioner does: murmur2 of the key, made positive, modulo the count.
func partitionFor(key []byte, partitions int) int32 {
	return int32(int(murmur2(key)&0x7fffffff) % partitions)
}

// murmur2 is Kafka's murmur2 hash (org.apache.kafka.common.utils.Utils).
func murmur2(data []byte) int32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}
