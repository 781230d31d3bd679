//go:build linux

package fdpass_test

import (
	"fmt"
	"os"

	"github.com/hotrestart/restarter/fdpass"
	"golang.org/x/sys/unix"
)

func Example() {
	a, b, err := fdpass.Socketpair(unix.SOCK_SEQPACKET)
	if err != nil {
		panic(err)
	}
	defer a.Close()
	defer b.Close()

	r, w, _ := os.Pipe()
	defer r.Close()
	if err := fdpass.Send(a, []byte("take this"), int(w.Fd())); err != nil {
		panic(err)
	}
	w.Close()

	buf := make([]byte, 64)
	n, fds, err := fdpass.Recv(b, buf, 1)
	if err != nil {
		panic(err)
	}
	f := os.NewFile(uintptr(fds[0]), "pipe")
	f.WriteString("via passed fd")
	f.Close()
	got := make([]byte, 13)
	r.Read(got)
	fmt.Println(string(buf[:n]), len(fds), string(got))
	// Output: take this 1 via passed fd
}
