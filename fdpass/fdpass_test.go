//go:build linux

package fdpass

import (
	"errors"
	"fmt"
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/hotrestart/restarter/internal/testutil"
)

func countFDs(t testing.TB) int {
	t.Helper()
	return testutil.CountFDs(t, 0)
}

var sockTypes = []struct {
	name string
	typ  int
}{{"stream", unix.SOCK_STREAM}, {"seqpacket", unix.SOCK_SEQPACKET}, {"dgram", unix.SOCK_DGRAM}}

func pair(t testing.TB, typ int) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	a, b, err := Socketpair(typ)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// openFDs opens n descriptors of /dev/null and returns them.
func openFDs(t testing.TB, n int) []int {
	t.Helper()
	fds := make([]int, n)
	for i := range fds {
		fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds[i] = fd
	}
	return fds
}

// recvAll reads messages until want descriptors arrived.
func recvAll(t testing.TB, c *net.UnixConn, want int) ([]byte, []int) {
	t.Helper()
	buf := make([]byte, 4096)
	var payload []byte
	var all []int
	first := true
	for first || len(all) < want {
		n, fds, err := Recv(c, buf, MaxFDsPerMessage)
		if err != nil {
			CloseAll(all)
			t.Fatalf("recv after %d fds: %v", len(all), err)
		}
		if first {
			payload = append(payload, buf[:n]...)
		}
		all = append(all, fds...)
		first = false
	}
	return payload, all
}

func TestRoundTrip(t *testing.T) {
	for _, st := range sockTypes {
		for _, n := range []int{0, 1, 253, 254, 10000} {
			t.Run(fmt.Sprintf("%s/%d", st.name, n), func(t *testing.T) {
				a, b := pair(t, st.typ)
				before := countFDs(t)
				// One descriptor sent n times keeps us under RLIMIT_NOFILE.
				one := openFDs(t, 1)
				fds := make([]int, n)
				for i := range fds {
					fds[i] = one[0]
				}
				errc := make(chan error, 1)
				go func() { errc <- Send(a, []byte("hello"), fds...) }()
				payload, got := recvAll(t, b, n)
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				if string(payload) != "hello" {
					t.Errorf("payload %q, want hello", payload)
				}
				if len(got) != n {
					t.Errorf("got %d fds, want %d", len(got), n)
				}
				for _, fd := range got {
					flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
					if err != nil || flags&unix.FD_CLOEXEC == 0 {
						t.Fatalf("fd %d not close-on-exec (flags %d, err %v)", fd, flags, err)
					}
				}
				CloseAll(got)
				CloseAll(one)
				if after := countFDs(t); after != before {
					t.Errorf("open fds %d before, %d after", before, after)
				}
			})
		}
	}
}

func TestTooManyFDsClosesAll(t *testing.T) {
	for _, st := range sockTypes {
		t.Run(st.name, func(t *testing.T) {
			a, b := pair(t, st.typ)
			before := countFDs(t)
			fds := openFDs(t, 10)
			if err := Send(a, []byte("x"), fds...); err != nil {
				t.Fatal(err)
			}
			CloseAll(fds)
			_, got, err := Recv(b, make([]byte, 16), 2)
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("err = %v, want ErrTruncated", err)
			}
			if got != nil {
				t.Fatalf("fds returned on error: %v", got)
			}
			if after := countFDs(t); after != before {
				t.Errorf("open fds %d before, %d after: received fds leaked", before, after)
			}
		})
	}
}

func TestPayloadTruncated(t *testing.T) {
	for _, st := range sockTypes[1:] { // stream sockets do not truncate
		t.Run(st.name, func(t *testing.T) {
			a, b := pair(t, st.typ)
			before := countFDs(t)
			fds := openFDs(t, 3)
			if err := Send(a, make([]byte, 100), fds...); err != nil {
				t.Fatal(err)
			}
			CloseAll(fds)
			_, _, err := Recv(b, make([]byte, 10), 3)
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("err = %v, want ErrTruncated", err)
			}
			if after := countFDs(t); after != before {
				t.Errorf("open fds %d before, %d after", before, after)
			}
		})
	}
}

func TestFDsWhenNoneExpected(t *testing.T) {
	a, b := pair(t, unix.SOCK_DGRAM)
	before := countFDs(t)
	fds := openFDs(t, 1)
	if err := Send(a, []byte("x"), fds...); err != nil {
		t.Fatal(err)
	}
	CloseAll(fds)
	if _, _, err := Recv(b, make([]byte, 10), 0); err == nil {
		t.Fatal("fd accepted with maxFDs 0")
	}
	if after := countFDs(t); after != before {
		t.Errorf("open fds %d before, %d after", before, after)
	}
}

func TestPeerCredAndPassCred(t *testing.T) {
	a, b := pair(t, unix.SOCK_DGRAM)
	uc, err := PeerCred(a)
	if err != nil {
		t.Fatal(err)
	}
	if uc.PID != int32(os.Getpid()) || uc.UID != uint32(os.Getuid()) {
		t.Errorf("PeerCred = %+v, want pid %d uid %d", uc, os.Getpid(), os.Getuid())
	}
	if err := PassCred(b); err != nil {
		t.Fatal(err)
	}
	if err := Send(a, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	m, err := RecvMsg(b, make([]byte, 10), 0)
	if err != nil {
		t.Fatal(err)
	}
	if m.Cred == nil || m.Cred.PID != int32(os.Getpid()) || m.Cred.UID != uint32(os.Getuid()) {
		t.Errorf("Cred = %+v, want our pid/uid", m.Cred)
	}
}

func TestReceivedFDWorks(t *testing.T) {
	a, b := pair(t, unix.SOCK_SEQPACKET)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := Send(a, []byte("p"), int(w.Fd())); err != nil {
		t.Fatal(err)
	}
	w.Close()
	_, fds, err := Recv(b, make([]byte, 4), 1)
	if err != nil || len(fds) != 1 {
		t.Fatalf("recv: %v %v", fds, err)
	}
	w2 := os.NewFile(uintptr(fds[0]), "w2")
	if _, err := w2.Write([]byte("ok")); err != nil {
		t.Fatal(err)
	}
	w2.Close()
	got := make([]byte, 2)
	if _, err := r.Read(got); err != nil || string(got) != "ok" {
		t.Fatalf("read %q %v", got, err)
	}
}

// benchPass measures passing total fds per op in batches of perMsg.
func benchPass(b *testing.B, a, c *net.UnixConn, total, perMsg int) {
	one := openFDs(b, 1)
	defer CloseAll(one)
	fds := make([]int, perMsg)
	for i := range fds {
		fds[i] = one[0]
	}
	buf := make([]byte, 64)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got := 0
		errc := make(chan error, 1)
		go func() {
			for sent := 0; sent < total; sent += perMsg {
				if err := Send(a, []byte("x"), fds...); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		for got < total {
			_, r, err := Recv(c, buf, MaxFDsPerMessage)
			if err != nil {
				b.Fatal(err)
			}
			got += len(r)
			CloseAll(r)
		}
		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "fds/s")
}

// BenchmarkPass compares batched passing (up to 253 fds per message) with one
// fd per message over the same socketpair.
func BenchmarkPass(b *testing.B) {
	a, c := pair(b, unix.SOCK_SEQPACKET)
	for _, n := range []int{1, 100, 10000} {
		per := n
		if per > MaxFDsPerMessage {
			per = MaxFDsPerMessage
		}
		// Round n up to a multiple of per for the batched case.
		b.Run(fmt.Sprintf("batched/%d", n), func(b *testing.B) { benchPass(b, a, c, n, per) })
		b.Run(fmt.Sprintf("onePerMsg/%d", n), func(b *testing.B) { benchPass(b, a, c, n, 1) })
	}
}

func TestParseRightsRejectsPartialDescriptors(t *testing.T) {
	for _, n := range []int{1, 5, 9} {
		c := unix.SocketControlMessage{
			Header: unix.Cmsghdr{Level: unix.SOL_SOCKET, Type: unix.SCM_RIGHTS},
			Data:   make([]byte, n),
		}
		if fds, err := ParseRights(&c); err == nil {
			t.Errorf("%d bytes of SCM_RIGHTS data: got fds %v, want an error", n, fds)
		}
	}
	c := unix.SocketControlMessage{Header: unix.Cmsghdr{Level: unix.SOL_SOCKET, Type: unix.SCM_RIGHTS}, Data: []byte{7, 0, 0, 0, 9, 0, 0, 0}}
	if fds, err := ParseRights(&c); err != nil || len(fds) != 2 || fds[0] != 7 || fds[1] != 9 {
		t.Fatalf("ParseRights = %v, %v; want [7 9]", fds, err)
	}
}

func TestParseCredentialsRejectsShortData(t *testing.T) {
	for _, n := range []int{0, 1, unix.SizeofUcred - 1} {
		c := unix.SocketControlMessage{
			Header: unix.Cmsghdr{Level: unix.SOL_SOCKET, Type: unix.SCM_CREDENTIALS},
			Data:   make([]byte, n),
		}
		if cred, err := ParseCredentials(&c); err == nil {
			t.Errorf("%d bytes of SCM_CREDENTIALS data: got %+v, want an error", n, cred)
		}
	}
	c := unix.SocketControlMessage{
		Header: unix.Cmsghdr{Level: unix.SOL_SOCKET, Type: unix.SCM_CREDENTIALS},
		Data:   unix.UnixCredentials(&unix.Ucred{Pid: 42, Uid: 7, Gid: 8})[unix.CmsgLen(0):],
	}
	if cred, err := ParseCredentials(&c); err != nil || cred.Pid != 42 || cred.Uid != 7 || cred.Gid != 8 {
		t.Fatalf("ParseCredentials = %+v, %v; want pid 42 uid 7 gid 8", cred, err)
	}
}
