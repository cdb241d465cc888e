//go:build !linux

package kafka

import "net"

// socketInq is unknown off Linux: frames grow with what has been read.
func socketInq(net.Conn) func() int { return nil }
