package integration

import (
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

// Points of the hot-restart handoff as /proc shows them from outside the
// proxy (no log line): the tests time a kill or a hang by these. The points
// the outside cannot see (after the stats, after drain_listeners on the
// child's side) are testproxy --fault-at's (faultmatrix_test.go).

// holdsListener reports whether pid holds a socket listening on addr's port.
func holdsListener(pid int, addr string) bool {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return false
	}
	ins, err := testutil.ListenInodes(pid, int(ap.Port()))
	return err == nil && len(ins) > 0
}

// execed reports whether pid runs binary (its fork has exec'd).
func execed(pid int, binary string) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	return err == nil && strings.TrimSuffix(exe, " (deleted)") == binary
}

// signalPending reports whether sig is pending for process pid (a stopped
// process keeps what it was sent: /proc/<pid>/status ShdPnd).
func signalPending(pid int, sig syscall.Signal) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "ShdPnd:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}

// pollUntil checks cond every 200µs (a handoff point lasts milliseconds)
// until it holds or d passes, and reports whether it held.
func pollUntil(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(200 * time.Microsecond)
	}
	return false
}
