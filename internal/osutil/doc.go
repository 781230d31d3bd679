// Package osutil owns the operating-system plumbing the restarter's packages
// share, so each piece exists once: the trust check of a private directory
// (CheckPrivateDir, in the spirit of OpenSSH's StrictModes), Unix sockets
// whose mode is set before bind(2) (BindUnix), the /proc/<pid>/stat fields
// the restarter reads (ReadStat, proc(5)), and naming the process that holds
// an abstract Unix socket name (AbstractHolder, from /proc/net/unix and
// /proc/<pid>/fd).
//
// Peer credentials and control messages are owned by package fdpass, the
// environment kept from children by package supervisor.
//
//	if err := osutil.EnsurePrivateDir(dir); err != nil {
//		return err // names the path, its mode and owner, and the fix
//	}
//	f, err := osutil.BindUnix(unix.SOCK_STREAM, filepath.Join(dir, "x.sock"), 0o600)
package osutil
