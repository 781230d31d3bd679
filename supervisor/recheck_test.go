package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

// recheckProbe is ready after a short survival and answers rechecks as told.
type recheckProbe struct {
	After
	fail    atomic.Bool
	asked   atomic.Int32
	onEpoch atomic.Int32
}

func (r *recheckProbe) Recheck(ctx context.Context, p Probe) error {
	r.asked.Add(1)
	r.onEpoch.Store(int32(p.Epoch))
	if r.fail.Load() {
		return errors.New("admin gone")
	}
	return nil
}

func reloadFails(t *testing.T, h *harness, epoch uint32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := h.s.Reload(ctx)
	if err != nil || res.OK || res.Epoch != epoch {
		t.Fatalf("Reload = %+v, %v; want a failure at epoch %d", res, err, epoch)
	}
}

// helperArgv runs this test binary as a generation in the given mode (see helperMain).
func helperArgv(t *testing.T, mode string) []string {
	t.Helper()
	t.Setenv("SUPERVISOR_HELPER", mode)
	dir := t.TempDir()
	t.Setenv("DRAIN_FILE", filepath.Join(dir, "drain"))
	t.Setenv("MARK", filepath.Join(dir, "mark"))
	return []string{os.Args[0]}
}

// A new generation that dies after taking the admin address leaves the old
// one unreachable by its probe, yet still serving: it keeps its listening
// sockets. The probe's failure must not make the restarter replace or kill
// it (issue 8 item 1).
func TestRollbackKeepsTheListeningGenerationWhenItsProbeFails(t *testing.T) {
	argv := helperArgv(t, "listen")
	t.Setenv("FAIL_EPOCH", "1")
	probe := &recheckProbe{After: After{D: 100 * time.Millisecond}}
	probe.fail.Store(true)
	failing := []string{"/bin/sh", "-c", `[ "$RESTART_EPOCH" = 1 ] && exit 4; exec "$0"`, argv[0]}
	h := start(t, Config{Argv: failing, Readiness: probe})
	g0 := h.waitState(0, StateReady)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	res, err := h.s.Reload(ctx)
	if err != nil || res.OK || res.ServingEpoch == nil || *res.ServingEpoch != 0 || res.Serving != "epoch 0 keeps serving" {
		t.Fatalf("Reload = %+v, %v; want a failure saying epoch 0 keeps serving", res, err)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		for _, g := range h.s.Status().Generations {
			if g.Epoch == 0 && strings.HasPrefix(g.Health, "unprobed") {
				return nil
			}
		}
		return fmt.Errorf("epoch 0 not marked unprobed after its probe failed: %+v", h.s.Status().Generations)
	})
	st := h.s.Status()
	if len(st.Generations) != 1 || st.Generations[0].PID != g0.PID || st.Generations[0].State != StateReady || st.NextEpoch != 1 {
		t.Fatalf("got %+v, want epoch 0 (pid %d) alone, ready, next epoch 1", st, g0.PID)
	}
	if yes, _ := listening(g0.PID, 0); !yes {
		t.Fatalf("epoch 0 (pid %d) no longer listens", g0.PID)
	}
}

// listensReady is ready once the generation listens: the helper processes
// start slowly under -race, so a survival time would race with their exit.
type listensReady struct{}

func (listensReady) Ready(ctx context.Context, p Probe) error {
	return poll(ctx, p, 10*time.Millisecond, func() error {
		if yes, _ := listening(p.PID, p.Epoch); !yes {
			return errors.New("not listening yet")
		}
		return nil
	})
}

// A new generation that told the old one to drain (it stopped listening)
// and then died leaves nothing serving: the same epoch is started again at
// once, and the reload's answer says nothing serves.
func TestRollbackRecoversWhenTheOldGenerationStoppedListening(t *testing.T) {
	argv := helperArgv(t, "drain-and-fail")
	h := start(t, Config{Argv: argv, Readiness: listensReady{}})
	h.waitState(0, StateReady)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// The answer may still say epoch 0 serves: it may not have closed its
	// listener yet when epoch 1 died. The restarter notices either way.
	if res, err := h.s.Reload(ctx); err != nil || res.OK {
		t.Fatalf("Reload = %+v, %v; want a failure", res, err)
	}
	h.waitState(1, StateReady)
	h.waitState(0, StateDraining)
	// The recovery's outcome is published just after epoch 1's ready state.
	testutil.WaitFor(t, 10*time.Second, func() error {
		if st := h.s.Status(); st.LastReload == nil || !st.LastReload.OK || st.LastReload.Epoch != 1 || st.Reloads.Succeeded != 1 {
			return fmt.Errorf("last reload %+v, counts %+v, want the recovery of epoch 1 to have succeeded", st.LastReload, st.Reloads)
		}
		return nil
	})
}

func TestFailedRecoveryExits1(t *testing.T) {
	argv := helperArgv(t, "drain-and-fail")
	t.Setenv("ALWAYS", "1") // epoch 1 always drains its parent and dies
	h := start(t, Config{Argv: argv, Readiness: listensReady{}})
	h.waitState(0, StateReady)
	reloadFails(t, h, 1)
	select {
	case err := <-h.done:
		var ee *ExitError
		if !errors.As(err, &ee) || ee.Code != 1 {
			t.Fatalf("Run = %v, want *ExitError with code 1", err)
		}
		h.done <- err
	case <-time.After(15 * time.Second):
		t.Fatalf("restarter still running after the recovery failed too; want exit 1 so the service manager restarts it")
	}
}

// A draining generation that exits 0 has ended normally, even if it left a
// process behind that carries its RESTART_EPOCH: that process must not be
// adopted as the generation (seen at 10 reloads/s, where an adopted
// stranger was later SIGTERMed and SIGKILLed as an old generation).
func TestDrainingExitIsNotAdoption(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LEFTOVER", filepath.Join(dir, "leftover.pid"))
	script := `if [ "$RESTART_EPOCH" = 0 ]; then trap 'exit 0' TERM; sleep 1000 & echo $! > "$LEFTOVER"; while :; do wait; done; fi; exec sleep 1000`
	h := start(t, Config{Argv: []string{"/bin/sh", "-c", script}})
	g0 := h.waitState(0, StateReady)
	var leftover int
	testutil.WaitFor(t, 5*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(dir, "leftover.pid"))
		if err == nil {
			leftover, err = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		return err
	})
	t.Cleanup(func() { syscall.Kill(leftover, syscall.SIGKILL) })
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if res, err := h.s.Reload(ctx); err != nil || !res.OK {
		t.Fatalf("Reload = %+v, %v", res, err)
	}
	h.waitState(0, StateDraining)
	if err := syscall.Kill(g0.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		for _, g := range h.s.Status().Generations {
			if g.Epoch == 0 {
				return fmt.Errorf("epoch 0 still listed (pid %d, start pid %d) after it exited 0 while draining", g.PID, g.StartPID)
			}
		}
		return nil
	})
}
