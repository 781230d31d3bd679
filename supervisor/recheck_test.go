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

func TestRollbackRechecksTheServingGeneration(t *testing.T) {
	t.Setenv("FAIL_EPOCH", "1")
	t.Setenv("MARK", filepath.Join(t.TempDir(), "mark"))
	probe := &recheckProbe{After: After{D: 100 * time.Millisecond}}
	h := start(t, Config{Readiness: probe})
	h.waitState(0, StateReady)
	reloadFails(t, h, 1)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if probe.asked.Load() == 0 {
			return errors.New("serving generation not rechecked after the rollback")
		}
		return nil
	})
	if got := probe.onEpoch.Load(); got != 0 {
		t.Fatalf("rechecked epoch %d, want the serving epoch 0", got)
	}
	// It still serves: nothing else starts.
	time.Sleep(300 * time.Millisecond)
	st := h.s.Status()
	if len(st.Generations) != 1 || st.Generations[0].Epoch != 0 || st.Generations[0].State != StateReady || st.NextEpoch != 1 {
		t.Fatalf("after a good recheck got %+v, want epoch 0 alone, ready, next epoch 1", st)
	}
}

func TestRollbackRecoversWhenTheOldGenerationNoLongerServes(t *testing.T) {
	t.Setenv("FAIL_EPOCH", "1")
	t.Setenv("MARK", filepath.Join(t.TempDir(), "mark"))
	probe := &recheckProbe{After: After{D: 100 * time.Millisecond}}
	probe.fail.Store(true)
	h := start(t, Config{Readiness: probe})
	h.waitState(0, StateReady)
	reloadFails(t, h, 1)
	// With no further request, epoch 1 is started again and takes over.
	h.waitState(1, StateReady)
	h.waitState(0, StateDraining)
	st := h.s.Status()
	if st.LastReload == nil || !st.LastReload.OK || st.LastReload.Epoch != 1 {
		t.Fatalf("last reload %+v, want the recovery of epoch 1 to have succeeded", st.LastReload)
	}
}

func TestFailedRecoveryExits1(t *testing.T) {
	probe := &recheckProbe{After: After{D: 100 * time.Millisecond}}
	probe.fail.Store(true)
	// Epoch 1 always fails: the reload and the recovery both die.
	h := start(t, Config{Argv: []string{"/bin/sh", "-c", `[ "$RESTART_EPOCH" = 1 ] && exit 4; exec sleep 1000`}, Readiness: probe})
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
