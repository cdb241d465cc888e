package kafka

import "sync"

// bufPool recycles the large byte buffers of the data path, by capacity
// class: produce request frames, fetched record data and encoded
// responses. Class i holds buffers of minPooledBuf<<i bytes; larger
// buffers are allocated and left to the garbage collector. Recycling spares
// the allocator zeroing a buffer that is about to be overwritten and the
// collector the garbage: at hundreds of MB/s both cost more than the data
// copies themselves (see docs/benchmarks.md, "Side by side").
var bufPool [13]sync.Pool // 4 KiB … 16 MiB

const minPooledBuf = 4 << 10

func bufClass(c int) int {
	i := 0
	for minPooledBuf<<i < c {
		i++
	}
	return i
}

// getBuf returns an empty buffer of capacity at least c, rounded up to a
// power of two.
func getBuf(c int) []byte {
	i := bufClass(c)
	if i >= len(bufPool) {
		return make([]byte, 0, c)
	}
	if b, ok := bufPool[i].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, minPooledBuf<<i)
}

// putBuf returns a buffer from getBuf. Nothing may refer to it afterwards.
func putBuf(b []byte) {
	c := cap(b)
	i := bufClass(c)
	if i >= len(bufPool) || minPooledBuf<<i != c {
		return
	}
	b = b[:0]
	bufPool[i].Put(&b)
}
