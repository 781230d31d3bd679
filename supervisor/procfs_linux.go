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

// procStat is what the supervisor reads from /proc/<pid>/stat (osutil owns
// the parsing).
type procStat struct {
	ppid  int
	state byte   // R, S, D, T (stopped), t (traced), Z ...
	pgrp  int    // process group
	start uint64 // start time in clock ticks since boot: with the pid, it names one process
}

// readProcStat reads /proc/<pid>/stat; ok is false when the process is gone
// or its line is malformed.
func readProcStat(pid int) (procStat, bool) {
	st, err := osutil.ReadStat(pid)
	if err != nil {
		return procStat{}, false
	}
	return procStat{ppid: st.PPID, state: st.State, pgrp: st.Pgrp, start: st.StartTime}, true
}

// readStat returns ppid and state from /proc/<pid>/stat.
func readStat(pid int) (ppid int, state byte, ok bool) {
	st, ok := readProcStat(pid)
	return st.ppid, st.state, ok
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
