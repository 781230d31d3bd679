package integration

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

// eventAt is the time of the first event msg at epoch (zero if none).
func eventAt(evs []Event, msg string, epoch int) time.Time {
	for _, e := range evs {
		if e.Msg == msg && e.Epoch == epoch {
			return e.Time
		}
	}
	return time.Time{}
}

// pacingRun starts the restarter (drain 2 s, parent shutdown 4 s) with
// extra flags, reloads once (epoch 1 ready, epoch 0 draining), then sends a
// second SIGHUP and returns the restarter.
func pacingRun(t *testing.T, extra ...string) (*ProxyEnv, *Proc) {
	t.Helper()
	env := newProxyEnv(t)
	r := startRestarter(t, env.RestarterArgs(append(timings(2*time.Second), extra...))...)
	waitLive(t, env.Admin, 0, 20*time.Second)
	if err := r.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLive(t, env.Admin, 1, 20*time.Second)
	if err := r.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	return env, r
}

// The default pacing holds a reload that would cut a draining generation,
// says so in status and events, and starts it once that generation has
// left at its parent-shutdown time, uncut.
func TestPacingHoldsReloadUntilDrainingGenerationExits(t *testing.T) {
	skipUnlessLinux(t)
	env, r := pacingRun(t)
	testutil.WaitFor(t, 10*time.Second, func() error {
		st, err := restarterStatus(env.Bin.Restarter, env.RuntimeDir)
		if err != nil {
			return err
		}
		if h := st.ReloadHeld; h == nil || h.WaitingFor != 0 || h.Rule != "protect-drain" || h.Reason == "" {
			return fmt.Errorf("reload_held = %+v, want waiting for epoch 0 by protect-drain with a reason", h)
		}
		for _, g := range st.Generations {
			if g.Epoch == 2 {
				return fmt.Errorf("epoch 2 is %s while epoch 0 drains, want it held", g.State)
			}
		}
		return nil
	})
	waitLive(t, env.Admin, 2, 30*time.Second)
	// The proxy may answer before the restarter's "started" event is out.
	var exit0, drain0, start2 time.Time
	testutil.WaitFor(t, 10*time.Second, func() error {
		evs := r.Events()
		exit0, drain0, start2 = eventAt(evs, "generation exited", 0), eventAt(evs, "draining", 0), eventAt(evs, "started", 2)
		if exit0.IsZero() || drain0.IsZero() || start2.IsZero() {
			return fmt.Errorf("events: epoch 0 draining %v, exited %v; epoch 2 started %v: want all three", drain0, exit0, start2)
		}
		return nil
	})
	if start2.Before(exit0) {
		t.Errorf("epoch 2 started at %v, before epoch 0 exited at %v: the draining generation was cut", start2, exit0)
	}
	if d := exit0.Sub(drain0); d < 2*time.Second {
		t.Errorf("epoch 0 exited %v into its drain, want it to drain its full 2s", d)
	}
	if n := countEvents(r.Events(), "reload held"); n != 1 {
		t.Errorf("got %d \"reload held\" events, want 1", n)
	}
	st, err := restarterStatus(env.Bin.Restarter, env.RuntimeDir)
	if err != nil {
		t.Fatal(err)
	}
	if st.ReloadHeld != nil {
		t.Errorf("reload_held = %+v after the reload went, want none", st.ReloadHeld)
	}
}

// --reload-pacing=envoy keeps Envoy's behaviour: the second reload starts
// at once and epoch 1 terminates the draining epoch 0.
func TestPacingEnvoyCutsTheDrain(t *testing.T) {
	skipUnlessLinux(t)
	env, r := pacingRun(t, "--reload-pacing", "envoy")
	waitLive(t, env.Admin, 2, 20*time.Second)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if eventAt(r.Events(), "generation exited", 0).IsZero() {
			return fmt.Errorf("epoch 0 has not exited")
		}
		return nil
	})
	evs := r.Events()
	exit0, drain0 := eventAt(evs, "generation exited", 0), eventAt(evs, "draining", 0)
	if d := exit0.Sub(drain0); d >= 2*time.Second {
		t.Errorf("epoch 0 exited %v into its drain, want it cut before its 2s drain time (Envoy's rule)", d)
	}
	if n := countEvents(evs, "reload held"); n != 0 {
		t.Errorf("got %d \"reload held\" events with --reload-pacing=envoy, want 0", n)
	}
}

// With the bound reached, the held reload goes ahead, and the cost (which
// generation it cuts) is logged.
func TestPacingMaxDelayForcesTheReload(t *testing.T) {
	skipUnlessLinux(t)
	env, r := pacingRun(t, "--max-reload-delay", "300ms")
	waitLive(t, env.Admin, 2, 20*time.Second)
	evs := r.Events()
	var forced *Event
	for i := range evs {
		if evs[i].Msg == forcedMsg {
			forced = &evs[i]
		}
	}
	if forced == nil {
		t.Fatalf("no %q event", forcedMsg)
	}
	if ce, _ := forced.Raw["cut_epoch"].(float64); ce != 0 {
		t.Errorf("forced reload names cut_epoch %v, want 0", forced.Raw["cut_epoch"])
	}
	held := eventAt(evs, "reload held", 2)
	if d := forced.Time.Sub(held); d < 250*time.Millisecond {
		t.Errorf("held for %v, want about --max-reload-delay 300ms", d)
	}
}
