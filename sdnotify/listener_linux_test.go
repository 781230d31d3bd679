package sdnotify

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The test binary doubles as the processes that send notifications:
// SDNOTIFY_TEST_SEND=<socket> sends SDNOTIFY_TEST_MSG there and exits;
// SDNOTIFY_TEST_SPAWN=1 additionally runs itself once more as a child that
// does the sending, so the sender is a grandchild of the test. The sender
// then stays alive until its stdin closes, so that its ancestry can be read
// from /proc when the datagram is judged (a sender that has exited is never
// anybody's descendant).
func TestMain(m *testing.M) {
	if path := os.Getenv("SDNOTIFY_TEST_SEND"); path != "" {
		os.Exit(helperSend(path))
	}
	goleak.VerifyTestMain(m)
}

func helperSend(path string) int {
	if os.Getenv("SDNOTIFY_TEST_SPAWN") == "1" {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "SDNOTIFY_TEST_SPAWN=0")
		cmd.Stdin = os.Stdin
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return 1
		}
		return 0
	}
	c, err := net.Dial("unixgram", path)
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		return 1
	}
	defer c.Close()
	if _, err := c.Write([]byte(os.Getenv("SDNOTIFY_TEST_MSG"))); err != nil {
		return 1
	}
	io.Copy(io.Discard, os.Stdin) // until the test releases us
	return 0
}

// sender starts the helper; with spawn it is the root of a two-process tree.
// The helper lives until released (or the test ends); Wait releases it.
type helper struct {
	*exec.Cmd
	stdin io.WriteCloser
	once  sync.Once
	err   error
}

// Wait releases the helper and waits for it. It may be called repeatedly.
func (h *helper) Wait() error {
	h.once.Do(func() {
		h.stdin.Close()
		h.err = h.Cmd.Wait()
	})
	return h.err
}

func sender(t *testing.T, path, msg string, spawn bool) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	s := "0"
	if spawn {
		s = "1"
	}
	cmd.Env = append(os.Environ(), "SDNOTIFY_TEST_SEND="+path, "SDNOTIFY_TEST_MSG="+msg, "SDNOTIFY_TEST_SPAWN="+s)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{Cmd: cmd, stdin: stdin}
	t.Cleanup(func() { h.Wait() })
	return h
}

// recordingAccept wraps Descendant(root) and remembers each verdict.
type recordingAccept struct {
	mu       sync.Mutex
	root     int
	verdicts map[int]bool
}

func (r *recordingAccept) accept(pid int) bool {
	ok := IsDescendant(pid, r.root)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.verdicts == nil {
		r.verdicts = map[int]bool{}
	}
	r.verdicts[pid] = ok
	return ok
}

func (r *recordingAccept) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.verdicts)
}

func TestListenerAcceptsDescendant(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gen-1.notify")
	// The root pid must be known before the listener exists, as in the
	// restarter: start a process tree whose grandchild sends READY=1. The
	// listener is created first with a late-bound root.
	var rootPID int
	var mu sync.Mutex
	l, err := Listen(path, func(pid int) bool {
		mu.Lock()
		defer mu.Unlock()
		return IsDescendant(pid, rootPID)
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Fatalf("socket mode: got %o, want 600", got)
	}
	// The spawner waits for its child, so the grandchild's parent chain is
	// intact while it sends.
	mu.Lock()
	cmd := sender(t, path, "STATUS=starting\nREADY=1\nMAINPID=1", true)
	rootPID = cmd.Process.Pid
	mu.Unlock()
	defer cmd.Wait()
	select {
	case <-l.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("READY=1 from a grandchild of the root pid was not accepted")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sender: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("socket still there after Close: %v", err)
	}
}

func TestListenerIgnoresUnrelated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gen-2.notify")
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	rec := &recordingAccept{root: sleeper.Process.Pid}
	l, err := Listen(path, rec.accept, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmd := sender(t, path, "READY=1", true) // not under the sleeper
	waitFor(t, 20*time.Second, func() bool { return rec.count() == 1 })
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sender: %v", err)
	}
	rec.mu.Lock()
	for pid, ok := range rec.verdicts {
		if ok {
			t.Errorf("pid %d accepted, want refused (not under root %d)", pid, rec.root)
		}
	}
	rec.mu.Unlock()
	select {
	case <-l.Ready():
		t.Fatal("Ready closed by a READY=1 from an unrelated process")
	default:
	}
}

func TestListenerNeedsReadyAssignment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gen.notify")
	rec := &recordingAccept{root: os.Getpid()}
	l, err := Listen(path, rec.accept, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i, msg := range []string{"STATUS=READY=1", "READY=0", "XREADY=1"} {
		h := sender(t, path, msg, false)
		waitFor(t, 20*time.Second, func() bool { return l.judged.Load() == int64(i+1) })
		if err := h.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if rec.count() != 3 {
		t.Fatalf("accept called for %d senders, want 3", rec.count())
	}
	select {
	case <-l.Ready():
		t.Fatal("Ready closed without a READY=1 line")
	default:
	}
	h := sender(t, path, "READY=1\n", false)
	select {
	case <-l.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("READY=1 from a child of the test process was not accepted")
	}
	if err := h.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestListenPathChecks(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	os.WriteFile(file, []byte("keep me"), 0o644)
	if _, err := Listen(file, Descendant(1), nil); err == nil {
		t.Fatal("Listen over a regular file: got nil, want an error")
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Fatal("Listen clobbered a regular file")
	}
	// A stale socket from a crashed run is replaced.
	stale := filepath.Join(dir, "stale.notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: stale, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close() // Go's unixgram Close leaves the file
	if _, err := os.Lstat(stale); err != nil {
		t.Skipf("stale socket not left behind: %v", err)
	}
	l, err := Listen(stale, Descendant(1), nil)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	l.Close()
	if _, err := Listen(filepath.Join(dir, "no/such/dir/x.notify"), Descendant(1), nil); err == nil {
		t.Fatal("Listen in a missing dir: got nil, want an error")
	}
}

func TestIsDescendant(t *testing.T) {
	self := os.Getpid()
	if !IsDescendant(self, self) {
		t.Fatal("a process is its own tree's root")
	}
	if !IsDescendant(self, os.Getppid()) {
		t.Fatal("the test is a descendant of its parent")
	}
	if IsDescendant(os.Getppid(), self) {
		t.Fatal("a parent is not a descendant of its child")
	}
	if IsDescendant(1<<30, self) {
		t.Fatal("a missing pid is not a descendant")
	}
}

func TestHasReady(t *testing.T) {
	for msg, want := range map[string]bool{
		"READY=1": true, "STATUS=x\nREADY=1\n": true, " READY=1 ": true,
		"READY=0": false, "STATUS=READY=1": false, "": false, "\n\n": false,
	} {
		if got := hasReady([]byte(msg)); got != want {
			t.Errorf("hasReady(%q): got %v, want %v", msg, got, want)
		}
	}
}

// TestListenTree: the socket exists before the generation; a READY=1 that
// arrives before SetRoot is judged when the root becomes known.
func TestListenTree(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gen-3.notify")
	l, err := ListenTree(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	// A sender that is not in the tree, then one that is, both before SetRoot.
	outsider := sender(t, path, "READY=1", false)
	gen := sender(t, path, "READY=1", true)
	waitFor(t, 20*time.Second, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.pending) == 2
	})
	select {
	case <-l.Ready():
		t.Fatal("Ready before SetRoot")
	default:
	}
	l.SetRoot(gen.Process.Pid)
	select {
	case <-l.Ready():
	default:
		t.Fatal("a READY=1 from the generation's tree, received before SetRoot, was not counted by SetRoot")
	}
	if err := outsider.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := gen.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestListenTreeRefusesOutsider(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gen-4.notify")
	l, err := ListenTree(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	sender(t, path, "READY=1", false)
	waitFor(t, 20*time.Second, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.pending) == 1
	})
	l.SetRoot(sleeper.Process.Pid)
	sender(t, path, "READY=1", false)
	// A third datagram, from the test itself (not in the sleeper's tree either).
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("READY=1"))
	c.Close()
	waitFor(t, 20*time.Second, func() bool { return l.judged.Load() == 3 })
	select {
	case <-l.Ready():
		t.Fatal("Ready from processes outside the generation's tree")
	default:
	}
}
