package uds

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"

	"github.com/hotrestart/restarter/fdpass"
	"github.com/hotrestart/restarter/internal/osutil"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// bind creates the datagram socket name (see sockAddr), with the socket
// mode applied as Envoy applies it (see bindUnixgram), and turns on
// SO_PASSCRED so that every datagram carries its sender's credentials. It
// returns the file to remove on close ("" for abstract names).
func bind(name string, mode os.FileMode) (*net.UnixConn, string, error) {
	addr, err := sockAddr(name)
	if err != nil {
		return nil, "", err
	}
	file := ""
	if !isAbstract(name) {
		file = name
		// Like Envoy, replace a stale socket left by a dead process; refuse
		// to remove anything that is not a socket.
		if fi, err := os.Lstat(name); err == nil {
			if fi.Mode()&os.ModeSocket == 0 {
				return nil, "", fmt.Errorf("bind %s: exists and is not a socket: remove it or choose another socket path", name)
			}
			if err := os.Remove(name); err != nil {
				return nil, "", fmt.Errorf("remove stale socket: %w", err)
			}
		}
	}
	conn, err := bindUnixgram(addr, mode)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			who := "another instance uses this --base-id or --socket-path"
			if isAbstract(name) { // a squatter of another uid, or a stray instance
				if h := osutil.DescribeAbstractHolders(name); h != "" {
					who = "it is " + h
				}
			}
			return nil, "", fmt.Errorf("bind %s: %w (%s: choose another base id or socket path)", name, err, who)
		}
		return nil, "", fmt.Errorf("bind %s: %w", name, err)
	}
	if err := fdpass.PassCred(conn); err != nil {
		conn.Close()
		if file != "" {
			os.Remove(file)
		}
		return nil, "", err
	}
	return conn, file, nil
}

// sendFrames writes one framed message to addr in datagrams of at most
// MaxDatagram bytes. fd >= 0 is attached to the message, which must then fit
// one datagram. retry, if not nil, is consulted after each failed datagram.
func sendFrames(conn *net.UnixConn, addr *net.UnixAddr, wire []byte, fd int, retry func(error) bool) error {
	if fd >= 0 && len(wire) > MaxDatagram {
		return fmt.Errorf("a message carrying an fd must fit one %d-byte datagram, this one is %d bytes", MaxDatagram, len(wire))
	}
	for off := 0; off < len(wire); {
		end := min(off+MaxDatagram, len(wire))
		var err error
		if fd >= 0 {
			err = fdpass.SendTo(conn, addr, wire[off:end], fd)
		} else {
			_, err = conn.WriteToUnix(wire[off:end], addr)
		}
		if err != nil {
			if retry != nil && retry(err) {
				continue
			}
			return fmt.Errorf("send to %s: %w", printable(addr.Name), err)
		}
		off = end
	}
	return nil
}

// readDatagram reads datagrams until one from an accepted peer arrives.
// Refused or malformed datagrams are logged and dropped (their fds closed).
// It returns an error only for a socket failure (closed, deadline).
func (e *endpoint) readDatagram(maxFDs int) (datagram, error) {
	for {
		m, err := fdpass.RecvMsg(e.conn, e.rbuf, maxFDs)
		if err != nil {
			if errors.Is(err, fdpass.ErrTruncated) {
				e.warnDrop("dropped a malformed hot-restart datagram", errField(err))
				continue
			}
			return datagram{}, err
		}
		if m.Cred == nil {
			fdpass.CloseAll(m.FDs)
			e.warnDrop("dropped a datagram without sender credentials")
			continue
		}
		if err := e.peer(*m.Cred); err != nil {
			fdpass.CloseAll(m.FDs)
			e.warnDrop("refused a hot-restart datagram", errField(err))
			continue
		}
		from := ""
		if m.From != nil {
			from = m.From.Name
		}
		if e.expectFrom != "" && from != e.expectFrom {
			fdpass.CloseAll(m.FDs)
			e.warnDrop("dropped a datagram from an unexpected socket", zap.String("from", from), zap.String("want", e.expectFrom))
			continue
		}
		return datagram{data: e.rbuf[:m.N], fds: m.FDs, from: from}, nil
	}
}

// bindUnixgram creates and binds a datagram socket. Like Envoy
// (createDomainSocketAddress in hot_restarting_base.cc) it fchmods the
// socket to mode before bind(2) and does nothing after: Linux creates the
// filesystem node with the socket inode's mode less the umask, so the file
// ends up mode &^ umask (0660 under umask 022 gives 0640), never more open
// than that, not even for an instant.
func bindUnixgram(addr *net.UnixAddr, mode os.FileMode) (*net.UnixConn, error) {
	f, err := osutil.BindUnix(unix.SOCK_DGRAM, addr.Name, mode)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("socket is %T, not a Unix socket", c)
	}
	return uc, nil
}
