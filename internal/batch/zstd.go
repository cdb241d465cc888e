package batch

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Zstd decoding never grows a buffer. zstdBounds walks the frame and block
// headers, without decoding, for bounds on the output. When the upper bound
// is within the limit, DecodeAll decodes once into a buffer of that size.
// Otherwise the data is big or lying about itself, so a streaming decoder
// counts the output through a scratch buffer, stopping past the limit, and
// DecodeAll then decodes into a buffer of the counted size.
//
// DecodeAll must always have room for the whole output: the decoder appends
// raw and RLE blocks, so a buffer it outgrew would be copied into a larger
// one before it noticed.

const (
	// zstdMaxBlock is the most one zstd block decodes to.
	zstdMaxBlock = 128 << 10
	// zstdSlack is room past the output for the decoder's fast copies.
	zstdSlack = 32
	// zstdMaxWindow caps the window a frame may ask of the streaming
	// decoder, which allocates it. The Java client's levels up to 19 use
	// at most 8 MiB; librdkafka's default level uses 2 MiB.
	zstdMaxWindow = 8 << 20
)

// zstdDecoder serves DecodeAll calls concurrently. DecodeAll decodes into
// the buffer it is given, holding no window of its own; the cap limit stops
// it at the buffer's capacity.
var zstdDecoder = sync.OnceValue(func() *zstd.Decoder {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecodeAllCapLimit(true))
	if err != nil {
		panic(err) // only bad options fail, and these are constants
	}
	return d
})

// zstdStream is a pooled streaming decoder for counting.
type zstdStream struct {
	dec     *zstd.Decoder
	src     bytes.Reader
	scratch [scratchSize]byte
}

var zstdStreams = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(zstdMaxWindow))
	if err != nil {
		panic(err) // constant options
	}
	return &zstdStream{dec: d}
}}

func unzstd(src []byte, limit int) ([]byte, error) {
	lower, upper, err := zstdBounds(src)
	switch {
	case err != nil:
		return nil, err
	case lower > uint64(limit):
		return nil, errTooLarge(CodecZstd, limit)
	case upper > uint64(limit):
		n, err := zstdCount(src, limit)
		if err != nil {
			return nil, err
		}
		upper = uint64(n)
	}
	out, err := zstdDecoder().DecodeAll(src, make([]byte, 0, int(upper)+zstdSlack))
	if err != nil {
		return nil, err
	}
	if uint64(len(out)) > upper {
		return nil, errZstdFrames // more than the headers allow: cannot happen
	}
	return out, nil
}

// zstdCount returns the decoded size of src, or ErrTooLarge past limit.
func zstdCount(src []byte, limit int) (int, error) {
	z := zstdStreams.Get().(*zstdStream)
	defer func() {
		_ = z.dec.Reset(nil)
		z.src.Reset(nil)
		zstdStreams.Put(z)
	}()
	z.src.Reset(src)
	if err := z.dec.Reset(&z.src); err != nil {
		return 0, err
	}
	n, err := countRest(CodecZstd, z.dec, z.scratch[:], 0, limit)
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		return 0, fmt.Errorf("%w: zstd frame needs a window over %d bytes", ErrTooLarge, zstdMaxWindow)
	}
	return n, err
}

var errZstdFrames = errors.New("malformed zstd frames")

// zstdBounds walks the frames and block headers of src and returns bounds
// on its decoded size. The lower bound counts declared frame sizes, which
// the decoder enforces, and raw and RLE blocks, whose sizes are exact; the
// upper bound counts each compressed block as the most it can hold. A
// streaming encoder fills its blocks, so the upper bound is close for
// honest data. Malformed framing is an error.
func zstdBounds(src []byte) (lower, upper uint64, err error) {
	const saturated = 1 << 62
	for len(src) > 0 {
		var fh zstd.Header
		rest, err := fh.DecodeAndStrip(src)
		if err != nil {
			return 0, 0, err
		}
		if fh.Skippable {
			if uint64(len(rest)) < uint64(fh.SkippableSize) {
				return 0, 0, errZstdFrames
			}
			src = rest[fh.SkippableSize:]
			continue
		}
		window := fh.WindowSize
		if fh.SingleSegment {
			window = max(fh.FrameContentSize, zstd.MinWindowSize)
		}
		maxBlock := min(zstdMaxBlock, window)
		var exact, most uint64
		for last := false; !last; {
			if len(rest) < 3 {
				return 0, 0, errZstdFrames
			}
			bh := uint64(rest[0]) | uint64(rest[1])<<8 | uint64(rest[2])<<16
			rest = rest[3:]
			last = bh&1 != 0
			size, skip := bh>>3, bh>>3
			switch bh >> 1 & 3 {
			case 0: // raw
				exact += size
			case 1: // RLE: one byte repeated size times
				exact += size
				skip = 1
			case 2: // compressed: size is the input
				most += maxBlock
			default:
				return 0, 0, errZstdFrames
			}
			if size > maxBlock || uint64(len(rest)) < skip {
				return 0, 0, errZstdFrames
			}
			rest = rest[skip:]
			most = min(most, saturated)
		}
		if fh.HasCheckSum {
			if len(rest) < 4 {
				return 0, 0, errZstdFrames
			}
			rest = rest[4:]
		}
		most += exact
		if fh.HasFCS && (fh.FrameContentSize < exact || fh.FrameContentSize > most) {
			return 0, 0, errZstdFrames // its blocks cannot make its declared size
		}
		if fh.HasFCS {
			exact = fh.FrameContentSize
		}
		lower, upper = min(lower+exact, saturated), min(upper+most, saturated)
		src = rest
	}
	return lower, upper, nil
}
