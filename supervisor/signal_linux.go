package supervisor

import (
	"os"
	"syscall"

	"github.com/hotrestart/restarter/internal/osutil"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// pidfdOpen returns a pidfd for pid, or -1 (no pidfds on this kernel, or the
// process is gone).
func pidfdOpen(pid int) int {
	if !havePidfd() {
		return -1
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1
	}
	return fd
}

func (s *Supervisor) closePidfd(g *gen) {
	if g.pidfd >= 0 {
		unix.Close(g.pidfd)
		g.pidfd = -1
	}
}

// signal sends sig to the generation's tracked process. Through its pidfd
// when there is one: a pidfd names that process, so a signal sent after it
// was reaped (by our reaper, before the state machine heard of it) fails with
// ESRCH instead of reaching whichever process got the pid next. Without
// pidfds (Linux < 5.3) the window is that same short one: the reaper tells
// the state machine at once, and pids are reused only after wrapping.
func (s *Supervisor) signal(g *gen, sig syscall.Signal) error {
	if g.pidfd >= 0 {
		err := unix.PidfdSendSignal(g.pidfd, sig, nil, 0)
		if err != unix.ENOSYS {
			return err
		}
	}
	return syscall.Kill(g.pid, sig)
}

func (s *Supervisor) kill(g *gen, sig syscall.Signal) {
	if err := s.signal(g, sig); err != nil && err != syscall.ESRCH {
		s.log.Warn("kill", zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.String("signal", sig.String()), zap.Error(err))
	}
}

// killTree SIGKILLs the generation and its process group (what a start
// script forked, which PDEATHSIG does not reach).
func (s *Supervisor) killTree(g *gen) { s.signalTree(g, syscall.SIGKILL) }

// signalTree sends sig to the generation's process group while that group
// is still the generation's (groupMembers), and to its tracked process.
func (s *Supervisor) signalTree(g *gen, sig syscall.Signal) {
	inGroup := false
	if st, ok := readProcStat(g.pid); ok && g.pgid > 0 && st.pgrp == g.pgid {
		inGroup = true
	}
	if !inGroup {
		s.kill(g, sig)
	}
	if g.pgid <= 0 || len(groupMembers(g.pgid, g.pgStart)) == 0 {
		if inGroup {
			s.kill(g, sig)
		}
		return
	}
	if err := syscall.Kill(-g.pgid, sig); err != nil && err != syscall.ESRCH {
		s.log.Warn("kill process group", zap.Uint32("epoch", g.epoch), zap.Int("pgid", g.pgid), zap.String("signal", sig.String()), zap.Error(err))
	}
}

// groupMembers lists the live processes of process group pgid that are
// ours: descendants of this process (a subreaper, so a generation's orphans
// are re-parented to it) that started no earlier than the group's leader. A
// group id reused by a stranger after the generation's group emptied
// matches nothing.
func groupMembers(pgid int, leaderStart uint64) []int {
	self := os.Getpid()
	var out []int
	for _, pid := range osutil.PIDs() {
		st, ok := readProcStat(pid)
		if !ok || st.pgrp != pgid || st.state == 'Z' || st.start < leaderStart {
			continue
		}
		for anc, n := st.ppid, 0; anc > 1 && n < 64; n++ {
			if anc == self {
				out = append(out, pid)
				break
			}
			ast, ok := readProcStat(anc)
			if !ok {
				break
			}
			anc = ast.ppid
		}
	}
	return out
}
