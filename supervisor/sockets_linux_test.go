package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

func TestParseHexAddrPort(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0100007F:2694", "127.0.0.1:9876"},
		{"00000000:0050", "0.0.0.0:80"},
		{"00000000000000000000000001000000:01BB", "[::1]:443"},
		{"00000000000000000000000000000000:1F90", "[::]:8080"},
		{"0000000000000000FFFF00000100007F:2694", "[::ffff:127.0.0.1]:9876"},
	} {
		got, err := parseHexAddrPort(tc.in)
		if err != nil || got.String() != tc.want {
			t.Errorf("parseHexAddrPort(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0100007F", "0100007F:", "01007F:0050", "zz00007F:0050", "0100007F:10000"} {
		if _, err := parseHexAddrPort(bad); err == nil {
			t.Errorf("parseHexAddrPort(%q): no error", bad)
		}
	}
}

func TestAccepts(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		local, addr string
		want        bool
	}{
		{"127.0.0.1:80", "127.0.0.1:80", true},
		{"127.0.0.1:80", "127.0.0.1:81", false},
		{"127.0.0.2:80", "127.0.0.1:80", false},
		{"0.0.0.0:80", "127.0.0.1:80", true},
		{"0.0.0.0:80", "[::1]:80", false},
		{"[::]:80", "127.0.0.1:80", true},
		{"[::]:80", "[::1]:80", true},
		{"[::ffff:127.0.0.1]:80", "127.0.0.1:80", true},
		{"[::1]:80", "127.0.0.1:80", false},
	} {
		if got := accepts(ap(tc.local), ap(tc.addr)); got != tc.want {
			t.Errorf("accepts(%s, %s) = %v, want %v", tc.local, tc.addr, got, tc.want)
		}
	}
}

// TestListenOwnerSelf: a listener of this process is found and held by it;
// a closed one is not listening any more.
func TestListenOwnerSelf(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := netip.MustParseAddrPort(ln.Addr().String())
	o, err := listenOwner(addr, []int{os.Getpid()})
	if err != nil || !o.Listening || !slices.Equal(o.Holders, []int{os.Getpid()}) {
		t.Fatalf("listenOwner(%s, self) = %+v, %v; want held by %d", addr, o, err, os.Getpid())
	}
	// Not among the pids asked about: found as the other holder.
	o, err = listenOwner(addr, []int{1 << 30})
	if err != nil || len(o.Holders) != 0 || o.Other != os.Getpid() || o.OtherUID != os.Getuid() {
		t.Fatalf("listenOwner(%s, nobody) = %+v, %v; want other %d uid %d", addr, o, err, os.Getpid(), os.Getuid())
	}
	ln.Close()
	o, err = listenOwner(addr, []int{os.Getpid()})
	if err != nil || o.Listening {
		t.Fatalf("after close: listenOwner = %+v, %v; want not listening", o, err)
	}
}

// TestGenerationHoldsOtherProcess: a listener held by an unrelated process
// (here a child that is not the probed generation) is reported with its pid.
func TestGenerationHoldsOtherProcess(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, _ := ln.(*net.TCPListener).File()
	addr := ln.Addr().String()
	ln.Close()
	// The child inherits the listener as fd 3 and keeps it; this process
	// closes its own copies.
	cmd := exec.Command("sleep", "60")
	cmd.ExtraFiles = []*os.File{f}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	ctx := context.Background()
	err = generationHolds(ctx, addr, Probe{PID: 1 << 30})
	var le *ListenerError
	if !errors.As(err, &le) || le.Other != cmd.Process.Pid || !strings.Contains(err.Error(), "held by pid") {
		t.Fatalf("generationHolds(other) = %v; want held by pid %d", err, cmd.Process.Pid)
	}
	if err := generationHolds(ctx, addr, Probe{PID: cmd.Process.Pid}); err != nil {
		t.Fatalf("generationHolds(holder) = %v; want nil", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	testutil.WaitFor(t, 10*time.Second, func() error {
		err := generationHolds(ctx, addr, Probe{PID: 1 << 30})
		if !errors.As(err, &le) || le.Listening || !errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("still listening, or not a refusal: %v", err)
		}
		return nil
	})
}

func FuzzParseHexAddrPort(f *testing.F) {
	for _, s := range []string{"0100007F:2694", "00000000000000000000000001000000:01BB", "", ":", "0100007F:"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseHexAddrPort(s)
		if err == nil && !a.IsValid() {
			t.Fatalf("parseHexAddrPort(%q) = invalid address without error", s)
		}
	})
}

// TestListenersDiagAndProcAgree: sock_diag and /proc/net/tcp see the same
// listener, with the same inode and owner.
func TestListenersDiagAndProcAgree(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		ln, err := net.Listen(network, "localhost:0")
		if err != nil {
			t.Logf("%s: %v (skipped)", network, err)
			continue
		}
		defer ln.Close()
		addr := netip.MustParseAddrPort(ln.Addr().String())
		find := func(ls []tcpListener) *tcpListener {
			for i, l := range ls {
				if l.Local.Port() == addr.Port() && l.Local.Addr().Unmap() == addr.Addr().Unmap() {
					return &ls[i]
				}
			}
			return nil
		}
		diag, err := tcpListenersDiag()
		if err != nil {
			t.Skipf("sock_diag: %v", err)
		}
		proc, err := tcpListenersProc()
		if err != nil {
			t.Fatal(err)
		}
		d, p := find(diag), find(proc)
		if d == nil || p == nil || *d != *p || d.UID != os.Getuid() || d.Inode == 0 {
			t.Fatalf("%s listener %s: sock_diag %+v, /proc %+v; want the same, uid %d", network, addr, d, p, os.Getuid())
		}
	}
}

func FuzzParseInetDiagMsg(f *testing.F) {
	seed := make([]byte, inetDiagMsgMinLen)
	seed[0], seed[1] = 2, tcpStateListen
	f.Add(seed)
	f.Add([]byte{10, tcpStateListen})
	f.Fuzz(func(t *testing.T, b []byte) {
		if l, ok := parseInetDiagMsg(b); ok && (!l.Local.IsValid() || len(b) < inetDiagMsgMinLen) {
			t.Fatalf("parseInetDiagMsg(%x) = %+v from a message it should refuse", b, l)
		}
	})
}
