package integration

// Helpers of the real-supervisor tests (supervisors_*_test.go): runit, monit
// and s6 run the restarter the way examples/ shows, adapted to the test proxy.
//
//   - requireTools(t, pkg, names...): skip naming the missing binary.
//   - supervisedEnv(t): a ProxyEnv plus the restarter command line (with
//     short drain and shutdown times) as one shell-quoted string for run scripts.
//   - reloadUnderLoad(t, env, reload, wantEpoch): a steady 100 req/s client on
//     fresh connections around a supervisor-driven reload; returns the result.
//   - servingPid(t, env, epoch): the serving proxy's pid, read from "/".
//   - cleanupLeftovers(t, env, supervisors...): in t.Cleanup, stops any restarter
//     of env still alive, then fails if a restarter, proxy or supervisor
//     daemon of the test is left in /proc.
//   - startReaped(t, path, args...): startProc under a child-subreaper wrapper
//     (this test binary re-executed), so that processes daemonized by a
//     supervisor (monit's start program) are reaped even when PID 1 is not
//     an init that reaps zombies.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/integration/loadgen"
	"github.com/hotrestart/restarter/internal/testutil"
)

// supervisorTimings keep a reload, its drain and the old generation's exit
// within a few seconds.
var supervisorTimings = []string{"--drain-time", "1s", "--parent-shutdown-time", "2s", "--shutdown-grace", "1s", "--term-wait", "5s"}

// reaperArg as the test binary's first argument runs it as the subreaper
// wrapper instead of the tests.
const reaperArg = "-integration-supervisors-reaper"

func init() {
	if len(os.Args) > 1 && os.Args[1] == reaperArg {
		os.Exit(runReaper(os.Args[2:]))
	}
}

// runReaper is the subreaper wrapper: it becomes a child subreaper, runs
// args, forwards SIGTERM/SIGINT/SIGHUP to it, reaps every orphan that lands
// on it, and once args' process is gone waits (up to 10s) for the orphans.
func runReaper(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "reaper: no command")
		return 2
	}
	if err := becomeSubreaper(); err != nil {
		fmt.Fprintf(os.Stderr, "reaper: PR_SET_CHILD_SUBREAPER: %v\n", err)
		return 2
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "reaper: %v\n", err)
		return 2
	}
	main := cmd.Process.Pid
	go func() {
		for s := range sigs {
			_ = syscall.Kill(main, s.(syscall.Signal))
		}
	}()
	code := -1
	var deadline time.Time
	for {
		var ws syscall.WaitStatus
		flags := 0
		if code >= 0 {
			flags = syscall.WNOHANG
		}
		pid, err := syscall.Wait4(-1, &ws, flags, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.ECHILD) {
			return max(code, 0)
		}
		if pid == main {
			code = ws.ExitStatus()
			if ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
			deadline = time.Now().Add(10 * time.Second)
		}
		if code >= 0 && pid == 0 {
			if time.Now().After(deadline) {
				fmt.Fprintln(os.Stderr, "reaper: orphans still alive after 10s")
				return code
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// startReaped starts path with args under the subreaper wrapper.
func startReaped(t *testing.T, path string, args ...string) *Proc {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return startProc(t, self, append([]string{reaperArg, path}, args...)...)
}

// requireTools skips the test unless every named binary is on PATH; it
// returns their resolved paths in order.
func requireTools(t *testing.T, pkg string, names ...string) []string {
	t.Helper()
	skipUnlessLinux(t)
	var out []string
	for _, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			t.Skipf("%s not found on PATH: install Debian's %s package (.ci/run does) to run this test", n, pkg)
		}
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		}
		out = append(out, p)
	}
	return out
}

// shellQuote quotes s for sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

// supervised is one proxy instance run under a supervisor.
type supervised struct {
	*ProxyEnv
	PidFile string
	Command string // restarter command line, shell-quoted
}

func supervisedEnv(t *testing.T) *supervised {
	t.Helper()
	env := newProxyEnv(t)
	args := append([]string{env.Bin.Restarter}, env.RestarterArgs(supervisorTimings)...)
	return &supervised{ProxyEnv: env, PidFile: filepath.Join(env.RuntimeDir, "restarter.pid"), Command: shellJoin(args)}
}

// reloadsKeepPid waits until the supervisor reports the restarter's pid
// (supPid, named who in messages) and epoch 0 serves, checks the pid file
// agrees, then reloads twice through reload under a steady client: each
// time the new epoch serves, the old generation drains and exits, and the
// supervisor still reports the same pid. It returns that pid.
func reloadsKeepPid(t *testing.T, env *supervised, who string, supPid func() (int, error), reload func()) int {
	t.Helper()
	var pid0 int
	testutil.WaitFor(t, 10*time.Second, func() (err error) { pid0, err = supPid(); return err })
	servingPid(t, env.ProxyEnv, 0, 20*time.Second)
	if p, err := readPidFile(env.PidFile); err != nil || p != pid0 {
		t.Fatalf("pid file says %d (%v), %s says %d", p, err, who, pid0)
	}
	for epoch := 1; epoch <= 2; epoch++ {
		reloadUnderLoad(t, env.ProxyEnv, fmt.Sprintf("%s reload #%d", who, epoch), epoch, reload)
		servingPid(t, env.ProxyEnv, epoch, 10*time.Second)
		waitProxies(t, env.ProxyEnv, 1, 15*time.Second) // the old generation drained and exited
		if p, err := supPid(); err != nil || p != pid0 {
			t.Fatalf("after reload #%d: %s pid %d (%v), want the same pid %d", epoch, who, p, err, pid0)
		}
	}
	return pid0
}

// writeRunScript writes an executable sh script.
func writeRunScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexec 2>&1\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// readPidFile returns the pid in the restarter's pid file.
func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("pid file %s: %q: %w", path, b, err)
	}
	return pid, nil
}

func alive(pid int) bool { return testutil.Alive(pid) }

// servingPid waits until epoch is LIVE and "/" answers from it; it returns
// the pid the proxy reports.
func servingPid(t *testing.T, env *ProxyEnv, epoch int, d time.Duration) int {
	t.Helper()
	waitLive(t, env.Admin, epoch, d)
	var pid int
	testutil.WaitFor(t, d, func() error {
		body, err := getBody(env.URL("/"))
		if err != nil {
			return err
		}
		var ep int
		if _, err := fmt.Sscanf(body, "epoch %d pid %d", &ep, &pid); err != nil {
			return fmt.Errorf("body %q: %w", body, err)
		}
		if ep != epoch {
			return fmt.Errorf("listener answered from epoch %d, want %d", ep, epoch)
		}
		return nil
	})
	return pid
}

// proxies are the live test proxies of env.
func proxies(env *ProxyEnv) []int { return procsWithArg(env.Bin.Testproxy, env.SocketPath) }

// waitProxies waits until exactly n proxies of env are alive.
func waitProxies(t *testing.T, env *ProxyEnv, n int, d time.Duration) {
	t.Helper()
	testutil.WaitFor(t, d, func() error {
		if p := proxies(env); len(p) != n {
			return fmt.Errorf("%d test proxies alive (%v), want %d", len(p), p, n)
		}
		return nil
	})
}

// reloadUnderLoad offers 100 req/s on fresh connections from 500ms before
// reload() until the old generation has had time to drain and exit, and
// waits for wantEpoch to serve. It logs and returns the load result.
func reloadUnderLoad(t *testing.T, env *ProxyEnv, name string, wantEpoch int, reload func()) loadgen.Result {
	t.Helper()
	ctx, cancel := context.WithCancel(deadlineCtx(t))
	defer cancel()
	cfg := loadgen.Config{URL: env.URL("/"), Rate: 100, Duration: 4 * time.Second, Timeout: 3 * time.Second}
	type out struct {
		res loadgen.Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		r, err := loadgen.Run(ctx, cfg)
		done <- out{r, err}
	}()
	time.Sleep(500 * time.Millisecond) // load before the reload, by design
	start := time.Now()
	reload()
	waitLive(t, env.Admin, wantEpoch, 20*time.Second)
	ready := time.Since(start)
	o := <-done
	if o.err != nil {
		t.Fatalf("loadgen: %v", o.err)
	}
	t.Logf("%s: epoch %d live %v after the reload; client during the reload: %s", name, wantEpoch, ready.Round(time.Millisecond), o.res)
	if o.res.Failed() != 0 || o.res.Sent < 300 {
		t.Errorf("%s: %d of %d requests failed during the reload (want 0 of >= 300): %s %v", name, o.res.Failed(), o.res.Sent, o.res, o.res.Errors)
	}
	return o.res
}

// cleanupLeftovers registers (call it first, so it runs last) a check that
// nothing of the test survives: it stops stray restarters of env, then fails
// if a restarter or proxy of env, or a process of a supervisor binary with
// the test's directory in its command line, is still alive.
func cleanupLeftovers(t *testing.T, env *ProxyEnv, dir string, supervisorBins ...string) {
	t.Helper()
	t.Cleanup(func() {
		for _, pid := range procsWithArg(env.Bin.Restarter, env.SocketPath) {
			t.Errorf("restarter pid %d still alive at cleanup; stopping it", pid)
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
		deadline := time.Now().Add(10 * time.Second)
		for len(procsWithArg(env.Bin.Restarter, env.SocketPath)) > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		for _, pid := range procsWithArg(env.Bin.Restarter, env.SocketPath) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		assertNothingLeft(t, env, 10*time.Second)
		testutil.WaitFor(t, 10*time.Second, func() error {
			if p := procsWithArg(env.Bin.Restarter, env.SocketPath); len(p) > 0 {
				return fmt.Errorf("restarter processes left: %v", p)
			}
			for _, b := range supervisorBins {
				if p := procsWithArg(b, dir); len(p) > 0 {
					return fmt.Errorf("%s processes left: %v", filepath.Base(b), p)
				}
			}
			return nil
		})
	})
}

// runTool runs a supervisor's command-line tool and returns its output.
func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// toolOutput runs a tool, returning output and error (for polling).
func toolOutput(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// pidIn extracts N from "(pid N)" or "pid N" in a status line.
func pidIn(s string) int {
	i := strings.Index(s, "pid ")
	if i < 0 {
		return 0
	}
	f := strings.FieldsFunc(s[i+4:], func(r rune) bool { return r < '0' || r > '9' })
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}
