package drain

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// readable reports whether bytes wait in the kernel's receive queue of c
// (SIOCINQ): a request on its way that the server has not read yet. False
// when it cannot tell (not a socket with a file descriptor).
func readable(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	if err := rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil {
		return false
	}
	return n > 0
}
