//go:build !linux

package osutil

import (
	"fmt"
	"os"
	"runtime"
)

// errUnsupported is what the Linux-only functions return elsewhere.
var errUnsupported = fmt.Errorf("osutil: not supported on %s (Linux only)", runtime.GOOS)

// Holder is a process that has a Unix socket open.
type Holder struct {
	PID  int
	UID  int
	Comm string
}

// ReadStat needs Linux's /proc.
func ReadStat(pid int) (Stat, error) { return Stat{}, errUnsupported }

// ProcessRunning needs Linux's /proc; elsewhere it reports false.
func ProcessRunning(pid int) bool { return false }

// BindUnix is Linux-only (fchmod on a socket before bind).
func BindUnix(typ int, name string, mode os.FileMode) (*os.File, error) {
	return nil, errUnsupported
}

// AbstractHolders needs Linux's abstract sockets and /proc.
func AbstractHolders(name string) ([]Holder, []uint64, error) {
	return nil, nil, errUnsupported
}

// DescribeAbstractHolders needs Linux; elsewhere it is "".
func DescribeAbstractHolders(name string) string { return "" }

// PIDs needs Linux's /proc; elsewhere it lists nothing.
func PIDs() []int { return nil }
