package kafka

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"
)

// sizedFrame returns a size-prefixed frame of n bytes starting with key.
func sizedFrame(key int16, n int) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(n))
	body := bytes.Repeat([]byte{9}, n)
	binary.BigEndian.PutUint16(body, uint16(key))
	return append(b, body...)
}

// TestFrameReaderSizesByArrival: a frame whose bytes have all arrived is
// allocated once at its size; one that has barely begun to arrive starts
// small, whatever its size prefix claims.
func TestFrameReaderSizesByArrival(t *testing.T) {
	const n = 1 << 20
	in := sizedFrame(3, n)
	var queued int // bytes "in the socket" beyond r's buffer
	r := bytes.NewReader(in)
	br := bufio.NewReaderSize(r, 32<<10)
	fr := frameReader{r: br, br: br, inq: func() int { return queued }, max: 4 << 20}
	queued = len(in) // everything has arrived
	frame, pooled, err := fr.next()
	if err != nil || pooled || len(frame) != n {
		t.Fatalf("got %d bytes, pooled %v, %v", len(frame), pooled, err)
	}
	if cap(frame) != n {
		t.Errorf("frame capacity %d, want exactly %d (one allocation)", cap(frame), n)
	}

	// Only the first few bytes of a large claim have arrived: the frame
	// starts at the minimum and grows only as bytes come.
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	go func() { _, _ = c2.Write(in[:100]) }()
	br = bufio.NewReaderSize(c1, 32<<10)
	fr = frameReader{r: br, br: br, inq: func() int { return 0 }, max: 4 << 20}
	done := make(chan []byte, 1)
	go func() {
		f, _, _ := fr.next()
		done <- f
	}()
	time.Sleep(50 * time.Millisecond)
	_ = c1.SetReadDeadline(time.Now()) // the stalled client
	if f := <-done; f != nil {
		t.Fatalf("a truncated frame returned %d bytes", len(f))
	}
}

// TestFrameReaderPoolsProduce: produce frames come from the buffer pool,
// other frames do not (their handlers may keep what they decode).
func TestFrameReaderPoolsProduce(t *testing.T) {
	var in []byte
	in = append(in, sizedFrame(0, 10_000)...) // Produce
	in = append(in, sizedFrame(3, 10_000)...) // Metadata
	in = append(in, sizedFrame(0, 3)...)
	br := bufio.NewReader(bytes.NewReader(in))
	fr := frameReader{r: br, br: br, max: 1 << 20, pool: true}
	for i, want := range []bool{true, false, true} {
		frame, pooled, err := fr.next()
		if err != nil {
			t.Fatal(err)
		}
		if pooled != want {
			t.Errorf("frame %d (key %d): pooled %v, want %v", i, binary.BigEndian.Uint16(frame), pooled, want)
		}
		if pooled {
			if c := cap(frame); c&(c-1) != 0 || c < minPooledBuf {
				t.Errorf("pooled frame capacity %d is not a pool class", c)
			}
			putBuf(frame)
		}
	}
	if _, _, err := fr.next(); err != io.EOF {
		t.Errorf("after the last frame: %v, want EOF", err)
	}
}

func TestBufPool(t *testing.T) {
	for _, c := range []int{0, 1, minPooledBuf, minPooledBuf + 1, 1 << 20, 16 << 20, 16<<20 + 1} {
		b := getBuf(c)
		if len(b) != 0 || cap(b) < c {
			t.Errorf("getBuf(%d): len %d cap %d", c, len(b), cap(b))
		}
		putBuf(append(b, 1))
	}
	putBuf(make([]byte, 5000)) // not a class: dropped, not pooled
	if b := getBuf(5000); cap(b) != 8192 {
		t.Errorf("getBuf(5000) has capacity %d, want the 8 KiB class", cap(b))
	}
}
