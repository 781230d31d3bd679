package osutil

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ReadStat reads and parses /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	st, err := ParseStat(b)
	if err != nil {
		return Stat{}, fmt.Errorf("/proc/%d/%w", pid, err)
	}
	return st, nil
}

// ProcessRunning reports whether pid is a live process. A zombie (exited,
// not yet reaped by its parent) counts as gone: it holds no socket, lock or
// file any more.
func ProcessRunning(pid int) bool {
	if pid <= 0 || unix.Kill(pid, 0) == unix.ESRCH {
		return false
	}
	st, err := ReadStat(pid)
	return err == nil && st.State != 'Z'
}

// PIDs lists the processes in /proc (nil when /proc cannot be read).
func PIDs() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}
