package uds

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Roles of Envoy's hot-restart sockets.
const (
	RoleChild     = "child"
	RoleParent    = "parent"
	RoleUDPChild  = "udp_child"
	RoleUDPParent = "udp_parent"
)

// DefaultSocketPath is Envoy's default --socket-path.
const DefaultSocketPath = "@envoy_domain_socket"

// sunPathLen is the size of sockaddr_un.sun_path on Linux.
const sunPathLen = 108

// SocketName returns Envoy's name for a hot-restart socket:
// socketPath + "_" + role + "_" + (baseID*10 + epoch%3).
// Envoy scales --base-id by 10 internally, so baseID here is the unscaled
// flag value.
func SocketName(socketPath, role string, baseID, epoch uint32) string {
	id := uint64(baseID)*10 + uint64(epoch%3)
	return socketPath + "_" + role + "_" + strconv.FormatUint(id, 10)
}

// isAbstract reports whether name lives in Linux's abstract namespace.
func isAbstract(name string) bool { return strings.HasPrefix(name, "@") }

// sockAddr returns the address Envoy binds and sends to for name. Envoy passes
// sizeof(struct sockaddr_un) as the address length, so an abstract name is
// the whole 108-byte sun_path: a NUL, the name, then NULs. The kernel compares
// abstract names over the full length, so we pad the same way (Go's syscall
// package turns the leading '@' into the NUL and keeps the padding).
// Filesystem names end at the first NUL whatever the length, so they are left
// as they are.
func sockAddr(name string) (*net.UnixAddr, error) {
	if len(name) < 2 {
		return nil, fmt.Errorf("socket name %q is too short: give the socket path as @name or a file path", name)
	}
	if strings.IndexByte(name, 0) >= 0 {
		return nil, fmt.Errorf("socket name %q contains a NUL byte", name)
	}
	if len(name) >= sunPathLen {
		return nil, fmt.Errorf("socket name %q is %d bytes, more than the %d that fit in sun_path: use a shorter socket path", name, len(name), sunPathLen-1)
	}
	if isAbstract(name) {
		padded := name + strings.Repeat("\x00", sunPathLen-len(name))
		return &net.UnixAddr{Name: padded, Net: "unixgram"}, nil
	}
	return &net.UnixAddr{Name: name, Net: "unixgram"}, nil
}

// AddressURL renders a socket address the way Envoy names listeners in
// pass_listen_socket requests: "tcp://127.0.0.1:8080", "tcp://[::1]:80",
// "udp://...", "unix:///path". It returns "" for other address types.
func AddressURL(a net.Addr) string {
	switch v := a.(type) {
	case *net.TCPAddr:
		return "tcp://" + net.JoinHostPort(v.IP.String(), strconv.Itoa(v.Port))
	case *net.UDPAddr:
		return "udp://" + net.JoinHostPort(v.IP.String(), strconv.Itoa(v.Port))
	case *net.UnixAddr:
		return "unix://" + v.Name
	}
	return ""
}
