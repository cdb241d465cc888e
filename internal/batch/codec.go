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
// produce more than limit bytes. Whatever the input claims, no codec
// allocates an output buffer larger than limit plus a few bytes, and the
// decoders' own working memory is bounded (at most an lz4 block, 4 MiB).
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
		for total < len(buf) {
			n, err := r.Read(buf[total:])
			total += n
			if err == io.EOF {
				return buf[:total], nil // total <= min(hint, limit)
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
	for {
		n, err := r.Read(scratch)
		if total += n; total > limit {
			return nil, errTooLarge(c, limit)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
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
	// A gzip member ends with its uncompressed size mod 2^32, a hint for
	// honest streams. One past the limit (which is under 2^31) would prove
	// the stream too large, were the trailer not just as likely garbage, so
	// such streams are counted.
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

// zstdDecoder serves DecodeAll calls concurrently. With the cap limit on it
// decodes into the capacity it is given and no further, which makes the
// caller's buffer the bound; without frames to write into, it holds no
// per-window buffers either.
var zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		panic(err) // only bad options fail, and these are constants
	}
	return d
})

// zstdSlack is room past the output the decoder may use for its fast
// copies; length checks keep the limit exact.
const zstdSlack = 32

// zstdMaxBlock is the most one zstd block can decode to.
const zstdMaxBlock = 128 << 10

// unzstd decodes into one buffer sized by zstdBound, or by the limit when
// the bound is larger, so it allocates the output once and never more than
// the limit (plus the slack and the decoder's block buffers). Declared
// sizes past the limit fail before anything is allocated.
func unzstd(src []byte, limit int) ([]byte, error) {
	bound, exact, err := zstdBound(src)
	if err != nil {
		return nil, err
	}
	if exact && bound > uint64(limit) {
		return nil, errTooLarge(CodecZstd, limit)
	}
	size := int(min(bound, uint64(limit)))
	out, err := zstdDecoder().DecodeAll(src, make([]byte, 0, size+zstdSlack))
	switch {
	case err == nil && len(out) <= limit:
		return out, nil
	case err == nil:
		return nil, errTooLarge(CodecZstd, limit)
	case bound <= uint64(limit) || out == nil:
		return nil, err // it had all the room the frames can need
	case errors.Is(err, zstd.ErrDecoderSizeExceeded) || cap(out)-len(out) < zstdMaxBlock+zstdSlack:
		// Running out of room surfaces as ErrDecoderSizeExceeded or, from
		// inside a block, as a plain error, with out holding the blocks
		// decoded before.
		return nil, errTooLarge(CodecZstd, limit)
	}
	return nil, err
}

var errZstdFrames = errors.New("malformed zstd frames")

// zstdBound walks the frames and block headers of src, without decoding,
// for an upper bound of its decoded size: a frame's declared content size,
// which the decoder enforces, or else the sum of its blocks' largest
// outputs. A streaming encoder fills blocks, so the bound is close. exact
// reports whether every frame declared its size.
func zstdBound(src []byte) (total uint64, exact bool, err error) {
	const saturated = 1 << 62
	exact = true
	for len(src) > 0 {
		var fh zstd.Header
		rest, err := fh.DecodeAndStrip(src)
		if err != nil {
			return 0, false, err
		}
		if fh.Skippable {
			if uint64(len(rest)) < uint64(fh.SkippableSize) {
				return 0, false, errZstdFrames
			}
			src = rest[fh.SkippableSize:]
			continue
		}
		maxBlock := uint64(zstdMaxBlock)
		if !fh.SingleSegment {
			maxBlock = min(maxBlock, fh.WindowSize)
		}
		var frame uint64
		for last := false; !last; {
			if len(rest) < 3 {
				return 0, false, errZstdFrames
			}
			bh := uint32(rest[0]) | uint32(rest[1])<<8 | uint32(rest[2])<<16
			rest = rest[3:]
			last = bh&1 != 0
			size, skip := uint64(bh>>3), uint64(bh>>3)
			switch bh >> 1 & 3 {
			case 0: // raw
			case 1: // RLE: one byte repeated size times
				skip = 1
			case 2: // compressed
				size = maxBlock
			default:
				return 0, false, errZstdFrames
			}
			if uint64(len(rest)) < skip {
				return 0, false, errZstdFrames
			}
			rest = rest[skip:]
			frame = min(frame+size, saturated)
		}
		if fh.HasCheckSum {
			if len(rest) < 4 {
				return 0, false, errZstdFrames
			}
			rest = rest[4:]
		}
		if fh.HasFCS {
			frame = min(fh.FrameContentSize, saturated)
		} else {
			exact = false
		}
		total = min(total+frame, saturated)
		src = rest
	}
	return total, exact, nil
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
