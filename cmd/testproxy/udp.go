package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hotrestart/restarter/uds"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// The UDP listener (--udp-listen) models what a hot restart does to Envoy's
// QUIC listeners: the sockets pass to the child like TCP ones, but the
// child does not read them while its parent still drains. The draining
// parent keeps reading and forwards every datagram it cannot route (here:
// all of them, testproxy keeps no sessions) to the child over the udp_
// twin sockets (forwarded_udp_packet); the child answers it from the same
// socket, by local address and worker index. Once the parent is gone the
// child reads the sockets itself. Each datagram is answered with
// "epoch N pid P[ forwarded]: <payload>".

// udpListener is one UDP socket of one worker.
type udpListener struct {
	url    string // uds.AddressURL form, udp://host:port
	worker uint32
	conn   *net.UDPConn
}

// udpState is the server's UDP side; its fields are guarded by mu.
type udpState struct {
	mu      sync.Mutex
	ls      []udpListener
	reading bool                // our own readers run
	router  *uds.UDPListeners   // forwarded packets by local address and worker
	stats   [3]*uds.Counter     // received, forwarded to child, received forwarded
	warned  map[string]struct{} // forward errors already logged
}

const (
	udpReceived = iota
	udpForwarded
	udpForwardedIn
)

func newUDPState(st *uds.Store) *udpState {
	return &udpState{
		router: uds.NewUDPListeners(),
		stats:  [3]*uds.Counter{st.Counter("udp.received"), st.Counter("udp.forwarded"), st.Counter("udp.forwarded_received")},
		warned: map[string]struct{}{},
	}
}

func udpURL(addr string) string { return "udp://" + strings.TrimPrefix(listenURL(addr), "tcp://") }

func (s *server) hasUDP(url string, w uint32) bool {
	s.udp.mu.Lock()
	defer s.udp.mu.Unlock()
	for _, l := range s.udp.ls {
		if l.url == url && l.worker == w {
			return true
		}
	}
	return false
}

// addUDP records l, routes forwarded packets for it, and registers a dup of
// its socket for our child.
func (s *server) addUDP(l udpListener) {
	s.udp.mu.Lock()
	s.udp.ls = append(s.udp.ls, l)
	s.udp.mu.Unlock()
	if err := s.udp.router.Add(l.url, l.worker, func(p uds.ForwardedUDPPacket) { s.answerForwarded(l, p) }); err != nil {
		s.log.Warn("udp listener not routable for forwarded packets", zap.String("address", l.url), zap.Error(err))
	}
	f, err := l.conn.File()
	if err != nil {
		s.log.Warn("cannot register udp socket for hot restart", zap.String("address", l.url), zap.Error(err))
		return
	}
	s.registry.Add(l.url, l.worker, f) // the registry owns f
}

// takeUDP asks the parent for each UDP socket; those it lacks are bound in bindUDP.
func (s *server) takeUDP(ctx context.Context, c *uds.Child) error {
	for _, a := range s.cfg.UDPListen {
		url := udpURL(a)
		for _, w := range s.workers() {
			f, err := c.PassListenSocket(ctx, url, w)
			if err != nil {
				return fmt.Errorf("pass listen socket %s worker %d: %w", url, w, err)
			}
			if f == nil {
				continue
			}
			pc, err := net.FilePacketConn(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("udp socket %s worker %d from parent: %w", url, w, err)
			}
			uc, ok := pc.(*net.UDPConn)
			if !ok {
				pc.Close()
				return fmt.Errorf("socket for %s worker %d from parent is %T, not UDP", url, w, pc)
			}
			s.addUDP(udpListener{url: url, worker: w, conn: uc})
			s.log.Info("udp socket from parent", zap.String("address", url), zap.Uint32("worker", w))
		}
	}
	return nil
}

// bindUDP binds the UDP sockets the parent did not pass.
func (s *server) bindUDP() error {
	for _, a := range s.cfg.UDPListen {
		url := udpURL(a)
		for _, w := range s.workers() {
			if s.hasUDP(url, w) {
				continue
			}
			lc := net.ListenConfig{}
			if s.cfg.ReusePort {
				lc.Control = reusePortControl
			}
			pc, err := lc.ListenPacket(context.Background(), "udp", a)
			if err != nil {
				return fmt.Errorf("--udp-listen %s worker %d: %w", a, w, err)
			}
			s.addUDP(udpListener{url: url, worker: w, conn: pc.(*net.UDPConn)})
			s.log.Info("udp listening", zap.String("address", pc.LocalAddr().String()), zap.Uint32("worker", w))
		}
	}
	return nil
}

func reusePortControl(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	}); err != nil {
		return err
	}
	return serr
}

// startUDPReaders starts reading our UDP sockets ourselves: at go-live with
// no parent, or once the parent is gone. Idempotent.
func (s *server) startUDPReaders() {
	s.udp.mu.Lock()
	defer s.udp.mu.Unlock()
	if s.udp.reading {
		return
	}
	s.udp.reading = true
	for _, l := range s.udp.ls {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.readUDP(l)
		}()
	}
	if len(s.udp.ls) > 0 {
		s.log.Info("reading udp sockets", zap.Int("sockets", len(s.udp.ls)))
	}
}

// readUDP answers datagrams on l until its socket closes; while we drain
// for a child, it forwards them to the child instead.
func (s *server) readUDP(l udpListener) {
	buf := make([]byte, 64<<10)
	for {
		n, peer, err := l.conn.ReadFromUDP(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				s.log.Warn("udp read", zap.String("address", l.url), zap.Error(err))
			}
			return
		}
		s.udp.stats[udpReceived].Inc()
		if s.drain.Draining() && s.parent != nil {
			err := s.parent.ForwardUDPPacket(uds.ForwardedUDPPacket{
				LocalAddr: l.url, PeerAddr: uds.AddressURL(peer), ReceiveTime: time.Now(),
				Payload: buf[:n], Worker: l.worker,
			})
			if err == nil {
				s.udp.stats[udpForwarded].Inc()
				continue
			}
			s.warnOnce("forward udp packet to child", err) // then answer it ourselves
		}
		s.answerUDP(l, peer, buf[:n], "")
	}
}

// answerForwarded answers a packet our parent forwarded, from our socket
// for its local address and worker.
func (s *server) answerForwarded(l udpListener, p uds.ForwardedUDPPacket) {
	s.udp.stats[udpForwardedIn].Inc()
	peer, err := net.ResolveUDPAddr("udp", strings.TrimPrefix(p.PeerAddr, "udp://"))
	if err != nil {
		s.warnOnce("forwarded packet peer address", err)
		return
	}
	s.answerUDP(l, peer, p.Payload, " forwarded")
}

func (s *server) answerUDP(l udpListener, peer *net.UDPAddr, payload []byte, via string) {
	reply := fmt.Appendf(nil, "epoch %d pid %d%s: %s", s.cfg.RestartEpoch, s.pid, via, payload)
	if _, err := l.conn.WriteToUDP(reply, peer); err != nil && !errors.Is(err, net.ErrClosed) {
		s.warnOnce("udp reply", err)
	}
}

// deliverForwarded is the hot-restart child's handler for forwarded packets.
func (s *server) deliverForwarded(p uds.ForwardedUDPPacket) {
	if !s.udp.router.Deliver(p) {
		s.warnOnce("forwarded packet for no listener of ours", fmt.Errorf("local %s worker %d", p.LocalAddr, p.Worker))
	}
}

// warnOnce logs what kind of UDP error once per process: a flood of
// datagrams must not flood the log.
func (s *server) warnOnce(what string, err error) {
	s.udp.mu.Lock()
	_, seen := s.udp.warned[what]
	s.udp.warned[what] = struct{}{}
	s.udp.mu.Unlock()
	if !seen {
		s.log.Warn(what+" (further ones not logged)", zap.Error(err))
	}
}

func (s *server) closeUDP() {
	s.udp.mu.Lock()
	defer s.udp.mu.Unlock()
	for _, l := range s.udp.ls {
		l.conn.Close()
	}
}
