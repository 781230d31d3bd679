package integration

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/control"
)

// epochGen is the newest start of epoch in st, or nil.
func epochGen(st control.Status, epoch uint32) *control.Generation {
	var out *control.Generation
	for i, g := range st.Generations {
		if g.Epoch == epoch {
			out = &st.Generations[i]
		}
	}
	return out
}

// pacingRun starts the restarter (drain 2 s, parent shutdown 4 s) with
// extra flags, reloads once (epoch 1 ready, epoch 0 draining), then sends a
// second SIGHUP and returns the restarter and when it sent that SIGHUP.
func pacingRun(t *testing.T, extra ...string) (*ProxyEnv, *Proc, time.Time) {
	t.Helper()
	env := newProxyEnv(t)
	r := startRestarter(t, env.RestarterArgs(append(timings(2*time.Second), extra...))...)
	waitLive(t, env.Admin, 0, 20*time.Second)
	if err := r.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLive(t, env.Admin, 1, 20*time.Second)
	r.WaitReady(t, 1)
	sent := time.Now()
	if err := r.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	return env, r, sent
}

// afterSecondReload waits until epoch 2 has started and epoch 0 has exited,
// and returns the two.
func afterSecondReload(t *testing.T, r *Proc) (g0, g2 control.Generation) {
	t.Helper()
	r.WaitStatus(t, 30*time.Second, "epoch 2 started and epoch 0 exited", func(st control.Status) error {
		a, b := epochGen(st, 0), epochGen(st, 2)
		if a == nil || a.Exited == nil || a.DrainUntil == nil || b == nil {
			return fmt.Errorf("epoch 0 %+v, epoch 2 %+v", a, b)
		}
		g0, g2 = *a, *b
		return nil
	})
	return g0, g2
}

// The default pacing holds a reload that would cut a draining generation,
// says so in status, and starts it once that generation has left at its
// parent-shutdown time, uncut.
func TestPacingHoldsReloadUntilDrainingGenerationExits(t *testing.T) {
	skipUnlessLinux(t)
	env, r, _ := pacingRun(t)
	r.WaitStatus(t, 10*time.Second, "the reload held", func(st control.Status) error {
		if h := st.ReloadHeld; h == nil || h.WaitingFor != 0 || h.Rule != "protect-drain" || h.Reason == "" {
			return fmt.Errorf("reload_held = %+v, want waiting for epoch 0 by protect-drain with a reason", h)
		}
		if g := epochGen(st, 2); g != nil {
			return fmt.Errorf("epoch 2 is %s while epoch 0 drains, want it held", g.State)
		}
		return nil
	})
	waitLive(t, env.Admin, 2, 30*time.Second)
	g0, g2 := afterSecondReload(t, r)
	if g2.Started.Before(*g0.Exited) {
		t.Errorf("epoch 2 started at %v, before epoch 0 exited at %v: the draining generation was cut", g2.Started, *g0.Exited)
	}
	if g0.Exited.Before(*g0.DrainUntil) {
		t.Errorf("epoch 0 exited at %v, before its drain ended at %v: want it to drain its full 2s", *g0.Exited, *g0.DrainUntil)
	}
	st := r.WaitStatus(t, 10*time.Second, "the held reload done", func(st control.Status) error {
		if st.Reloads.Succeeded < 2 {
			return fmt.Errorf("reload counts %+v", st.Reloads)
		}
		return nil
	})
	if c := st.Reloads; c.Held != 1 || c.Released != 1 || c.Forced != 0 {
		t.Errorf("reload counts %+v, want 1 held and released, none forced", c)
	}
	if st.ReloadHeld != nil {
		t.Errorf("reload_held = %+v after the reload went, want none", st.ReloadHeld)
	}
}

// --reload-pacing=envoy keeps Envoy's behaviour: the second reload starts
// at once and epoch 1 terminates the draining epoch 0.
func TestPacingEnvoyCutsTheDrain(t *testing.T) {
	skipUnlessLinux(t)
	env, r, _ := pacingRun(t, "--reload-pacing", "envoy")
	waitLive(t, env.Admin, 2, 20*time.Second)
	g0, _ := afterSecondReload(t, r)
	if !g0.Exited.Before(*g0.DrainUntil) {
		t.Errorf("epoch 0 exited at %v, its drain ending at %v: want it cut before its 2s drain time (Envoy's rule)", *g0.Exited, *g0.DrainUntil)
	}
	st, err := r.Status()
	if err != nil {
		t.Fatal(err)
	}
	if c := st.Reloads; c.Held != 0 {
		t.Errorf("reload counts %+v with --reload-pacing=envoy, want none held", c)
	}
}

// With the bound reached, the held reload goes ahead and cuts the draining
// generation.
func TestPacingMaxDelayForcesTheReload(t *testing.T) {
	skipUnlessLinux(t)
	env, r, sent := pacingRun(t, "--max-reload-delay", "300ms")
	waitLive(t, env.Admin, 2, 20*time.Second)
	g0, g2 := afterSecondReload(t, r)
	st, err := r.Status()
	if err != nil {
		t.Fatal(err)
	}
	if c := st.Reloads; c.Held != 1 || c.Forced != 1 || c.Released != 0 {
		t.Errorf("reload counts %+v, want 1 held and forced", c)
	}
	if !g0.Exited.Before(*g0.DrainUntil) {
		t.Errorf("epoch 0 exited at %v, its drain ending at %v: want the forced reload to cut it", *g0.Exited, *g0.DrainUntil)
	}
	if d := g2.Started.Sub(sent); d < 250*time.Millisecond {
		t.Errorf("epoch 2 started %v after the SIGHUP, want it held about --max-reload-delay 300ms", d)
	}
}
