package integration

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Points of the hot-restart handoff as /proc shows them from outside the
// proxy (no log line): the tests time a kill or a hang by these. The points
// the outside cannot see (after the stats, after drain_listeners on the
// child's side) are testproxy --fault-at's (faultmatrix_test.go).

// socketInodes are the inodes of the sockets pid holds open.
func socketInodes(pid int) map[uint64]bool {
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	out := map[uint64]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fd)
		if err != nil {
			continue
		}
		if s, ok := strings.CutPrefix(l, "socket:["); ok {
			if n, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				out[n] = true
			}
		}
	}
	return out
}

// listenInodes are the inodes of the TCP sockets listening on addr
// ("127.0.0.1:port"), from /proc/net/tcp.
func listenInodes(addr string) map[uint64]bool {
	out := map[uint64]bool{}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return out
	}
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return out
	}
	defer f.Close()
	a4 := ap.Addr().As4()
	// /proc/net/tcp prints the address as the host-order (little-endian) word.
	want := fmt.Sprintf("%02X%02X%02X%02X:%04X", a4[3], a4[2], a4[1], a4[0], ap.Port())
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 10 || fs[1] != want || fs[3] != "0A" { // 0A: LISTEN
			continue
		}
		if n, err := strconv.ParseUint(fs[9], 10, 64); err == nil {
			out[n] = true
		}
	}
	return out
}

// holdsListener reports whether pid holds a socket listening on addr.
func holdsListener(pid int, addr string) bool {
	held := socketInodes(pid)
	for n := range listenInodes(addr) {
		if held[n] {
			return true
		}
	}
	return false
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
