//go:build !linux

package control

import (
	"fmt"
	"net"
	"runtime"
)

// serverCred needs SO_PEERCRED, which this package uses on Linux only: the
// client refuses to talk to a server it cannot identify.
func serverCred(c *net.UnixConn) (pid int32, uid uint32, err error) {
	return 0, 0, fmt.Errorf("cannot check the server's credentials on %s", runtime.GOOS)
}
