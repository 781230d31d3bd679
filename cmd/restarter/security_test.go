package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/osutil"
	"github.com/hotrestart/restarter/internal/testutil"
)

// nobodySh runs script with sh as nobody:nogroup and returns its combined
// output and exit code (it skips where that is not possible).
func nobodySh(t *testing.T, script string) (string, int) {
	t.Helper()
	out, err := testutil.AsNobody(t, "/bin/sh", "-c", script).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return string(out), 0
}

// TestRuntimeDirRefused: a runtime dir others can write to, or that another
// user owns, is refused before anything starts (exit 2, the path, its mode
// or owner, and the fix), so nobody can replace the control socket or
// remove the base id lock of a running instance.
func TestRuntimeDirRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the cases chown to nobody: run as root")
	}
	t.Parallel()
	base := t.TempDir()
	mk := func(name string, mode os.FileMode, uid int) string {
		p := filepath.Join(base, name)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		if uid >= 0 {
			os.Chown(p, uid, -1)
		}
		return p
	}
	openParent := mk("open", 0o777, -1)
	for _, tc := range []struct {
		name, dir, bad, want string
	}{
		{"0777", mk("a", 0o777, -1), filepath.Join(base, "a"), `chmod 700`},
		{"0770", mk("b", 0o770, -1), filepath.Join(base, "b"), `chmod 700`},
		{"owned by nobody", mk("c", 0o700, 65534), filepath.Join(base, "c"), "owner uid 65534"},
		{"parent 0777", mk("open/run", 0o700, -1), openParent, "chmod go-w"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRestarter(t, nil, args(fast, []string{"--runtime-dir", tc.dir}, proxyArgs())...)
			if code := r.wait(20 * time.Second); code != exitUsage {
				t.Fatalf("got exit %d, want %d", code, exitUsage)
			}
			errs := r.stderr.String()
			if !strings.Contains(errs, tc.bad+" (mode ") || !strings.Contains(errs, tc.want) || !strings.Contains(errs, "--runtime-dir") {
				t.Errorf("stderr %q: want the path %s, its mode, %q and --runtime-dir", errs, tc.bad, tc.want)
			}
			if n := len(r.starts()); n != 0 {
				t.Errorf("%d generations started, want none", n)
			}
			if _, err := os.Lstat(filepath.Join(tc.dir, "base-id-0.lock")); err == nil {
				t.Errorf("a base id lock was created in the refused dir")
			}
		})
	}
}

// TestNobodyCannotTouchARunningInstance: in the 0700 runtime dir nobody can
// neither remove the lock, replace the control socket nor connect; the
// instance is unaffected and a second restarter on the same base id is
// still refused.
func TestNobodyCannotTouchARunningInstance(t *testing.T) {
	nobodySh(t, "true") // skips unless we can act as nobody
	t.Parallel()
	root := t.TempDir()
	os.Chmod(root, 0o755) // nobody may reach the dir's parent, as in /run
	runDir := filepath.Join(root, "run")
	r := startRestarter(t, nil, args(fast, []string{"--runtime-dir", runDir}, proxyArgs())...)
	r.waitStart(0, 1)
	ctl := filepath.Join(runDir, "base-0.ctl")
	lock := filepath.Join(runDir, "base-id-0.lock")
	testutil.WaitFor(t, 20*time.Second, func() error {
		_, err := os.Lstat(ctl)
		return err
	})
	out, code := nobodySh(t, fmt.Sprintf(`rm -f %[1]s || true; rm -f %[2]s || true; mv %[2]s %[1]s.x || true; : > %[3]s/evil || true; ls %[3]s`, lock, ctl, runDir))
	if code == 0 || !strings.Contains(out, "Permission denied") {
		t.Fatalf("as nobody: got exit %d, %q; want every step refused", code, out)
	}
	for _, p := range []string{lock, ctl} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s after nobody's attempts: %v", p, err)
		}
	}
	if st := statusJSON(t, runDir); st.PID != r.pid {
		t.Fatalf("status answered by pid %d, want the restarter %d", st.PID, r.pid)
	}
	r2 := startRestarter(t, nil, args(fast, []string{"--runtime-dir", runDir}, proxyArgs())...)
	if code := r2.wait(20 * time.Second); code != exitUsage || !strings.Contains(r2.stderr.String(), "already held") {
		t.Fatalf("second restarter on base id 0: got %d, %q; want 2 'already held'", code, r2.stderr.String())
	}
}

func TestHotRestartSocketPathTooLong(t *testing.T) {
	long := "/" + strings.Repeat("d", 80)
	_, err := parseFlags([]string{"--envoy", "--runtime-dir", long, "--", "/bin/true"})
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "longer than a Unix socket path") || !strings.Contains(err.Error(), "_udp_parent_4294967282") {
		t.Fatalf("got %v, want a usage error naming the longest socket name", err)
	}
	if _, err := parseFlags([]string{"--envoy", "--runtime-dir", long, "--", "/bin/true", "--socket-path", "@mine"}); err != nil {
		t.Fatalf("own --socket-path: got %v, want it accepted", err)
	}
	c, err := parseFlags([]string{"--envoy", "--runtime-dir", "/run/x", "--", "/bin/true", "--socket-mode", "640"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"/bin/true", "--socket-mode", "640", "--socket-path", "/run/x/hotrestart"}
	if strings.Join(c.Argv, " ") != strings.Join(want, " ") || c.SocketPath != "/run/x/hotrestart" {
		t.Fatalf("got Argv %q SocketPath %q, want %q (the user's mode kept)", c.Argv, c.SocketPath, want)
	}
	if c, _ := parseFlags([]string{"--runtime-dir", "/run/x", "--", "/bin/true"}); len(c.Argv) != 1 {
		t.Fatalf("not envoy mode: got %q, want no socket flags", c.Argv)
	}
}

// proxyBuild holds the testproxy binary for the end-to-end test below.
var proxyBuild testutil.Build

// TestEnvoyModeHotRestartSocketsArePrivate: in --envoy mode with no
// --socket-path of COMMAND's, the generations hot-restart over filesystem
// sockets in the 0700 runtime dir (mode 0600), so nobody squatting Envoy's
// default abstract names changes nothing: reloads keep working end to end
// with the real testproxy.
func TestEnvoyModeHotRestartSocketsArePrivate(t *testing.T) {
	nobodySh(t, "true") // skips unless we can act as nobody
	t.Cleanup(proxyBuild.Cleanup)
	testproxy := filepath.Join(proxyBuild.Dir(t, "./cmd/testproxy"), "testproxy")
	baseID := 400_000 + os.Getpid()%100_000
	// The old attack: squat the default abstract names of epochs 1 and 2.
	for _, n := range []int{1, 2} {
		testutil.SquatAbstract(t, "envoy_domain_socket_child_"+strconv.Itoa(baseID*10+n))
	}
	runDir := filepath.Join(t.TempDir(), "run")
	listen, admin := testutil.FreeAddr(t), testutil.FreeAddr(t)
	r := startRestarter(t, nil, "--envoy", "--runtime-dir", runDir, "--base-id", strconv.Itoa(baseID), "--log-format", "json",
		"--ready-envoy-admin", admin, "--ready-interval", "10ms", "--ready-timeout", "30s", "--term-wait", "5s",
		"--drain-time", "20s", "--parent-shutdown-time", "30s",
		"--", testproxy, "--listen", listen, "--admin-address", admin, "--hot-restart-retry-delay", "100ms")
	testutil.WaitFor(t, 30*time.Second, func() error {
		code, out, errs := cli(t, "status", "--json", "--runtime-dir", runDir)
		if code != 0 || !strings.Contains(out, `"state": "ready"`) {
			return fmt.Errorf("epoch 0 not ready: %s%s", out, errs)
		}
		return nil
	})
	for epoch := 1; epoch <= 2; epoch++ {
		code, out, errs := cli(t, "reload", "--runtime-dir", runDir)
		if code != 0 || !strings.Contains(out, fmt.Sprintf("epoch %d is ready", epoch)) {
			t.Fatalf("reload %d with the abstract names squatted: got %d, %q, %q", epoch, code, out, errs)
		}
		resp, err := http.Get("http://" + listen + "/")
		if err != nil {
			t.Fatalf("after reload %d: %v", epoch, err)
		}
		resp.Body.Close()
	}
	socks, _ := filepath.Glob(filepath.Join(runDir, "hotrestart_*"))
	serving := filepath.Join(runDir, "hotrestart_parent_"+strconv.Itoa(baseID*10+2))
	if !strings.Contains(strings.Join(socks, " "), serving) {
		t.Errorf("hot-restart sockets in the runtime dir: %q, want %s among them", socks, serving)
	}
	for _, p := range socks {
		if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: got %v, %v; want a 0600 socket", p, fi, err)
		}
	}
	// Nobody cannot reach or squat the filesystem names.
	if out, code := nobodySh(t, "ls "+runDir); code == 0 {
		t.Errorf("nobody listed the runtime dir: %q", out)
	}
	// And no generation holds an abstract hot-restart name.
	st := statusJSON(t, runDir)
	for _, n := range []int{0, 1, 2} {
		hs, _, _ := osutil.AbstractHolders("envoy_domain_socket_child_" + strconv.Itoa(baseID*10+n))
		for _, h := range hs {
			for _, g := range st.Generations {
				if h.PID == g.PID {
					t.Errorf("generation %d (pid %d) holds an abstract hot-restart socket", g.Epoch, g.PID)
				}
			}
		}
	}
	r.signal(syscall.SIGTERM)
	if code := r.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
}

// TestRuntimeDirHelp: --runtime-dir's help says what the dir holds and
// shows the rule for its default, not the value evaluated for this user.
func TestRuntimeDirHelp(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/4242")
	c, err := parseFlags([]string{"--help"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"locks and the control, notify and hot-restart sockets",
		"$XDG_RUNTIME_DIR/restarter, else /run/restarter as root, else /tmp/restarter-<uid>", "restarter reload"} {
		if !strings.Contains(c.usage, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	if strings.Contains(c.usage, "/run/user/4242") {
		t.Error("--help shows the evaluated default /run/user/4242/restarter, want the rule")
	}
	c, err = parseFlags([]string{"--", "/bin/true"})
	if err != nil || c.RuntimeDir != "/run/user/4242/restarter" {
		t.Fatalf("default runtime dir: got %q, %v", c.RuntimeDir, err)
	}
}
