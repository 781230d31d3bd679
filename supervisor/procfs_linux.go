package supervisor

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// orphanChildren lists live processes whose parent is this process, read from
// /proc/<pid>/stat. After a start script forks and exits, the kernel has
// re-parented its children to us (we are a subreaper) before we reap it.
func orphanChildren() []int {
	self := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state, ok := readStat(pid); ok && ppid == self && state != 'Z' {
			out = append(out, pid)
		}
	}
	return out
}

// procStat is what the supervisor reads from /proc/<pid>/stat.
type procStat struct {
	ppid  int
	state byte   // R, S, D, T (stopped), t (traced), Z ...
	pgrp  int    // process group
	start uint64 // start time in clock ticks since boot: with the pid, it names one process
}

// readProcStat parses /proc/<pid>/stat. The command name may contain spaces
// and parentheses, so parse after the last ')'.
func readProcStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	// state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	// cmajflt utime stime cutime cstime priority nice num_threads
	// itrealvalue starttime ...
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, false
	}
	var st procStat
	st.state = f[0][0]
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return procStat{}, false
	}
	if st.pgrp, err = strconv.Atoi(f[2]); err != nil {
		return procStat{}, false
	}
	if st.start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return procStat{}, false
	}
	return st, true
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
