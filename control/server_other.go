//go:build !linux

package control

import (
	"errors"
	"fmt"
	"runtime"

	"go.uber.org/zap"
)

// ErrInUse is returned by NewServer when a live server already answers on
// the path (another restarter with the same instance name).
var ErrInUse = errors.New("control socket in use by a running restarter")

// Server serves the control protocol on a Unix socket (Linux only: it
// relies on SO_PEERCRED to check every client).
type Server struct{ path string }

// NewServer reports that the control server needs Linux.
func NewServer(path string, h Handler, log *zap.Logger) (*Server, error) {
	return nil, fmt.Errorf("control socket %s: the control server needs Linux (SO_PEERCRED), not %s", path, runtime.GOOS)
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Close does nothing: no Server exists on this system.
func (s *Server) Close() error { return nil }
