package supervisor

import (
	"bytes"
	"os"
	"strconv"

	"github.com/hotrestart/restarter/internal/osutil"
)

// orphanChildren lists live processes whose parent is this process, read from
// /proc/<pid>/stat. After a start script forks and exits, the kernel has
// re-parented its children to us (we are a subreaper) before we reap it.
func orphanChildren() []int {
	self := os.Getpid()
	var out []int
	for _, pid := range osutil.PIDs() {
		if ppid, state, ok := readStat(pid); ok && ppid == self && state != 'Z' {
			out = append(out, pid)
		}
	}
	return out
}

// environHas reports whether pid's environment contains kv. An environment
// that cannot be read (the process is gone, or belongs to another uid) does
// not match: adopting a process we cannot identify is worse than losing
// track of a forked proxy.
func environHas(pid int, kv string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for _, e := range bytes.Split(b, []byte{0}) {
		if string(e) == kv {
			return true
		}
	}
	return false
}
