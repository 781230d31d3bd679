// Package fdpass sends and receives file descriptors over Unix sockets
// (SCM_RIGHTS, unix(7), cmsg(3)) on stream, seqpacket and datagram sockets.
//
// Send cuts any number of descriptors into messages of at most
// MaxFDsPerMessage (253, the kernel's SCM_MAX_FD); the first message carries
// the payload, each further one a single zero byte. Recv reads one message
// with MSG_CMSG_CLOEXEC, retries EINTR, parses every control message and
// treats MSG_CTRUNC and MSG_TRUNC as errors; on every error path every
// descriptor it received is closed. RecvMsg also reports the sender's
// SCM_CREDENTIALS when the socket has SO_PASSCRED set (see PassCred), which is
// the only way to learn a peer's identity on an unconnected datagram socket.
//
// Usage:
//
//	err := fdpass.Send(conn, []byte("hello"), int(f.Fd()))
//	n, fds, err := fdpass.Recv(peer, buf, 1)
package fdpass
