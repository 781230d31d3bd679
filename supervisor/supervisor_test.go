package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"
)

// proxy is a generation: a shell that fails once at FAIL_EPOCH (exit 4) and
// otherwise sleeps until SIGTERM.
const proxyScript = `if [ "$RESTART_EPOCH" = "$FAIL_EPOCH" ] && [ ! -e "$MARK" ]; then : > "$MARK"; exit 4; fi; exec sleep 1000`

type harness struct {
	t      *testing.T
	s      *Supervisor
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	events []Event
}

func start(t *testing.T, cfg Config) *harness {
	t.Helper()
	h := &harness{t: t, done: make(chan error, 1)}
	if cfg.Argv == nil {
		cfg.Argv = []string{"/bin/sh", "-c", proxyScript}
	}
	if cfg.Readiness == nil {
		cfg.Readiness = After{D: 100 * time.Millisecond}
	}
	cfg.DrainTime, cfg.ParentShutdownTime, cfg.TermWait = 20*time.Second, 30*time.Second, 3*time.Second
	cfg.Logger = zaptest.NewLogger(t)
	cfg.OnEvent = func(e Event) {
		h.mu.Lock()
		h.events = append(h.events, e)
		h.mu.Unlock()
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.done:
		case <-time.After(20 * time.Second):
			t.Errorf("Run did not return after cancel")
		}
	})
	return h
}

func (h *harness) stop() error {
	h.t.Helper()
	h.s.Stop()
	select {
	case err := <-h.done:
		h.done <- err
		return err
	case <-time.After(20 * time.Second):
		h.t.Fatalf("Run did not return after Stop")
	}
	return nil
}

func (h *harness) waitState(epoch uint32, st State) Generation {
	h.t.Helper()
	var g Generation
	testutil.WaitFor(h.t, 15*time.Second, func() error {
		for _, g = range h.s.Status().Generations {
			if g.Epoch == epoch && g.State == st {
				return nil
			}
		}
		return errors.New("epoch not in state " + string(st))
	})
	return g
}

func TestReloadOutcomeAndStatus(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := start(t, Config{})
	h.waitState(0, StateReady)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := h.s.Reload(ctx)
	if err != nil || !res.OK || res.Epoch != 1 {
		t.Fatalf("Reload = %+v, %v; want OK at epoch 1", res, err)
	}
	st := h.s.Status()
	if len(st.Generations) != 2 || st.Generations[0].State != StateDraining || st.Generations[1].State != StateReady ||
		st.LastReload == nil || !st.LastReload.OK || st.NextEpoch != 2 || st.PID != os.Getpid() {
		t.Fatalf("status %+v", st)
	}
	b, _ := json.Marshal(st)
	for _, k := range []string{`"epoch":1`, `"state":"ready"`, `"state":"draining"`, `"started_at"`, `"ready_at"`, `"last_reload":{"epoch":1,"ok":true`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("status JSON %s lacks %s", b, k)
		}
	}
	if err := h.stop(); err != nil {
		t.Fatalf("Run = %v, want nil after a clean stop", err)
	}
	if _, err := h.s.Reload(ctx); !errors.Is(err, ErrStopped) {
		t.Fatalf("Reload after stop = %v, want ErrStopped", err)
	}
}

func TestReloadFailureReusesEpoch(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Setenv("FAIL_EPOCH", "1")
	t.Setenv("MARK", filepath.Join(t.TempDir(), "mark"))
	h := start(t, Config{Readiness: After{D: 300 * time.Millisecond}})
	g0 := h.waitState(0, StateReady)
	ctx := context.Background()
	res, err := h.s.Reload(ctx)
	if err != nil || res.OK || res.Epoch != 1 || res.Failure != FailureStart || !strings.Contains(res.Reason, "exited with status 4 before it was ready") {
		t.Fatalf("Reload = %+v, %v; want failed epoch 1 with the exit status", res, err)
	}
	if st := h.s.Status(); len(st.Generations) != 1 || st.Generations[0].PID != g0.PID || st.Generations[0].State != StateReady {
		t.Fatalf("after rollback: %+v, want epoch 0 still serving", st.Generations)
	}
	res, err = h.s.Reload(ctx)
	if err != nil || !res.OK || res.Epoch != 1 {
		t.Fatalf("retry = %+v, %v; want OK at the same epoch 1", res, err)
	}
	if c := h.s.Status().Reloads; c != (ReloadCounts{Requested: 2, Started: 2, Succeeded: 1, Failed: 1}) {
		t.Errorf("reload counts %+v, want 2 requested and started, 1 succeeded, 1 failed", c)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
}

func TestValidateAbortsReload(t *testing.T) {
	defer goleak.VerifyNone(t)
	var calls []uint32
	var mu sync.Mutex
	h := start(t, Config{Validate: func(ctx context.Context, next Probe) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, next.Epoch)
		if len(calls) == 1 {
			return errors.New("bad config")
		}
		return nil
	}})
	h.waitState(0, StateReady)
	res, err := h.s.Reload(context.Background())
	if err != nil || res.OK || res.Failure != FailureValidation || !strings.Contains(res.Reason, "validation failed: bad config") {
		t.Fatalf("Reload = %+v, %v; want failed validation", res, err)
	}
	if n := len(h.s.Status().Generations); n != 1 {
		t.Fatalf("%d generations after a failed validation, want 1 (nothing started)", n)
	}
	res, err = h.s.Reload(context.Background())
	if err != nil || !res.OK || res.Epoch != 1 {
		t.Fatalf("Reload = %+v, %v; want OK at epoch 1", res, err)
	}
	mu.Lock()
	if len(calls) != 2 || calls[0] != 1 || calls[1] != 1 {
		t.Errorf("Validate called with %v, want [1 1]", calls)
	}
	mu.Unlock()
	h.stop()
}

func TestConcurrentReloadsCoalesce(t *testing.T) {
	defer goleak.VerifyNone(t)
	// Epoch 1 is not ready until all ten reloads were asked for (a gate,
	// not a 2 s race against the machine's load).
	gate := &gatedReady{open: make(chan struct{})}
	// No pacing: the second reload would be held until epoch 0 has left,
	// which is pacing's test, not this one's.
	h := start(t, Config{Readiness: gate, Pacing: PacingNone})
	h.waitState(0, StateReady)
	var wg sync.WaitGroup
	results := make([]ReloadResult, 10)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = h.s.Reload(context.Background())
		}()
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if st := h.s.Status(); !st.Pending || st.Reloads.Requested < 10 {
			return fmt.Errorf("pending %v, %d of 10 reloads requested", st.Pending, st.Reloads.Requested)
		}
		return nil
	})
	close(gate.open)
	wg.Wait()
	var maxEpoch uint32
	for i, r := range results {
		if !r.OK {
			t.Errorf("reload %d: %+v", i, r)
		}
		maxEpoch = max(maxEpoch, r.Epoch)
	}
	if maxEpoch != 2 {
		t.Fatalf("10 overlapping reloads reached epoch %d, want 2 (one running, one pending)", maxEpoch)
	}
	if c := h.s.Status().Reloads; c != (ReloadCounts{Requested: 10, Started: 2, Succeeded: 2}) {
		t.Errorf("reload counts %+v, want 10 requested, 2 started and succeeded", c)
	}
	h.stop()
}

func TestEvents(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := start(t, Config{})
	h.waitState(0, StateReady)
	if _, err := h.s.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	var got []string
	for _, e := range h.events {
		s := string(e.Kind)
		if e.Generation != nil {
			s += " " + string(rune('0'+e.Generation.Epoch)) + " " + string(e.Generation.State)
		}
		if e.First {
			s += " first"
		}
		got = append(got, s)
	}
	want := []string{"state 0 starting", "state 0 ready first", "reloading", "state 1 starting", "state 0 draining",
		"state 1 ready", "reloaded", "stopping"}
	if len(got) < len(want)+2 || strings.Join(got[:len(want)], ",") != strings.Join(want, ",") {
		t.Fatalf("events %q, want them to start with %q then two exits", got, want)
	}
	for _, e := range h.events[len(want):] {
		if e.Generation == nil || e.Generation.State != StateExited || e.Generation.ExitStatus == nil {
			t.Errorf("event %+v, want an exit with status", e)
		}
	}
}

func TestCommand(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := start(t, Config{})
	h.waitState(0, StateReady)
	res, err := h.s.Command(context.Background(), []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, nil)
	if err != nil || res.Status != 3 || string(res.Output) != "out\nerr\n" {
		t.Fatalf("Command = %+v %q, %v; want status 3 and both lines", res, res.Output, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, err = h.s.Command(ctx, []string{"sleep", "100"}, nil)
	if !errors.Is(err, context.DeadlineExceeded) || res.Status != 128+9 {
		t.Fatalf("Command past its deadline = %+v, %v; want killed (137) and DeadlineExceeded", res, err)
	}
	h.stop()
}

func TestFirstGenerationFailsExit1(t *testing.T) {
	defer goleak.VerifyNone(t)
	t.Setenv("FAIL_EPOCH", "0")
	t.Setenv("MARK", filepath.Join(t.TempDir(), "mark"))
	h := start(t, Config{})
	var err error
	select {
	case err = <-h.done:
		h.done <- err
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
	}
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 1 {
		t.Fatalf("Run = %v, want ExitError code 1", err)
	}
}

func TestPing(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := start(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.s.Ping(ctx); err != nil {
		t.Fatalf("Ping while running = %v, want nil", err)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Ping(ctx); !errors.Is(err, ErrStopped) {
		t.Fatalf("Ping after stop = %v, want ErrStopped", err)
	}
	expired, cancel2 := context.WithCancel(context.Background())
	cancel2()
	s, _ := New(Config{Argv: []string{"/bin/true"}})
	if err := s.Ping(expired); err == nil {
		t.Fatalf("Ping before Run = nil, want an error")
	}
}

// gatedReady makes epoch 0 ready at once and later epochs once open is
// closed.
type gatedReady struct{ open chan struct{} }

func (g *gatedReady) Ready(ctx context.Context, p Probe) error {
	if p.Epoch == 0 {
		return nil
	}
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
