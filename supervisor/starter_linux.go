package supervisor

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// ThreadStarter forks every child from one goroutine locked to its OS thread,
// with PR_SET_PDEATHSIG=SIGTERM. Linux sends the parent-death signal when the
// forking thread exits, so the thread must outlive the children: Close only
// after they are gone. Close is idempotent and blocks until the thread's
// goroutine has returned (which ends the thread).
type ThreadStarter struct {
	reqs      chan startReq
	done      chan struct{}
	closeOnce sync.Once
	exited    chan struct{}
}

type startReq struct {
	spec  ProcSpec
	reply chan startReply
}

type startReply struct {
	p   Proc
	err error
}

// NewThreadStarter starts the dedicated starter thread.
func NewThreadStarter() *ThreadStarter {
	t := &ThreadStarter{reqs: make(chan startReq), done: make(chan struct{}), exited: make(chan struct{})}
	go t.loop()
	return t
}

func (t *ThreadStarter) loop() {
	defer close(t.exited)
	// Never unlocked: when this goroutine returns, the runtime ends the thread.
	runtime.LockOSThread()
	for {
		select {
		case <-t.done:
			return
		case r := <-t.reqs:
			p, err := forkExec(r.spec)
			r.reply <- startReply{p, err}
		}
	}
}

func forkExec(s ProcSpec) (Proc, error) {
	files := []uintptr{0, 1, 2}
	if s.Stdout != nil {
		files[1] = s.Stdout.Fd()
	}
	if s.Stderr != nil {
		files[2] = s.Stderr.Fd()
	}
	pidfd := -1
	attr := &syscall.ProcAttr{
		Dir:   s.Dir,
		Env:   s.Env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: s.Setpgid},
	}
	if havePidfd() {
		attr.Sys.PidFD = &pidfd
	}
	pid, err := syscall.ForkExec(s.Path, s.Args, attr)
	runtime.KeepAlive(s.Stdout)
	runtime.KeepAlive(s.Stderr)
	if err != nil {
		return Proc{PidFD: -1}, fmt.Errorf("start %s: %w", s.Path, err)
	}
	return Proc{PID: pid, PidFD: pidfd}, nil
}

// havePidfd reports whether the kernel has pidfds (Linux 5.3+): without
// them the supervisor falls back to plain pids, which is safe as long as it
// signals a pid only before its own reaper has reaped it (see kill).
var havePidfd = sync.OnceValue(func() bool {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
})

// Start forks and execs spec on the starter thread.
func (t *ThreadStarter) Start(spec ProcSpec) (int, error) {
	p, err := t.StartProc(spec)
	if p.PidFD >= 0 {
		unix.Close(p.PidFD)
	}
	return p.PID, err
}

// StartProc is Start that also returns the process's pidfd (PidfdStarter).
// The caller owns the pidfd and closes it.
func (t *ThreadStarter) StartProc(spec ProcSpec) (Proc, error) {
	r := startReq{spec: spec, reply: make(chan startReply, 1)}
	select {
	case t.reqs <- r:
	case <-t.done:
		return Proc{PidFD: -1}, ErrStopped
	}
	rep := <-r.reply
	return rep.p, rep.err
}

// Close ends the starter thread. Children it started then receive SIGTERM
// (parent-death signal) if still alive.
func (t *ThreadStarter) Close() error {
	t.closeOnce.Do(func() { close(t.done) })
	<-t.exited
	return nil
}
