package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

// TestRunit runs the restarter as a runit service (examples/runit/envoy/run
// adapted to the test proxy) under a real runsv and drives it with sv:
// sv hup reloads with no failed request and the same service pid, a crash of
// the serving proxy makes runsv start over from epoch 0, and sv down stops
// everything cleanly.
func TestRunit(t *testing.T) {
	tools := requireTools(t, "runit", "runsv", "sv")
	runsvBin, svBin := tools[0], tools[1]
	env := supervisedEnv(t)
	svc := filepath.Join(t.TempDir(), "testproxy")
	cleanupLeftovers(t, env.ProxyEnv, svc, runsvBin)
	writeRunScript(t, filepath.Join(svc, "run"), "exec "+env.Command)
	// runsv runs ./finish with the exit code of ./run after each exit: what
	// the service manager saw, one line per exit.
	exits := filepath.Join(t.TempDir(), "exits")
	writeRunScript(t, filepath.Join(svc, "finish"), `echo "$1" >> `+exits)

	// runsv exits on SIGTERM once the service is down (sv exit); startProc's
	// cleanup sends it. Its stdout, and so the restarter's log, go to its log.
	runsv := startProc(t, runsvBin, svc)
	t.Cleanup(func() { _, _ = toolOutput(svBin, "-w", "15", "down", svc) }) // before runsv's SIGTERM

	svPid := func() (int, error) {
		out, err := toolOutput(svBin, "status", svc)
		if err != nil {
			return 0, err
		}
		if !strings.HasPrefix(out, "run: ") {
			return 0, fmt.Errorf("sv status: %q, want run", out)
		}
		if pid := pidIn(out); pid > 0 {
			return pid, nil
		}
		return 0, fmt.Errorf("sv status: no pid in %q", out)
	}
	pid0 := reloadsKeepPid(t, env, "sv status", svPid, func() { runTool(t, svBin, "hup", svc) })

	// A crash of the serving proxy: the restarter exits 1 and runsv runs the
	// service again, from epoch 0.
	victim := servingPid(t, env.ProxyEnv, 2, 5*time.Second)
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", victim, err)
	}
	var pid1 int
	testutil.WaitFor(t, 20*time.Second, func() (err error) {
		if pid1, err = svPid(); err != nil {
			return err
		}
		if pid1 == pid0 {
			return fmt.Errorf("sv status still shows pid %d", pid0)
		}
		return nil
	})
	if alive(pid0) {
		t.Errorf("the first restarter (pid %d) is still alive after its serving proxy crashed", pid0)
	}
	servingPid(t, env.ProxyEnv, 0, 20*time.Second)
	waitProxies(t, env.ProxyEnv, 1, 10*time.Second)
	testutil.WaitFor(t, 5*time.Second, func() error {
		if p, err := readPidFile(env.PidFile); err != nil || p != pid1 {
			return fmt.Errorf("pid file says %d (%v), want the new restarter %d", p, err, pid1)
		}
		return nil
	})
	t.Logf("runit: after kill -9 of the serving proxy (pid %d), runsv restarted the restarter: pid %d -> %d, epoch 0 serving", victim, pid0, pid1)

	// sv down: TERM to the restarter, which stops every generation and exits.
	runTool(t, svBin, "-w", "15", "down", svc)
	out := runTool(t, svBin, "status", svc)
	if !strings.HasPrefix(out, "down: ") {
		t.Fatalf("sv status after sv down: %q", out)
	}
	waitProxies(t, env.ProxyEnv, 0, 10*time.Second)
	if alive(pid1) {
		t.Errorf("restarter pid %d alive after sv down", pid1)
	}
	if _, err := os.Stat(env.PidFile); !os.IsNotExist(err) {
		t.Errorf("pid file %s after sv down: %v, want it removed", env.PidFile, err)
	}
	assertNothingLeft(t, env.ProxyEnv, 10*time.Second)
	// What runsv saw: exit 1 after the crash, so runit starts over; exit 0
	// after sv down.
	testutil.WaitFor(t, 10*time.Second, func() error {
		if b, _ := os.ReadFile(exits); string(b) != "1\n0\n" {
			return fmt.Errorf("exit codes runsv passed to ./finish: %q, want 1 (serving proxy crashed) then 0 (sv down)", b)
		}
		return nil
	})

	// runsv itself exits on SIGTERM when its service is down.
	if err := runsv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := runsv.Wait(10 * time.Second); err != nil || code != 0 {
		t.Errorf("runsv exit: %d, %v", code, err)
	}
}
