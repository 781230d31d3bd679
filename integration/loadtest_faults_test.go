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

	"github.com/hotrestart/restarter/integration/loadgen"
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

// proxyLogged waits until the proxy at pid has logged msg (the proxies'
// output goes through the restarter's log) and returns how long it took.
func proxyLogged(r *Proc, pid int, msg string, d time.Duration) bool {
	needle := fmt.Sprintf("\t%s\t", msg)
	pidField := fmt.Sprintf(`"pid": %d`, pid)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, l := range strings.Split(r.Log(), "\n") {
			if strings.Contains(l, needle) && strings.Contains(l, pidField) {
				return true
			}
		}
		time.Sleep(200 * time.Microsecond)
	}
	return false
}

// newChild polls r's children for one not in known.
func newChild(t *testing.T, r *Proc, known []int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range r.Children() {
			if !slices.Contains(known, c) {
				return c
			}
		}
	}
	t.Fatalf("no new child of the restarter 10s after SIGHUP")
	return 0
}

func generationPid(t *testing.T, r *Proc, epoch int) int {
	t.Helper()
	pid := 0
	waitFor(t, 10*time.Second, func() error {
		for _, e := range r.Events() {
			if e.Msg == "started" && e.Epoch == epoch {
				pid = e.Pid
			}
		}
		if pid == 0 {
			return fmt.Errorf("no started event for epoch %d", epoch)
		}
		return nil
	})
	return pid
}

// oldDrained reports whether the generation at epoch has been told to
// drain (its own log line).
func oldDrained(r *Proc, epoch int) bool {
	for _, l := range strings.Split(r.Log(), "\n") {
		if strings.Contains(l, "\tdraining\t") && strings.Contains(l, fmt.Sprintf(`"epoch": %d,`, epoch)) {
			return true
		}
	}
	return false
}

func checkServing(t *testing.T, env *ProxyEnv, epoch int) {
	t.Helper()
	want := "epoch " + strconv.Itoa(epoch) + " "
	waitFor(t, 10*time.Second, func() error {
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
		serving := 0

		// Points of the handoff, by the new proxy's own log lines (the
		// kill lands a fraction of a millisecond after the line), then
		// random delays after the fork.
		type point struct {
			after string        // proxy log message, or "" for a delay after fork
			delay time.Duration // with after == ""
		}
		points := []point{{"", 0}, {"starting", 0}, {"parent admin shut down", 0},
			{"listen socket from parent", 0}, {"stats from parent", 0}, {"admin listening", 0}}
		for i := 0; i < 4; i++ {
			points = append(points, point{"", time.Duration(rand.IntN(15_000)) * time.Microsecond})
		}
		var total loadgen.Result
		for _, p := range points {
			where := p.after
			if where == "" {
				where = fmt.Sprintf("%v after fork", p.delay)
			}
			stop := backgroundLoad(t, env, rate, 2*time.Minute)
			failedBefore := countEvents(r.Events(), "reload failed")
			doneBefore := countEvents(r.Events(), "reload done")
			known := r.Children()
			if err := r.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			pid := newChild(t, r, known)
			if p.after != "" {
				if !proxyLogged(r, pid, p.after, 10*time.Second) {
					t.Fatalf("new generation %d never logged %q", pid, p.after)
				}
			} else {
				time.Sleep(p.delay)
			}
			syscall.Kill(pid, syscall.SIGKILL)
			// The reload ends one way or the other.
			outcome := ""
			waitFor(t, 30*time.Second, func() error {
				evs := r.Events()
				switch {
				case countEvents(evs, "reload failed") > failedBefore:
					outcome = "rollback"
				case r.Exited():
					outcome = "restarter-exit"
				default:
					return fmt.Errorf("reload of the killed generation %d not finished", pid)
				}
				return nil
			})
			if outcome == "restarter-exit" {
				// Killed after the restarter saw it ready: a crash of the
				// serving generation. By design (hot-restarter.py's rule)
				// the restarter kills everything and exits 1 for its own
				// supervisor to start over at epoch 0.
				if code, _ := r.Wait(time.Second); code != 1 || countEvents(r.Events(), "reload done") <= doneBefore {
					t.Fatalf("restarter exit %d after the kill %s, want 1 after a reload done", code, where)
				}
				assertNothingLeft(t, env, 20*time.Second)
				r = startRestarter(t, env.RestarterArgs(restarterTimings)...)
				waitLive(t, env.Admin, 0, 20*time.Second)
				serving = 0
			}
			if outcome == "rollback" && oldDrained(r, serving) {
				// Killed after it had told the old generation to drain
				// but before the restarter saw it ready: the restarter
				// rolls back, but the old generation no longer accepts.
				// Nothing serves until the next reload (see
				// TestRollbackAfterParentDrained); do that reload.
				outcome = "rollback-after-parent-drained"
				if err := r.Signal(syscall.SIGHUP); err != nil {
					t.Fatal(err)
				}
				serving++
				waitLive(t, env.Admin, serving, 20*time.Second)
			}
			// The old generation keeps serving (or, after a restart, epoch 0).
			checkServing(t, env, serving)
			res := stop()
			t.Logf("LOADTEST fault=kill-new-generation at=%q outcome=%s %v", where, outcome, res)
			if outcome == "rollback" && res.Failed() > 0 {
				t.Errorf("killing the new generation %s (rolled back) cost %d requests: %q", where, res.Failed(), res.Errors)
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
		old := generationPid(t, r, 0)
		stop := backgroundLoad(t, env, rate, 2*time.Minute)
		if err := r.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		// Hang the old generation while the reload completes.
		findEvent(t, r, "reload done", 1)
		if err := syscall.Kill(old, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		t.Cleanup(func() { syscall.Kill(old, syscall.SIGKILL) })
		waitFor(t, pst+grace+termWait+10*time.Second, func() error {
			if procsWithArg(env.Bin.Testproxy, env.SocketPath) != nil && slices.Contains(procsWithArg(env.Bin.Testproxy, env.SocketPath), old) {
				return fmt.Errorf("hung epoch 0 (pid %d) still there %v after SIGSTOP", old, time.Since(stopped).Round(time.Second))
			}
			return nil
		})
		gone := time.Since(stopped)
		evs := r.Events()
		if countEvents(evs, "old generation outlived parent-shutdown time plus grace; sending SIGTERM") == 0 ||
			countEvents(evs, "still alive after --term-wait; sending SIGKILL") == 0 {
			t.Errorf("the hung generation went without the restarter's backstop TERM and KILL")
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
		known := r.Children()
		if err := r.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		newChild(t, r, known)
		time.Sleep(time.Duration(rand.IntN(10_000)) * time.Microsecond)
		if err := r.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		if code, _ := r.Wait(5 * time.Second); code != 128+int(syscall.SIGKILL) {
			t.Fatalf("restarter exit %d, want SIGKILL", code)
		}
		// Every generation gets SIGTERM by the parent-death signal.
		assertNothingLeft(t, env, 20*time.Second)
		allGone := time.Since(killed)

		// A fresh restarter on the same runtime dir, base id, socket path
		// and ports starts at epoch 0 cleanly.
		pidFile := filepath.Join(env.RuntimeDir, "restarter.pid")
		r2 := startRestarter(t, env.RestarterArgs(restarterTimings)...)
		waitLive(t, env.Admin, 0, 20*time.Second)
		checkServing(t, env, 0)
		back := time.Since(killed)
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

// TestRollbackAfterParentDrained demonstrates a gap in the restarter's
// rollback: a new generation that dies after it told the old one to drain
// but before the restarter's readiness probe saw it ready is "rolled back",
// yet the old generation has closed its listeners and its admin, so nothing
// serves until someone sends another SIGHUP. A slow readiness poll makes the
// window wide enough to hit on purpose.
func TestRollbackAfterParentDrained(t *testing.T) {
	skipUnlessLinux(t)
	env := newProxyEnv(t)
	// A later flag wins: this --ready-interval overrides the harness's 5ms.
	flags := append(slices.Clone(restarterTimings), "--ready-interval", "3s")
	r := startRestarter(t, env.RestarterArgs(flags)...)
	waitLive(t, env.Admin, 0, 20*time.Second)
	known := r.Children()
	if err := r.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	pid := newChild(t, r, known)
	if !proxyLogged(r, pid, "parent told to drain", 10*time.Second) {
		t.Fatalf("new generation %d never told its parent to drain", pid)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	findEvent(t, r, "reload failed", 1)
	// The restarter says the old generation keeps serving: check it does,
	// for 5 seconds, with no further SIGHUP.
	deadline := time.Now().Add(5 * time.Second)
	var lastErr error
	for time.Now().Before(deadline) {
		if _, lastErr = getBody(env.URL("/")); lastErr == nil {
			break
		}
	}
	if lastErr != nil {
		t.Errorf("known bug: after the rollback nothing serves (epoch 0 is draining with its listeners closed; the restarter thinks it serves): %v", lastErr)
	}
	if _, _, err := getServerInfo(env.Admin); err != nil {
		t.Errorf("known bug: after the rollback the admin is gone (epoch 0 handed it to the dead generation): %v", err)
	}
}
