package stream

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Serde turns values of T into record bytes and back. Users implement it
// for formats the package does not ship (Avro, Protobuf, ...). Encode and
// Decode must be safe to call from one goroutine at a time per task; the
// shipped serdes hold no state at all.
type Serde[T any] interface {
	Encode(v T) ([]byte, error)
	Decode(b []byte) (T, error)
}

// HeaderSerde is a Serde whose format also uses the record's headers, as
// the CloudEvents Kafka binding's binary content mode does (attributes in
// ce_ headers, data in the value). Where a value serde implements it,
// Source, To, repartition topics and streamtest call EncodeHeaders and
// DecodeHeaders instead of Encode and Decode. Key serdes never see
// headers, and headers do not travel through operators: a sink writes the
// headers its own value serde makes.
type HeaderSerde[T any] interface {
	Serde[T]
	EncodeHeaders(v T) (value []byte, headers []kgo.RecordHeader, err error)
	DecodeHeaders(value []byte, headers []kgo.RecordHeader) (T, error)
}

// EncodeValue encodes a record value with s, using its headers when s is a
// HeaderSerde.
func EncodeValue[T any](s Serde[T], v T) ([]byte, []kgo.RecordHeader, error) {
	if hs, ok := s.(HeaderSerde[T]); ok {
		return hs.EncodeHeaders(v)
	}
	b, err := s.Encode(v)
	return b, nil, err
}

// DecodeValue decodes a record value with s, passing the record's headers
// when s is a HeaderSerde.
func DecodeValue[T any](s Serde[T], value []byte, headers []kgo.RecordHeader) (T, error) {
	if hs, ok := s.(HeaderSerde[T]); ok {
		return hs.DecodeHeaders(value, headers)
	}
	return s.Decode(value)
}

// Bytes passes record bytes through unchanged.
func Bytes() Serde[[]byte] { return bytesSerde{} }

// String encodes a string as its UTF-8 bytes; a null key or value decodes
// as "".
func String() Serde[string] { return stringSerde{} }

// Int64 encodes an int64 as 8 big-endian bytes (Kafka's LongSerializer); a
// null decodes as 0.
func Int64() Serde[int64] { return int64Serde{} }

// JSON encodes T with encoding/json; a null decodes as T's zero value.
func JSON[T any]() Serde[T] { return jsonSerde[T]{} }

type bytesSerde struct{}

func (bytesSerde) Encode(v []byte) ([]byte, error) { return v, nil }
func (bytesSerde) Decode(b []byte) ([]byte, error) { return b, nil }

type stringSerde struct{}

func (stringSerde) Encode(v string) ([]byte, error) { return []byte(v), nil }
func (stringSerde) Decode(b []byte) (string, error) { return string(b), nil }

type int64Serde struct{}

func (int64Serde) Encode(v int64) ([]byte, error) {
	return binary.BigEndian.AppendUint64(nil, uint64(v)), nil
}

func (int64Serde) Decode(b []byte) (int64, error) {
	switch len(b) {
	case 0:
		return 0, nil
	case 8:
		return int64(binary.BigEndian.Uint64(b)), nil
	}
	return 0, fmt.Errorf("stream: int64 serde: %d bytes, want 8", len(b))
}

type jsonSerde[T any] struct{}

func (jsonSerde[T]) Encode(v T) ([]byte, error) { return json.Marshal(v) }

func (jsonSerde[T]) Decode(b []byte) (T, error) {
	var v T
	if b == nil {
		return v, nil
	}
	err := json.Unmarshal(b, &v)
	return v, err
}

// WindowedSerde encodes a Windowed key as the inner key's bytes followed by
// the window start and end, each 8 big-endian bytes of Unix milliseconds:
//
//	+-------------+----------------+--------------+
//	| inner key   | start (int64)  | end (int64)  |
//	+-------------+----------------+--------------+
func WindowedSerde[K any](inner Serde[K]) Serde[Windowed[K]] { return windowedSerde[K]{inner} }

type windowedSerde[K any] struct{ inner Serde[K] }

func (s windowedSerde[K]) Encode(w Windowed[K]) ([]byte, error) {
	b, err := s.inner.Encode(w.Key)
	if err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint64(b, uint64(w.Start.UnixMilli()))
	return binary.BigEndian.AppendUint64(b, uint64(w.End.UnixMilli())), nil
}

func (s windowedSerde[K]) Decode(b []byte) (Windowed[K], error) {
	var w Windowed[K]
	if len(b) < 16 {
		return w, fmt.Errorf("stream: windowed serde: %d bytes, want at least 16", len(b))
	}
	n := len(b) - 16
	k, err := s.inner.Decode(b[:n])
	if err != nil {
		return w, err
	}
	w.Key = k
	w.Start = msTime(int64(binary.BigEndian.Uint64(b[n:])))
	w.End = msTime(int64(binary.BigEndian.Uint64(b[n+8:])))
	return w, nil
}
