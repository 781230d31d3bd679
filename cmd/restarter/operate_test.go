package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/hotrestart/restarter/baseid"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/control"
	"github.com/hotrestart/restarter/internal/testutil"
)

// cli runs `restarter ARGS` (the control CLI) as a real process.
func cli(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "RESTARTER_TEST_ROLE=restarter", "GORACE=atexit_sleep_ms=0")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("run %q: %v", args, err)
	}
	return testutil.ExitCode(cmd.ProcessState), o.String(), e.String()
}

func statusJSON(t testing.TB, runDir string, sel ...string) control.Status {
	t.Helper()
	code, out, errs := cli(t, append([]string{"status", "--json", "--runtime-dir", runDir}, sel...)...)
	if code != 0 {
		t.Fatalf("status --json: exit %d, stderr %q", code, errs)
	}
	var st control.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status --json printed %q: %v", out, err)
	}
	return st
}

func genState(st control.Status, epoch uint32) string {
	state := ""
	for _, g := range st.Generations {
		if g.Epoch == epoch {
			state = g.State // the latest start of that epoch number
		}
	}
	return state
}

// The control CLI against one running restarter: no selector needed;
// status, a good reload (exit 0), a reload whose generation dies before it
// is ready (exit 1 with the reason), stop.
func TestControlCLI(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "restarter.pid")
	r := startRestarter(t, []string{"FP_FAIL_ONCE_EPOCHS=2"},
		args(fast, []string{"--ready-after", "1s", "--pid-file", pidFile}, proxyArgs())...)
	runDir := filepath.Join(r.dir, "run")
	g0 := r.waitStart(0, 1)
	r.waitReady(0)

	sock := filepath.Join(runDir, "base-0.ctl")
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket %s: %v, %v; want a socket with mode 0600", sock, fi, err)
	}

	st := statusJSON(t, runDir)
	if st.Name != "base-0" || st.PID != r.pid || len(st.Generations) != 1 || st.Generations[0].PID != g0.pid ||
		st.Generations[0].State != "ready" || st.Generations[0].Ready == nil || st.LastReload != nil {
		t.Fatalf("status %+v: want base-0, pid %d, epoch 0 ready at pid %d, no reload yet", st, r.pid, g0.pid)
	}

	code, out, errs := cli(t, "reload", "--runtime-dir", runDir)
	if code != 0 || !strings.Contains(out, "epoch 1 is ready") {
		t.Fatalf("reload: exit %d, stdout %q, stderr %q; want 0 and epoch 1 ready", code, out, errs)
	}
	st = statusJSON(t, runDir)
	if genState(st, 0) != "draining" || genState(st, 1) != "ready" || st.LastReload == nil || !st.LastReload.OK || st.LastReload.Epoch != 1 {
		t.Fatalf("status after reload: %+v", st)
	}

	code, out, errs = cli(t, "reload", "--runtime-dir", runDir)
	if code != 1 || !strings.Contains(errs, "epoch 2 failed") || !strings.Contains(errs, "exited with status 1 before it was ready") {
		t.Fatalf("failing reload: exit %d, stdout %q, stderr %q; want 1 with the reason", code, out, errs)
	}
	code, out, _ = cli(t, "status", "--runtime-dir", runDir)
	if code != 0 || !strings.Contains(out, "last reload: FAILED") || !strings.Contains(out, "exited") || !strings.Contains(out, "ready") {
		t.Fatalf("status after a failed reload: exit %d:\n%s", code, out)
	}
	if st := statusJSON(t, runDir); genState(st, 1) != "ready" || genState(st, 2) != "exited" {
		t.Fatalf("after the failed reload: %+v; want epoch 1 still ready, epoch 2 exited", st)
	}

	code, out, errs = cli(t, "stop", "--runtime-dir", runDir)
	if code != 0 || !strings.Contains(out, "stopped") {
		t.Fatalf("stop: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// When stop returns, a service manager may start the next instance at
	// once: the pid file must be gone and the base id free already.
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file still there when stop returned: %v", err)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", r.pid)); err == nil {
		if i := bytes.LastIndexByte(b, ')'); i > 0 && i+2 < len(b) && b[i+2] != 'Z' {
			t.Errorf("restarter pid %d still running (state %c) when stop returned", r.pid, b[i+2])
		}
	}
	if l, err := baseid.Acquire(runDir, 0); err != nil {
		t.Errorf("base id 0 still held when stop returned: %v", err)
	} else {
		l.Close()
	}
	if code := r.wait(10 * time.Second); code != 0 {
		t.Fatalf("restarter exit code %d after stop, want 0", code)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("control socket still there after exit: %v", err)
	}
}

// Several instances in one runtime dir: a selector is needed and works; a
// second instance with a name in use is refused (exit 2).
func TestControlTwoInstances(t *testing.T) {
	t.Parallel()
	runDir := filepath.Join(t.TempDir(), "run")
	a := startRestarter(t, nil, args(fast, []string{"--runtime-dir", runDir, "--base-id", "1", "--name", "edge"}, proxyArgs())...)
	b := startRestarter(t, nil, args(fast, []string{"--runtime-dir", runDir, "--base-id", "2"}, proxyArgs())...)
	a.waitReady(0)
	b.waitReady(0)

	code, _, errs := cli(t, "status", "--runtime-dir", runDir)
	if code != 1 || !strings.Contains(errs, "pick one with --name") || !strings.Contains(errs, "base-2, edge") {
		t.Fatalf("status without a selector: exit %d, stderr %q; want 1 naming both", code, errs)
	}
	if st := statusJSON(t, runDir, "--name", "edge"); st.Name != "edge" || st.PID != a.pid || st.BaseID != 1 {
		t.Fatalf("--name edge: %+v, want pid %d base id 1", st, a.pid)
	}
	if st := statusJSON(t, runDir, "--base-id", "2"); st.Name != "base-2" || st.PID != b.pid {
		t.Fatalf("--base-id 2: %+v, want pid %d", st, b.pid)
	}
	if code, out, errs := cli(t, "reload", "--runtime-dir", runDir, "--name", "edge"); code != 0 {
		t.Fatalf("reload --name edge: exit %d, %q %q", code, out, errs)
	}
	if st := statusJSON(t, runDir, "--base-id", "2"); len(st.Generations) != 1 {
		t.Fatalf("reloading edge touched base-2: %+v", st)
	}

	c := startRestarter(t, nil, args(fast, []string{"--runtime-dir", runDir, "--base-id", "3", "--name", "edge"}, proxyArgs())...)
	if code := c.wait(10 * time.Second); code != 2 || !strings.Contains(c.stderr.String(), "in use") {
		t.Fatalf("second instance named edge: exit %d, want 2 with 'in use'; stderr:\n%s", code, c.stderr.String())
	}
	if len(c.starts()) != 0 {
		t.Fatalf("the refused instance started a proxy")
	}
	for _, r := range []*restarterProc{a, b} {
		r.signal(syscall.SIGTERM)
		if code := r.wait(10 * time.Second); code != 0 {
			t.Fatalf("exit %d, want 0", code)
		}
	}
}

// --validate-cmd, here Envoy mode's default (COMMAND --mode validate): a
// failing validation aborts the reload, the old generation keeps serving and
// the reason reaches `restarter reload`; the next good reload works.
func TestValidateEnvoyDefault(t *testing.T) {
	t.Parallel()
	cfgFile := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(cfgFile, []byte("fail: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startRestarter(t, nil, args(fast, []string{"--envoy"}, proxyArgs("--config", cfgFile))...)
	runDir := filepath.Join(r.dir, "run")
	r.waitReady(0)
	if code, out, errs := cli(t, "reload", "--runtime-dir", runDir); code != 0 {
		t.Fatalf("good reload: exit %d, %q %q", code, out, errs)
	}
	g1 := r.waitStart(1, 1)

	if err := os.WriteFile(cfgFile, []byte("fail: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := cli(t, "reload", "--runtime-dir", runDir)
	if code != 1 || !strings.Contains(errs, "validation failed") || !strings.Contains(errs, "fail: true found") {
		t.Fatalf("bad config reload: exit %d, stderr %q; want 1 with the validator's output", code, errs)
	}
	if lr := r.waitReload(2, false); lr.Failure != "validation_failed" || !strings.Contains(lr.Reason, "fail: true found (epoch 2)") {
		t.Fatalf("failed reload: %s, %q; want validation_failed with the validator's output", lr.Failure, lr.Reason)
	}
	if n := len(r.starts()); n != 2 || !testutil.Alive(g1.pid) {
		t.Fatalf("after a failed validation: %d starts, epoch 1 alive %v; want 2 and alive", n, testutil.Alive(g1.pid))
	}
	if st := statusJSON(t, runDir); genState(st, 1) != "ready" {
		t.Fatalf("status: %+v; want epoch 1 ready", st)
	}

	if err := os.WriteFile(cfgFile, []byte("fail: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := cli(t, "reload", "--runtime-dir", runDir); code != 0 || !strings.Contains(out, "epoch 2 is ready") {
		t.Fatalf("reload after the fix: exit %d, %q %q", code, out, errs)
	}
	g2 := r.waitStart(2, 1)
	if strings.Contains(g2.info, `"--mode"`) || !strings.Contains(g2.info, `"--restart-epoch" "2"`) {
		t.Errorf("epoch 2 started as %q: want the restart flags and no --mode", g2.info)
	}
	b, _ := os.ReadFile(filepath.Join(r.dir, "validated"))
	if string(b) != "1\n2\n2\n" {
		t.Errorf("validator ran for epochs %q, want 1, 2, 2 (never before epoch 0)", b)
	}
	// Each run's argv: COMMAND's args and --mode validate, no restart flags.
	b, _ = os.ReadFile(filepath.Join(r.dir, "validated.args"))
	want := strings.Repeat(fmt.Sprintf("%q\n", []string{"--config", cfgFile, "--mode", "validate"}), 3)
	if string(b) != want {
		t.Errorf("validator argv, one line a run:\n%s\nwant:\n%s", b, want)
	}
}

// notifyServer is a fake systemd: a unixgram socket collecting sd_notify
// datagrams.
type notifyServer struct {
	path string
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
	done chan struct{}
}

func newNotifyServer(t *testing.T) *notifyServer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s := &notifyServer{path: path, conn: c, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-s.done })
	return s
}

func (s *notifyServer) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

// states are the messages that change systemd's view (not STATUS= or
// WATCHDOG=1 alone), reduced to their first assignment.
func (s *notifyServer) states() []string {
	var out []string
	for _, m := range s.all() {
		switch {
		case strings.HasPrefix(m, "READY=1"), strings.HasPrefix(m, "RELOADING=1"), strings.HasPrefix(m, "STOPPING=1"):
			out = append(out, m)
		}
	}
	return out
}

func (s *notifyServer) waitStates(t *testing.T, n int) []string {
	t.Helper()
	var st []string
	testutil.WaitFor(t, 20*time.Second, func() error {
		if st = s.states(); len(st) < n {
			return fmt.Errorf("got %d state notifications %q, want %d", len(st), st, n)
		}
		return nil
	})
	return st
}

// systemd Type=notify-reload: READY=1, RELOADING=1 + MONOTONIC_USEC then
// READY=1 on SIGHUP, READY=1 + STATUS + ERRNO on a failed reload, STOPPING=1,
// WATCHDOG=1 (WATCHDOG_PID is the restarter), nothing leaks to the proxy.
func TestSystemdNotify(t *testing.T) {
	t.Parallel()
	ns := newNotifyServer(t)
	env := []string{"NOTIFY_SOCKET=" + ns.path, "WATCHDOG_USEC=400000", "WATCHDOG_PID=self"}
	r := startRestarter(t, env, args(fast, []string{"--validate-cmd", `test ! -e "$FP_DIR/bad"`}, proxyArgs())...)
	g0 := r.waitStart(0, 1)
	st := ns.waitStates(t, 1)
	r.waitReady(0)
	if !strings.HasPrefix(st[0], "READY=1\n") || !strings.Contains(st[0], "STATUS=epoch 0 serving (pid "+strconv.Itoa(g0.pid)+")") {
		t.Fatalf("first notification %q: want READY=1 with epoch 0's pid", st[0])
	}
	for _, w := range []string{"NOTIFY_SOCKET=\n", "WATCHDOG_USEC=\n", "WATCHDOG_PID=\n"} {
		if !strings.Contains(g0.info, w) {
			t.Errorf("the proxy's environment leaks systemd's variables: %q lacks %q", g0.info, w)
		}
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		for _, m := range ns.all() {
			if m == "WATCHDOG=1" {
				return nil
			}
		}
		return fmt.Errorf("no WATCHDOG=1 in %q", ns.all())
	})

	r.signal(syscall.SIGHUP)
	st = ns.waitStates(t, 3)
	if !strings.HasPrefix(st[1], "RELOADING=1\nMONOTONIC_USEC=") || !strings.HasPrefix(st[2], "READY=1\n") ||
		!strings.Contains(st[2], "epoch 1 serving") || strings.Contains(st[2], "ERRNO") {
		t.Fatalf("reload notifications %q: want RELOADING=1 with MONOTONIC_USEC, then READY=1 with epoch 1 serving", st[1:])
	}
	usec, err := strconv.ParseInt(strings.SplitN(strings.TrimPrefix(st[1], "RELOADING=1\nMONOTONIC_USEC="), "\n", 2)[0], 10, 64)
	if err != nil || usec <= 0 {
		t.Fatalf("MONOTONIC_USEC in %q: %v", st[1], err)
	}

	if err := os.WriteFile(filepath.Join(r.dir, "bad"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r.signal(syscall.SIGHUP)
	st = ns.waitStates(t, 5)
	if !strings.HasPrefix(st[3], "RELOADING=1\n") || !strings.HasPrefix(st[4], "READY=1\n") ||
		!strings.Contains(st[4], "STATUS=reload to epoch 2 failed: validation failed") ||
		!strings.Contains(st[4], "epoch 1 still serving") || !strings.Contains(st[4], "ERRNO=5") {
		t.Fatalf("failed reload notifications %q: want RELOADING=1, then READY=1 with STATUS= and ERRNO=5", st[3:])
	}

	// Held and coalesced SIGHUPs: however many reloads run, each is one
	// RELOADING=1 followed by one READY=1.
	os.Remove(filepath.Join(r.dir, "bad"))
	for i := 0; i < 3; i++ {
		r.signal(syscall.SIGHUP)
	}
	var last control.Status
	testutil.WaitFor(t, 20*time.Second, func() error {
		last = statusJSON(t, filepath.Join(r.dir, "run"))
		done := last.LastReload != nil && last.LastReload.OK && !last.Reloading && !last.Pending
		if s := ns.states(); len(s)%2 == 1 && len(s) >= 7 && done {
			return nil
		}
		return fmt.Errorf("waiting for the SIGHUP burst's reloads to finish: %q, status %+v", ns.states(), last)
	})
	r.signal(syscall.SIGTERM)
	if code := r.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	st = ns.states()
	// Every successful reload took the next epoch; the failed one did not.
	reloads := int(last.NextEpoch-1) + 1
	if len(st) != 2+2*reloads || !strings.HasPrefix(st[len(st)-1], "STOPPING=1") {
		t.Fatalf("%d reloads (status), notifications %q: want READY, %d RELOADING/READY pairs, STOPPING", reloads, st, reloads)
	}
	for i := 1; i+1 < len(st)-1; i += 2 {
		if !strings.HasPrefix(st[i], "RELOADING=1\nMONOTONIC_USEC=") || !strings.HasPrefix(st[i+1], "READY=1\n") {
			t.Fatalf("notification %d..%d: %q: want RELOADING=1 then READY=1 (all: %q)", i, i+1, st[i:i+2], st)
		}
	}
}

// Without WATCHDOG_USEC no WATCHDOG=1, and a WATCHDOG_PID of another
// process turns it off too.
func TestSystemdWatchdogOtherPID(t *testing.T) {
	t.Parallel()
	ns := newNotifyServer(t)
	r := startRestarter(t, []string{"NOTIFY_SOCKET=" + ns.path, "WATCHDOG_USEC=100000", "WATCHDOG_PID=1"}, args(fast, proxyArgs())...)
	ns.waitStates(t, 1)
	time.Sleep(300 * time.Millisecond) // three intervals: proving an absence needs a wait
	for _, m := range ns.all() {
		if strings.Contains(m, "WATCHDOG=1") {
			t.Fatalf("WATCHDOG=1 sent although WATCHDOG_PID names pid 1: %q", ns.all())
		}
	}
	r.signal(syscall.SIGTERM)
	r.wait(10 * time.Second)
}

// --ready=notify: READY=1 from the generation makes it ready; a generation
// that never sends it is rolled back after --ready-timeout; no socket file
// is left behind.
func TestReadyNotify(t *testing.T) {
	t.Parallel()
	ns := newNotifyServer(t) // systemd's: the generations must get ours instead
	r := startRestarter(t, []string{"FP_NOTIFY=300ms", "FP_NOTIFY_SKIP_ONCE_EPOCHS=1", "NOTIFY_SOCKET=" + ns.path},
		args([]string{"--log-format", "json", "--ready=notify", "--ready-timeout", "2s", "--term-wait", "3s",
			"--drain-time", "20s", "--parent-shutdown-time", "30s"}, proxyArgs())...)
	runDir := filepath.Join(r.dir, "run")
	g0 := r.waitStart(0, 1)
	r.waitReady(0)
	if want := "NOTIFY_SOCKET=" + filepath.Join(runDir, "base-0.0.notify") + "\n"; !strings.Contains(g0.info, want) {
		t.Fatalf("epoch 0 env %q lacks %q", g0.info, want)
	}
	notifyFiles := func() []string {
		m, _ := filepath.Glob(filepath.Join(runDir, "*.notify"))
		return m
	}
	testutil.WaitFor(t, 5*time.Second, func() error {
		if f := notifyFiles(); len(f) != 0 {
			return fmt.Errorf("notify sockets left after ready: %q", f)
		}
		return nil
	})

	// Not counting pidfds: a supervisor may hold one per live generation,
	// and a draining one is still alive after the second reload.
	const pidfd = "anon_inode:[pidfd]"
	fds0 := testutil.CountFDs(t, r.pid, pidfd)
	code, _, errs := cli(t, "reload", "--runtime-dir", runDir)
	if code != 1 || !strings.Contains(errs, "not ready within 2s") || !strings.Contains(errs, "no READY=1") {
		t.Fatalf("silent generation: reload exit %d, stderr %q; want 1, not ready", code, errs)
	}
	if !testutil.Alive(g0.pid) || len(notifyFiles()) != 0 {
		t.Fatalf("after rollback: epoch 0 alive %v, notify sockets %q", testutil.Alive(g0.pid), notifyFiles())
	}
	if code, out, errs := cli(t, "reload", "--runtime-dir", runDir); code != 0 {
		t.Fatalf("notifying generation: reload exit %d, %q %q", code, out, errs)
	}
	// No growth beyond one more live generation's stderr pipe (epoch 0
	// drains beside epoch 1; stderrtail.go): fds that come and go (a
	// control connection still being closed, the runtime's own) may be open
	// at either count, so not equality; no tolerance either, as every leak
	// of a notify socket is one fd per reload.
	testutil.WaitFor(t, 5*time.Second, func() error {
		if n := testutil.CountFDs(t, r.pid, pidfd); n > fds0+1 {
			return fmt.Errorf("restarter has %d open fds after two reloads, had %d before (+1 allowed: a second live generation's stderr pipe)", n, fds0)
		}
		return nil
	})
	r.signal(syscall.SIGTERM)
	if code := r.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	if f := notifyFiles(); len(f) != 0 {
		t.Fatalf("notify sockets left after exit: %q", f)
	}
	st := ns.states()
	if len(st) != 6 || !strings.HasPrefix(st[0], "READY=1\nSTATUS=epoch 0 serving") || !strings.Contains(st[2], "ERRNO=") {
		t.Errorf("systemd got %q: want READY, RELOADING, READY+ERRNO, RELOADING, READY, STOPPING", st)
	}
	for _, m := range ns.all() {
		if strings.Contains(m, "fake proxy up") {
			t.Errorf("a generation's READY=1 reached systemd's socket: %q", m)
		}
	}
}

// --watch: a burst of writes to the watched file is one reload; a missing
// path is a usage error naming it.
func TestWatch(t *testing.T) {
	t.Parallel()
	cfgFile := filepath.Join(t.TempDir(), "proxy.yaml")
	if err := os.WriteFile(cfgFile, []byte("v0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startRestarter(t, nil, args(fast, []string{"--watch", cfgFile, "--watch-debounce", "300ms"}, proxyArgs())...)
	r.waitReady(0)
	for i := 1; i <= 3; i++ {
		if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf("v%d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.waitReady(1)
	r.checkOneReload("one burst of writes")
	r.signal(syscall.SIGTERM)
	if code := r.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}

	missing := filepath.Join(t.TempDir(), "nope.yaml")
	m := startRestarter(t, nil, args(fast, []string{"--watch", missing}, proxyArgs())...)
	if code := m.wait(10 * time.Second); code != 2 || !strings.Contains(m.stderr.String(), missing) || len(m.starts()) != 0 {
		t.Fatalf("missing --watch path: exit %d, stderr %q; want 2 naming %s and no proxy started", code, m.stderr.String(), missing)
	}
}

// --validate-cmd with placeholders, and --validate-timeout: a validator that
// hangs is killed and the reload fails while the old generation serves.
func TestValidateCmdTimeout(t *testing.T) {
	t.Parallel()
	r := startRestarter(t, nil, args(fast, []string{"--base-id", "5", "--validate-timeout", "500ms", "--validate-cmd",
		`echo "checking {{epoch}} base {{base_id}} env $RESTART_EPOCH" >> "$FP_DIR/vlog"; test ! -e "$FP_DIR/slow" || exec sleep 30`}, proxyArgs())...)
	runDir := filepath.Join(r.dir, "run")
	r.waitReady(0)
	if code, out, errs := cli(t, "reload", "--runtime-dir", runDir); code != 0 {
		t.Fatalf("reload: exit %d, %q %q", code, out, errs)
	}
	g1 := r.waitStart(1, 1)
	if err := os.WriteFile(filepath.Join(r.dir, "slow"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := cli(t, "reload", "--runtime-dir", runDir)
	if code != 1 || !strings.Contains(errs, "still running after --validate-timeout 500ms") {
		t.Fatalf("hung validator: exit %d, stderr %q; want 1 naming --validate-timeout", code, errs)
	}
	if !testutil.Alive(g1.pid) || len(r.starts()) != 2 {
		t.Fatalf("after the hung validator: epoch 1 alive %v, %d starts; want alive and 2", testutil.Alive(g1.pid), len(r.starts()))
	}
	b, _ := os.ReadFile(filepath.Join(r.dir, "vlog"))
	if string(b) != "checking 1 base 5 env 1\nchecking 2 base 5 env 2\n" {
		t.Fatalf("validator log %q: want placeholders and RESTART_EPOCH of the new epoch", b)
	}
	r.signal(syscall.SIGTERM)
	if code := r.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
}

// --watch on a file of a Kubernetes-style ConfigMap mount: the kubelet's
// atomic "..data" symlink swap is one reload.
func TestWatchConfigMapSwap(t *testing.T) {
	t.Parallel()
	mnt := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Mkdir(filepath.Join(mnt, "..v1"), 0o755))
	must(os.WriteFile(filepath.Join(mnt, "..v1", "envoy.yaml"), []byte("v1\n"), 0o644))
	must(os.Symlink("..v1", filepath.Join(mnt, "..data")))
	must(os.Symlink("..data/envoy.yaml", filepath.Join(mnt, "envoy.yaml")))
	r := startRestarter(t, nil, args(fast, []string{"--watch", filepath.Join(mnt, "envoy.yaml"), "--watch-debounce", "200ms"}, proxyArgs())...)
	r.waitReady(0)

	must(os.Mkdir(filepath.Join(mnt, "..v2"), 0o755))
	must(os.WriteFile(filepath.Join(mnt, "..v2", "envoy.yaml"), []byte("v2\n"), 0o644))
	must(os.Symlink("..v2", filepath.Join(mnt, "..data_tmp")))
	must(os.Rename(filepath.Join(mnt, "..data_tmp"), filepath.Join(mnt, "..data")))
	must(os.RemoveAll(filepath.Join(mnt, "..v1")))
	r.waitReady(1)
	r.checkOneReload("one ConfigMap swap")
	r.signal(syscall.SIGTERM)
	if code := r.wait(10 * time.Second); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
}

// checkOneReload checks, once epoch 1 is ready, that what happened (a burst
// of --watch events) made exactly one reload request, which succeeded, and
// that FP_DIR has just the two starts. After the settle time: epoch 1 is
// ready only after the last write's debounce, so a second watch event
// would have been sent by then, and the settle time lets it reach the
// supervisor.
func (r *restarterProc) checkOneReload(what string) {
	r.t.Helper()
	testutil.Settle() // the absence of a second request: no state to poll for it
	st, err := r.status()
	if err != nil {
		r.t.Fatal(err)
	}
	if want := (control.ReloadCounts{Requested: 1, Started: 1, Succeeded: 1}); st.Reloads != want || len(r.starts()) != 2 {
		r.t.Fatalf("after %s: reloads %+v and %d starts; want %+v and 2", what, st.Reloads, len(r.starts()), want)
	}
}
