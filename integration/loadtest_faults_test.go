package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/control"
	"github.com/hotrestart/restarter/integration/loadgen"
	"github.com/hotrestart/restarter/internal/testutil"
)

// backgroundLoad offers new-connection load until the returned stop is
// called (or max passes) and returns what happened.
func backgroundLoad(t *testing.T, env *ProxyEnv, rate int, max time.Duration) (stop func() loadgen.Result) {
	t.Helper()
	ctx, cancel := context.WithCancel(deadlineCtx(t))
	done := make(chan loadgen.Result, 1)
	go func() {
		res, err := loadgen.Run(ctx, loadConfig(env, false, rate, max))
		if err != nil {
			t.Errorf("loadgen: %v", err)
		}
		done <- res
	}()
	var res *loadgen.Result
	t.Cleanup(func() { cancel(); <-done })
	return func() loadgen.Result {
		if res == nil {
			cancel()
			r := <-done
			done <- r
			res = &r
		}
		return *res
	}
}

// handoffPoint is a moment of the new generation's handoff, seen from /proc
// or its admin (handoff_test.go), or a delay after it started.
type handoffPoint struct {
	name  string
	at    func(pid, old int) bool // the new generation pid, the old one; nil: delay
	delay time.Duration
}

// handoffPoints are the kill points of TestFaultsDuringReload, in the order
// they happen, then random delays after the start.
func handoffPoints(env *ProxyEnv, next func() int) []handoffPoint {
	pts := []handoffPoint{{name: "started"},
		{name: "exec'd", at: func(pid, _ int) bool { return execed(pid, env.Bin.Testproxy) }},
		{name: "parent closed its admin", at: func(_, old int) bool { return !holdsListener(old, env.Admin) }},
		{name: "holds a listen socket", at: func(pid, _ int) bool { return holdsListener(pid, env.Listen) }},
		{name: "admin answers at its epoch", at: func(int, int) bool {
			_, ep, err := getServerInfo(env.Admin)
			return err == nil && ep == next()
		}},
	}
	for i := 0; i < 4; i++ {
		d := time.Duration(rand.IntN(15_000)) * time.Microsecond
		pts = append(pts, handoffPoint{name: fmt.Sprintf("%v after start", d), delay: d})
	}
	return pts
}

// exitReason is the verdict the restarter of env left as it exited.
func exitReason(env *ProxyEnv) string {
	sock := control.SocketPath(env.RuntimeDir, control.InstanceName("", env.BaseID))
	rec, err := control.ReadExitRecord(control.ExitRecordPath(sock))
	if err != nil {
		return err.Error()
	}
	return rec.Reason
}

func checkServing(t *testing.T, env *ProxyEnv, epoch int) {
	t.Helper()
	want := "epoch " + strconv.Itoa(epoch) + " "
	testutil.WaitFor(t, 10*time.Second, func() error {
		b, err := getBody(env.URL("/"))
		if err != nil {
			return err
		}
		if !strings.HasPrefix(b, want) {
			return fmt.Errorf("got %q, want %q...", b, want)
		}
		return nil
	})
}

// TestFaultsDuringReload: the new generation killed during its handoff, the
// old one hung, the restarter SIGKILLed. After each the service is back and
// nothing is left behind; the requests each fault cost are logged.
func TestFaultsDuringReload(t *testing.T) {
	skipUnlessLinux(t)
	const rate = 200

	t.Run("new generation SIGKILLed during handoff", func(t *testing.T) {
		env := newProxyEnv(t)
		r := startRestarter(t, env.RestarterArgs(restarterTimings)...)
		waitLive(t, env.Admin, 0, 20*time.Second)
		r.WaitReady(t, 0)
		serving := 0
		seen := map[int]bool{}
		var total loadgen.Result
		points := handoffPoints(env, func() int { return serving + 1 })
		for _, p := range points {
			stop := backgroundLoad(t, env, rate, 2*time.Minute)
			old := r.WaitReady(t, serving).PID
			st, err := r.Status()
			if err != nil {
				t.Fatal(err)
			}
			before := st.Reloads
			if err := r.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			pid := r.WaitStarted(t, serving+1, seen).PID
			if p.at != nil {
				if !pollUntil(10*time.Second, func() bool { return p.at(pid, old) }) {
					t.Fatalf("new generation %d never reached %q", pid, p.name)
				}
			} else {
				time.Sleep(p.delay)
			}
			syscall.Kill(pid, syscall.SIGKILL)
			// The reload ends one way or the other.
			outcome := ""
			testutil.WaitFor(t, 30*time.Second, func() error {
				if r.Exited() {
					outcome = "restarter-exit"
					return nil
				}
				st, err = r.Status()
				switch {
				case err != nil:
					return err
				case st.Reloads.Failed > before.Failed:
					outcome = "rollback"
					return nil
				}
				return fmt.Errorf("reload of the killed generation %d not finished: reloading %v, last %+v", pid, st.Reloading, st.LastReload)
			})
			if outcome == "restarter-exit" {
				// Killed after the restarter saw it ready: a crash of the
				// serving generation. By design (hot-restarter.py's rule)
				// the restarter kills everything and exits 1 for its own
				// supervisor to start over at epoch 0.
				want := fmt.Sprintf("serving epoch %d exited with status %d", serving+1, 128+int(syscall.SIGKILL))
				if code, _ := r.Wait(time.Second); code != 1 || exitReason(env) != want {
					t.Fatalf("restarter exit %d (%q) after the kill at %s, want 1 (%q)", code, exitReason(env), p.name, want)
				}
				assertNothingLeft(t, env, 20*time.Second)
				r = startRestarter(t, env.RestarterArgs(restarterTimings)...)
				waitLive(t, env.Admin, 0, 20*time.Second)
				r.WaitReady(t, 0)
				serving = 0
				seen = map[int]bool{}
			}
			if outcome == "rollback" {
				// The reload's answer says what serves: a new one killed
				// after it told the old one to drain leaves nothing
				// serving, and the restarter starts the same epoch again
				// (see TestRollbackAfterParentDrained).
				if strings.HasPrefix(st.LastReload.Serving, "nothing serves") {
					outcome = "rollback+recovery"
					serving++
					waitLive(t, env.Admin, serving, 20*time.Second)
				}
			}
			// The old generation keeps serving (or, after a restart, epoch 0).
			checkServing(t, env, serving)
			res := stop()
			t.Logf("LOADTEST fault=kill-new-generation at=%q outcome=%s %v", p.name, outcome, res)
			if outcome == "rollback" && res.Failed() > 0 {
				t.Errorf("killing the new generation at %s (rolled back) cost %d requests: %q", p.name, res.Failed(), res.Errors)
			}
			total.Sent += res.Sent
			total.OK += res.OK
		}
		// The next reload reuses the failed epoch number and succeeds.
		stop := backgroundLoad(t, env, rate, 2*time.Minute)
		if err := r.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitLive(t, env.Admin, serving+1, 20*time.Second)
		checkServing(t, env, serving+1)
		if res := stop(); res.Failed() > 0 {
			t.Errorf("the reload after the faults lost %d requests: %v", res.Failed(), res)
		}
		t.Logf("LOADTEST fault=kill-new-generation total kills=%d sent=%d ok=%d", len(points), total.Sent, total.OK)
		r.Stop(20 * time.Second)
		assertNothingLeft(t, env, 10*time.Second)
	})

	t.Run("old generation hung (SIGSTOP)", func(t *testing.T) {
		env := newProxyEnv(t)
		const pst, grace, termWait = 4 * time.Second, 2 * time.Second, 2 * time.Second
		r := startRestarter(t, env.RestarterArgs([]string{"--drain-time", "2s", "--parent-shutdown-time", pst.String(),
			"--shutdown-grace", grace.String(), "--term-wait", termWait.String()})...)
		waitLive(t, env.Admin, 0, 20*time.Second)
		old := r.WaitReady(t, 0).PID
		stop := backgroundLoad(t, env, rate, 2*time.Minute)
		if err := r.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		// Hang the old generation while the reload completes.
		r.WaitReloads(t, 20*time.Second, "reload to epoch 1 done", func(c control.ReloadCounts) bool { return c.Succeeded == 1 })
		if err := syscall.Kill(old, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		t.Cleanup(func() { syscall.Kill(old, syscall.SIGKILL) })
		// The backstop: SIGTERM at parent-shutdown time plus grace (a
		// stopped process keeps it pending), SIGKILL after --term-wait.
		termed := false
		testutil.WaitFor(t, pst+grace+termWait+10*time.Second, func() error {
			termed = termed || signalPending(old, syscall.SIGTERM)
			if slices.Contains(procsWithArg(env.Bin.Testproxy, env.SocketPath), old) {
				return fmt.Errorf("hung epoch 0 (pid %d) still there %v after SIGSTOP", old, time.Since(stopped).Round(time.Second))
			}
			return nil
		})
		gone := time.Since(stopped)
		st := r.WaitStatus(t, 10*time.Second, "epoch 0 exited", func(st control.Status) error {
			for _, g := range st.Generations {
				if g.PID == old && g.ExitStatus != nil {
					return nil
				}
			}
			return fmt.Errorf("generations %+v", st.Generations)
		})
		for _, g := range st.Generations {
			if g.PID == old && (!termed || *g.ExitStatus != 128+int(syscall.SIGKILL)) {
				t.Errorf("the hung generation went with SIGTERM pending %v and exit status %d, want the backstop's TERM, then KILL (137)", termed, *g.ExitStatus)
			}
		}
		checkServing(t, env, 1)
		res := stop()
		t.Logf("LOADTEST fault=old-generation-hung gone_after=%v (backstop TERM at parent-shutdown %v + grace %v, KILL after %v) %v",
			gone.Round(100*time.Millisecond), pst, grace, termWait, res)
		if res.Failed() > 0 {
			t.Errorf("a hung old generation cost %d requests: %q", res.Failed(), res.Errors)
		}
		r.Stop(20 * time.Second)
		assertNothingLeft(t, env, 10*time.Second)
	})

	t.Run("restarter SIGKILLed during a reload", func(t *testing.T) {
		env := newProxyEnv(t)
		r := startRestarter(t, env.RestarterArgs(restarterTimings)...)
		waitLive(t, env.Admin, 0, 20*time.Second)
		stop := backgroundLoad(t, env, rate, 2*time.Minute)
		r.WaitReady(t, 0)
		if err := r.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		r.WaitStarted(t, 1, map[int]bool{})
		time.Sleep(time.Duration(rand.IntN(10_000)) * time.Microsecond)
		if err := r.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		if code, _ := r.Wait(5 * time.Second); code != 128+int(syscall.SIGKILL) {
			t.Fatalf("restarter exit %d, want SIGKILL", code)
		}
		// Every generation gets SIGTERM by the parent-death signal. One
		// caught in the middle of the handoff waits for its parent's answer
		// before it handles any signal (so does Envoy's child, for ever):
		// that one may outlive the restarter, and the next restarter ends it
		// before its epoch 0 (the generations record, see "When things
		// fail" in the README).
		var left []int
		deadline := time.Now().Add(20 * time.Second)
		for {
			left = procsWithArg(env.Bin.Testproxy, env.SocketPath)
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		allGone := time.Since(killed)
		if len(left) > 0 {
			t.Logf("still alive %v after the restarter's death: a generation blocked in the handoff (%v)", left, allGone.Round(time.Millisecond))
		}

		// A fresh restarter on the same runtime dir, base id, socket path
		// and ports ends what is left and starts at epoch 0 cleanly.
		pidFile := filepath.Join(env.RuntimeDir, "restarter.pid")
		r2 := startRestarter(t, env.RestarterArgs(restarterTimings)...)
		waitLive(t, env.Admin, 0, 20*time.Second)
		checkServing(t, env, 0)
		back := time.Since(killed)
		for _, pid := range left {
			if testutil.Alive(pid) {
				t.Errorf("generation pid %d of the SIGKILLed restarter still alive after the fresh one started serving", pid)
			}
		}
		lost := stop()
		if b, err := os.ReadFile(pidFile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(r2.Pid) {
			t.Errorf("pid file %q (%v), want the fresh restarter's pid %d", b, err, r2.Pid)
		}
		t.Logf("LOADTEST fault=restarter-sigkill generations_gone_after=%v fresh_restarter_serving_after=%v %v", allGone.Round(time.Millisecond), back.Round(time.Millisecond), lost)
		r2.Stop(20 * time.Second)
		if code, err := r2.Wait(time.Second); err != nil || code != 0 {
			t.Errorf("fresh restarter exit %d (%v), want 0", code, err)
		}
		assertNothingLeft(t, env, 10*time.Second)
		if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
			t.Errorf("pid file %s left after a clean exit (%v)", pidFile, err)
		}
	})
}

// TestRollbackAfterParentDrained: a new generation that dies after it told
// the old one to drain (so the old one closed its listeners and handed over
// its admin) but before the restarter's readiness probe saw it ready. A plain
// rollback would leave nothing serving until the next SIGHUP (this test found
// that gap; the restarter sees that the old generation no longer listens
// and starts the same epoch again). A slow readiness poll makes the window wide
// enough to hit on purpose.
func TestRollbackAfterParentDrained(t *testing.T) {
	skipUnlessLinux(t)
	env := newProxyEnv(t)
	// A later flag wins: this --ready-interval overrides the harness's 5ms.
	flags := append(slices.Clone(restarterTimings), "--ready-interval", "3s")
	// The new generation kills itself once it told its parent to drain; the
	// restarter's recovery start of the same epoch goes through.
	r := startRestarter(t, env.RestarterArgs(flags, "--fault-at", "after-drain", "--fault-once", filepath.Join(t.TempDir(), "faulted"))...)
	waitLive(t, env.Admin, 0, 20*time.Second)
	r.WaitReady(t, 0)
	if err := r.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	pid := r.WaitStarted(t, 1, map[int]bool{}).PID
	testutil.WaitFor(t, 10*time.Second, func() error {
		if testutil.Alive(pid) {
			return fmt.Errorf("new generation %d has not reached its fault after drain_listeners", pid)
		}
		return nil
	})
	killedAt := time.Now()
	r.WaitReloads(t, 20*time.Second, "the reload to epoch 1 failed", func(c control.ReloadCounts) bool { return c.Failed == 1 })
	// Service must come back with no further SIGHUP: the restarter's
	// second look at the old generation's sockets (300ms) plus a new start,
	// within a generous margin.
	stop := backgroundLoad(t, env, 100, 2*time.Minute)
	testutil.WaitFor(t, 20*time.Second, func() error {
		if _, err := getBody(env.URL("/")); err != nil {
			return fmt.Errorf("nothing serves after the rollback: %w", err)
		}
		if _, _, err := getServerInfo(env.Admin); err != nil {
			return fmt.Errorf("no admin after the rollback: %w", err)
		}
		return nil
	})
	back := time.Since(killedAt)
	waitLive(t, env.Admin, 1, 20*time.Second)
	res := stop()
	t.Logf("LOADTEST fault=rollback-after-parent-drained (ready-interval 3s) serving_again_after=%v %v", back.Round(time.Millisecond), res)
	if res.Timeout+res.Refused+res.Reset > 0 {
		t.Logf("requests queued or refused while nothing accepted: %v", res)
	}
	r.Stop(20 * time.Second)
	assertNothingLeft(t, env, 10*time.Second)
}
