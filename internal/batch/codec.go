package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// decompress returns the records encoded in src with codec c, refusing to
// produce more than limit bytes. Whatever the input claims, no codec grows
// a buffer by copying or allocates output beyond limit plus a few bytes.
// The decoders' working memory, pooled, is bounded apart from that: an lz4
// block (up to 4 MiB), zstd blocks (128 KiB) and, when a zstd stream must be
// counted, its window (up to 8 MiB).
func decompress(c Codec, src []byte, limit int) ([]byte, error) {
	limit = max(0, min(limit, math.MaxInt32))
	var (
		out []byte
		err error
	)
	switch c {
	case CodecNone:
		return src, nil
	case CodecGzip:
		out, err = gunzip(src, limit)
	case CodecSnappy:
		out, err = unsnappy(src, limit)
	case CodecLZ4:
		out, err = unlz4(src, limit)
	case CodecZstd:
		out, err = unzstd(src, limit)
	default:
		return nil, fmt.Errorf("%w: %s", ErrUnsupportedCodec, c)
	}
	switch {
	case errors.Is(err, ErrTooLarge):
		return nil, err
	case err != nil:
		return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, c, err)
	}
	return out, nil
}

// errTooLarge is the error for output past limit.
func errTooLarge(c Codec, limit int) error {
	return fmt.Errorf("%w: %s records decompress to more than %d bytes", ErrTooLarge, c, limit)
}

// readBounded decompresses a stream into a buffer of exactly its size, or
// fails with ErrTooLarge past limit bytes, allocating no more than limit
// plus a little in either case. open starts (or restarts) the stream and
// scratch is a buffer to count into.
//
// A hint, the size the stream claims, is tried first: when it is right the
// data is read once into hint+1 bytes, the extra byte showing the end came
// where claimed. Otherwise the stream is counted through scratch up to limit
// and decompressed again into a buffer of the counted size, trading a second
// pass for never growing a buffer by copying.
func readBounded(c Codec, open func() (io.Reader, error), scratch []byte, limit, hint int) ([]byte, error) {
	r, err := open()
	if err != nil {
		return nil, err
	}
	total := 0
	if hint > 0 {
		buf := make([]byte, min(hint, limit)+1)
		var p progress
		for total < len(buf) {
			n, err := r.Read(buf[total:])
			total += n
			if err == io.EOF {
				return buf[:total], nil // total <= min(hint, limit)
			}
			if err == nil {
				err = p.check(n)
			}
			if err != nil {
				return nil, err
			}
		}
		if total > limit {
			return nil, errTooLarge(c, limit)
		}
		// The hint was low: count the rest.
	}
	if total, err = countRest(c, r, scratch, total, limit); err != nil {
		return nil, err
	}
	if r, err = open(); err != nil {
		return nil, err
	}
	out := make([]byte, total)
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, err
	}
	return out, nil
}

// countRest reads r to its end through scratch and returns total plus the
// bytes read, or ErrTooLarge once that passes limit.
func countRest(c Codec, r io.Reader, scratch []byte, total, limit int) (int, error) {
	var p progress
	for {
		n, err := r.Read(scratch)
		if total += n; total > limit {
			return 0, errTooLarge(c, limit)
		}
		if err == io.EOF {
			return total, nil
		}
		if err == nil {
			err = p.check(n)
		}
		if err != nil {
			return 0, err
		}
	}
}

// progress guards read loops against a reader that keeps returning
// nothing, which io.Reader allows but discourages.
type progress int

func (p *progress) check(n int) error {
	switch {
	case n > 0:
		*p = 0
	case *p == 100:
		return io.ErrNoProgress
	default:
		*p++
	}
	return nil
}

// scratchSize is the buffer readBounded counts through.
const scratchSize = 32 << 10

// gzipReader pairs a pooled gzip reader with the bytes.Reader it reads.
type gzipReader struct {
	gz      gzip.Reader
	src     bytes.Reader
	scratch [scratchSize]byte
}

var gzipReaders = sync.Pool{New: func() any { return new(gzipReader) }}

func gunzip(src []byte, limit int) ([]byte, error) {
	z := gzipReaders.Get().(*gzipReader)
	defer func() {
		z.src.Reset(nil)
		gzipReaders.Put(z)
	}()
	// A gzip member ends with its uncompressed size mod 2^32: for honest
	// streams the exact size, so a good hint. The trailer may be garbage,
	// so a size past the limit proves nothing and the stream is counted.
	hint := 0
	if len(src) >= 18 {
		if isize := binary.LittleEndian.Uint32(src[len(src)-4:]); uint64(isize) <= uint64(limit) {
			hint = int(isize)
		}
	}
	open := func() (io.Reader, error) {
		z.src.Reset(src)
		return &z.gz, z.gz.Reset(&z.src)
	}
	return readBounded(CodecGzip, open, z.scratch[:], limit, hint)
}

// lz4Reader pairs a pooled lz4 frame reader with the bytes.Reader it reads.
type lz4Reader struct {
	lz      *lz4.Reader
	src     bytes.Reader
	scratch [scratchSize]byte
}

var lz4Readers = sync.Pool{New: func() any { return &lz4Reader{lz: lz4.NewReader(nil)} }}

// unlz4 has no size to go by (the Java client leaves the optional content
// size out of the frame), so it always counts first; lz4 decodes fast.
func unlz4(src []byte, limit int) ([]byte, error) {
	z := lz4Readers.Get().(*lz4Reader)
	defer func() {
		z.lz.Reset(nil)
		z.src.Reset(nil)
		lz4Readers.Put(z)
	}()
	open := func() (io.Reader, error) {
		z.src.Reset(src)
		z.lz.Reset(&z.src)
		return z.lz, nil
	}
	return readBounded(CodecLZ4, open, z.scratch[:], limit, 0)
}

// xerialMagic starts the snappy framing of the Java xerial library, which
// the Java client writes: the magic, version and compatible version as
// int32s, then chunks of int32 length and raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderSize = 16

// unsnappy decodes a raw snappy block, as librdkafka and franz-go write, or
// xerial framing. Every block states its decoded length up front, so the
// whole output is sized and bounded before anything is decoded.
func unsnappy(src []byte, limit int) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) || len(src) < xerialHeaderSize {
		n, err := s2.DecodedLen(src)
		if err != nil {
			return nil, err
		}
		if n > limit {
			return nil, errTooLarge(CodecSnappy, limit)
		}
		return s2.Decode(make([]byte, n), src)
	}
	chunks := src[xerialHeaderSize:]
	total := 0
	for rest := chunks; len(rest) > 0; {
		chunk, next, err := xerialChunk(rest)
		if err != nil {
			return nil, err
		}
		n, err := s2.DecodedLen(chunk)
		if err != nil {
			return nil, err
		}
		if total += n; total > limit {
			return nil, errTooLarge(CodecSnappy, limit)
		}
		rest = next
	}
	out := make([]byte, total)
	for at := 0; len(chunks) > 0; {
		chunk, next, _ := xerialChunk(chunks)
		n, _ := s2.DecodedLen(chunk)
		if _, err := s2.Decode(out[at:at+n], chunk); err != nil {
			return nil, err
		}
		at += n
		chunks = next
	}
	return out, nil
}

var errXerial = errors.New("malformed xerial snappy chunk")

// xerialChunk splits the first length-prefixed chunk off b.
func xerialChunk(b []byte) (chunk, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, errXerial
	}
	n := int64(int32(binary.BigEndian.Uint32(b)))
	if n < 0 || n > int64(len(b)-4) {
		return nil, nil, errXerial
	}
	return b[4 : 4+n], b[4+n:], nil
}

// appendWriter is an io.Writer appending to a slice, so compressors write
// straight into the batch being built.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

var (
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	lz4Writers  = sync.Pool{New: func() any {
		w := lz4.NewWriter(nil)
		// The Java client writes 64 KiB blocks; readers then need
		// only 64 KiB buffers.
		if err := w.Apply(lz4.BlockSizeOption(lz4.Block64Kb)); err != nil {
			panic(err) // a constant option
		}
		return w
	}}
	zstdEncoder = sync.OnceValue(func() *zstd.Encoder {
		// A small window, as franz-go uses, keeps decoders' memory small
		// and costs little on batch-sized inputs.
		e, err := zstd.NewWriter(nil, zstd.WithWindowSize(64<<10), zstd.WithZeroFrames(true))
		if err != nil {
			panic(err) // a constant option
		}
		return e
	})
)

// compress appends src compressed with c to dst.
func compress(dst []byte, c Codec, src []byte) ([]byte, error) {
	switch c {
	case CodecNone:
		return append(dst, src...), nil
	case CodecSnappy:
		// A raw block, as librdkafka and franz-go write; the Java
		// reader takes it as well as its own xerial framing.
		n := s2.MaxEncodedLen(len(src))
		if n < 0 {
			return nil, fmt.Errorf("%w: %d bytes for snappy", ErrTooLarge, len(src))
		}
		dst = slices.Grow(dst, n)
		enc := s2.EncodeSnappy(dst[len(dst):len(dst)+n], src)
		return dst[:len(dst)+len(enc)], nil
	case CodecZstd:
		return zstdEncoder().EncodeAll(src, dst), nil
	case CodecGzip:
		w := &appendWriter{b: dst}
		z := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(z)
		z.Reset(w)
		if _, err := z.Write(src); err != nil {
			return nil, err
		}
		err := z.Close()
		z.Reset(nil)
		return w.b, err
	case CodecLZ4:
		w := &appendWriter{b: dst}
		z := lz4Writers.Get().(*lz4.Writer)
		defer lz4Writers.Put(z)
		z.Reset(w)
		if _, err := z.Write(src); err != nil {
			return nil, err
		}
		err := z.Close()
		z.Reset(nil)
		return w.b, err
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupportedCodec, c)
}
