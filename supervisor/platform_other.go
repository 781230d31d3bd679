//go:build !linux

package supervisor

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// The supervisor needs Linux: a child subreaper (prctl), a forking thread
// with PR_SET_PDEATHSIG, pidfds and /proc. Elsewhere it builds (so the
// package can be imported and vetted), and Run fails at once: epoch 0
// cannot start (errNotLinux). The stubs below that do nothing are reached
// only with no generation alive.

var errNotLinux = fmt.Errorf("supervisor: needs Linux (child subreaper, parent-death signal, /proc), not %s: %w", runtime.GOOS, errors.ErrUnsupported)

// ThreadStarter is Linux-only.
type ThreadStarter struct{}

// NewThreadStarter returns a starter whose Start fails.
func NewThreadStarter() *ThreadStarter { return &ThreadStarter{} }

// Start reports that starting needs Linux.
func (t *ThreadStarter) Start(ProcSpec) (int, error) { return 0, errNotLinux }

// StartProc reports that starting needs Linux.
func (t *ThreadStarter) StartProc(ProcSpec) (Proc, error) { return Proc{PidFD: -1}, errNotLinux }

// Close does nothing.
func (t *ThreadStarter) Close() error { return nil }

type reaper struct{}

func newReaper(func(pid, status int)) *reaper             { return &reaper{} }
func setSubreaper() error                                 { return errNotLinux }
func (r *reaper) Watch(int, func(status int)) (int, bool) { return 0, false }
func (r *reaper) StartWatched(start func() (int, error), fn func(status int)) (int, error) {
	return 0, errNotLinux
}
func (r *reaper) WatchSeen(int, time.Time, func(status int)) (int, bool) { return 0, false }
func (r *reaper) Watched(int) bool                                       { return false }
func (r *reaper) run(stop <-chan struct{})                               { <-stop }

func orphanChildren() []int                             { return nil }
func environHas(int, string) bool                       { return false }
func listening(int, uint32) (yes, ok bool)              { return false, false }
func groupMembers(int, uint64) []int                    { return nil }
func pidfdOpen(int) int                                 { return -1 }
func (s *Supervisor) closePidfd(*gen)                   {}
func (s *Supervisor) signal(*gen, syscall.Signal) error { return errNotLinux }
func (s *Supervisor) kill(*gen, syscall.Signal)         {}
func (s *Supervisor) killTree(*gen)                     {}
func (s *Supervisor) signalTree(*gen, syscall.Signal)   {}
func (s *Supervisor) writeRecord()                      {}
func (s *Supervisor) removeRecord()                     {}
func (s *Supervisor) endLeftovers()                     {}
