package fdpass

import (
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzParseControl: any control data a peer can make the kernel hand us
// parses without a panic. It took over sdnotify's FuzzSenderPID when the
// notify listener moved to RecvMsg. The descriptors are made-up numbers:
// never close them.
func FuzzParseControl(f *testing.F) {
	f.Add([]byte{})
	f.Add(make([]byte, 64))
	f.Add(unix.UnixRights(0, 1, 2))
	f.Add(unix.UnixCredentials(&unix.Ucred{Pid: 1, Uid: 2, Gid: 3}))
	f.Add(append(unix.UnixCredentials(&unix.Ucred{Pid: 1}), unix.UnixRights(7)...))
	f.Fuzz(func(t *testing.T, oob []byte) {
		var m Msg
		err := parseControl(oob, &m)
		if err == nil && m.Cred != nil && m.Cred.PID == 0 && len(oob) == 0 {
			t.Fatal("credentials from no control data")
		}
	})
}
