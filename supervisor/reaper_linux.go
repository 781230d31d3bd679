package supervisor

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// reaper reaps every child of the process with wait4(-1, WNOHANG) when SIGCHLD
// arrives and routes the statuses of watched pids. Statuses of pids nobody
// watches yet are kept briefly, so a pid registered just after it was reaped
// (a fast-exiting child, an adopted orphan) still gets its status.
type reaper struct {
	mu        sync.Mutex
	watch     map[int]func(status int)
	unclaimed map[int]reaped
	onOrphan  func(pid, status int)
}

type reaped struct {
	status int
	at     time.Time
}

const unclaimedTTL = 30 * time.Second

func newReaper(onOrphan func(pid, status int)) *reaper {
	return &reaper{watch: map[int]func(int){}, unclaimed: map[int]reaped{}, onOrphan: onOrphan}
}

// setSubreaper makes this process the reaper of its orphaned descendants.
func setSubreaper() error {
	return os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
}

// Watch registers fn to be called from the reaper goroutine with pid's exit
// status. If pid was already reaped, fn is not registered and Watch returns
// its status and true: the caller delivers it.
func (r *reaper) Watch(pid int, fn func(status int)) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u, ok := r.unclaimed[pid]; ok {
		delete(r.unclaimed, pid)
		return u.status, true
	}
	r.watch[pid] = fn
	return 0, false
}

// StartWatched runs start with the reaper held, so that the process it
// starts cannot be reaped before fn is registered for it. A status kept for
// an earlier process that had the same pid (an orphan reaped before the
// kernel reused its pid) is dropped: it is never applied to the new one.
func (r *reaper) StartWatched(start func() (int, error), fn func(status int)) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := start()
	if err != nil {
		return pid, err
	}
	delete(r.unclaimed, pid)
	r.watch[pid] = fn
	return pid, nil
}

// WatchSeen is Watch for a process that is not our own start but was seen
// alive at seen (an orphan re-parented to us): a status kept from before
// seen belongs to an earlier process with the same pid and is dropped.
func (r *reaper) WatchSeen(pid int, seen time.Time, fn func(status int)) (int, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u, ok := r.unclaimed[pid]; ok {
		delete(r.unclaimed, pid)
		if u.at.After(seen) {
			return u.status, true
		}
	}
	r.watch[pid] = fn
	return 0, false
}

// Watched reports whether pid is a known, live child.
func (r *reaper) Watched(pid int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.watch[pid]
	return ok
}

// run reaps until stop is closed.
func (r *reaper) run(stop <-chan struct{}) {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGCHLD)
	defer signal.Stop(sigc)
	// A slow tick covers a SIGCHLD consumed before Notify was installed.
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r.reapAll()
		select {
		case <-stop:
			r.reapAll()
			return
		case <-sigc:
		case <-tick.C:
		}
	}
}

type delivery struct {
	fn     func(int)
	status int
}

func (r *reaper) reapAll() {
	var out []delivery
	var orphans [][2]int
	r.mu.Lock()
	now := time.Now()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			break
		}
		st := exitStatus(ws)
		if fn, ok := r.watch[pid]; ok {
			delete(r.watch, pid)
			out = append(out, delivery{fn, st})
			continue
		}
		r.unclaimed[pid] = reaped{st, time.Now()} // after the wait: see WatchSeen
		orphans = append(orphans, [2]int{pid, st})
	}
	for pid, u := range r.unclaimed {
		if now.Sub(u.at) > unclaimedTTL {
			delete(r.unclaimed, pid)
		}
	}
	r.mu.Unlock()
	for _, d := range out {
		d.fn(d.status)
	}
	if r.onOrphan != nil {
		for _, o := range orphans {
			r.onOrphan(o[0], o[1])
		}
	}
}

// exitStatus is the exit code, or 128+signal for a signalled exit.
func exitStatus(ws unix.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return 255
}
