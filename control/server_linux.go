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

	"github.com/hotrestart/restarter/fdpass"
	"github.com/hotrestart/restarter/internal/osutil"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

const (
	// maxConns bounds concurrent clients. A client over the limit takes the
	// place of the oldest one that has not sent its request; only when all
	// are running requests is it told to retry (the CLI does).
	maxConns = 16
	// requestTimeout is how long a connection may take to send a request
	// (its first, or the next after a response) before it is closed.
	requestTimeout = 2 * time.Second
	// writeTimeout drops a client that does not read its response.
	writeTimeout = 10 * time.Second
	// listenBacklog holds connections not yet accepted: they are admitted
	// (or refused with a reason) at once, so this is not a client limit.
	listenBacklog = 128
	// refuseTimeout bounds the write of a refusal at accept time.
	refuseTimeout = 100 * time.Millisecond
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
	conns    map[*net.UnixConn]*connState
	once     sync.Once
}

// connState is what the accept loop knows of a connection: when it began
// waiting for a request, and whether it is running one.
type connState struct {
	since time.Time
	busy  bool
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
		dev: dev, ino: ino, ctx: ctx, cancel: cancel, conns: map[*net.UnixConn]*connState{}}
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
		s.admit(c)
	}
}

// admit checks a new connection's peer and either starts serving it or
// refuses it with a reason the client prints.
func (s *Server) admit(c *net.UnixConn) {
	cred, err := fdpass.PeerCred(c)
	if err != nil {
		s.log.Warn("control: refusing a client whose credentials cannot be read", zap.Error(err))
		c.Close()
		return
	}
	if cred.UID != 0 && cred.UID != s.uid {
		s.log.Warn("control: refusing a client of another user",
			zap.Uint32("peer_uid", cred.UID), zap.Int32("peer_pid", cred.PID), zap.Uint32("uid", s.uid))
		s.refuse(c, response{Error: fmt.Sprintf("permission denied: uid %d is neither the restarter's uid %d nor root", cred.UID, s.uid)})
		return
	}
	s.mu.Lock()
	closed := s.ctx.Err() != nil
	ok := !closed && (len(s.conns) < maxConns || s.evictIdleLocked())
	if ok {
		s.conns[c] = &connState{since: time.Now()}
		s.wg.Add(1)
	}
	s.mu.Unlock()
	switch {
	case closed:
		c.Close()
	case !ok:
		s.log.Warn("control: too many clients running requests, refusing one", zap.Int("max", maxConns), zap.Int32("peer_pid", cred.PID))
		s.refuse(c, response{Error: fmt.Sprintf("too many clients (%d requests running); retry", maxConns), Retry: true})
	default:
		go s.serve(c, cred)
	}
}

// evictIdleLocked closes the connection that has waited longest without
// sending a request (and has nothing unread), so that idle clients can
// never lock out one with a request. It reports whether it closed one.
func (s *Server) evictIdleLocked() bool {
	var oldest *net.UnixConn
	var since time.Time
	for c, st := range s.conns {
		if !st.busy && (oldest == nil || st.since.Before(since)) && unread(c) == 0 {
			oldest, since = c, st.since
		}
	}
	if oldest == nil {
		return false
	}
	delete(s.conns, oldest) // its goroutine finds it gone; wg is still its own
	oldest.Close()
	s.log.Debug("control: closed an idle client to make room", zap.Int("max", maxConns))
	return true
}

// unread is the number of bytes waiting in c's receive queue (SIOCINQ); -1
// when unknown.
func unread(c *net.UnixConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1
	}
	n := -1
	rc.Control(func(fd uintptr) {
		if v, err := unix.IoctlGetInt(int(fd), unix.SIOCINQ); err == nil {
			n = v
		}
	})
	return n
}

// refuse writes r and closes c.
func (s *Server) refuse(c *net.UnixConn, r response) {
	s.write(c, r, refuseTimeout)
	c.Close()
}

// setBusy marks c as running a request (or waiting for the next one).
func (s *Server) setBusy(c *net.UnixConn, busy bool) {
	s.mu.Lock()
	if st, ok := s.conns[c]; ok {
		st.busy = busy
		st.since = time.Now()
	}
	s.mu.Unlock()
}

func (s *Server) serve(c *net.UnixConn, cred fdpass.Ucred) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReaderSize(c, MaxRequestSize)
	for {
		c.SetReadDeadline(time.Now().Add(requestTimeout))
		line, err := r.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			s.log.Warn("control: oversized request", zap.Int32("peer_pid", cred.PID))
			s.reply(c, response{Error: fmt.Sprintf("request longer than %d bytes", MaxRequestSize)})
			return
		case err != nil:
			return // EOF, no request in time, evicted, or closed by Close; a partial line is dropped
		}
		req, err := decodeRequest(line)
		if err != nil {
			s.log.Warn("control: bad request", zap.Int32("peer_pid", cred.PID), zap.Error(err))
			if !s.reply(c, response{Error: err.Error()}) {
				return
			}
			continue
		}
		s.log.Debug("control: request", zap.String("op", req.Op), zap.Int32("peer_pid", cred.PID), zap.Uint32("peer_uid", cred.UID))
		s.setBusy(c, true)
		ok := s.reply(c, s.handle(req.Op))
		s.setBusy(c, false)
		if !ok {
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
	cmd, ok := lookup(op)
	if !ok {
		return response{Error: fmt.Sprintf("unknown op %q", op)}
	}
	return cmd.serve(s.ctx, s.h)
}

func (s *Server) reply(c net.Conn, r response) bool {
	return s.write(c, r, writeTimeout)
}

func (s *Server) write(c net.Conn, r response, timeout time.Duration) bool {
	b, err := json.Marshal(r)
	if err != nil {
		s.log.Error("control: encoding response", zap.Error(err))
		b, _ = json.Marshal(response{Error: "internal error: response not encodable"})
	}
	c.SetWriteDeadline(time.Now().Add(timeout))
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
// from the moment it exists (osutil.BindUnix sets it before bind).
func listenUnix(path string) (*net.UnixListener, uint64, uint64, error) {
	f, err := osutil.BindUnix(unix.SOCK_STREAM, path, 0o600)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("control socket %s: %w", path, err)
	}
	defer f.Close()
	fail := func(err error) (*net.UnixListener, uint64, uint64, error) {
		os.Remove(path)
		return nil, 0, 0, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil { // exactly 0600, whatever the umask
		return fail(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fail(os.NewSyscallError("lstat", err))
	}
	if err := unix.Listen(int(f.Fd()), listenBacklog); err != nil {
		return fail(os.NewSyscallError("listen", err))
	}
	l, err := net.FileListener(f)
	if err != nil {
		return fail(err)
	}
	return l.(*net.UnixListener), uint64(st.Dev), st.Ino, nil
}
