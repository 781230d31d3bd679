//go:build !linux

package uds

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
)

// ErrUnsupported is returned by ListenParent and DialChild off Linux: Envoy's
// hot restart uses Linux abstract sockets, SO_PASSCRED and SCM_RIGHTS
// semantics, and this package implements them for Linux only. The wire
// format (frames, messages, stats) builds everywhere.
var ErrUnsupported = errors.New("uds: Envoy hot-restart sockets are implemented for Linux only")

func bind(name string, _ os.FileMode) (*net.UnixConn, string, error) {
	return nil, "", fmt.Errorf("bind %s on %s: %w", name, runtime.GOOS, ErrUnsupported)
}

func sendFrames(*net.UnixConn, *net.UnixAddr, []byte, int, func(error) bool) error {
	return fmt.Errorf("send on %s: %w", runtime.GOOS, ErrUnsupported)
}

func (e *endpoint) readDatagram(int) (datagram, error) {
	return datagram{}, fmt.Errorf("receive on %s: %w", runtime.GOOS, ErrUnsupported)
}
