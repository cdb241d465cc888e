package kafka

import (
	"net"
	"syscall"
	"unsafe"
)

// socketInq returns a function reporting the bytes queued in nc's receive
// queue (FIONREAD), or nil when nc has no file descriptor. frameReader
// sizes frames by it.
func socketInq(nc net.Conn) func() int {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func() int {
		var q int32
		failed := false
		if err := rc.Control(func(fd uintptr) {
			_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&q)))
			failed = errno != 0
		}); err != nil || failed {
			return -1
		}
		return int(q)
	}
}
