package supervisor

import "github.com/hotrestart/restarter/internal/osutil"

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

// stoppedState reports whether pid is stopped (SIGSTOP, a debugger): such
// a process accepts connections into its backlog and answers none.
func stoppedState(pid int) bool {
	st, ok := readProcStat(pid)
	return ok && (st.state == 'T' || st.state == 't')
}
