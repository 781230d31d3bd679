package main

import (
	"bufio"
	"bytes"
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

	"github.com/hotrestart/restarter/internal/testutil"
)

// The test binary plays both the restarter (RESTARTER_TEST_ROLE=restarter)
// and the proxy (first argument "fakeproxy").
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "fakeproxy" {
		os.Exit(fakeProxy())
	}
	if os.Getenv("RESTARTER_TEST_ROLE") == "restarter" {
		os.Unsetenv("RESTARTER_TEST_ROLE")
		os.Exit(run(os.Args[1:]))
	}
	code := m.Run()
	build.Cleanup()   // the benchmarks' restarter binary
	tpBuild.Cleanup() // failsafe_test.go's testproxy
	os.Exit(code)
}

// outFile is a file the restarter writes its stdout or stderr to. A file,
// not a pipe, so Wait never waits for a proxy that still holds the pipe.
type outFile struct{ path string }

func (o *outFile) String() string {
	b, _ := os.ReadFile(o.path)
	return string(b)
}

type restarterProc struct {
	t      testing.TB
	cmd    *exec.Cmd
	pid    int
	dir    string // FP_DIR
	stdout *outFile
	stderr *outFile
	done   chan struct{}
	code   int
}

// proxyArgs is the exec form running the fake proxy.
func proxyArgs(extra ...string) []string {
	return append([]string{"--", os.Args[0], "fakeproxy"}, extra...)
}

// startRestarter runs the test binary as a restarter with args and the FP_*
// environment env. It is killed in Cleanup if still running.
func startRestarter(t testing.TB, env []string, args ...string) *restarterProc {
	t.Helper()
	dir := t.TempDir()
	r := &restarterProc{t: t, dir: dir, stdout: &outFile{filepath.Join(dir, "stdout")}, stderr: &outFile{filepath.Join(dir, "stderr")}, done: make(chan struct{})}
	hasRuntime := false
	for _, a := range args {
		if strings.HasPrefix(a, "--runtime-dir") {
			hasRuntime = true
		}
	}
	if !hasRuntime {
		args = append([]string{"--runtime-dir", filepath.Join(dir, "run")}, args...)
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
		err := r.cmd.Wait()
		r.code = exitCodeOf(err, r.cmd)
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
			if alive(g.pid) {
				syscall.Kill(g.pid, syscall.SIGKILL)
			}
		}
		if t.Failed() {
			t.Logf("restarter stderr:\n%s", r.stderr.String())
		}
	})
	return r
}

func exitCodeOf(err error, cmd *exec.Cmd) int {
	if err == nil {
		return 0
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return cmd.ProcessState.ExitCode()
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

// waitLog waits for a stderr line containing all of the substrings.
func (r *restarterProc) waitLog(subs ...string) {
	r.t.Helper()
	testutil.WaitFor(r.t, 20*time.Second, func() error {
		if r.countLog(subs...) > 0 {
			return nil
		}
		return fmt.Errorf("no log line with %q", subs)
	})
}

func (r *restarterProc) countLog(subs ...string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(r.stderr.String()))
	for sc.Scan() {
		ok := true
		for _, s := range subs {
			if !strings.Contains(sc.Text(), s) {
				ok = false
				break
			}
		}
		if ok {
			n++
		}
	}
	return n
}

// waitReady waits for the "ready" event of epoch (JSON logs).
func (r *restarterProc) waitReady(epoch int) {
	r.t.Helper()
	r.waitLog(`"msg":"ready"`, fmt.Sprintf(`"epoch":%d,`, epoch))
}

func alive(pid int) bool {
	_, state, ok := procStat(pid)
	return ok && state != 'Z'
}

// procStat returns ppid and state of pid.
func procStat(pid int) (int, byte, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	ppid, _ := strconv.Atoi(f[1])
	return ppid, f[0][0], true
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
