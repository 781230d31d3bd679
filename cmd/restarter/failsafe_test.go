package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
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

// Tests of issue 8: a failed reload never costs service, and the restarter
// never says otherwise. They run the restarter with the real test proxy.

// tpBuild holds cmd/testproxy, built once (see TestMain).
var tpBuild testutil.Build

func testproxyPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(tpBuild.Dir(t, "./cmd/testproxy"), "testproxy")
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// tpInstance is one restarter running the test proxy in --envoy mode behind
// a wrapper script whose NEW_EPOCH_ARGS apply to every epoch but 0 (and not
// to --mode validate).
type tpInstance struct {
	*restarterProc
	runDir      string
	data, admin string
}

func startTP(t *testing.T, newEpochArgs string, env []string, flags ...string) *tpInstance {
	t.Helper()
	dir := t.TempDir()
	in := &tpInstance{runDir: filepath.Join(dir, "run"),
		data: fmt.Sprintf("127.0.0.1:%d", freePort(t)), admin: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	wrapper := filepath.Join(dir, "proxy.sh")
	script := fmt.Sprintf(`#!/bin/sh
case " $* " in *" --mode validate "*) exec %[1]q "$@";; esac
if [ "$RESTART_EPOCH" != 0 ]; then exec %[1]q %[2]s "$@"; fi
exec %[1]q "$@"
`, testproxyPath(t), newEpochArgs)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	base := []string{"--log-format", "json", "--runtime-dir", in.runDir, "--envoy", "--use-dynamic-base-id",
		"--ready-envoy-admin", in.admin, "--ready-interval", "50ms", "--term-wait", "3s",
		"--drain-time", "20s", "--parent-shutdown-time", "30s"}
	tail := []string{"--", wrapper, "--listen", in.data, "--admin-address", in.admin,
		"--socket-path", fmt.Sprintf("@failsafe_%d_%d", os.Getpid(), rand.IntN(1<<30)), "--hot-restart-retry-delay", "100ms"}
	in.restarterProc = startRestarter(t, env, args(base, flags, tail)...)
	return in
}

// waitStatus polls `restarter status --json` until ok returns nil.
func waitStatus(t testing.TB, runDir string, d time.Duration, ok func(control.Status) error) control.Status {
	t.Helper()
	var st control.Status
	testutil.WaitFor(t, d, func() error {
		code, out, errs := cli(t, "status", "--json", "--runtime-dir", runDir)
		if code != 0 {
			return fmt.Errorf("status: exit %d: %s", code, errs)
		}
		st = control.Status{}
		if err := jsonUnmarshal(out, &st); err != nil {
			return err
		}
		return ok(st)
	})
	return st
}

func genOf(st control.Status, epoch uint32, state string) *control.Generation {
	for i := len(st.Generations) - 1; i >= 0; i-- {
		if g := st.Generations[i]; g.Epoch == epoch && (state == "" || g.State == state) {
			return &st.Generations[i]
		}
	}
	return nil
}

func waitGen(t testing.TB, runDir string, epoch uint32, state string) control.Generation {
	t.Helper()
	st := waitStatus(t, runDir, 30*time.Second, func(st control.Status) error {
		if genOf(st, epoch, state) == nil {
			return fmt.Errorf("epoch %d not %s: %+v", epoch, state, st.Generations)
		}
		return nil
	})
	return *genOf(st, epoch, state)
}

// serves returns the body of GET / on addr ("epoch N pid P"), or an error.
func serves(addr string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b)), err
}

func mustServe(t testing.TB, addr string, want string) {
	t.Helper()
	body, err := serves(addr)
	if err != nil || !strings.HasPrefix(body, want) {
		t.Fatalf("GET %s: %q, %v; want %q", addr, body, err, want)
	}
}

// Item 1: the new generation takes the admin listener and dies (the
// rollback used to judge the old one dead by the gone admin address, restart
// the epoch, fail again and SIGKILL the old one that still served).
func TestFailsafeFailStartKeepsTheOldGenerationServing(t *testing.T) {
	t.Parallel()
	in := startTP(t, "--fail-start", nil)
	g0 := waitGen(t, in.runDir, 0, control.StateReady)
	mustServe(t, in.data, "epoch 0")
	code, _, errs := cli(t, "reload", "--runtime-dir", in.runDir)
	if code != 1 || !strings.Contains(errs, "epoch 0 keeps serving") {
		t.Fatalf("reload: exit %d, stderr %q; want 1 and \"epoch 0 keeps serving\"", code, errs)
	}
	assertStillServing(t, in, g0)
}

// Item 1 and 2: the new generation stays INITIALIZING past --ready-timeout.
// It is SIGKILLed: a SIGTERM would make it (like Envoy) terminate its parent.
func TestFailsafeReadyTimeoutKeepsTheOldGenerationServing(t *testing.T) {
	t.Parallel()
	in := startTP(t, "--start-delay 30s", nil, "--ready-timeout", "2s")
	g0 := waitGen(t, in.runDir, 0, control.StateReady)
	code, _, errs := cli(t, "reload", "--runtime-dir", in.runDir)
	if code != 1 || !strings.Contains(errs, "not ready within 2s") || !strings.Contains(errs, "epoch 0 keeps serving") {
		t.Fatalf("reload: exit %d, stderr %q; want 1, not ready, epoch 0 keeps serving", code, errs)
	}
	st := waitGen(t, in.runDir, 1, control.StateExited)
	if st.ExitStatus == nil || *st.ExitStatus != 128+int(syscall.SIGKILL) {
		t.Errorf("epoch 1 exit status %v, want %d (SIGKILL, never SIGTERM)", st.ExitStatus, 128+int(syscall.SIGKILL))
	}
	assertStillServing(t, in, g0)
}

// assertStillServing: epoch 0 (g0) is alive, ready, serves the data port, and
// stays so while the restarter settles (it must not start a recovery that
// kills it).
func assertStillServing(t *testing.T, in *tpInstance, g0 control.Generation) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if !testutil.Alive(g0.PID) || in.exited() {
			t.Fatalf("epoch 0 (pid %d) alive %v, restarter exited %v; want both running\n%s", g0.PID, testutil.Alive(g0.PID), in.exited(), in.stderr)
		}
		mustServe(t, in.data, fmt.Sprintf("epoch 0 pid %d", g0.PID))
		time.Sleep(100 * time.Millisecond)
	}
	st := waitStatus(t, in.runDir, 10*time.Second, func(control.Status) error { return nil })
	if g := genOf(st, 0, control.StateReady); g == nil || g.PID != g0.PID || genOf(st, 1, control.StateStarting) != nil {
		t.Fatalf("status %+v; want epoch 0 (pid %d) ready and no epoch 1 restarted", st.Generations, g0.PID)
	}
}

// Item 9: the first generation exits 0 without ever being ready: exit 1.
func TestFailsafeFirstGenerationExitZeroUnreadyExit1(t *testing.T) {
	t.Parallel()
	r := startRestarter(t, []string{"FP_EXIT0_AFTER=100ms"}, args(fast[:2], []string{"--ready-after", "10s"}, proxyArgs())...)
	if code := r.wait(15 * time.Second); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
}

// Item 9: `restarter stop` reports the restarter's exit 1 (a generation had
// to be SIGKILLed after --term-wait), not "stopped".
func TestFailsafeStopReportsExit1(t *testing.T) {
	t.Parallel()
	r := startRestarter(t, []string{"FP_IGNORE_TERM_EPOCHS=0"}, args(fast, []string{"--term-wait", "500ms"}, proxyArgs())...)
	runDir := filepath.Join(r.dir, "run")
	waitGen(t, runDir, 0, control.StateReady)
	code, out, errs := cli(t, "stop", "--runtime-dir", runDir)
	if code != 1 || strings.Contains(out, "stopped") || !strings.Contains(errs, "exited 1") {
		t.Fatalf("stop: exit %d, stdout %q, stderr %q; want 1 and the restarter's exit 1", code, out, errs)
	}
	if c := r.wait(10 * time.Second); c != 1 {
		t.Fatalf("restarter exit %d, want 1", c)
	}
}

// Item 9: status during a stop says stopping, not ready.
func TestFailsafeStatusDuringStop(t *testing.T) {
	t.Parallel()
	r := startRestarter(t, []string{"FP_IGNORE_TERM_EPOCHS=0"}, args(fast, []string{"--term-wait", "5s"}, proxyArgs())...)
	runDir := filepath.Join(r.dir, "run")
	g := waitGen(t, runDir, 0, control.StateReady)
	if g.Health == "" {
		t.Errorf("serving generation has no health in status")
	}
	r.signal(syscall.SIGTERM)
	st := waitStatus(t, runDir, 5*time.Second, func(st control.Status) error {
		if !st.Stopping {
			return fmt.Errorf("not stopping yet")
		}
		return nil
	})
	if g := genOf(st, 0, ""); g == nil || g.State != control.StateStopping || g.KillAt == nil {
		t.Fatalf("during stop: %+v; want epoch 0 stopping with a kill deadline", st.Generations)
	}
}

// Issue 11 item 6: the serving generation exits 0 unasked (here: its admin's
// /quitquitquit, which any local process can send): exit 1, so
// Restart=on-failure brings the service back.
func TestFailsafeServingQuitUnaskedExit1(t *testing.T) {
	t.Parallel()
	in := startTP(t, "", nil)
	waitGen(t, in.runDir, 0, control.StateReady)
	resp, err := http.Post("http://"+in.admin+"/quitquitquit", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code := in.wait(20 * time.Second); code != 1 {
		t.Fatalf("restarter exit %d after its serving generation quit unasked, want 1", code)
	}
}

// Item 8: a hung (SIGSTOPped) serving generation is noticed by the liveness
// checks; everything is SIGKILLed and the restarter exits 1.
func TestFailsafeHungServingGenerationExit1(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"envoy-admin", "after"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			flags := []string{"--live-interval", "200ms", "--live-failures", "3"}
			if mode == "after" {
				flags = append(flags, "--ready-after", "300ms")
			}
			var in *tpInstance
			if mode == "after" {
				in = startTPAfter(t, flags...)
			} else {
				in = startTP(t, "", nil, flags...)
			}
			g0 := waitGen(t, in.runDir, 0, control.StateReady)
			if err := syscall.Kill(g0.PID, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { syscall.Kill(g0.PID, syscall.SIGKILL) })
			if code := in.wait(20 * time.Second); code != 1 {
				t.Fatalf("restarter exit %d with a hung serving generation, want 1", code)
			}
			if rec := in.exitRecord(); !strings.Contains(rec.Reason, "serving epoch 0 hung") {
				t.Errorf("exit reason %q, want the hung verdict on serving epoch 0", rec.Reason)
			}
			testutil.WaitFor(t, 5*time.Second, func() error {
				if testutil.Alive(g0.PID) {
					return fmt.Errorf("hung epoch 0 (pid %d) still alive", g0.PID)
				}
				return nil
			})
		})
	}
}

// startTPAfter is startTP with --ready-after instead of the admin probe.
func startTPAfter(t *testing.T, flags ...string) *tpInstance {
	t.Helper()
	dir := t.TempDir()
	in := &tpInstance{runDir: filepath.Join(dir, "run"),
		data: fmt.Sprintf("127.0.0.1:%d", freePort(t)), admin: fmt.Sprintf("127.0.0.1:%d", freePort(t))}
	base := []string{"--log-format", "json", "--runtime-dir", in.runDir, "--envoy", "--use-dynamic-base-id", "--term-wait", "3s",
		"--drain-time", "20s", "--parent-shutdown-time", "30s"}
	tail := []string{"--", testproxyPath(t), "--listen", in.data, "--admin-address", in.admin,
		"--socket-path", fmt.Sprintf("@failsafe_%d_%d", os.Getpid(), rand.IntN(1<<30))}
	in.restarterProc = startRestarter(t, nil, args(base, flags, tail)...)
	return in
}

func (r *restarterProc) stop() {
	r.signal(syscall.SIGTERM)
	r.wait(20 * time.Second)
}

// Item 5: a start script's forked proxy (`testproxy ... & wait`) outlives
// a SIGKILLed restarter; the next restarter of the same instance ends it
// before its epoch 0, which then binds the same ports and serves.
func TestFailsafeForkedProxyOfAKilledRestarterIsEnded(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	runDir := filepath.Join(dir, "run")
	data, admin := fmt.Sprintf("127.0.0.1:%d", freePort(t)), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	script := filepath.Join(dir, "start.sh")
	body := fmt.Sprintf("#!/bin/sh\n%q --restart-epoch \"$RESTART_EPOCH\" --base-id \"$BASE_ID\" --listen %s --admin-address %s --socket-path @failsafe_fork_%d_%d &\nwait\n",
		testproxyPath(t), data, admin, os.Getpid(), rand.IntN(1<<30))
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	id := strconv.Itoa(100000 + rand.IntN(1_000_000))
	flags := []string{"--log-format", "json", "--runtime-dir", runDir, "--base-id", id, "--ready-envoy-admin", admin,
		"--ready-interval", "50ms", "--term-wait", "3s", "--", script}
	r1 := startRestarter(t, nil, flags...)
	waitGen(t, runDir, 0, control.StateReady)
	body0, err := serves(data)
	if err != nil {
		t.Fatal(err)
	}
	var oldPID int
	fmt.Sscanf(body0, "epoch 0 pid %d", &oldPID)
	t.Cleanup(func() { syscall.Kill(oldPID, syscall.SIGKILL) })
	r1.signal(syscall.SIGKILL)
	r1.wait(10 * time.Second)
	if !testutil.Alive(oldPID) {
		t.Skipf("the forked proxy (pid %d) did not outlive the restarter: nothing to test", oldPID)
	}
	r2 := startRestarter(t, nil, flags...)
	waitGen(t, runDir, 0, control.StateReady)
	body1, err := serves(data)
	if err != nil || body1 == body0 || !strings.HasPrefix(body1, "epoch 0 pid ") {
		t.Fatalf("after the second restarter started: GET %q, %v; want a new epoch 0 (not %q)", body1, err, body0)
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if testutil.Alive(oldPID) {
			return fmt.Errorf("the first restarter's proxy (pid %d) still runs", oldPID)
		}
		return nil
	})
	r2.stop()
	if c := r2.code; c != 0 {
		t.Errorf("second restarter exit %d after stop, want 0", c)
	}
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

// Bad liveness flags exit 2 before anything starts.
func TestFailsafeLivenessFlags(t *testing.T) {
	t.Parallel()
	for _, bad := range [][]string{{"--live-failures", "0"}, {"--live-interval", "0s"}, {"--live-interval", "-1s"}} {
		r := startRestarter(t, nil, args(fast[:2], bad, proxyArgs())...)
		if code := r.wait(10 * time.Second); code != 2 || len(r.starts()) != 0 {
			t.Errorf("%q: exit %d with %d starts, want 2 and none", bad, code, len(r.starts()))
		}
	}
}
