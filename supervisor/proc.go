package supervisor

import "os"

// ProcSpec is what to start. Stdin/Stdout/Stderr nil means inherit the
// restarter's own (the proxy's output passes through unchanged).
type ProcSpec struct {
	Path   string
	Args   []string // argv, Args[0] included
	Env    []string
	Dir    string
	Stdout *os.File
	Stderr *os.File
	// Setpgid starts the process in a process group of its own (its pid),
	// so that the process and whatever it forks can be ended together.
	Setpgid bool
}

// Proc is a started process: its pid, and a pidfd (pidfd_open(2)) that
// names this very process even after its pid is reused, or -1 when the
// kernel has none (Linux < 5.3).
type Proc struct {
	PID   int
	PidFD int
}

// PidfdStarter is a Starter that also returns the started process's pidfd,
// obtained atomically by clone (CLONE_PIDFD). The supervisor uses it when
// its Starter has it, and pidfd_open right after Start otherwise.
type PidfdStarter interface {
	StartProc(ProcSpec) (Proc, error)
}

// Starter starts a process that is a child of this process and returns its
// pid. It must not wait for it: the supervisor's reaper does.
type Starter interface {
	Start(ProcSpec) (pid int, err error)
}
