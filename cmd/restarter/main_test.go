package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/control"
	"github.com/hotrestart/restarter/internal/testutil"
)

// The test binary plays the restarter (RESTARTER_TEST_ROLE=restarter) and
// its registered helper commands (helpers_test.go: the fake proxy).
func TestMain(m *testing.M) {
	runHelper()
	if os.Getenv("RESTARTER_TEST_ROLE") == "restarter" {
		os.Unsetenv("RESTARTER_TEST_ROLE")
		os.Exit(run(os.Args[1:]))
	}
	code := m.Run()
	build.Cleanup()   // the benchmarks' restarter binary
	tpBuild.Cleanup() // failsafe_test.go's testproxy
	os.Exit(reportUnused(code))
}

// outFile is a file the restarter writes its stdout or stderr to. A file,
// not a pipe, so Wait never waits for a proxy that still holds the pipe.
type outFile struct{ path string }

func (o *outFile) String() string {
	b, _ := os.ReadFile(o.path)
	return string(b)
}

type restarterProc struct {
	t       testing.TB
	cmd     *exec.Cmd
	pid     int
	dir     string // FP_DIR
	runDir  string // --runtime-dir
	ctlPath string // its control socket, once found
	stdout  *outFile
	stderr  *outFile
	done    chan struct{}
	code    int
}

// proxyArgs is "--" and the exec form running the fake proxy.
func proxyArgs(extra ...string) []string {
	return append([]string{"--"}, helperArgs("fakeproxy", extra...)...)
}

// startRestarter runs the test binary as a restarter with args and the FP_*
// environment env. It is killed in Cleanup if still running.
func startRestarter(t testing.TB, env []string, args ...string) *restarterProc {
	t.Helper()
	checkFPKnobs(t, env)
	dir := t.TempDir()
	r := &restarterProc{t: t, dir: dir, stdout: &outFile{filepath.Join(dir, "stdout")}, stderr: &outFile{filepath.Join(dir, "stderr")}, done: make(chan struct{})}
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--runtime-dir="); ok {
			r.runDir = v
		} else if a == "--runtime-dir" && i+1 < len(args) {
			r.runDir = args[i+1]
		}
	}
	if r.runDir == "" {
		r.runDir = filepath.Join(dir, "run")
		args = append([]string{"--runtime-dir", r.runDir}, args...)
	}
	var stdoutF, stderrF *os.File
	// WATCHDOG_PID=self: the restarter's own pid, as systemd sets it (sh
	// exports its pid and execs the restarter, which keeps it).
	if i := slices.Index(env, "WATCHDOG_PID=self"); i >= 0 {
		env = slices.Delete(slices.Clone(env), i, i+1)
		r.cmd = exec.Command("/bin/sh", append([]string{"-c", `WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$0" "$@"`, os.Args[0]}, args...)...)
	} else {
		r.cmd = exec.Command(os.Args[0], args...)
	}
	r.cmd.Env = append(os.Environ(), append([]string{"RESTARTER_TEST_ROLE=restarter", "FP_DIR=" + dir, "GORACE=atexit_sleep_ms=0"}, env...)...)
	for _, o := range []struct {
		f    **os.File
		path string
	}{{&stdoutF, r.stdout.path}, {&stderrF, r.stderr.path}} {
		f, err := os.Create(o.path)
		if err != nil {
			t.Fatal(err)
		}
		*o.f = f
	}
	r.cmd.Stdout, r.cmd.Stderr = stdoutF, stderrF
	err := r.cmd.Start()
	stdoutF.Close()
	stderrF.Close()
	if err != nil {
		t.Fatalf("start restarter: %v", err)
	}
	r.pid = r.cmd.Process.Pid
	go func() {
		_ = r.cmd.Wait() // the exit status is in ProcessState
		r.code = testutil.ExitCode(r.cmd.ProcessState)
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			r.cmd.Process.Kill()
			<-r.done
		}
		for _, g := range r.starts() { // no proxy outlives its test
			if testutil.Alive(g.pid) {
				syscall.Kill(g.pid, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			t.Logf("restarter stderr:\n%s", r.stderr.String())
		}
	})
	return r
}

func (r *restarterProc) signal(sig syscall.Signal) {
	r.t.Helper()
	if err := syscall.Kill(r.pid, sig); err != nil {
		r.t.Fatalf("kill %d %v: %v", r.pid, sig, err)
	}
}

// wait waits for the restarter to exit and returns its exit code.
func (r *restarterProc) wait(d time.Duration) int {
	r.t.Helper()
	select {
	case <-r.done:
		return r.code
	case <-time.After(d):
		r.t.Fatalf("restarter still running after %s", d)
	}
	return -1
}

func (r *restarterProc) exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// gen is one fake proxy start seen in FP_DIR.
type gen struct {
	epoch int
	pid   int
	info  string
}

func (r *restarterProc) starts() []gen {
	ents, _ := os.ReadDir(r.dir)
	var out []gen
	for _, e := range ents {
		parts := strings.Split(e.Name(), ".")
		if len(parts) != 3 || parts[0] != "start" {
			continue
		}
		ep, _ := strconv.Atoi(parts[1])
		pid, _ := strconv.Atoi(parts[2])
		b, _ := os.ReadFile(filepath.Join(r.dir, e.Name()))
		out = append(out, gen{ep, pid, string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].epoch < out[j].epoch })
	return out
}

func (r *restarterProc) signals(g gen) string {
	b, _ := os.ReadFile(filepath.Join(r.dir, fmt.Sprintf("sig.%d.%d", g.epoch, g.pid)))
	return string(b)
}

// waitStart waits until the n-th start (counting from 1) of epoch has happened.
func (r *restarterProc) waitStart(epoch, n int) gen {
	r.t.Helper()
	var got gen
	testutil.WaitFor(r.t, 20*time.Second, func() error {
		c := 0
		for _, g := range r.starts() {
			if g.epoch == epoch {
				c++
				got = g
			}
		}
		if c < n {
			return fmt.Errorf("epoch %d started %d times, want %d", epoch, c, n)
		}
		return nil
	})
	return got
}

// exitRecord is the verdict the restarter, which has exited, left next to
// its control socket (what `restarter stop` reports): its exit code, which
// must be the one it exited with, and why.
func (r *restarterProc) exitRecord() control.ExitRecord {
	r.t.Helper()
	if !r.exited() {
		r.t.Fatalf("exitRecord: restarter %d still running", r.pid)
	}
	paths, _ := filepath.Glob(filepath.Join(r.runDir, "*.exit"))
	for _, p := range paths {
		if rec, err := control.ReadExitRecord(p); err == nil && rec.PID == r.pid {
			if rec.Code != r.code {
				r.t.Fatalf("exit record %+v, but the restarter exited %d", rec, r.code)
			}
			return rec
		}
	}
	r.t.Fatalf("no exit record of pid %d in %s (%q)", r.pid, r.runDir, paths)
	return control.ExitRecord{}
}

// setLive makes the fake admin of epoch answer LIVE (FP_ADMIN).
func (r *restarterProc) setLive(epoch int) {
	r.t.Helper()
	if err := os.WriteFile(filepath.Join(r.dir, fmt.Sprintf("live.%d", epoch)), nil, 0o644); err != nil {
		r.t.Fatal(err)
	}
}

// status is the restarter's state as its control socket reports it (what
// `restarter status --json` prints), asked in-process. The socket is found
// by the restarter's pid, so several instances may share a runtime dir.
func (r *restarterProc) status() (control.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ask := func(path string) (control.Status, error) {
		c, err := control.Dial(path)
		if err != nil {
			return control.Status{}, err
		}
		defer c.Close()
		return c.Status(ctx)
	}
	if r.ctlPath != "" {
		return ask(r.ctlPath)
	}
	socks, _ := filepath.Glob(filepath.Join(r.runDir, "*.ctl"))
	for _, p := range socks {
		if st, err := ask(p); err == nil && st.PID == r.pid {
			r.ctlPath = p
			return st, nil
		}
	}
	return control.Status{}, fmt.Errorf("no control socket of pid %d in %s yet", r.pid, r.runDir)
}

// waitStatus polls the status until ok accepts it (nil) and returns that
// status. It fails at once when the restarter has exited.
func (r *restarterProc) waitStatus(what string, ok func(control.Status) error) control.Status {
	r.t.Helper()
	var st control.Status
	testutil.WaitFor(r.t, 20*time.Second, func() error {
		var err error
		if st, err = r.status(); err != nil {
			if r.exited() {
				r.t.Fatalf("restarter exited (code %d) while waiting for %s", r.code, what)
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

// readyGen is the newest start of epoch that has been ready (it may be
// draining or gone since), or nil.
func readyGen(st control.Status, epoch int) *control.Generation {
	var out *control.Generation
	for i, g := range st.Generations {
		if int(g.Epoch) == epoch && g.Ready != nil {
			out = &st.Generations[i]
		}
	}
	return out
}

// waitHits waits until the fake admin of epoch (FP_ADMIN) has answered n
// requests: the readiness check has been asked and answered.
func (r *restarterProc) waitHits(epoch, n int) {
	r.t.Helper()
	testutil.WaitFor(r.t, 20*time.Second, func() error {
		b, _ := os.ReadFile(filepath.Join(r.dir, fmt.Sprintf("hits.%d", epoch)))
		if got := strings.Count(string(b), "\n"); got < n {
			return fmt.Errorf("fake admin of epoch %d answered %d requests, want %d", epoch, got, n)
		}
		return nil
	})
}

// waitReady waits until epoch has been ready, by the restarter's status.
func (r *restarterProc) waitReady(epoch int) {
	r.t.Helper()
	r.waitStatus(fmt.Sprintf("epoch %d ready", epoch), func(st control.Status) error {
		if readyGen(st, epoch) == nil {
			return fmt.Errorf("not ready in %+v", st.Generations)
		}
		return nil
	})
}

// everReady reports whether epoch has been ready, by the restarter's status.
func (r *restarterProc) everReady(epoch int) bool {
	r.t.Helper()
	st := r.waitStatus("status", func(control.Status) error { return nil })
	return readyGen(st, epoch) != nil
}

// waitExited waits until a start of epoch has exited with status.
func (r *restarterProc) waitExited(epoch, status int) {
	r.t.Helper()
	r.waitStatus(fmt.Sprintf("epoch %d exited %d", epoch, status), func(st control.Status) error {
		for _, g := range st.Generations {
			if int(g.Epoch) == epoch && g.ExitStatus != nil && *g.ExitStatus == status {
				return nil
			}
		}
		return fmt.Errorf("not in %+v", st.Generations)
	})
}

// waitReload waits until the last reload finished for epoch with outcome ok
// and returns it.
func (r *restarterProc) waitReload(epoch int, ok bool) control.ReloadOutcome {
	r.t.Helper()
	st := r.waitStatus(fmt.Sprintf("reload to epoch %d ok=%v", epoch, ok), func(st control.Status) error {
		if lr := st.LastReload; lr == nil || int(lr.Epoch) != epoch || lr.OK != ok {
			return fmt.Errorf("last reload %+v", lr)
		}
		return nil
	})
	return *st.LastReload
}

// jsonLines parses every stderr line that is JSON.
func jsonLines(t testing.TB, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// fast are the timing flags most tests use.
var fast = []string{"--log-format", "json", "--ready-after", "200ms", "--term-wait", "3s",
	"--drain-time", "20s", "--parent-shutdown-time", "30s"}

func args(extra ...[]string) []string {
	var out []string
	for _, e := range extra {
		out = append(out, e...)
	}
	return out
}
