package fdpass

import (
	"errors"
	"net"
	"syscall"
)

// MaxFDsPerMessage is the kernel's SCM_MAX_FD: the most descriptors one
// sendmsg(2) may carry.
const MaxFDsPerMessage = 253

// Ucred is a peer's process credentials (struct ucred).
type Ucred struct {
	PID      int32
	UID, GID uint32
}

// ErrTruncated is returned (wrapped) when the kernel cut a message's payload
// (MSG_TRUNC) or its control data (MSG_CTRUNC).
var ErrTruncated = errors.New("message truncated")

// Msg is one received message.
type Msg struct {
	N    int           // payload bytes read into the buffer
	FDs  []int         // received descriptors, close-on-exec, owned by the caller
	Cred *Ucred        // sender's SCM_CREDENTIALS, nil unless SO_PASSCRED is set
	From *net.UnixAddr // sender address on unconnected datagram sockets, else nil
}

// Send writes payload with fds attached over a connected socket. More than
// MaxFDsPerMessage descriptors are sent over several messages: the first
// carries payload, each later one a single zero byte. The caller keeps
// ownership of fds (and must keep them open until Send returns).
func Send(conn *net.UnixConn, payload []byte, fds ...int) error {
	return SendTo(conn, nil, payload, fds...)
}

// CloseAll closes every descriptor in fds, ignoring errors.
func CloseAll(fds []int) {
	for _, fd := range fds {
		syscall.Close(fd)
	}
}
