package sdnotify

import (
	"errors"
	"golang.org/x/sys/unix"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSystemd is a unixgram socket standing in for systemd's NOTIFY_SOCKET.
type fakeSystemd struct {
	t    testing.TB
	conn *net.UnixConn
	path string
}

func newFakeSystemd(t testing.TB) *fakeSystemd {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return &fakeSystemd{t: t, conn: conn, path: path}
}

// next returns the next datagram, failing the test after d.
func (f *fakeSystemd) next(d time.Duration) string {
	f.t.Helper()
	buf := make([]byte, 4096)
	f.conn.SetReadDeadline(time.Now().Add(d))
	n, err := f.conn.Read(buf)
	if err != nil {
		f.t.Fatalf("reading NOTIFY_SOCKET: %v", err)
	}
	return string(buf[:n])
}

// drain discards every datagram already queued.
func (f *fakeSystemd) drain() int {
	buf := make([]byte, 4096)
	n := 0
	for {
		f.conn.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := f.conn.Read(buf); err != nil {
			return n
		}
		n++
	}
}

func TestNotifierDatagrams(t *testing.T) {
	fs := newFakeSystemd(t)
	n := NewNotifier(nil)
	if !n.Enabled() {
		t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
	}
	cases := []struct {
		name string
		send func() error
		want string
	}{
		{"ready", func() error { return n.Ready("epoch 0 serving, pid 10") }, "READY=1\nSTATUS=epoch 0 serving, pid 10"},
		{"ready without status", func() error { return n.Ready("") }, "READY=1"},
		{"stopping", func() error { return n.Stopping("stopping 2 generations") }, "STOPPING=1\nSTATUS=stopping 2 generations"},
		{"status", func() error { return n.Status("epoch 3\nserving") }, "STATUS=epoch 3 serving"},
		{"reload failed", func() error { return n.ReloadFailed("reload to epoch 4 failed: exit 1; epoch 3 still serving", 5) },
			"READY=1\nSTATUS=reload to epoch 4 failed: exit 1; epoch 3 still serving\nERRNO=5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.send(); err != nil {
				t.Fatal(err)
			}
			if got := fs.next(5 * time.Second); got != c.want {
				t.Fatalf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestReloadingMonotonicUsec(t *testing.T) {
	fs := newFakeSystemd(t)
	n := NewNotifier(nil)
	before := monotonicUsec(t)
	if err := n.Reloading("reloading to epoch 1"); err != nil {
		t.Fatal(err)
	}
	after := monotonicUsec(t)
	lines := strings.Split(fs.next(5*time.Second), "\n")
	if len(lines) != 3 || lines[0] != "RELOADING=1" || lines[2] != "STATUS=reloading to epoch 1" {
		t.Fatalf("got %q, want RELOADING=1, MONOTONIC_USEC=…, STATUS=… in one datagram", lines)
	}
	v, ok := strings.CutPrefix(lines[1], "MONOTONIC_USEC=")
	if !ok {
		t.Fatalf("got %q, want MONOTONIC_USEC=…", lines[1])
	}
	usec, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if usec < before || usec > after {
		t.Fatalf("MONOTONIC_USEC=%d, want within [%d, %d] (CLOCK_MONOTONIC around the call)", usec, before, after)
	}
}

func TestNoNotifySocketIsNoop(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	os.Unsetenv("NOTIFY_SOCKET")
	n := NewNotifier(nil)
	if n.Enabled() {
		t.Fatal("Enabled() = true without NOTIFY_SOCKET")
	}
	for _, err := range []error{n.Ready("x"), n.Reloading("x"), n.Stopping("x"), n.Status("x"), n.ReloadFailed("x", 5)} {
		if err != nil {
			t.Fatalf("got %v, want nil without NOTIFY_SOCKET", err)
		}
	}
}

func TestNotifySocketGoneIsError(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "absent"))
	if err := NewNotifier(nil).Ready(""); err == nil {
		t.Fatal("got nil, want an error when NOTIFY_SOCKET names no socket")
	}
}

func TestWatchdog(t *testing.T) {
	fs := newFakeSystemd(t)
	t.Setenv("WATCHDOG_USEC", "100000") // 100ms: pings every 50ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	var healthy atomic.Bool
	var calls atomic.Int64
	healthy.Store(true)
	n := NewNotifier(nil)
	start := time.Now() // before the ticker starts
	wd, err := n.StartWatchdog(func() bool { calls.Add(1); return healthy.Load() })
	if err != nil {
		t.Fatal(err)
	}
	defer wd.Stop()
	if got, want := wd.Interval(), 50*time.Millisecond; got != want {
		t.Fatalf("interval: got %v, want %v (half of WATCHDOG_USEC)", got, want)
	}
	// The k-th ping cannot come before k intervals have passed (a ticker may
	// deliver late under load, never early), so only a lower bound is checked.
	for k := 1; k <= 3; k++ {
		if got := fs.next(10 * time.Second); got != "WATCHDOG=1" {
			t.Fatalf("got %q, want WATCHDOG=1", got)
		}
		if el, min := time.Since(start), time.Duration(k)*wd.Interval(); el < min {
			t.Fatalf("ping %d after %v, want no earlier than %v", k, el, min)
		}
	}

	// Unhealthy: once the goroutine has seen the flip, nothing more is sent.
	healthy.Store(false)
	c0 := calls.Load()
	waitFor(t, 10*time.Second, func() bool { return calls.Load() > c0 })
	fs.drain() // pings sent for calls that returned true before the flip
	c1 := calls.Load()
	waitFor(t, 10*time.Second, func() bool { return calls.Load() >= c1+3 })
	mark(t, fs.path)
	if got := fs.next(5 * time.Second); got != "MARK" {
		t.Fatalf("got %q while unhealthy, want no WATCHDOG=1", got)
	}

	// Healthy again: pings resume.
	healthy.Store(true)
	if got := fs.next(10 * time.Second); got != "WATCHDOG=1" {
		t.Fatalf("got %q, want WATCHDOG=1 after recovery", got)
	}
	wd.Stop()
	wd.Stop() // idempotent
	fs.drain()
	c2 := calls.Load()
	mark(t, fs.path)
	if got := fs.next(5 * time.Second); got != "MARK" {
		t.Fatalf("got %q after Stop, want nothing", got)
	}
	if calls.Load() != c2 {
		t.Fatal("health func called after Stop returned")
	}
}

func TestWatchdogDisabled(t *testing.T) {
	newFakeSystemd(t)
	n := NewNotifier(nil)
	os.Unsetenv("WATCHDOG_USEC")
	if _, err := n.StartWatchdog(func() bool { return true }); !errors.Is(err, ErrNoWatchdog) {
		t.Fatalf("no WATCHDOG_USEC: got %v, want ErrNoWatchdog", err)
	}
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()+1))
	if _, err := n.StartWatchdog(func() bool { return true }); !errors.Is(err, ErrNoWatchdog) {
		t.Fatalf("WATCHDOG_PID of another process: got %v, want ErrNoWatchdog", err)
	}
}

func mark(t testing.TB, path string) {
	t.Helper()
	c, err := net.Dial("unixgram", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("MARK")); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t testing.TB, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// monotonicUsec reads CLOCK_MONOTONIC in µs, the clock MONOTONIC_USEC is on.
func monotonicUsec(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano() / 1000
}
