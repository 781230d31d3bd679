//go:build !linux

package supervisor

import (
	"fmt"
	"os"
	"runtime"
)

// The supervisor needs Linux: a child subreaper (prctl), a forking thread
// with PR_SET_PDEATHSIG and /proc. Elsewhere it builds (so the package can
// be imported and vetted) and New's setup fails with errNotLinux.

var errNotLinux = fmt.Errorf("supervisor: needs Linux (child subreaper, parent-death signal, /proc), not %s", runtime.GOOS)

// ProcSpec is what to start (see the Linux file).
type ProcSpec struct {
	Path   string
	Args   []string
	Env    []string
	Dir    string
	Stdout *os.File
	Stderr *os.File
}

// Starter starts a process that is a child of this process.
type Starter interface {
	Start(ProcSpec) (pid int, err error)
}

// ThreadStarter is Linux-only.
type ThreadStarter struct{}

// NewThreadStarter returns a starter whose Start fails.
func NewThreadStarter() *ThreadStarter { return &ThreadStarter{} }

// Start reports that starting needs Linux.
func (t *ThreadStarter) Start(ProcSpec) (int, error) { return 0, errNotLinux }

// Close does nothing.
func (t *ThreadStarter) Close() error { return nil }

type reaper struct{}

func newReaper(func(pid, status int)) *reaper             { return &reaper{} }
func setSubreaper() error                                 { return errNotLinux }
func (r *reaper) Watch(int, func(status int)) (int, bool) { return 0, false }
func (r *reaper) Watched(int) bool                        { return false }
func (r *reaper) run(stop <-chan struct{})                { <-stop }
func orphanChildren() []int                               { return nil }
func environHas(int, string) bool                         { return false }
