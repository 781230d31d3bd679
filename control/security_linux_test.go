package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestCLIDoesNotBelieveAnotherUID: in a world-writable dir, nobody serves
// a fake control socket; root's `restarter reload` refuses to believe it.
func TestCLIDoesNotBelieveAnotherUID(t *testing.T) {
	bin := nobodyBinary(t)
	dir := filepath.Join(filepath.Dir(bin), "run")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777)
	path := SocketPath(dir, "base-0")
	srv := asNobody(t, bin, []string{"CONTROL_TEST_SERVE=" + path})
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "serving\n" {
		t.Fatalf("fake server as nobody: got %q, want serving", line)
	}
	code, stdout, stderr := runCLI("reload", "--runtime-dir", dir)
	if code != ExitFailed || strings.Contains(stdout, "reloaded") || !strings.Contains(stderr, "served by uid 65534") || !strings.Contains(stderr, "not private") {
		t.Fatalf("reload against nobody's server: got %d, %q, %q; want 1 naming uid 65534", code, stdout, stderr)
	}
}

// TestCLIBelievesTheDirsOwner: root may control a restarter of another
// user (systemd User=envoy) when the socket is that user's, in a directory
// private to that user: the legitimate counterpart of the attack above.
func TestCLIBelievesTheDirsOwner(t *testing.T) {
	bin := nobodyBinary(t)
	dir := filepath.Join(filepath.Dir(bin), "run")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, testutil.NobodyUID, -1); err != nil {
		t.Fatal(err)
	}
	srv := asNobody(t, bin, []string{"CONTROL_TEST_SERVE=" + SocketPath(dir, "base-0")})
	out, err := srv.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() })
	if line, _ := bufio.NewReader(out).ReadString('\n'); line != "serving\n" {
		t.Fatalf("server as nobody: got %q, want serving", line)
	}
	code, stdout, stderr := runCLI("reload", "--runtime-dir", dir)
	if code != ExitOK || !strings.Contains(stdout, "epoch 99 is ready") {
		t.Fatalf("reload of nobody's own instance in nobody's 0700 dir: got %d, %q, %q; want it believed", code, stdout, stderr)
	}
}

// TestCLIPrintsTheServersReason: a client the server refuses prints why
// ("permission denied: uid …"), not "write: broken pipe".
func TestCLIPrintsTheServersReason(t *testing.T) {
	bin := nobodyBinary(t)
	dir := filepath.Join(filepath.Dir(bin), "run")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h := newFakeHandler()
	s := startServer(t, dir, "edge", h)
	if err := os.Chmod(s.Path(), 0o666); err != nil { // loosened by mistake
		t.Fatal(err)
	}
	// nobody trusts a root server; the server refuses nobody, and the
	// CLI prints the server's words.
	out, err := asNobody(t, bin, []string{"CONTROL_TEST_CLI=1"}, "status", "--runtime-dir", dir).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != ExitFailed || !strings.Contains(string(out), "permission denied: uid 65534") || strings.Contains(string(out), "broken pipe") {
		t.Fatalf("status as nobody: got %v, %q; want exit 1 with the server's reason", err, out)
	}
	if n := h.statusCalls.Load(); n != 0 {
		t.Fatalf("handler ran %d times for nobody, want 0", n)
	}
}

// TestStrictRequestKeys: encoding/json matches keys case-insensitively;
// the request decoder must not, or {"OP":"stop"} stops the restarter.
func TestStrictRequestKeys(t *testing.T) {
	h := newFakeHandler()
	s := startServer(t, t.TempDir(), "strict", h)
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, tc := range []struct{ send, wantErr string }{
		{`{"OP":"stop"}`, `unknown field "OP"`},
		{`{"Op":"stop"}`, `unknown field "Op"`},
		{`{"op":"STOP"}`, `unknown op "STOP"`},
		{`{"op":"status","op":"stop"}`, "given twice"},
		{`{"op":"stop","force":true}`, `unknown field "force"`},
		{`{"op":null}`, "must be a string"},
		{`{"op":["stop"]}`, "must be a string"},
		{`{}`, `no "op"`},
		{`{"op":"stop"}{"op":"stop"}`, "trailing data"},
		{`"stop"`, "not a JSON object"},
	} {
		resp := rawExchange(t, c, r, tc.send+"\n")
		if resp.OK || !strings.Contains(resp.Error, tc.wantErr) {
			t.Errorf("%s: got %+v, want an error containing %q", tc.send, resp, tc.wantErr)
		}
	}
	select {
	case <-h.stopped:
		t.Fatal("a request that is not exactly {\"op\":\"stop\"} stopped the restarter")
	default:
	}
	if resp := rawExchange(t, c, r, `{ "op" : "status" }`+"\n"); !resp.OK {
		t.Fatalf("a well-formed request with spaces: got %+v", resp)
	}
}

// TestIdleClientsCannotLockOut: more idle connections than the limit (the
// issue's attack: 16 of them locked status out for a minute) do not keep a
// real client out, and an idle connection is closed after requestTimeout.
func TestIdleClientsCannotLockOut(t *testing.T) {
	s := startServer(t, t.TempDir(), "idle", newFakeHandler())
	var idle []net.Conn
	for i := 0; i < 3*maxConns; i++ {
		c, err := net.Dial("unix", s.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	code, out, errs := runCLI("status", "--runtime-dir", filepath.Dir(s.Path()), "--timeout", "10s")
	if code != ExitOK || !strings.Contains(out, "restarter edge") {
		t.Fatalf("status with %d idle clients: got %d, %q, %q", len(idle), code, out, errs)
	}
	// The newest idle connection is closed for sending nothing in time.
	last := idle[len(idle)-1]
	last.SetReadDeadline(time.Now().Add(requestTimeout + 20*time.Second))
	start := time.Now()
	if _, err := last.Read(make([]byte, 1)); err == nil {
		t.Fatal("idle connection: got data, want it closed")
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle connection still open after %v", time.Since(start))
	}
}

// TestBusyIsRetried: with every slot running a request, a client is told
// to retry; the CLI does so within its --timeout, and says why when it
// gives up.
func TestBusyIsRetried(t *testing.T) {
	h := newFakeHandler()
	h.block = make(chan struct{})
	s := startServer(t, t.TempDir(), "busy", h)
	dir := filepath.Dir(s.Path())
	errc := make(chan error, maxConns)
	for i := 0; i < maxConns; i++ {
		c, err := Dial(s.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go func() { _, err := c.Reload(context.Background()); errc <- err }()
	}
	testutil.WaitFor(t, 20*time.Second, func() error {
		if n := h.reloadCalls.Load(); n != maxConns {
			return fmt.Errorf("%d reloads running, want %d", n, maxConns)
		}
		return nil
	})
	code, _, errs := runCLI("status", "--runtime-dir", dir, "--timeout", "2s")
	if code != ExitFailed || !strings.Contains(errs, "too many clients") {
		t.Fatalf("status while all slots run requests: got %d, %q; want 1 saying too many clients", code, errs)
	}
	done := make(chan int, 1)
	go func() {
		code, _, _ := runCLI("status", "--runtime-dir", dir, "--timeout", "20s")
		done <- code
	}()
	close(h.block)
	if code := <-done; code != ExitOK {
		t.Fatalf("status retried after the slots freed: got exit %d, want 0", code)
	}
	for i := 0; i < maxConns; i++ {
		<-errc
	}
}

// TestStatusLogsAtDebug: `restarter status` is polled by monitors; each
// call must not add an INFO line to the daemon's log.
func TestStatusLogsAtDebug(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	s, err := NewServer(SocketPath(t.TempDir(), "quiet"), newFakeHandler(), zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 3; i++ {
		if code, _, errs := runCLI("status", "--runtime-dir", filepath.Dir(s.Path())); code != ExitOK {
			t.Fatal(errs)
		}
	}
	if n := logs.Len(); n != 0 {
		t.Fatalf("3 status calls logged %d entries at INFO or above, want 0: %v", n, logs.All())
	}
}

func TestCLIUsageErrorsArePrinted(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"reload", "--jsn"}, "unknown flag: --jsn"},
		{[]string{"reload", "--json"}, "unknown flag: --json"},
		{[]string{"restart"}, `unknown command "restart"`},
		{[]string{"status", "--base-id", "429496729"}, "0..429496728"},
		{[]string{"status", "x"}, `unexpected argument "x"`},
	} {
		code, _, errs := runCLI(tc.args...)
		if code != ExitUsage || !strings.Contains(errs, tc.want) || !strings.Contains(errs, "--help") {
			t.Errorf("%q: got %d, %q; want %d with %q and a hint", tc.args, code, errs, ExitUsage, tc.want)
		}
	}
}

// TestCommandTable: every command is served, parsed, named in the help and
// recognised, and an unknown one does nothing.
func TestCommandTable(t *testing.T) {
	help := CommandHelp("")
	for _, c := range commands {
		if c.serve == nil || c.run == nil || c.timeout <= 0 || c.help == "" {
			t.Errorf("%s: incomplete row", c.name)
		}
		if !IsCommand(c.name) || !strings.Contains(help, "restarter "+c.name) {
			t.Errorf("%s: not recognised or not in the help", c.name)
		}
		b, _ := json.Marshal(request{Op: c.name})
		if r, err := decodeRequest(b); err != nil || r.Op != c.name {
			t.Errorf("%s: decodeRequest(%s) = %v, %v", c.name, b, r, err)
		}
	}
	h := newFakeHandler()
	s := &Server{h: h, log: zap.NewNop(), ctx: context.Background()}
	if r := s.handle("restart"); r.OK || h.reloadCalls.Load() != 0 {
		t.Fatalf("unknown op: got %+v, want an error and nothing done", r)
	}
	select {
	case <-h.stopped:
		t.Fatal("an unknown op stopped the restarter")
	default:
	}
}

func TestFindInSeveralDirs(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	startServer(t, b, "edge", newFakeHandler())
	missing := filepath.Join(a, "missing")
	p, err := FindIn([]string{missing, a, b}, "")
	if err != nil || p != SocketPath(b, "edge") {
		t.Fatalf("got %q, %v; want the instance in the second dir", p, err)
	}
	if _, err := FindIn([]string{missing, a}, ""); !errors.Is(err, ErrNoInstance) || !strings.Contains(err.Error(), a) {
		t.Fatalf("none running: got %v, want ErrNoInstance naming the dirs", err)
	}
	startServer(t, a, "base-0", newFakeHandler())
	if _, err := FindIn([]string{a, b}, ""); err == nil || !strings.Contains(err.Error(), "edge in "+b) {
		t.Fatalf("two in two dirs: got %v, want both listed", err)
	}
	if p, err := FindIn([]string{a, b}, "edge"); err != nil || p != SocketPath(b, "edge") {
		t.Fatalf("selector: got %q, %v", p, err)
	}
}

func TestDefaultRuntimeDirs(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/4242")
	dirs := DefaultRuntimeDirs()
	if dirs[0] != "/run/user/4242/restarter" || dirs[0] != DefaultRuntimeDir() {
		t.Fatalf("got %v, want the XDG dir first", dirs)
	}
	if last := dirs[len(dirs)-1]; last != fallbackRuntimeDir() {
		t.Fatalf("got %v, want the no-XDG default (%s) searched too", dirs, fallbackRuntimeDir())
	}
	t.Setenv("XDG_RUNTIME_DIR", "")
	if DefaultRuntimeDir() != fallbackRuntimeDir() {
		t.Fatalf("without XDG_RUNTIME_DIR: got %s, want %s", DefaultRuntimeDir(), fallbackRuntimeDir())
	}
}
