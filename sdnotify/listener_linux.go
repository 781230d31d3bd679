package sdnotify

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"sync/atomic"

	"github.com/hotrestart/restarter/fdpass"
	"github.com/hotrestart/restarter/internal/osutil"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// maxDatagram bounds one notification; sd_notify messages are small, and
// systemd itself caps them at a few KiB.
const maxDatagram = 4096

// Listener receives sd_notify datagrams from one generation; see Listen.
type Listener struct {
	path   string
	conn   *net.UnixConn
	accept func(pid int) bool
	log    *zap.Logger
	ready  chan struct{}
	done   chan struct{}
	once   sync.Once

	readyOnce sync.Once
	judged    atomic.Int64 // datagrams fully handled; lets tests wait without sleeping

	// Tree mode (ListenTree): the root pid is set after the generation
	// started; READY=1 senders seen before that wait in pending.
	tree    bool
	mu      sync.Mutex
	root    int
	pending [][]int // ancestor chains, oldest first, at most maxPending
}

// maxPending bounds the READY=1 datagrams kept while the root is unknown.
const maxPending = 16

// Listen creates a unixgram socket at path (mode 0600 from before bind, with
// SO_PASSCRED) and reads notifications from it until Close. The first READY=1
// whose sender pid (from SCM_CREDENTIALS, reported by the kernel) passes
// accept closes the Ready channel; datagrams from other pids are logged and
// ignored. A stale socket at path is replaced; any other file there is an
// error. Give the generation the path as NOTIFY_SOCKET.
func Listen(path string, accept func(pid int) bool, log *zap.Logger) (*Listener, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if accept == nil {
		return nil, errors.New("sdnotify.Listen: accept func is nil (use ListenTree to judge by process tree)")
	}
	return listen(path, accept, false, log)
}

// ListenTree is Listen for a generation that is not started yet: the socket
// exists before the process (so its path can go into the environment), and
// SetRoot names the generation's pid once it is known. A READY=1 counts when
// the sender is the root or a descendant of it; the sender's ancestry is
// read from /proc when the datagram arrives, so a READY=1 sent before
// SetRoot is not lost. As with systemd's NotifyAccess=all, a sender that
// exits at once after sending (systemd-notify in a script) may be gone
// before its ancestry is read and is then not counted; the long-lived proxy
// itself, or a sender that lingers a moment, is.
func ListenTree(path string, log *zap.Logger) (*Listener, error) {
	return listen(path, nil, true, log)
}

func listen(path string, accept func(pid int) bool, tree bool, log *zap.Logger) (*Listener, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	conn, err := bindUnixgram(path)
	if err != nil {
		return nil, err
	}
	l := &Listener{path: path, conn: conn, accept: accept, tree: tree, log: log,
		ready: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l, nil
}

// SetRoot sets the generation's pid for a Listener made by ListenTree. It
// may be called once; READY=1 datagrams already received are judged now.
func (l *Listener) SetRoot(pid int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.tree || l.root != 0 || pid <= 0 {
		return
	}
	l.root = pid
	for _, chain := range l.pending {
		if contains(chain, pid) {
			l.markReady(chain[0])
			break
		}
	}
	l.pending = nil
}

func (l *Listener) markReady(pid int) {
	l.readyOnce.Do(func() {
		l.log.Debug("notify socket: READY=1", zap.Int("sender_pid", pid))
		close(l.ready)
	})
}

// judge decides for a tree-mode Listener; it reports whether pid counts.
// With the root unknown a READY=1 sender's ancestry is kept for SetRoot.
func (l *Listener) judge(pid int, ready bool) bool {
	chain := ancestors(pid)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.root == 0 {
		if ready && len(l.pending) < maxPending {
			l.pending = append(l.pending, chain)
		}
		return false
	}
	if !contains(chain, l.root) {
		l.log.Warn("notify socket: ignoring datagram from a process outside the generation",
			zap.Int("sender_pid", pid), zap.Int("generation_pid", l.root))
		return false
	}
	return true
}

// ancestors is pid followed by its parent, grandparent, … up to pid 1.
func ancestors(pid int) []int {
	chain := []int{pid}
	for i := 0; i < 4096 && pid > 1; i++ {
		pp, err := parentPID(pid)
		if err != nil {
			break
		}
		chain = append(chain, pp)
		pid = pp
	}
	return chain
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Path is the socket's path, the NOTIFY_SOCKET value for the generation.
func (l *Listener) Path() string { return l.path }

// Ready is closed when an accepted process sent READY=1.
func (l *Listener) Ready() <-chan struct{} { return l.ready }

// Close stops reading and removes the socket. It is idempotent and blocks
// until the reading goroutine is gone.
func (l *Listener) Close() error {
	var err error
	l.once.Do(func() {
		err = l.conn.Close()
		<-l.done
		if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = rerr
		}
	})
	<-l.done
	return err
}

// maxFDs is room for descriptors a sender attaches (FDSTORE=1, which is not
// supported): they are received so that they can be closed.
const maxFDs = 16

func (l *Listener) run() {
	defer close(l.done)
	buf := make([]byte, maxDatagram)
	for {
		m, err := fdpass.RecvMsg(l.conn, buf, maxFDs)
		switch {
		case errors.Is(err, fdpass.ErrTruncated):
			l.log.Warn("notify socket: ignoring datagram", zap.Error(err))
			l.judged.Add(1)
			continue
		case errors.Is(err, net.ErrClosed):
			return
		case err != nil:
			l.log.Warn("notify socket: read", zap.Error(err))
			return
		}
		fdpass.CloseAll(m.FDs) // FDSTORE is not supported
		if m.Cred == nil || m.Cred.PID <= 0 {
			l.log.Warn("notify socket: ignoring datagram without sender credentials (SCM_CREDENTIALS)")
			l.judged.Add(1)
			continue
		}
		pid := int(m.Cred.PID)
		ready := hasReady(buf[:m.N])
		var ok bool
		if l.tree {
			ok = l.judge(pid, ready)
		} else {
			ok = l.accept(pid)
			if !ok {
				l.log.Warn("notify socket: ignoring datagram from a process outside the generation", zap.Int("sender_pid", pid))
			}
		}
		if ok && ready {
			l.markReady(pid)
		}
		l.judged.Add(1)
	}
}

// hasReady reports whether a notification contains the assignment READY=1.
func hasReady(msg []byte) bool {
	for _, line := range bytes.Split(msg, []byte("\n")) {
		if string(bytes.TrimSpace(line)) == "READY=1" {
			return true
		}
	}
	return false
}

// Descendant returns an accept func for Listen that takes root itself and
// every process whose parent chain (/proc/<pid>/stat) reaches root.
func Descendant(root int) func(pid int) bool {
	return func(pid int) bool { return IsDescendant(pid, root) }
}

// IsDescendant reports whether pid is root or a descendant of it, walking
// the ppid chain in /proc. A process that already exited is not a descendant.
func IsDescendant(pid, root int) bool {
	for i := 0; i < 4096 && pid > 1; i++ {
		if pid == root {
			return true
		}
		pp, err := parentPID(pid)
		if err != nil {
			return false
		}
		pid = pp
	}
	return pid == root
}

// parentPID is the ppid field of /proc/<pid>/stat.
func parentPID(pid int) (int, error) {
	st, err := osutil.ReadStat(pid)
	return st.PPID, err
}

// removeStaleSocket removes a socket left at path; any other kind of file
// is an error so that a typo never deletes a user's file.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("notify socket %s: a %s is in the way; remove it or pick another runtime dir", path, fi.Mode().Type())
	}
	return os.Remove(path)
}

// bindUnixgram creates the socket with mode 0600 set before bind (see
// osutil.BindUnix), so the path is never wider than 0600, chmods it to
// exactly 0600 whatever the umask, and turns on SO_PASSCRED.
func bindUnixgram(path string) (*net.UnixConn, error) {
	f, err := osutil.BindUnix(unix.SOCK_DGRAM, path, 0o600)
	if err != nil {
		return nil, fmt.Errorf("notify socket %s: %w", path, err)
	}
	defer f.Close()
	fail := func(err error) (*net.UnixConn, error) {
		os.Remove(path)
		return nil, fmt.Errorf("notify socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil { // only narrows
		return fail(err)
	}
	pc, err := net.FilePacketConn(f)
	if err != nil {
		return fail(err)
	}
	conn := pc.(*net.UnixConn)
	if err := fdpass.PassCred(conn); err != nil {
		conn.Close()
		return fail(err)
	}
	return conn, nil
}
