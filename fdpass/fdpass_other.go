//go:build !linux

package fdpass

import (
	"errors"
	"fmt"
	"net"
	"runtime"
)

// ErrUnsupported is returned by every call that passes descriptors or
// credentials off Linux: fdpass follows Linux's SCM_RIGHTS and
// SCM_CREDENTIALS semantics (unix(7)) and is not implemented elsewhere.
var ErrUnsupported = errors.New("fdpass: descriptor and credential passing is implemented for Linux only")

func unsupported(op string) error {
	return fmt.Errorf("%s on %s: %w", op, runtime.GOOS, ErrUnsupported)
}

// SendTo is Send for unconnected datagram sockets (Linux only).
func SendTo(*net.UnixConn, *net.UnixAddr, []byte, ...int) error { return unsupported("SendTo") }

// Recv reads one message and its descriptors (Linux only).
func Recv(*net.UnixConn, []byte, int) (int, []int, error) { return 0, nil, unsupported("Recv") }

// RecvMsg reads one message, its descriptors and credentials (Linux only).
func RecvMsg(*net.UnixConn, []byte, int) (Msg, error) { return Msg{}, unsupported("RecvMsg") }

// PeerCred returns the credentials of a connected peer (Linux only).
func PeerCred(*net.UnixConn) (Ucred, error) { return Ucred{}, unsupported("PeerCred") }

// PassCred asks for the sender's credentials on every message (Linux only).
func PassCred(*net.UnixConn) error { return unsupported("PassCred") }

// Socketpair returns a connected pair of Unix sockets (Linux only).
func Socketpair(int) (*net.UnixConn, *net.UnixConn, error) {
	return nil, nil, unsupported("Socketpair")
}
