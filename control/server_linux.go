package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

const (
	maxConns     = 16               // concurrent clients; more are told to retry
	idleTimeout  = time.Minute      // a connection with no request for this long is closed
	writeTimeout = 10 * time.Second // a client that does not read its response is dropped
)

// ErrInUse is returned by NewServer when a live server already answers on
// the path (another restarter with the same instance name).
var ErrInUse = errors.New("control socket in use by a running restarter")

// Server serves the control protocol on a Unix socket; see NewServer.
type Server struct {
	path     string
	ln       *net.UnixListener
	h        Handler
	log      *zap.Logger
	uid      uint32
	dev, ino uint64 // of the socket file we bound, so Close removes only ours
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	once     sync.Once
}

// NewServer binds a Unix stream socket at path (mode 0600 from before bind)
// and serves h on it until Close. A stale socket at path (nobody listening)
// is replaced; a live one is ErrInUse; any other file there is an error.
// The directory must exist; it should be the restarter's runtime dir.
func NewServer(path string, h Handler, log *zap.Logger) (*Server, error) {
	if h == nil {
		return nil, errors.New("control.NewServer: nil Handler")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if err := clearPath(path); err != nil {
		return nil, err
	}
	ln, dev, ino, err := listenUnix(path)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{path: path, ln: ln, h: h, log: log, uid: uint32(os.Geteuid()),
		dev: dev, ino: ino, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops accepting, cancels the context of running handler calls,
// closes every connection, waits for all connection goroutines (so handlers
// must return once their ctx is done), and removes the socket file if it is
// still the one this server bound. It is idempotent and blocking.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		err = s.ln.Close()
		s.cancel()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
		if fi, serr := os.Lstat(s.path); serr == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && uint64(st.Dev) == s.dev && st.Ino == s.ino {
				if rerr := os.Remove(s.path); rerr != nil && err == nil {
					err = rerr
				}
			}
		}
	})
	s.wg.Wait()
	return err
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) || errors.Is(err, unix.ECONNABORTED) || errors.Is(err, unix.EINTR) {
				s.log.Warn("control: accept", zap.Error(err))
				select {
				case <-s.ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			s.log.Error("control: accept; control socket no longer served", zap.Error(err))
			return
		}
		s.mu.Lock()
		closed := s.ctx.Err() != nil
		n := len(s.conns)
		if !closed && n < maxConns {
			s.conns[c] = struct{}{}
			s.wg.Add(1)
		}
		s.mu.Unlock()
		switch {
		case closed:
			c.Close()
		case n >= maxConns:
			s.log.Warn("control: too many clients, refusing one", zap.Int("max", maxConns))
			s.reply(c, response{Error: "too many concurrent control clients; retry"})
			c.Close()
		default:
			go s.serve(c)
		}
	}
}

// peerCred returns the connecting process's credentials (SO_PEERCRED).
func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, os.NewSyscallError("getsockopt SO_PEERCRED", cerr)
	}
	return cred, nil
}

func (s *Server) serve(c *net.UnixConn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	cred, err := peerCred(c)
	if err != nil {
		s.log.Warn("control: refusing a client whose credentials cannot be read", zap.Error(err))
		return
	}
	if cred.Uid != 0 && cred.Uid != s.uid {
		s.log.Warn("control: refusing a client of another user",
			zap.Uint32("peer_uid", cred.Uid), zap.Int32("peer_pid", cred.Pid), zap.Uint32("uid", s.uid))
		s.reply(c, response{Error: fmt.Sprintf("permission denied: uid %d is neither the restarter's uid %d nor root", cred.Uid, s.uid)})
		return
	}
	r := bufio.NewReaderSize(c, MaxRequestSize)
	for {
		c.SetReadDeadline(time.Now().Add(idleTimeout))
		line, err := r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			s.log.Warn("control: oversized request", zap.Int32("peer_pid", cred.Pid))
			s.reply(c, response{Error: fmt.Sprintf("request longer than %d bytes", MaxRequestSize)})
			return
		case err != nil:
			return // EOF, idle timeout, or closed by Close; a partial line is dropped
		}
		req, err := decodeRequest(line)
		if err != nil {
			s.log.Warn("control: bad request", zap.Int32("peer_pid", cred.Pid), zap.Error(err))
			if !s.reply(c, response{Error: err.Error()}) {
				return
			}
			continue
		}
		s.log.Info("control: request", zap.String("op", req.Op), zap.Int32("peer_pid", cred.Pid), zap.Uint32("peer_uid", cred.Uid))
		if !s.reply(c, s.handle(req.Op)) {
			return
		}
	}
}

// handle runs one request through the Handler; a panic in the handler is
// reported to the client rather than taking the restarter down.
func (s *Server) handle(op string) (resp response) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("control: handler panicked", zap.String("op", op), zap.Any("panic", p))
			resp = response{Error: fmt.Sprintf("internal error during %s", op)}
		}
	}()
	switch op {
	case OpStatus:
		st, err := s.h.Status(s.ctx)
		if err != nil {
			return response{Error: err.Error()}
		}
		return response{OK: true, Status: &st}
	case OpReload:
		out, err := s.h.Reload(s.ctx)
		if err != nil {
			return response{Error: err.Error()}
		}
		return response{OK: true, Reload: &out}
	case OpStop:
		if err := s.h.Stop(s.ctx); err != nil {
			return response{Error: err.Error()}
		}
		return response{OK: true}
	}
	return response{Error: fmt.Sprintf("unknown op %q", op)}
}

func (s *Server) reply(c net.Conn, r response) bool {
	b, err := json.Marshal(r)
	if err != nil {
		s.log.Error("control: encoding response", zap.Error(err))
		b, _ = json.Marshal(response{Error: "internal error: response not encodable"})
	}
	c.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err = c.Write(append(b, '\n'))
	return err == nil
}

// clearPath removes a stale socket at path and refuses a live one or any
// other kind of file.
func clearPath(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("control socket %s: a %v is in the way; remove it or pick another --runtime-dir/--name", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: %w; give this instance another --name or --base-id", path, ErrInUse)
	}
	if !errors.Is(err, unix.ECONNREFUSED) {
		return fmt.Errorf("control socket %s: probing existing socket: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("control socket %s: removing stale socket: %w", path, err)
	}
	return nil
}

// listenUnix creates a listening stream socket at path whose mode is 0600
// from the moment it exists: Linux gives the bound file the socket inode's
// mode (narrowed by the umask), and fchmod before bind sets that mode.
func listenUnix(path string) (*net.UnixListener, uint64, uint64, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, 0, 0, os.NewSyscallError("socket", err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if err := unix.Fchmod(fd, 0o600); err != nil {
		return nil, 0, 0, os.NewSyscallError("fchmod", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		return nil, 0, 0, fmt.Errorf("control socket %s: %w", path, os.NewSyscallError("bind", err))
	}
	fail := func(err error) (*net.UnixListener, uint64, uint64, error) {
		os.Remove(path)
		return nil, 0, 0, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil { // only narrows; guards odd filesystems
		return fail(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fail(os.NewSyscallError("lstat", err))
	}
	if err := unix.Listen(fd, 16); err != nil {
		return fail(os.NewSyscallError("listen", err))
	}
	l, err := net.FileListener(f)
	if err != nil {
		return fail(err)
	}
	return l.(*net.UnixListener), uint64(st.Dev), st.Ino, nil
}
