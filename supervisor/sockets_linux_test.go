package supervisor

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
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
	err = generationHolds(ctx, addr, Probe{Epoch: 0, PID: 1 << 30})
	var le *ListenerError
	if !errors.As(err, &le) || le.Other != cmd.Process.Pid || !strings.Contains(err.Error(), "held by pid") {
		t.Fatalf("generationHolds(other) = %v; want held by pid %d", err, cmd.Process.Pid)
	}
	if err := generationHolds(ctx, addr, Probe{Epoch: 0, PID: cmd.Process.Pid}); err != nil {
		t.Fatalf("generationHolds(holder) = %v; want nil", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	testutil.WaitFor(t, 10*time.Second, func() error {
		err := generationHolds(ctx, addr, Probe{Epoch: 0, PID: 1 << 30})
		if !errors.As(err, &le) || le.Listening {
			return errors.New("still listening: " + err.Error())
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
