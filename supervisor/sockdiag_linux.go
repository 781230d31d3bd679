package supervisor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpListenersDiag asks the kernel for the TCP sockets in LISTEN state only,
// through sock_diag (sock_diag(7): NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY,
// inet_diag_req_v2 with idiag_states = 1<<TCP_LISTEN). Unlike reading
// /proc/net/tcp, the kernel then walks only its table of listeners, not
// every connection and TIME_WAIT socket: under load that file has tens of
// thousands of lines and costs 30-400 ms to produce, once per probe.
func tcpListenersDiag() ([]tcpListener, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, os.NewSyscallError("socket(NETLINK_SOCK_DIAG)", err)
	}
	defer unix.Close(fd)
	var out []tcpListener
	for seq, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
		ls, err := diagDump(fd, uint32(seq+1), fam)
		if err != nil {
			return nil, err
		}
		out = append(out, ls...)
	}
	return out, nil
}

const (
	tcpStateListen    = 10 // TCP_LISTEN in the kernel's tcp_states.h
	inetDiagReqV2Len  = 56 // struct inet_diag_req_v2
	inetDiagMsgMinLen = 72 // struct inet_diag_msg
)

// diagDump sends one dump request for family's TCP listeners and reads the
// answer up to NLMSG_DONE.
func diagDump(fd int, seq uint32, family uint8) ([]tcpListener, error) {
	req := make([]byte, unix.SizeofNlMsghdr+inetDiagReqV2Len)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], seq)
	r := req[unix.SizeofNlMsghdr:]
	r[0], r[1] = family, unix.IPPROTO_TCP
	ne.PutUint32(r[4:], 1<<tcpStateListen)
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return nil, os.NewSyscallError("sendto(sock_diag)", err)
	}
	buf := make([]byte, 64<<10)
	var out []tcpListener
	for {
		n, _, flags, _, err := unix.Recvmsg(fd, buf, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, os.NewSyscallError("recvmsg(sock_diag)", err)
		}
		if flags&unix.MSG_TRUNC != 0 {
			return nil, errors.New("sock_diag: truncated answer")
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return nil, fmt.Errorf("sock_diag: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_DONE:
				return out, nil
			case unix.NLMSG_ERROR:
				if len(m.Data) >= 4 {
					if e := int32(ne.Uint32(m.Data)); e != 0 {
						return nil, os.NewSyscallError("sock_diag", syscall.Errno(-e))
					}
				}
				return nil, errors.New("sock_diag: error answer")
			case unix.SOCK_DIAG_BY_FAMILY:
				if l, ok := parseInetDiagMsg(m.Data); ok {
					out = append(out, l)
				}
			}
		}
	}
}

// parseInetDiagMsg decodes a struct inet_diag_msg: family, state, timer,
// retrans (one byte each), then inet_diag_sockid (source port and
// destination port big-endian, source and destination address 16 bytes
// each, interface, cookie), expires, rqueue, wqueue, uid and inode (native
// endian). Only LISTEN sockets of IPv4 or IPv6 are returned.
func parseInetDiagMsg(b []byte) (tcpListener, bool) {
	if len(b) < inetDiagMsgMinLen || b[1] != tcpStateListen {
		return tcpListener{}, false
	}
	port := binary.BigEndian.Uint16(b[4:6])
	var a netip.Addr
	switch b[0] {
	case unix.AF_INET:
		a = netip.AddrFrom4([4]byte(b[8:12]))
	case unix.AF_INET6:
		a = netip.AddrFrom16([16]byte(b[8:24]))
	default:
		return tcpListener{}, false
	}
	ne := binary.NativeEndian
	return tcpListener{Local: netip.AddrPortFrom(a, port), UID: int(ne.Uint32(b[64:68])), Inode: uint64(ne.Uint32(b[68:72]))}, true
}
