package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/control"
	"github.com/hotrestart/restarter/internal/testutil"
)

// Rule 1: epoch 0 at launch, SIGHUP starts the next; envoy mode appends the
// restart flags and every generation gets the environment variables.
func TestRule1EpochZeroThenSIGHUP(t *testing.T) {
	t.Parallel()
	r := startRestarter(t, nil, args(fast, []string{"--envoy", "--base-id", "7"}, proxyArgs("-c", "cfg-{{epoch}}-{{base_id}}"))...)
	g0 := r.waitStart(0, 1)
	r.waitReady(0)
	r.signal(syscall.SIGHUP)
	g1 := r.waitStart(1, 1)
	for _, c := range []struct {
		g    gen
		want []string
	}{
		{g0, []string{`"-c" "cfg-0-7" "--socket-path" "`, `"--socket-mode" "600" "--restart-epoch" "0" "--base-id" "7" "--drain-time-s" "20" "--parent-shutdown-time-s" "30"`, "RESTART_EPOCH=0\n", "BASE_ID=7\n", "DRAIN_TIME_S=20\n", "PARENT_SHUTDOWN_TIME_S=30\n"}},
		{g1, []string{`"-c" "cfg-1-7" "--socket-path" "`, `"--restart-epoch" "1" "--base-id" "7"`, "RESTART_EPOCH=1\n"}},
	} {
		for _, w := range c.want {
			if !strings.Contains(c.g.info, w) {
				t.Errorf("epoch %d: got %q, want it to contain %q", c.g.epoch, c.g.info, w)
			}
		}
	}
	if !strings.Contains(g0.info, "NOTIFY_SOCKET=\n") {
		t.Errorf("NOTIFY_SOCKET leaked to the proxy: %q", g0.info)
	}
	r.waitReady(1)
	if !testutil.Alive(g0.pid) {
		t.Errorf("epoch 0 (pid %d) gone after epoch 1 became ready; want it draining", g0.pid)
	}
	r.signal(syscall.SIGTERM)
	if code := r.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

// Rule 1 in the Python form: a START_SCRIPT with no arguments and RESTART_EPOCH.
func TestRule1StartScript(t *testing.T) {
	t.Parallel()
	script := filepath.Join(t.TempDir(), "start.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec "+os.Args[0]+" fakeproxy \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := startRestarter(t, nil, append(fast, script)...)
	g0 := r.waitStart(0, 1)
	if !strings.Contains(g0.info, "args=[]\n") {
		t.Errorf("script got arguments: %q, want none", g0.info)
	}
	r.waitReady(0)
	r.signal(syscall.SIGHUP)
	r.waitStart(1, 1)
	r.signal(syscall.SIGTERM)
	if code := r.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

// Rule 2: SIGUSR1 reaches every live generation.
func TestRule2USR1Forwarded(t *testing.T) {
	t.Parallel()
	r := startRestarter(t, nil, args(fast, proxyArgs())...)
	g0 := r.waitStart(0, 1)
	r.waitReady(0)
	r.signal(syscall.SIGHUP)
	g1 := r.waitStart(1, 1)
	r.waitReady(1)
	r.signal(syscall.SIGUSR1)
	testutil.WaitFor(t, 10*time.Second, func() error {
		for _, g := range []gen{g0, g1} {
			if !strings.Contains(r.signals(g), "user defined signal 1") {
				return fmt.Errorf("epoch %d got signals %q, want SIGUSR1", g.epoch, r.signals(g))
			}
		}
		return nil
	})
}

// Rule 3: SIGTERM/SIGINT with children that leave at once: exit 0 as soon as
// they are gone.
func TestRule3StopClean(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			r := startRestarter(t, nil, args(fast, []string{"--term-wait", "30s"}, proxyArgs())...)
			g0 := r.waitStart(0, 1)
			r.waitReady(0)
			r.signal(sig)
			// Well under --term-wait: we do not poll once a second or wait it out.
			if code := r.wait(15 * time.Second); code != 0 {
				t.Fatalf("exit code %d, want 0", code)
			}
			if !strings.Contains(r.signals(g0), "terminated") {
				t.Errorf("proxy got %q, want SIGTERM", r.signals(g0))
			}
		})
	}
}

// Rule 3: a child that ignores SIGTERM is SIGKILLed after --term-wait; exit 1.
func TestRule3StopKillsStragglers(t *testing.T) {
	t.Parallel()
	r := startRestarter(t, []string{"FP_IGNORE_TERM_EPOCHS=0"}, args(fast, []string{"--term-wait", "500ms"}, proxyArgs())...)
	g0 := r.waitStart(0, 1)
	r.waitReady(0)
	r.signal(syscall.SIGTERM)
	if code := r.wait(15 * time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if testutil.Alive(g0.pid) {
		t.Fatalf("proxy %d still alive after the restarter exited", g0.pid)
	}
	// It was asked first (SIGTERM, which it ignored), then killed: the
	// restarter's verdict says so.
	if got := r.signals(g0); got != "terminated\n" {
		t.Errorf("proxy got signals %q, want one SIGTERM", got)
	}
	if rec := r.exitRecord(); !strings.Contains(rec.Reason, "had to be SIGKILLed: still alive 500ms after SIGTERM") {
		t.Errorf("exit reason %q, want it to say generations were SIGKILLed after the term wait (500ms)", rec.Reason)
	}
}

// Rule 4: a serving generation that exits 0 while no stop was requested and
// no newer generation took over (Envoy's terminate or /quitquitquit from
// another process) leaves nothing serving: exit 1, so Restart=on-failure
// brings it back (issue 11 item 6; the Python restarter exited 0 here).
func TestRule4ServingExitZeroUnaskedExit1(t *testing.T) {
	t.Parallel()
	r := startRestarter(t, []string{"FP_EXIT0_AFTER=600ms"}, args(fast, proxyArgs())...)
	r.waitStart(0, 1)
	if code := r.wait(15 * time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
}

// Rule 5: the serving generation dying abnormally with no newer ready one:
// kill all (including a draining one), exit 1.
func TestRule5ServingDiesExit1(t *testing.T) {
	t.Parallel()
	r := startRestarter(t, []string{"FP_CRASH_EPOCHS=1", "FP_CRASH_AFTER=1s"}, args(fast, proxyArgs())...)
	g0 := r.waitStart(0, 1)
	r.waitReady(0)
	r.signal(syscall.SIGHUP)
	r.waitStart(1, 1)
	r.waitReady(1)
	if code := r.wait(15 * time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if testutil.Alive(g0.pid) {
		t.Errorf("draining epoch 0 (pid %d) survived; want it killed", g0.pid)
	}
	if rec := r.exitRecord(); !strings.Contains(rec.Reason, "epoch 1") || !strings.Contains(rec.Reason, "status 3") {
		t.Errorf("exit reason %q, want it to name the serving epoch 1 and its exit status 3", rec.Reason)
	}
}

// Rule 6: a new generation dying before ready is rolled back; the next SIGHUP
// retries the same epoch number.
func TestRule6Rollback(t *testing.T) {
	t.Parallel()
	r := startRestarter(t, []string{"FP_FAIL_ONCE_EPOCHS=1"}, args(fast, []string{"--ready-after", "1s"}, proxyArgs())...)
	g0 := r.waitStart(0, 1)
	r.waitReady(0)
	r.signal(syscall.SIGHUP)
	r.waitExited(1, 1)
	if r.exited() || !testutil.Alive(g0.pid) {
		t.Fatalf("restarter or epoch 0 gone after a failed epoch 1")
	}
	r.waitReload(1, false)
	r.signal(syscall.SIGHUP)
	r.waitStart(1, 2) // epoch 1 again, not 2
	r.waitReady(1)
	for _, g := range r.starts() {
		if g.epoch > 1 {
			t.Fatalf("epoch %d started; want the failed epoch 1 reused", g.epoch)
		}
	}
	r.signal(syscall.SIGTERM)
	if code := r.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}

// Rule 7: SIGHUPs during a start are held and coalesce: a storm of 100 in a
// second starts at most 2 generations.
func TestRule7SIGHUPStorm(t *testing.T) {
	t.Parallel()
	r := startRestarter(t, nil, args(fast, []string{"--ready-after", "3s"}, proxyArgs())...)
	r.waitStart(0, 1)
	r.waitReady(0)
	for i := 0; i < 100; i++ {
		r.signal(syscall.SIGHUP)
		time.Sleep(5 * time.Millisecond)
	}
	if r.everReady(1) {
		t.Skip("machine too loaded: the storm outlasted --ready-after 3s, so it was not one storm during one start")
	}
	r.waitReady(2) // the held reload ran after epoch 1 was ready
	// Nothing else is pending: epoch 3 never starts.
	r.signal(syscall.SIGTERM)
	if code := r.wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if n := len(r.starts()); n != 3 {
		t.Fatalf("got %d generations (%v), want 3: epoch 0 and at most 2 from the storm", n, r.starts())
	}
}

// Rule 8: an old generation still alive after parent-shutdown time + grace is
// sent SIGTERM, then SIGKILL after --term-wait.
func TestRule8ParentShutdownBackstop(t *testing.T) {
	t.Parallel()
	r := startRestarter(t, []string{"FP_IGNORE_TERM_EPOCHS=0"}, args(fast, []string{"--drain-time", "300ms",
		"--parent-shutdown-time", "600ms", "--shutdown-grace", "200ms", "--term-wait", "400ms"}, proxyArgs())...)
	g0 := r.waitStart(0, 1)
	r.waitReady(0)
	r.signal(syscall.SIGHUP)
	r.waitReady(1)
	testutil.WaitFor(t, 15*time.Second, func() error {
		if testutil.Alive(g0.pid) {
			return fmt.Errorf("hung epoch 0 (pid %d) still alive", g0.pid)
		}
		return nil
	})
	if !strings.Contains(r.signals(g0), "terminated") {
		t.Errorf("epoch 0 got %q, want SIGTERM before SIGKILL", r.signals(g0))
	}
	r.waitExited(0, 128+int(syscall.SIGKILL))
	if r.exited() {
		t.Fatalf("restarter exited; want it serving epoch 1")
	}
}

// Rule 9: --ready-url, served by the generation.
func TestRule9ReadyURL(t *testing.T) {
	t.Parallel()
	addr := testutil.FreeAddr(t)
	r := startRestarter(t, []string{"FP_ADMIN=" + addr}, args(fast[:2], []string{"--ready-url", "http://" + addr + "/healthz", "--ready-interval", "20ms"}, proxyArgs())...)
	r.waitStart(0, 1)
	r.waitHits(0, 3) // asked, and answered 503, three times
	if r.everReady(0) {
		t.Fatalf("ready while the URL answers 503")
	}
	r.setLive(0)
	r.waitReady(0)
}

// Rule 9: --ready-cmd with a placeholder.
func TestRule9ReadyCmd(t *testing.T) {
	t.Parallel()
	flag := filepath.Join(t.TempDir(), "ready")
	tries := filepath.Join(t.TempDir(), "tries")
	r := startRestarter(t, nil, args(fast[:2], []string{"--ready-cmd", "echo >> " + tries + "; test -e " + flag + ".{{epoch}}", "--ready-interval", "20ms"}, proxyArgs())...)
	r.waitStart(0, 1)
	testutil.WaitFor(t, 20*time.Second, func() error { // the command ran, and failed, three times
		if b, _ := os.ReadFile(tries); len(b) < 3 {
			return fmt.Errorf("ready command ran %d times, want 3", len(b))
		}
		return nil
	})
	if r.everReady(0) {
		t.Fatalf("ready before the command succeeds")
	}
	os.WriteFile(flag+".0", nil, 0o644)
	r.waitReady(0)
}

// Rule 9: --ready-envoy-admin needs LIVE at this generation's epoch.
func TestRule9ReadyEnvoyAdmin(t *testing.T) {
	t.Parallel()
	addr := testutil.FreeAddr(t)
	r := startRestarter(t, []string{"FP_ADMIN=" + addr}, args(fast[:2], []string{"--ready-envoy-admin", addr, "--ready-interval", "20ms"}, proxyArgs())...)
	r.waitStart(0, 1)
	r.setLive(0)
	r.waitReady(0)
	r.signal(syscall.SIGHUP)
	r.waitStart(1, 1)
	// The old epoch still answers LIVE on the shared address, the new one
	// PRE_INITIALIZING: not ready, though the new one was asked.
	r.waitHits(1, 3)
	if r.everReady(1) {
		t.Fatalf("epoch 1 ready while server_info reports epoch 0")
	}
	r.setLive(1)
	r.waitReady(1)
}

// Rule 9: --ready-timeout: not ready in time counts as a failed start
// (rollback; the old one keeps serving).
func TestRule9ReadyTimeout(t *testing.T) {
	t.Parallel()
	flag := filepath.Join(t.TempDir(), "ready")
	os.WriteFile(flag+".0", nil, 0o644)
	// The timeout applies to epoch 0 too, whose check must pass on a busy
	// machine (a fork and exec per check): 3s, not a tight race. Epoch 1
	// never has its flag, so it times out whatever the load.
	r := startRestarter(t, nil, args(fast[:2], []string{"--ready-cmd", "test -e " + flag + ".{{epoch}}",
		"--ready-interval", "20ms", "--ready-timeout", "3s", "--term-wait", "1s"}, proxyArgs())...)
	runDir := filepath.Join(r.dir, "run")
	g0 := r.waitStart(0, 1)
	waitGen(t, runDir, 0, control.StateReady)
	r.signal(syscall.SIGHUP)
	g1 := r.waitStart(1, 1)
	if res := r.waitReload(1, false); !strings.Contains(res.Reason, "not ready within") {
		t.Fatalf("reload failed with %q, want not ready within the timeout", res.Reason)
	}
	if testutil.Alive(g1.pid) || !testutil.Alive(g0.pid) || r.exited() {
		t.Fatalf("after a ready timeout: epoch 1 alive=%v, epoch 0 alive=%v, restarter exited=%v; want false, true, false",
			testutil.Alive(g1.pid), testutil.Alive(g0.pid), r.exited())
	}
}

// Rule 10: an explicit base id already held fails at once with exit 2 naming
// the holder's pid; --use-dynamic-base-id skips it and writes --base-id-path.
func TestRule10BaseIDs(t *testing.T) {
	t.Parallel()
	runDir := filepath.Join(t.TempDir(), "run")
	r1 := startRestarter(t, nil, args(fast, []string{"--runtime-dir", runDir, "--base-id", "0"}, proxyArgs())...)
	r1.waitStart(0, 1)
	r2 := startRestarter(t, nil, args(fast, []string{"--runtime-dir", runDir, "--base-id", "0"}, proxyArgs())...)
	if code := r2.wait(10 * time.Second); code != 2 {
		t.Fatalf("second restarter on base id 0: exit %d, want 2", code)
	}
	if want := "pid " + strconv.Itoa(r1.pid); !strings.Contains(r2.stderr.String(), want) {
		t.Errorf("stderr %q does not name the holder (%s)", r2.stderr.String(), want)
	}
	if len(r2.starts()) != 0 {
		t.Errorf("a child started despite the held base id")
	}
	idPath := filepath.Join(t.TempDir(), "base-id")
	r3 := startRestarter(t, nil, args(fast, []string{"--runtime-dir", runDir, "--use-dynamic-base-id", "--base-id-path", idPath}, proxyArgs())...)
	g := r3.waitStart(0, 1)
	b, err := os.ReadFile(idPath)
	if err != nil || string(b) == "0\n" || len(b) < 2 {
		t.Fatalf("--base-id-path holds %q (%v), want an id other than the held 0", b, err)
	}
	if !strings.Contains(g.info, "BASE_ID="+string(b)) {
		t.Errorf("proxy env %q, want BASE_ID=%s", g.info, b)
	}
}

// Rule 10: 20 restarters started at the same instant get 20 different ids.
func TestRule10TwentyDynamic(t *testing.T) {
	t.Parallel()
	runDir := filepath.Join(t.TempDir(), "run")
	ids := filepath.Join(t.TempDir())
	var rs []*restarterProc
	for i := 0; i < 20; i++ {
		rs = append(rs, startRestarter(t, nil, args([]string{"--log-format", "json", "--ready-after", "1h", "--term-wait", "2s",
			"--runtime-dir", runDir, "--use-dynamic-base-id", "--base-id-path", filepath.Join(ids, strconv.Itoa(i))}, proxyArgs())...))
	}
	seen := map[string]int{}
	for i, r := range rs {
		r.waitStart(0, 1)
		b, err := os.ReadFile(filepath.Join(ids, strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		if j, dup := seen[string(b)]; dup {
			t.Fatalf("restarters %d and %d both got base id %q", j, i, b)
		}
		seen[string(b)] = i
	}
	for _, r := range rs {
		r.signal(syscall.SIGTERM)
	}
	for _, r := range rs {
		if code := r.wait(20 * time.Second); code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
	}
}

// Rule 11: a start script that forks the proxy and exits 0 still has its
// proxy tracked (re-parented to the subreaper restarter); orphans are reaped.
func TestRule11ForkingStartScriptAndReaping(t *testing.T) {
	t.Parallel()
	r := startRestarter(t, []string{"FP_ORPHAN=1"}, args(fast, []string{"--"}, helperArgs("fakeproxy-fork"))...)
	g0 := r.waitStart(0, 1) // written by the grandchild
	r.waitStatus("the forked proxy tracked", func(st control.Status) error {
		for _, g := range st.Generations {
			if g.Epoch == 0 && g.PID == g0.pid && g.ExitStatus == nil {
				if g.StartPID == 0 || g.StartPID == g.PID {
					t.Fatalf("epoch 0 %+v: want the start script's pid as start_pid, not the proxy's", g)
				}
				return nil
			}
		}
		return fmt.Errorf("epoch 0 is not pid %d in %+v", g0.pid, st.Generations)
	})
	if ppid, _, _ := testutil.ProcStat(g0.pid); ppid != r.pid {
		t.Fatalf("proxy's parent is %d, want the restarter %d", ppid, r.pid)
	}
	r.waitReady(0)
	r.signal(syscall.SIGUSR1)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if !strings.Contains(r.signals(g0), "user defined signal 1") {
			return fmt.Errorf("tracked proxy got %q, want SIGUSR1", r.signals(g0))
		}
		return nil
	})
	// The proxy's short-lived orphan is re-parented to us and reaped when it
	// exits: it must vanish from /proc, not linger as a zombie.
	b, err := os.ReadFile(filepath.Join(r.dir, "orphan"))
	if err != nil {
		t.Fatalf("orphan pid: %v", err)
	}
	orphan, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if ppid, _, ok := testutil.ProcStat(orphan); ok && ppid != r.pid {
		t.Fatalf("orphan %d has parent %d, want the subreaper restarter %d", orphan, ppid, r.pid)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if _, st, ok := testutil.ProcStat(orphan); ok {
			return fmt.Errorf("orphan %d still in /proc (state %c)", orphan, st)
		}
		return nil
	})
	r.signal(syscall.SIGTERM)
	if code := r.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	if testutil.Alive(g0.pid) {
		t.Fatalf("tracked proxy %d alive after stop", g0.pid)
	}
}

// Rule 11: a SIGKILLed restarter leaves no proxy behind (PDEATHSIG=SIGTERM,
// set from the restarter's long-lived starter thread, so it holds for a
// generation started long after the first).
func TestRule11ParentDeathSignal(t *testing.T) {
	t.Parallel()
	r := startRestarter(t, nil, args(fast, proxyArgs())...)
	r.waitReady(0)
	r.signal(syscall.SIGHUP)
	g1 := r.waitStart(1, 1)
	r.waitReady(1)
	r.signal(syscall.SIGKILL)
	r.wait(10 * time.Second)
	testutil.WaitFor(t, 10*time.Second, func() error {
		for _, g := range r.starts() {
			if !strings.Contains(r.signals(g), "terminated") {
				return fmt.Errorf("epoch %d got %q, want SIGTERM", g.epoch, r.signals(g))
			}
		}
		return nil
	})
	_ = g1
}

// Rule 12: the restarter's pid never changes; --pid-file is written
// atomically and removed on exit.
func TestRule12PIDStableAndPidFile(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "restarter.pid")
	r := startRestarter(t, nil, args(fast, []string{"--pid-file", pidFile}, proxyArgs())...)
	r.waitReady(0)
	for e := 1; e <= 2; e++ {
		r.signal(syscall.SIGHUP)
		r.waitReady(e)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil || string(b) != strconv.Itoa(r.pid)+"\n" {
		t.Fatalf("pid file %q (%v), want %d", b, err, r.pid)
	}
	for _, g := range r.starts() {
		if !strings.Contains(g.info, "ppid="+strconv.Itoa(r.pid)+"\n") {
			t.Errorf("epoch %d: %q, want parent %d", g.epoch, g.info, r.pid)
		}
	}
	ents, _ := os.ReadDir(filepath.Dir(pidFile))
	if len(ents) != 1 {
		t.Errorf("pid file dir holds %d entries, want only the pid file (no temp files)", len(ents))
	}
	r.signal(syscall.SIGTERM)
	r.wait(10 * time.Second)
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Fatalf("pid file still there after exit (%v)", err)
	}
}

// Rule 13: JSON logs, one event per line with epoch, pid and state; the
// proxy's stdout and stderr pass through unchanged.
func TestRule13LogsAndPassThrough(t *testing.T) {
	t.Parallel()
	r := startRestarter(t, []string{"FP_PRINT=1"}, args(fast, proxyArgs())...)
	// --ready-after may pass before a slow proxy has even started: its
	// start file says it handles SIGTERM, which it does only after printing.
	r.waitStart(0, 1)
	r.waitReady(0)
	r.signal(syscall.SIGTERM)
	r.wait(10 * time.Second)
	if !strings.Contains(r.stdout.String(), "hello from epoch 0\n") {
		t.Errorf("stdout %q, want the proxy's line", r.stdout.String())
	}
	if !strings.Contains(r.stderr.String(), "\nwarn from epoch 0\n") && !strings.HasPrefix(r.stderr.String(), "warn from epoch 0\n") {
		t.Errorf("stderr lacks the proxy's own line")
	}
	events := map[string]bool{}
	for _, m := range jsonLines(t, r.stderr.String()) {
		msg, _ := m["msg"].(string)
		switch msg {
		case "started", "ready", "generation exited":
			for _, k := range []string{"epoch", "pid", "state"} {
				if _, ok := m[k]; !ok {
					t.Errorf("event %q lacks %q: %v", msg, k, m)
				}
			}
			events[msg] = true
		}
	}
	if len(events) != 3 {
		t.Errorf("got events %v, want started, ready and generation exited", events)
	}
	// console format: one line per event too, tab-separated, not JSON.
	r2 := startRestarter(t, nil, args([]string{"--ready-after", "100ms", "--log-format", "console"}, proxyArgs())...)
	r2.waitReady(0)
	r2.signal(syscall.SIGTERM)
	r2.wait(10 * time.Second)
	var ready []string
	for _, line := range strings.Split(r2.stderr.String(), "\n") {
		if strings.HasPrefix(line, "{") {
			t.Errorf("JSON line in the console log: %q", line)
		}
		if strings.Contains(line, "\tready\t") {
			ready = append(ready, line)
		}
	}
	if len(ready) != 1 || !strings.Contains(ready[0], `"epoch": 0`) || !strings.Contains(ready[0], `"state": "ready"`) {
		t.Errorf("console ready events %q, want one with epoch 0 and its state", ready)
	}
}

// Exit 2 before any child starts (a sample through the real binary; the full
// table is in TestParseFlags).
func TestBadUsageExit2(t *testing.T) {
	t.Parallel()
	for _, a := range [][]string{{"--bogus", "--", "/bin/true"}, {"--", "/nonexistent/envoy"}, {"status"}} {
		r := startRestarter(t, nil, a...)
		if code := r.wait(10 * time.Second); code != 2 {
			t.Errorf("%q: exit %d, want 2", a, code)
		}
	}
}
