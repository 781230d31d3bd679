package fdpass

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// SendTo is Send for unconnected datagram sockets: every message goes to addr.
// A nil addr means the connected peer.
func SendTo(conn *net.UnixConn, addr *net.UnixAddr, payload []byte, fds ...int) error {
	if conn == nil {
		return errors.New("fdpass: nil connection")
	}
	first := true
	for first || len(fds) > 0 {
		batch := fds
		if len(batch) > MaxFDsPerMessage {
			batch = batch[:MaxFDsPerMessage]
		}
		fds = fds[len(batch):]
		p := payload
		if !first {
			p = []byte{0}
		}
		if len(p) == 0 && len(batch) > 0 {
			// Stream sockets cannot carry control data without a data byte.
			p = []byte{0}
		}
		var oob []byte
		if len(batch) > 0 {
			oob = unix.UnixRights(batch...)
		}
		var n int
		var err error
		if addr != nil {
			n, _, err = conn.WriteMsgUnix(p, oob, addr)
		} else {
			n, _, err = conn.WriteMsgUnix(p, oob, nil)
		}
		if err != nil {
			return fmt.Errorf("sendmsg: %w", err)
		}
		// A stream socket may take part of the payload; the descriptors went
		// with the first byte, the rest is plain data.
		for n < len(p) {
			m, err := conn.Write(p[n:])
			if err != nil {
				return fmt.Errorf("write: %w", err)
			}
			n += m
		}
		first = false
	}
	return nil
}

// Recv reads one message into buf and up to maxFDs descriptors. The
// descriptors are close-on-exec and owned by the caller. More descriptors
// than maxFDs, or a payload larger than buf on a datagram or seqpacket
// socket, is an error (ErrTruncated) and every received descriptor is closed.
func Recv(conn *net.UnixConn, buf []byte, maxFDs int) (n int, fds []int, err error) {
	m, err := RecvMsg(conn, buf, maxFDs)
	return m.N, m.FDs, err
}

// oobSpace is the control buffer size for maxFDs descriptors plus credentials.
func oobSpace(maxFDs int) int {
	s := unix.CmsgSpace(unix.SizeofUcred)
	if maxFDs > 0 {
		s += unix.CmsgSpace(4 * maxFDs)
	}
	return s
}

// RecvMsg is Recv that also reports the sender's credentials (when the socket
// has SO_PASSCRED) and address. On error the returned Msg holds no
// descriptors: they have all been closed.
func RecvMsg(conn *net.UnixConn, buf []byte, maxFDs int) (Msg, error) {
	if conn == nil {
		return Msg{}, errors.New("fdpass: nil connection")
	}
	if maxFDs < 0 {
		maxFDs = 0
	}
	oob := make([]byte, oobSpace(maxFDs))
	rc, err := conn.SyscallConn()
	if err != nil {
		return Msg{}, fmt.Errorf("recvmsg: %w", err)
	}
	var (
		n, oobn, flags int
		from           unix.Sockaddr
		rerr           error
	)
	err = rc.Read(func(fd uintptr) bool {
		for {
			n, oobn, flags, from, rerr = unix.Recvmsg(int(fd), buf, oob, unix.MSG_CMSG_CLOEXEC)
			if rerr != unix.EINTR {
				break
			}
		}
		return rerr != unix.EAGAIN
	})
	if err == nil {
		err = rerr
	}
	if err != nil {
		// Recvmsg does not hand back control data on error.
		return Msg{}, fmt.Errorf("recvmsg: %w", os.NewSyscallError("recvmsg", err))
	}
	m := Msg{N: n}
	if sa, ok := from.(*unix.SockaddrUnix); ok && sa.Name != "" {
		m.From = &net.UnixAddr{Name: sa.Name, Net: "unixgram"}
	}
	perr := parseControl(oob[:oobn], &m)
	switch {
	case perr != nil:
	case flags&unix.MSG_CTRUNC != 0:
		perr = fmt.Errorf("control data did not fit room for %d fds (MSG_CTRUNC): %w", maxFDs, ErrTruncated)
	case flags&unix.MSG_TRUNC != 0:
		perr = fmt.Errorf("payload larger than the %d-byte buffer (MSG_TRUNC): %w", len(buf), ErrTruncated)
	case len(m.FDs) > maxFDs:
		perr = fmt.Errorf("received %d fds, at most %d expected: %w", len(m.FDs), maxFDs, ErrTruncated)
	}
	if perr != nil {
		CloseAll(m.FDs)
		m.FDs = nil
		return m, perr
	}
	return m, nil
}

// ParseRights returns the descriptors of one SCM_RIGHTS control message.
// Unlike unix.ParseUnixRights (x/sys v0.35), which indexes past its slice
// when the data is not a whole number of 4-byte descriptors, it returns an
// error for such data.
func ParseRights(c *unix.SocketControlMessage) ([]int, error) {
	if len(c.Data)%4 != 0 {
		return nil, fmt.Errorf("SCM_RIGHTS data of %d bytes is not a whole number of descriptors", len(c.Data))
	}
	return unix.ParseUnixRights(c)
}

// ParseCredentials returns the credentials of one SCM_CREDENTIALS control
// message. unix.ParseUnixCredentials (x/sys v0.35) reads a Ucred from the
// data without checking its length; this returns an error for short data.
func ParseCredentials(c *unix.SocketControlMessage) (*unix.Ucred, error) {
	if len(c.Data) < unix.SizeofUcred {
		return nil, fmt.Errorf("SCM_CREDENTIALS data of %d bytes, want %d", len(c.Data), unix.SizeofUcred)
	}
	return unix.ParseUnixCredentials(c)
}

// parseControl collects every SCM_RIGHTS and SCM_CREDENTIALS message. Even
// when it fails, every descriptor it could find is in m.FDs for the caller to
// close.
func parseControl(oob []byte, m *Msg) error {
	if len(oob) == 0 {
		return nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return fmt.Errorf("parse control data: %w", err)
	}
	var firstErr error
	for i := range msgs {
		c := &msgs[i]
		if c.Header.Level != unix.SOL_SOCKET {
			continue
		}
		switch c.Header.Type {
		case unix.SCM_RIGHTS:
			fds, err := ParseRights(c)
			m.FDs = append(m.FDs, fds...)
			if err != nil && firstErr == nil {
				firstErr = fmt.Errorf("parse SCM_RIGHTS: %w", err)
			}
		case unix.SCM_CREDENTIALS:
			uc, err := ParseCredentials(c)
			if err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("parse SCM_CREDENTIALS: %w", err)
				}
				continue
			}
			m.Cred = &Ucred{PID: uc.Pid, UID: uc.Uid, GID: uc.Gid}
		}
	}
	return firstErr
}

// PeerCred returns the credentials of a connected peer (SO_PEERCRED). It does
// not work on unconnected datagram sockets: use PassCred and RecvMsg there.
func PeerCred(conn *net.UnixConn) (Ucred, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return Ucred{}, fmt.Errorf("peercred: %w", err)
	}
	var uc *unix.Ucred
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		uc, gerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return Ucred{}, fmt.Errorf("peercred: %w", err)
	}
	if gerr != nil {
		return Ucred{}, os.NewSyscallError("getsockopt SO_PEERCRED", gerr)
	}
	return Ucred{PID: uc.Pid, UID: uc.Uid, GID: uc.Gid}, nil
}

// PassCred sets SO_PASSCRED so that every message received on conn carries
// its sender's credentials (reported in Msg.Cred).
func PassCred(conn *net.UnixConn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("passcred: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return fmt.Errorf("passcred: %w", err)
	}
	if serr != nil {
		return os.NewSyscallError("setsockopt SO_PASSCRED", serr)
	}
	return nil
}

// Socketpair returns a connected pair of Unix sockets of type typ
// (unix.SOCK_STREAM, SOCK_SEQPACKET or SOCK_DGRAM), close-on-exec.
func Socketpair(typ int) (*net.UnixConn, *net.UnixConn, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	a, err := fileConn(fds[0], "fdpass-a")
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	b, err := fileConn(fds[1], "fdpass-b")
	if err != nil {
		a.Close()
		return nil, nil, err
	}
	return a, b, nil
}

func fileConn(fd int, name string) (*net.UnixConn, error) {
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("fileconn: %w", err)
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("fileconn: %T is not a unix socket", c)
	}
	return uc, nil
}
