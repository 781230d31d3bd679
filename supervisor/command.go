package supervisor

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// CommandResult is a finished command's exit status (128+signal when
// signalled) and its combined stdout and stderr (at most 64 KiB).
type CommandResult struct {
	Status int    `json:"status"`
	Output []byte `json:"output,omitempty"`
}

const maxOutput = 64 << 10

// Command runs argv with env through the supervisor's starter and reaper and
// returns its exit status and output. It is a CommandRunner.
//
// The command runs as a process group of its own, and the whole group is
// ended (SIGKILL) when the command ends: when ctx ends (ctx's error is
// returned), and also when it exits by itself, so that nothing it left in
// the background (a `sleep 1000 &` of a validator script) outlives it. Run
// cancels the contexts it passes to the readiness checks and the validator
// before it returns, so no command survives the supervisor either. A child
// that leaves the group on purpose (setsid, setpgid) is not followed.
//
// Use it instead of os/exec: the supervisor reaps every child of the
// process, so exec.Cmd.Wait would race. It works only while Run is running.
func (s *Supervisor) Command(ctx context.Context, argv, env []string) (CommandResult, error) {
	if len(argv) == 0 {
		return CommandResult{}, fmt.Errorf("command: empty argv")
	}
	select {
	case <-s.running:
	default:
		return CommandResult{}, fmt.Errorf("command %s: supervisor not running", argv[0])
	}
	select {
	case <-s.loopDone:
		return CommandResult{}, ErrStopped
	default:
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return CommandResult{}, fmt.Errorf("command: %w", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return CommandResult{}, fmt.Errorf("command pipe: %w", err)
	}
	// Started with the reaper held: a status kept for an earlier process
	// with the same pid is never taken for this one's.
	exited := make(chan int, 1)
	pid, err := s.reaper.StartWatched(func() (int, error) {
		return s.starter.Start(ProcSpec{Path: path, Args: argv, Env: env, Stdout: w, Stderr: w, Setpgid: true})
	}, func(st int) { exited <- st })
	w.Close()
	if err != nil {
		r.Close()
		return CommandResult{}, err
	}

	var buf bytes.Buffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		_, _ = io.Copy(&buf, io.LimitReader(r, maxOutput))
		_, _ = io.Copy(io.Discard, r) // keep the pipe drained past the limit
	}()
	var st int
	var ctxErr error
	select {
	case st = <-exited:
	case <-ctx.Done():
		ctxErr = ctx.Err()
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		st = <-exited
	}
	// The leader is gone; what it left in its group goes too. While the
	// group has members Linux does not hand its id to a new process; once it
	// has none this finds nothing (ESRCH), unless the pid space wrapped in
	// the moment since the reap.
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	// A grandchild may still hold the pipe: do not wait for EOF forever.
	r.SetReadDeadline(timeNowPlus(ctxErr))
	<-readDone
	r.Close()
	res := CommandResult{Status: st, Output: buf.Bytes()}
	if ctxErr != nil {
		return res, fmt.Errorf("command %s: %w", argv[0], ctxErr)
	}
	return res, nil
}

func timeNowPlus(ctxErr error) time.Time {
	if ctxErr != nil {
		return time.Now()
	}
	return time.Now().Add(time.Second)
}
