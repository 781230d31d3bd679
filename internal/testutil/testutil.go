// Package testutil holds what this repository's tests share: polling a
// condition with a deadline instead of sleeping. It is imported only by
// _test.go files.
package testutil

import (
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// WaitFor calls f every 10 ms until it returns nil, and fails the test
// with f's last error if that takes longer than d. d is shortened to end a
// second before the test binary's own deadline (go test -timeout), so a
// hang reports f's error instead of a goroutine dump.
func WaitFor(t testing.TB, d time.Duration, f func() error) {
	t.Helper()
	if dt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := dt.Deadline(); ok && time.Until(deadline)-time.Second < d {
			d = time.Until(deadline) - time.Second
		}
	}
	end := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("after %v: %v", d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// FreeAddr returns a loopback host:port whose port was free a moment ago
// (another process may take it before the caller binds it: bind it soon).
// It never returns a port it returned before in this process: the kernel
// may hand a just-closed port out again, and a test asking twice in a row
// (a data and an admin port) must get two.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if _, taken := givenAddrs.LoadOrStore(addr, true); !taken {
			return addr
		}
	}
	t.Fatalf("free port: 100 ports in a row were ones already handed out")
	return ""
}

var givenAddrs sync.Map // host:port -> true, every address FreeAddr returned

// SettleTime is how long a test waits to show that something does NOT
// happen (no second reload, no signal), where there is no state to poll:
// 300 ms, times RESTARTER_TEST_SETTLE_SCALE (an integer, for slow
// machines), as Go's os/signal tests scale theirs. Waits for something that
// does happen poll with WaitFor instead.
func SettleTime() time.Duration {
	d := 300 * time.Millisecond
	if n, err := strconv.Atoi(os.Getenv("RESTARTER_TEST_SETTLE_SCALE")); err == nil && n > 1 {
		d *= time.Duration(n)
	}
	return d
}

// Settle sleeps for SettleTime.
func Settle() { time.Sleep(SettleTime()) }
