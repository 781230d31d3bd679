//go:build !linux

package sdnotify

import (
	"fmt"
	"runtime"

	"go.uber.org/zap"
)

// Listener receives sd_notify datagrams from one generation (Linux only: it
// judges senders by SCM_CREDENTIALS and /proc).
type Listener struct{ path string }

func errNotLinux(path string) error {
	return fmt.Errorf("notify socket %s: needs Linux (SCM_CREDENTIALS, /proc), not %s", path, runtime.GOOS)
}

// Listen reports that a notify socket needs Linux.
func Listen(path string, accept func(pid int) bool, log *zap.Logger) (*Listener, error) {
	return nil, errNotLinux(path)
}

// ListenTree reports that a notify socket needs Linux.
func ListenTree(path string, log *zap.Logger) (*Listener, error) {
	return nil, errNotLinux(path)
}

// SetRoot does nothing: no Listener exists on this system.
func (l *Listener) SetRoot(pid int) {}

// Path is the socket's path.
func (l *Listener) Path() string { return l.path }

// Ready is never closed on this system.
func (l *Listener) Ready() <-chan struct{} { return nil }

// Close does nothing.
func (l *Listener) Close() error { return nil }

// Descendant needs /proc: elsewhere it accepts nobody.
func Descendant(root int) func(pid int) bool { return func(int) bool { return false } }

// IsDescendant needs /proc: elsewhere it reports false.
func IsDescendant(pid, root int) bool { return false }
