package integration

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/hotrestart/restarter/control"
	"github.com/hotrestart/restarter/internal/testutil"
)

// The tests wait on the restarter's state, never on its log: the status is
// what `restarter status --json` prints, asked over the same control socket
// in-process (an exec per 10ms poll would load the machine it measures).

// restarterStatus is the status of the one restarter whose runtime dir is
// runtimeDir.
func restarterStatus(runtimeDir string) (control.Status, error) {
	path, err := control.Find(runtimeDir, "")
	if err != nil {
		return control.Status{}, err
	}
	c, err := control.Dial(path)
	if err != nil {
		return control.Status{}, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Status(ctx)
}

// Status is the status of restarter p (started with --runtime-dir).
func (p *Proc) Status() (control.Status, error) {
	if p.RuntimeDir == "" {
		return control.Status{}, fmt.Errorf("pid %d was started without --runtime-dir", p.Pid)
	}
	st, err := restarterStatus(p.RuntimeDir)
	if err == nil && st.PID != p.Pid {
		err = fmt.Errorf("the control socket in %s is pid %d's, not %d's", p.RuntimeDir, st.PID, p.Pid)
	}
	return st, err
}

// WaitStatus polls p's status until ok accepts it and returns that status.
// It fails at once when p has exited.
func (p *Proc) WaitStatus(tb testing.TB, d time.Duration, what string, ok func(control.Status) error) control.Status {
	tb.Helper()
	var st control.Status
	testutil.WaitFor(tb, d, func() error {
		var err error
		if st, err = p.Status(); err != nil {
			if p.Exited() {
				code, _ := p.Wait(0)
				tb.Fatalf("restarter pid %d exited %d while waiting for %s", p.Pid, code, what)
			}
			return err
		}
		if err := ok(st); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	})
	return st
}

// WaitReady waits until p reports epoch ready (serving, not yet draining).
func (p *Proc) WaitReady(tb testing.TB, epoch int) control.Generation {
	tb.Helper()
	var g control.Generation
	p.WaitStatus(tb, 20*time.Second, fmt.Sprintf("epoch %d ready", epoch), func(st control.Status) error {
		for _, x := range st.Generations {
			if int(x.Epoch) == epoch && x.State == control.StateReady {
				g = x
				return nil
			}
		}
		return fmt.Errorf("generations %+v", st.Generations)
	})
	return g
}

// WaitStarted waits until p has started a generation at epoch whose pid is
// not in seen (a failed epoch number is reused), adds it to seen and returns
// it. Status lists a generation from its start (fork and exec done).
func (p *Proc) WaitStarted(tb testing.TB, epoch int, seen map[int]bool) control.Generation {
	tb.Helper()
	var g control.Generation
	p.WaitStatus(tb, 10*time.Second, fmt.Sprintf("a new start of epoch %d", epoch), func(st control.Status) error {
		for _, x := range st.Generations {
			if int(x.Epoch) == epoch && !seen[x.PID] {
				g = x
				seen[x.PID] = true
				return nil
			}
		}
		return fmt.Errorf("generations %+v", st.Generations)
	})
	return g
}

// WaitReloads waits until p's reload counts satisfy ok and returns them.
func (p *Proc) WaitReloads(tb testing.TB, d time.Duration, what string, ok func(control.ReloadCounts) bool) control.ReloadCounts {
	tb.Helper()
	st := p.WaitStatus(tb, d, what, func(st control.Status) error {
		if !ok(st.Reloads) {
			return fmt.Errorf("reload counts %+v", st.Reloads)
		}
		return nil
	})
	return st.Reloads
}

// generationReady reports whether epoch is ready in st.
func generationReady(st control.Status, epoch uint32) bool {
	return slices.ContainsFunc(st.Generations, func(g control.Generation) bool {
		return g.Epoch == epoch && g.State == control.StateReady
	})
}
