package main

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotrestart/restarter/supervisor"
	"go.uber.org/zap"
)

// stderrTail is a supervisor.Starter that passes each generation's stderr
// through a pipe, copied unchanged to the restarter's stderr, keeping the
// last bytes of it. When a generation dies before it was ready, the
// failure is logged with those last lines: the cause (a bad flag, a config
// error) is usually there, not in the exit status. Processes started with a
// Stderr of their own (the validator) are left alone.
type stderrTail struct {
	inner *supervisor.ThreadStarter
	out   io.Writer
	log   *zap.Logger

	mu    sync.Mutex
	rings map[uint32]*tailRing // by epoch; the latest start of that epoch
}

const (
	tailBytes = 4 << 10 // kept per generation
	tailLines = 10      // logged on a failure
)

func newStderrTail(out io.Writer, log *zap.Logger) *stderrTail {
	return &stderrTail{inner: supervisor.NewThreadStarter(), out: out, log: log, rings: map[uint32]*tailRing{}}
}

// Close ends the starter thread: only after every generation is gone (see
// supervisor.ThreadStarter).
func (s *stderrTail) Close() error { return s.inner.Close() }

// Start implements supervisor.Starter.
func (s *stderrTail) Start(spec supervisor.ProcSpec) (int, error) {
	epoch, ok := envEpoch(spec.Env)
	if spec.Stderr != nil || !ok {
		return s.inner.Start(spec)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return s.inner.Start(spec) // stderr passes through as before
	}
	spec.Stderr = w
	pid, err := s.inner.Start(spec)
	w.Close()
	if err != nil {
		r.Close()
		return pid, err
	}
	ring := &tailRing{done: make(chan struct{})}
	s.mu.Lock()
	s.rings[epoch] = ring
	for e := range s.rings { // keep the last few epochs only
		if e+8 < epoch {
			delete(s.rings, e)
		}
	}
	s.mu.Unlock()
	go ring.copy(r, s.out)
	return pid, nil
}

// observe logs the stderr tail of a generation that exited non-zero
// before it was ready. It does not block the state machine.
func (s *stderrTail) observe(ev supervisor.Event) {
	g := ev.Generation
	if ev.Kind != supervisor.EventState || g == nil || g.State != supervisor.StateExited || g.ReadyAt != nil ||
		g.ExitStatus == nil || *g.ExitStatus == 0 {
		return
	}
	s.mu.Lock()
	ring := s.rings[g.Epoch]
	s.mu.Unlock()
	if ring == nil {
		return
	}
	epoch, pid, status := g.Epoch, g.PID, *g.ExitStatus
	go func() {
		select { // what the process wrote before it died is still in the pipe
		case <-ring.done:
		case <-time.After(500 * time.Millisecond):
		}
		lines := ring.lastLines(tailLines)
		if len(lines) == 0 {
			return
		}
		s.log.Error("generation died before it was ready; the last lines of its stderr",
			zap.Uint32("epoch", epoch), zap.Int("pid", pid), zap.Int("exit_status", status), zap.Strings("stderr", lines))
	}()
}

// envEpoch is RESTART_EPOCH from a generation's environment.
func envEpoch(env []string) (uint32, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], "RESTART_EPOCH="); ok {
			n, err := strconv.ParseUint(v, 10, 32)
			return uint32(n), err == nil
		}
	}
	return 0, false
}

// tailRing keeps the last tailBytes written through it.
type tailRing struct {
	mu   sync.Mutex
	buf  []byte
	done chan struct{} // closed at EOF
}

func (t *tailRing) copy(r *os.File, out io.Writer) {
	defer close(t.done)
	defer r.Close()
	b := make([]byte, 32<<10)
	for {
		n, err := r.Read(b)
		if n > 0 {
			_, _ = out.Write(b[:n])
			t.mu.Lock()
			t.buf = append(t.buf, b[:n]...)
			if len(t.buf) > tailBytes {
				t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailBytes:]...)
			}
			t.mu.Unlock()
		}
		if err != nil {
			return
		}
	}
}

func (t *tailRing) lastLines(n int) []string {
	t.mu.Lock()
	b := bytes.TrimRight(t.buf, "\n")
	t.mu.Unlock()
	if len(b) == 0 {
		return nil
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}
