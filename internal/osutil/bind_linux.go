package osutil

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// BindUnix creates a close-on-exec, non-blocking Unix socket of type typ
// (unix.SOCK_STREAM or unix.SOCK_DGRAM), sets its mode with fchmod(2) and
// then binds it to name. Linux creates a filesystem socket's node with the
// socket inode's mode less the umask, so the node is never wider than mode,
// not even for an instant: this is Envoy's order, and the node ends up
// mode &^ umask. A caller that wants exactly mode chmods the path after.
// A name starting with '\x00' is abstract (no node, no mode); the syscall
// package, unlike x/sys/unix, accepts one that fills all of sun_path.
// A bind error is an *os.SyscallError (errors.Is works on its errno).
// The caller owns the returned file (net.FileListener / net.FileConn, then
// Close).
func BindUnix(typ int, name string, mode os.FileMode) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := unix.Fchmod(fd, uint32(mode.Perm())); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fchmod", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: name}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	return os.NewFile(uintptr(fd), name), nil
}
