package control

import (
	"net"

	"github.com/hotrestart/restarter/fdpass"
)

// serverCred is the pid and uid of the process serving c (SO_PEERCRED).
func serverCred(c *net.UnixConn) (pid int32, uid uint32, err error) {
	cred, err := fdpass.PeerCred(c)
	return cred.PID, cred.UID, err
}
