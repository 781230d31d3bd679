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

// newGeneration waits for the restarter's "started" event at epoch for a
// pid not in seen (a failed epoch number is reused) and returns that pid.
// The log is authoritative: a fork of the restarter is a child too before it
// execs, and the restarter may have other children.
func newGeneration(t *testing.T, r *Proc, epoch int, seen map[int]bool) int {
	t.Helper()
	pid := 0
	testutil.WaitFor(t, 10*time.Second, func() error {
		for _, e := range r.Events() {
			if e.Msg == "started" && e.Epoch == epoch && !seen[e.Pid] {
				pid = e.Pid
				seen[pid] = true
				return nil
			}
		}
		return fmt.Errorf("no new generation started at epoch %d", epoch)
	})
	return pid
}

func generationPid(t *testing.T, r *Proc, epoch int) int {
	t.Helper()
	pid := 0
	testutil.WaitFor(t, 10*time.Second, func() error {
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

// rollbackVerdict is what the restarter's last "reload failed" event says
// serves after the rollback (its "serving" field, the text `restarter
// reload` prints): "still serves" or "no longer serves".
func rollbackVerdict(evs []Event) string {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Msg != "reload failed" {
			continue
		}
		serving, _ := evs[i].Raw["serving"].(string)
		if strings.HasPrefix(serving, "nothing serves") {
			return "no longer serves"
		}
		return "still serves"
	}
	return ""
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
		findEvent(t, r, "ready", 0)
		serving := 0
		seen := map[int]bool{}

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
			evs := r.Events()
			failedBefore, doneBefore := countEvents(evs, "reload failed"), countEvents(evs, "reload done")
			if err := r.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			pid := newGeneration(t, r, serving+1, seen)
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
			testutil.WaitFor(t, 30*time.Second, func() error {
				evs := r.Events()
				switch {
				case countEvents(evs, "reload failed") > failedBefore:
					outcome = "rollback"
				case r.Exited():
					outcome = "restarter-exit"
				default:
					var last []string
					for _, e := range evs[max(0, len(evs)-6):] {
						last = append(last, e.Msg)
					}
					return fmt.Errorf("reload of the killed generation %d not finished; last restarter events %q", pid, last)
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
				findEvent(t, r, "ready", 0)
				serving = 0
				seen = map[int]bool{}
			}
			if outcome == "rollback" {
				// The reload's answer says what serves: a new one killed
				// after it told the old one to drain leaves nothing
				// serving, and the restarter starts the same epoch again
				// (see TestRollbackAfterParentDrained).
				verdict := rollbackVerdict(r.Events())
				if verdict == "no longer serves" {
					outcome = "rollback+recovery"
					serving++
					waitLive(t, env.Admin, serving, 20*time.Second)
				}
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
		testutil.WaitFor(t, pst+grace+termWait+10*time.Second, func() error {
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
		findEvent(t, r, "ready", 0)
		if err := r.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		newGeneration(t, r, 1, map[int]bool{})
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
	r := startRestarter(t, env.RestarterArgs(flags)...)
	waitLive(t, env.Admin, 0, 20*time.Second)
	findEvent(t, r, "ready", 0)
	if err := r.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	pid := newGeneration(t, r, 1, map[int]bool{})
	if !proxyLogged(r, pid, "parent told to drain", 10*time.Second) {
		t.Fatalf("new generation %d never told its parent to drain", pid)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	killedAt := time.Now()
	findEvent(t, r, "reload failed", 1)
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
