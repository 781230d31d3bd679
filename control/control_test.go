package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/hotrestart/restarter/internal/testutil"
)

// CONTROL_TEST_DIAL=<socket> makes the test binary a client that sends one
// status request and prints the response line (exit 3 if it cannot connect);
// CONTROL_TEST_SERVE=<socket> a fake server (see fakeServer);
// CONTROL_TEST_CLI=1 the control CLI with the arguments.
func TestMain(m *testing.M) {
	if path := os.Getenv("CONTROL_TEST_SERVE"); path != "" {
		os.Exit(fakeServer(path))
	}
	if os.Getenv("CONTROL_TEST_CLI") != "" {
		os.Exit(RunCLI(os.Args[1:], os.Stdout, os.Stderr))
	}
	if path := os.Getenv("CONTROL_TEST_DIAL"); path != "" {
		c, err := net.Dial("unix", path)
		if err != nil {
			fmt.Println("DIAL:", err)
			os.Exit(3)
		}
		c.Write([]byte(`{"op":"status"}` + "\n"))
		line, _ := bufio.NewReader(c).ReadString('\n')
		fmt.Print(line)
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

type fakeHandler struct {
	mu          sync.Mutex
	status      Status
	outcome     ReloadOutcome
	reloadErr   error
	block       chan struct{} // Reload waits for it (or ctx) when non-nil
	statusCalls atomic.Int64
	reloadCalls atomic.Int64
	stopped     chan struct{}
	stopOnce    sync.Once
}

func newFakeHandler() *fakeHandler {
	started := time.Date(2026, 11, 21, 22, 0, 0, 0, time.UTC)
	ready := started.Add(2 * time.Second)
	exit := 0
	return &fakeHandler{
		stopped: make(chan struct{}),
		status: Status{Name: "edge", PID: 4242, BaseID: 7, Generations: []Generation{
			{Epoch: 3, PID: 5003, State: StateReady, Started: started, Ready: &ready},
			{Epoch: 2, PID: 5002, State: StateDraining, Started: started.Add(-time.Hour), Ready: &ready},
			{Epoch: 1, PID: 5001, State: StateExited, Started: started.Add(-2 * time.Hour), ExitStatus: &exit},
			{Epoch: 4, PID: 5004, State: StateStarting, Started: ready, Health: "not ready after 30 checks over 1.5s: refused"},
		}, LastReload: &ReloadOutcome{OK: true, Epoch: 3, At: ready},
			Reloads: ReloadCounts{Requested: 4, Started: 3, Succeeded: 3, Held: 1, Released: 1}},
		outcome: ReloadOutcome{OK: true, Epoch: 4, At: ready},
	}
}

func (h *fakeHandler) Status(ctx context.Context) (Status, error) {
	h.statusCalls.Add(1)
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.status, nil
}

func (h *fakeHandler) Reload(ctx context.Context) (ReloadOutcome, error) {
	h.reloadCalls.Add(1)
	if h.block != nil {
		select {
		case <-h.block:
		case <-ctx.Done():
			return ReloadOutcome{}, ctx.Err()
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.outcome, h.reloadErr
}

func (h *fakeHandler) Stop(ctx context.Context) error {
	h.stopOnce.Do(func() { close(h.stopped) })
	return nil
}

func startServer(t *testing.T, dir, name string, h Handler) *Server {
	t.Helper()
	s, err := NewServer(SocketPath(dir, name), h, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	h := newFakeHandler()
	s := startServer(t, dir, "edge", h)
	c, err := Dial(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, err := c.Status(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Name != "edge" || st.PID != 4242 || len(st.Generations) != 4 || st.Generations[0].Ready == nil || !st.Generations[0].Ready.Equal(*h.status.Generations[0].Ready) || *st.Generations[2].ExitStatus != 0 {
		t.Fatalf("status: got %+v, want %+v", st, h.status)
	}
	out, err := c.Reload(ctx(t)) // same connection, second request
	if err != nil {
		t.Fatal(err)
	}
	if !out.OK || out.Epoch != 4 {
		t.Fatalf("reload: got %+v, want ok epoch 4", out)
	}
	h.mu.Lock()
	h.outcome = ReloadOutcome{OK: false, Epoch: 4, Reason: "exited 1 before ready"}
	h.mu.Unlock()
	out, err = c.Reload(ctx(t))
	if err != nil || out.OK || out.Reason != "exited 1 before ready" {
		t.Fatalf("failed reload: got %+v, %v; want an outcome with the reason and no error", out, err)
	}
	h.mu.Lock()
	h.reloadErr = errors.New("stopping")
	h.mu.Unlock()
	_, err = c.Reload(ctx(t))
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != "stopping" {
		t.Fatalf("handler error: got %v, want a RemoteError \"stopping\"", err)
	}
	if err := c.Stop(ctx(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.stopped:
	default:
		t.Fatal("Stop did not reach the handler")
	}
}

func TestSocketMode(t *testing.T) {
	old := syscall.Umask(0) // the most permissive umask must not widen the socket
	defer syscall.Umask(old)
	s := startServer(t, t.TempDir(), "m", newFakeHandler())
	fi, err := os.Stat(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: got %v, want a socket with 0600", fi.Mode())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := os.Lstat(s.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after Close: %v", err)
	}
}

// rawExchange sends raw bytes and returns the decoded response.
func rawExchange(t *testing.T, c net.Conn, r *bufio.Reader, send string) response {
	t.Helper()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte(send)); err != nil {
		t.Fatal(err)
	}
	line, err := r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("after %q: %v", send, err)
	}
	var resp response
	if err := json.Unmarshal(line, &resp); err != nil {
		t.Fatalf("response %q is not JSON: %v", line, err)
	}
	return resp
}

func TestBadRequests(t *testing.T) {
	h := newFakeHandler()
	s := startServer(t, t.TempDir(), "bad", h)
	c, err := net.Dial("unix", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for _, tc := range []struct{ send, wantErr string }{
		{"hello\n", "bad request"},
		{"\n", "empty request"},
		{`{"op":"restart"}` + "\n", `unknown op "restart"`},
		{`{"op":"status","force":true}` + "\n", "unknown field"},
		{`{"op":"status"} {"op":"stop"}` + "\n", "trailing data"},
		{`[1,2,3]` + "\n", "bad request"},
		{`{"op":` + "\n", "bad request"},
		{"\x00\xff\xfe\n", "bad request"},
	} {
		resp := rawExchange(t, c, r, tc.send)
		if resp.OK || !strings.Contains(resp.Error, tc.wantErr) {
			t.Errorf("%q: got %+v, want an error containing %q", tc.send, resp, tc.wantErr)
		}
	}
	// The connection survives bad requests.
	if resp := rawExchange(t, c, r, `{"op":"status"}`+"\n"); !resp.OK || resp.Status == nil {
		t.Fatalf("status after bad requests: got %+v", resp)
	}
	select {
	case <-h.stopped:
		t.Fatal("a bad request reached Stop")
	default:
	}
	if h.reloadCalls.Load() != 0 {
		t.Fatal("a bad request reached Reload")
	}

	// Oversized: an error response, then the connection is closed.
	big := strings.Repeat("x", MaxRequestSize+10)
	resp := rawExchange(t, c, r, big)
	if resp.OK || !strings.Contains(resp.Error, "longer than") {
		t.Fatalf("oversized: got %+v, want a size error", resp)
	}
	if _, err := r.ReadByte(); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after an oversized request: got %v, want the connection closed", err)
	}
	// The server still serves others.
	c2, err := Dial(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := c2.Status(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestCloseCancelsBlockedReload(t *testing.T) {
	h := newFakeHandler()
	h.block = make(chan struct{}) // never released
	s := startServer(t, t.TempDir(), "blk", h)
	c, err := Dial(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errc := make(chan error, 1)
	go func() { _, err := c.Reload(context.Background()); errc <- err }()
	deadline := time.Now().Add(20 * time.Second)
	for h.reloadCalls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("reload interrupted by Close: got nil, want an error")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("client still blocked after Close")
	}
}

func TestClientTimeout(t *testing.T) {
	h := newFakeHandler()
	h.block = make(chan struct{})
	defer close(h.block)
	s := startServer(t, t.TempDir(), "to", h)
	c, err := Dial(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := c.Reload(cx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
}

// staleSocket leaves a socket file nobody listens on, as a SIGKILLed
// restarter does.
func staleSocket(t *testing.T, path string, age time.Duration) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	old := time.Now().Add(-age)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

func TestNewServerPathChecks(t *testing.T) {
	dir := t.TempDir()
	startServer(t, dir, "live", newFakeHandler())
	if _, err := NewServer(SocketPath(dir, "live"), newFakeHandler(), nil); !errors.Is(err, ErrInUse) {
		t.Fatalf("second server on a live socket: got %v, want ErrInUse", err)
	}
	staleSocket(t, SocketPath(dir, "stale"), 0)
	startServer(t, dir, "stale", newFakeHandler()) // replaces it
	f := SocketPath(dir, "file")
	os.WriteFile(f, []byte("x"), 0o644)
	if _, err := NewServer(f, newFakeHandler(), nil); err == nil {
		t.Fatal("NewServer over a regular file: got nil, want an error")
	}
	if _, err := NewServer(filepath.Join(dir, "missing", "x.ctl"), newFakeHandler(), nil); err == nil {
		t.Fatal("NewServer in a missing dir: got nil, want an error")
	}
}

func TestCloseKeepsSuccessorsSocket(t *testing.T) {
	dir := t.TempDir()
	s1, err := NewServer(SocketPath(dir, "x"), newFakeHandler(), nil)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(s1.Path()) // an operator removed it; a new instance took the name
	s2 := startServer(t, dir, "x", newFakeHandler())
	s1.Close()
	if _, err := os.Lstat(s2.Path()); err != nil {
		t.Fatalf("Close of the old server removed the new one's socket: %v", err)
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	if _, err := Find(dir, ""); !errors.Is(err, ErrNoInstance) {
		t.Fatalf("empty dir: got %v, want ErrNoInstance", err)
	}
	if _, err := Find(filepath.Join(dir, "nope"), ""); err == nil || !strings.Contains(err.Error(), "--runtime-dir") {
		t.Fatalf("missing dir: got %v, want an error mentioning --runtime-dir", err)
	}
	staleSocket(t, SocketPath(dir, "base-9"), time.Minute)
	staleSocket(t, SocketPath(dir, "base-8"), 0) // too fresh to be called stale
	os.WriteFile(filepath.Join(dir, "notes.ctl"), nil, 0o600)
	if _, err := Find(dir, ""); !errors.Is(err, ErrNoInstance) {
		t.Fatalf("only stale sockets: got %v, want ErrNoInstance", err)
	}
	if _, err := os.Lstat(SocketPath(dir, "base-9")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("old stale socket not cleaned")
	}
	if _, err := os.Lstat(SocketPath(dir, "base-8")); err != nil {
		t.Fatal("a socket bound an instant ago was removed")
	}

	startServer(t, dir, "base-0", newFakeHandler())
	got, err := Find(dir, "")
	if err != nil || got != SocketPath(dir, "base-0") {
		t.Fatalf("one instance: got %q, %v; want %q", got, err, SocketPath(dir, "base-0"))
	}
	startServer(t, dir, "edge", newFakeHandler())
	_, err = Find(dir, "")
	if err == nil || !strings.Contains(err.Error(), "base-0, edge") || !strings.Contains(err.Error(), "--name") {
		t.Fatalf("two instances: got %v, want an error listing base-0, edge and naming --name", err)
	}
	if got, err := Find(dir, "edge"); err != nil || got != SocketPath(dir, "edge") {
		t.Fatalf("selector edge: got %q, %v", got, err)
	}
	if _, err := Find(dir, "other"); !errors.Is(err, ErrNoInstance) || !strings.Contains(err.Error(), "base-0, edge") {
		t.Fatalf("unknown selector: got %v, want ErrNoInstance listing the running ones", err)
	}
}

func TestNames(t *testing.T) {
	if got := InstanceName("", 12); got != "base-12" {
		t.Fatalf("got %q, want base-12", got)
	}
	if got := InstanceName("edge", 12); got != "edge" {
		t.Fatalf("got %q, want edge", got)
	}
	for _, bad := range []string{"", ".hidden", "a/b", "a b", "base-3", strings.Repeat("n", 65)} {
		if ValidName(bad) == nil {
			t.Errorf("ValidName(%q): got nil, want an error", bad)
		}
	}
	if err := ValidName("edge-1"); err != nil {
		t.Fatal(err)
	}
}

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := RunCLI(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	h := newFakeHandler()
	s := startServer(t, dir, "edge", h)

	code, out, errs := runCLI("status", "--runtime-dir", dir)
	if code != ExitOK || !strings.Contains(out, "restarter edge: pid 4242, base id 7") ||
		!strings.Contains(out, "draining") || !strings.Contains(out, "5003") || !strings.Contains(out, "last reload: ok, epoch 3") ||
		!strings.Contains(out, "reloads: 4 requested, 3 succeeded, 0 failed, 1 held by pacing") ||
		!strings.Contains(out, "epoch 4: not ready after 30 checks over 1.5s: refused") {
		t.Fatalf("status: got %d, %q, %q", code, out, errs)
	}
	code, out, _ = runCLI("status", "--json", "--runtime-dir", dir, "--name", "edge")
	var st Status
	if code != ExitOK || json.Unmarshal([]byte(out), &st) != nil || st.Generations[1].State != StateDraining || st.Reloads.Requested != 4 {
		t.Fatalf("status --json: got %d, %q", code, out)
	}
	code, out, _ = runCLI("reload", "--runtime-dir", dir)
	if code != ExitOK || !strings.Contains(out, "epoch 4 is ready") {
		t.Fatalf("reload ok: got %d, %q", code, out)
	}
	h.mu.Lock()
	h.outcome = ReloadOutcome{Epoch: 4, Reason: "validation failed: unknown field"}
	h.mu.Unlock()
	code, _, errs = runCLI("reload", "--runtime-dir", dir)
	if code != ExitFailed || !strings.Contains(errs, "validation failed: unknown field") {
		t.Fatalf("reload failed: got %d, %q; want 1 with the reason", code, errs)
	}

	for _, args := range [][]string{
		{}, {"restart"}, {"status", "extra"}, {"reload", "--json"}, {"status", "--bogus"},
		{"status", "--name", "a", "--base-id", "1"}, {"status", "--base-id", "-4"}, {"stop", "--timeout", "-1s"},
	} {
		if code, _, _ := runCLI(args...); code != ExitUsage {
			t.Errorf("%q: got exit %d, want %d", args, code, ExitUsage)
		}
	}
	if code, _, errs := runCLI("status", "--runtime-dir", dir, "--base-id", "3"); code != ExitFailed || !strings.Contains(errs, "base-3") {
		t.Fatalf("unknown base id: got %d, %q", code, errs)
	}
	if code, _, _ := runCLI("status", "--runtime-dir", filepath.Join(dir, "nope")); code != ExitFailed {
		t.Fatalf("missing runtime dir: got %d, want 1", code)
	}

	// Two instances: a selector is needed.
	startServer(t, dir, "base-0", newFakeHandler())
	if code, _, errs := runCLI("status", "--runtime-dir", dir); code != ExitFailed || !strings.Contains(errs, "base-0, edge") {
		t.Fatalf("two instances: got %d, %q", code, errs)
	}
	if code, out, _ := runCLI("status", "--runtime-dir", dir, "--base-id", "0"); code != ExitOK || !strings.Contains(out, "edge") {
		t.Fatalf("--base-id 0: got %d, %q", code, out)
	}

	// stop waits until the restarter is gone: here the test plays the
	// restarter's main, closing the server once Stop was requested.
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-h.stopped
		s.Close()
	}()
	code, out, errs = runCLI("stop", "--runtime-dir", dir, "--name", "edge")
	<-done
	if code != ExitOK || !strings.Contains(out, "stopped") {
		t.Fatalf("stop: got %d, %q, %q", code, out, errs)
	}
	if _, err := os.Lstat(SocketPath(dir, "edge")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("socket still present after stop")
	}
}

func TestCLIStopTimeout(t *testing.T) {
	dir := t.TempDir()
	startServer(t, dir, "stuck", newFakeHandler()) // never closes on Stop
	code, _, errs := runCLI("stop", "--runtime-dir", dir, "--timeout", "300ms")
	if code != ExitFailed || !strings.Contains(errs, "still running") {
		t.Fatalf("got %d, %q; want 1 and 'still running'", code, errs)
	}
}

// TestRefusesOtherUID runs a client as nobody. With the socket at 0600 the
// kernel refuses the connect; with the mode widened by mistake the
// SO_PEERCRED check still refuses, and the handler never runs.
func TestRefusesOtherUID(t *testing.T) {
	bin := nobodyBinary(t)
	dir := filepath.Dir(bin)
	h := newFakeHandler()
	s := startServer(t, dir, "edge", h)
	asNobody := func() (string, int) {
		cmd := asNobody(t, bin, []string{"CONTROL_TEST_DIAL=" + s.Path()})
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	out, code := asNobody()
	if code != 3 || !strings.Contains(out, "permission denied") {
		t.Fatalf("nobody on a 0600 socket: got exit %d, %q; want the connect refused", code, out)
	}
	if err := os.Chmod(s.Path(), 0o666); err != nil {
		t.Fatal(err)
	}
	out, code = asNobody()
	var resp response
	if code != 0 || json.Unmarshal([]byte(out), &resp) != nil || resp.OK || !strings.Contains(resp.Error, "uid 65534") {
		t.Fatalf("nobody on a 0666 socket: got exit %d, %q; want a permission error naming uid 65534", code, out)
	}
	if n := h.statusCalls.Load(); n != 0 {
		t.Fatalf("handler called %d times for a refused peer, want 0", n)
	}
	// root (us) is still served.
	c, err := Dial(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Status(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{`{"op":"status"}`, `{"op":"reload"}`, `{"op":"stop"}`, "", "hello", `{"op":1}`,
		`{"op":"status"} x`, "[]", `{"op":"status","x":1}`, `{"OP":"stop"}`, `{"op":"stop","op":"status"}`, `{"\u006fp":"stop"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRequest(b)
		if err != nil {
			return
		}
		if !IsCommand(r.Op) {
			t.Fatalf("accepted op %q", r.Op)
		}
		// What is accepted is exactly one key "op" with that value.
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || len(m) != 1 || m["op"] != r.Op {
			t.Fatalf("accepted %q as %q, but it decodes to %v (%v)", b, r.Op, m, err)
		}
	})
}

func countFDs(t *testing.T) int {
	t.Helper()
	return testutil.CountFDs(t, 0)
}

func TestNoFDLeak(t *testing.T) {
	dir := t.TempDir()
	before := countFDs(t)
	for i := 0; i < 5; i++ {
		s, err := NewServer(SocketPath(dir, "fd"), newFakeHandler(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 3; j++ {
			c, err := Dial(s.Path())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Status(ctx(t)); err != nil {
				t.Fatal(err)
			}
			if j < 2 {
				c.Close()
			} else {
				defer c.Close() // left open across Close; the server side must still go
			}
		}
		s.Close()
	}
	// The 5 client connections left open are ours; nothing else may remain.
	if after := countFDs(t); after != before+5 {
		t.Fatalf("open fds: got %d, want %d", after, before+5)
	}
}

func TestHandlerFuncsAndIsCommand(t *testing.T) {
	s := startServer(t, t.TempDir(), "partial", HandlerFuncs{})
	c, err := Dial(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var re *RemoteError
	if _, err := c.Status(ctx(t)); !errors.As(err, &re) || !strings.Contains(re.Msg, "not supported") {
		t.Fatalf("nil StatusFunc: got %v, want a RemoteError 'not supported'", err)
	}
	if err := c.Stop(ctx(t)); !errors.As(err, &re) {
		t.Fatalf("nil StopFunc: got %v, want a RemoteError", err)
	}
	for arg, want := range map[string]bool{"status": true, "reload": true, "stop": true, "--status": false, "./status": false, "": false} {
		if got := IsCommand(arg); got != want {
			t.Errorf("IsCommand(%q): got %v, want %v", arg, got, want)
		}
	}
}

func TestHandlerPanicIsAnError(t *testing.T) {
	s := startServer(t, t.TempDir(), "panicky", HandlerFuncs{
		StatusFunc: func(context.Context) (Status, error) { panic("boom") },
	})
	c, err := Dial(s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var re *RemoteError
	if _, err := c.Status(ctx(t)); !errors.As(err, &re) || !strings.Contains(re.Msg, "internal error") {
		t.Fatalf("panicking handler: got %v, want a RemoteError 'internal error'", err)
	}
}
