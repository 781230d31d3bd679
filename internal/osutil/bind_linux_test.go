package osutil

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestBindUnixModeBeforeBind(t *testing.T) {
	// The node is created with mode &^ umask: with umask 022 a 0660 socket
	// is 0640 from the start (Envoy's semantics), never wider.
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	for _, tc := range []struct {
		typ  int
		mode os.FileMode
		want os.FileMode
	}{
		{unix.SOCK_STREAM, 0o600, 0o600},
		{unix.SOCK_DGRAM, 0o660, 0o640},
		{unix.SOCK_DGRAM, 0o777, 0o755},
	} {
		p := filepath.Join(t.TempDir(), "s")
		f, err := BindUnix(tc.typ, p, tc.mode)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(p)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != tc.want {
			t.Errorf("mode %#o: got %v, want a socket with %#o", tc.mode, fi.Mode(), tc.want)
		}
	}
}

func TestBindUnixInUse(t *testing.T) {
	name := "\x00osutil-test-" + strconv.Itoa(os.Getpid())
	f, err := BindUnix(unix.SOCK_DGRAM, name, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = BindUnix(unix.SOCK_DGRAM, name, 0)
	if !errors.Is(err, unix.EADDRINUSE) {
		t.Fatalf("got %v, want EADDRINUSE", err)
	}
	desc := DescribeAbstractHolders(name)
	want := "pid " + strconv.Itoa(os.Getpid())
	if !strings.Contains(desc, want) || !strings.Contains(desc, "uid "+strconv.Itoa(os.Geteuid())) {
		t.Errorf("got %q, want it to name %s and our uid", desc, want)
	}
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestAbstractInodes(t *testing.T) {
	table := `Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 100 /run/x.sock
0000000000000000: 00000002 00000000 00000000 0002 01 200 @envoy_domain_socket_child_0@@@@@@
0000000000000000: 00000002 00000000 00000000 0002 01 300 @envoy_domain_socket_child_01
0000000000000000: 00000002 00000000 00000000 0002 01 400
`
	got, err := abstractInodes(strings.NewReader(table), "\x00envoy_domain_socket_child_0\x00\x00")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != 200 {
		t.Errorf("got %v, want [200]", got)
	}
}

func FuzzAbstractInodes(f *testing.F) {
	f.Add("0000: 00000002 00000000 00000000 0002 01 200 @x@@@\n", "x")
	f.Add("Num RefCount\n\n1 2 3 4 5 6 7\n", "")
	f.Fuzz(func(t *testing.T, table, name string) {
		inodes, _ := abstractInodes(strings.NewReader(table), name)
		if len(inodes) > strings.Count(table, "\n")+1 { // at most one per line
			t.Fatalf("%d inodes from %d lines", len(inodes), strings.Count(table, "\n")+1)
		}
	})
}
