package main

// listeners.go: the data listeners — binding, serving, the registry our
// child takes them from, and the drain.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"

	"github.com/hotrestart/restarter/uds"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// listener is one listen socket of one worker.
type listener struct {
	url    string // uds.AddressURL of the bound address
	worker uint32
	ln     net.Listener
}

// listenSockets owns our listening sockets: the data listeners (one per
// address and worker) and the admin listener. Its methods are safe for
// concurrent use: startup binds and serves them on the run goroutine, the
// hot-restart Parent's goroutine closes admin (shutdown_admin) and drains,
// admin's /drain_listeners drains, cleanup closes them all.
type listenSockets struct {
	mu    sync.Mutex
	data  []listener
	admin net.Listener
}

// has reports whether a data listener for url and worker w is bound.
func (ls *listenSockets) has(url string, w uint32) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, l := range ls.data {
		if l.url == url && l.worker == w {
			return true
		}
	}
	return false
}

func (ls *listenSockets) add(l listener) {
	ls.mu.Lock()
	ls.data = append(ls.data, l)
	ls.mu.Unlock()
}

// dataListeners returns the data listeners bound so far.
func (ls *listenSockets) dataListeners() []net.Listener {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	out := make([]net.Listener, len(ls.data))
	for i, l := range ls.data {
		out[i] = l.ln
	}
	return out
}

// closeData closes the data listeners (a drain: they stop accepting).
func (ls *listenSockets) closeData() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	for _, l := range ls.data {
		l.ln.Close()
	}
}

func (ls *listenSockets) setAdmin(ln net.Listener) {
	ls.mu.Lock()
	ls.admin = ln
	ls.mu.Unlock()
}

// closeAdmin closes the admin listener, if it is bound (our child takes admin).
func (ls *listenSockets) closeAdmin() {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.admin != nil {
		ls.admin.Close()
	}
}

func (s *server) serve(srv *http.Server, ln net.Listener) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := srv.Serve(ln)
		if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
			return
		}
		select {
		case s.errc <- fmt.Errorf("serve %s: %w", ln.Addr(), err):
		default:
		}
	}()
}

func bindTCP(addr string, reusePort bool) (net.Listener, error) {
	lc := net.ListenConfig{}
	if reusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			return os.NewSyscallError("setsockopt SO_REUSEPORT", serr)
		}
	}
	return lc.Listen(context.Background(), "tcp", addr)
}

// listenURL is the Envoy address URL of a --listen value (checked by parseFlags).
func listenURL(addr string) string {
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return "tcp://" + addr
	}
	return uds.AddressURL(tcp)
}

// addListener records l and registers a dup of its socket for our child.
func (s *server) addListener(l listener) {
	s.lns.add(l)
	if tl, ok := l.ln.(*net.TCPListener); ok {
		f, err := tl.File()
		if err != nil {
			s.log.Warn("cannot register listen socket for hot restart", zap.String("address", l.url), zap.Error(err))
			return
		}
		s.registry.Add(l.url, l.worker, f) // the registry owns f
	}
}

func (s *server) connState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.active.Add(1)
		s.srvStats.own.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.active.Add(-1)
		s.srvStats.own.Add(-1)
	}
}

// drainListeners stops accepting (the child holds the same sockets, so no
// queued connection is lost) and starts the drain of open connections.
func (s *server) drainListeners() {
	if !s.drain.Start() {
		return
	}
	s.setState(stateDraining)
	s.lns.closeData()
	// The dups kept for a child go too: the child has them, and a drained
	// parent holds no listening socket (the evidence a supervisor reads in
	// /proc to tell that it was told to drain).
	s.registry.Close()
	s.log.Info("draining", zap.Duration("drain_time", s.cfg.DrainTime), zap.Stringer("strategy", s.cfg.DrainStrategy))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.drain.ShutdownHTTP(s.ctx, s.httpSrv); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("drain shutdown", zap.Error(err))
		}
	}()
}
