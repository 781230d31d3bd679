package uds

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hotrestart/restarter/fdpass"
	"github.com/hotrestart/restarter/uds/hotrestartpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

// ForwardedUDPPacket is a UDP datagram that a parent received on one of its
// listen sockets and could not route (for QUIC: a connection it does not
// own), forwarded to its child over the udp_ twin sockets
// (HotRestartMessage.Request.ForwardedUdpPacket).
type ForwardedUDPPacket struct {
	LocalAddr   string    // Envoy URL of the listener's address, e.g. udp://127.0.0.1:443
	PeerAddr    string    // Envoy URL of the sender
	ReceiveTime time.Time // when the parent received it (microseconds on the wire)
	Payload     []byte
	Worker      uint32 // the parent's worker that received it
}

// ErrNoChild is returned (wrapped) by Parent.ForwardUDPPacket when no child
// is bound to the udp_child socket of the next epoch.
var ErrNoChild = errors.New("no hot-restart child on the udp forwarding socket")

// ForwardUDPPacket sends pkt to the child's udp_child socket. It does not
// wait for the child: the first refusal is final (Envoy retries 10 times,
// blocking its main thread, then aborts), and the send is bounded by
// Config.Timeout. Safe for concurrent use.
func (p *Parent) ForwardUDPPacket(pkt ForwardedUDPPacket) error {
	m := &pbMsg{Requestreply: &hotrestartpb.HotRestartMessage_Request_{Request: &pbRequest{
		Request: &pbRequest_ForwardedUdpPacket{ForwardedUdpPacket: &hotrestartpb.HotRestartMessage_Request_ForwardedUdpPacket{
			LocalAddr:                    pkt.LocalAddr,
			PeerAddr:                     pkt.PeerAddr,
			ReceiveTimeEpochMicroseconds: uint64(max(pkt.ReceiveTime.UnixMicro(), 0)),
			Payload:                      pkt.Payload,
			WorkerIndex:                  pkt.Worker,
		}},
	}}}
	p.udpMu.Lock()
	defer p.udpMu.Unlock()
	wire, err := appendMessage(p.udpBuf, m)
	if err != nil {
		return err
	}
	p.udpBuf = wire[:0]
	p.udp.conn.SetWriteDeadline(time.Now().Add(p.cfg.Timeout))
	if err := sendFrames(p.udp.conn, p.udpChildAddr, wire, -1, nil); err != nil {
		if noParent(err) {
			return fmt.Errorf("%w: %w", ErrNoChild, err)
		}
		return fmt.Errorf("forward udp packet: %w", err)
	}
	return nil
}

type pbRequest_ForwardedUdpPacket = hotrestartpb.HotRestartMessage_Request_ForwardedUdpPacket_

// ServeForwardedUDP reads the packets the parent forwards to this child's
// udp_child socket and calls h for each, one at a time, on a goroutine of
// its own until Close. Datagrams from another sender or peer, and messages
// other than forwarded_udp_packet, are dropped (logged at a bounded rate).
// Call it at most once.
func (c *Child) ServeForwardedUDP(h func(ForwardedUDPPacket)) {
	c.udpWG.Add(1)
	go func() {
		defer c.udpWG.Done()
		defer c.udp.flushDrops()
		for {
			d, err := c.udp.readDatagram(1)
			if err != nil {
				if !errors.Is(err, net.ErrClosed) {
					c.udp.log.Error("udp forwarding socket failed; no more forwarded packets", zap.Error(err))
				}
				return
			}
			if len(d.fds) > 0 {
				fdpass.CloseAll(d.fds)
				c.udp.warnDrop("closed fds that came with a forwarded packet", zap.Int("fds", len(d.fds)))
			}
			if pkt, ok := c.udp.decodeForwarded(d.data); ok {
				h(pkt)
			}
		}
	}()
}

// decodeForwarded feeds one datagram to the udp endpoint's decoder and
// returns the forwarded packet it completes, if any.
func (e *endpoint) decodeForwarded(data []byte) (ForwardedUDPPacket, bool) {
	raw, ok, err := e.dec.Feed(data)
	if err != nil {
		e.warnDrop("dropped a bad frame on the udp forwarding socket", zap.Error(err))
	}
	if !ok {
		return ForwardedUDPPacket{}, false
	}
	msg := &e.msg
	proto.Reset(msg)
	if err := proto.Unmarshal(raw, msg); err != nil {
		e.warnDrop("dropped an undecodable message on the udp forwarding socket", zap.Error(err))
		return ForwardedUDPPacket{}, false
	}
	f := msg.GetRequest().GetForwardedUdpPacket()
	if f == nil {
		// Envoy's child logs and ignores anything else here; it never answers.
		e.warnDrop("dropped a message other than forwarded_udp_packet on the udp forwarding socket")
		return ForwardedUDPPacket{}, false
	}
	us := f.GetReceiveTimeEpochMicroseconds()
	if us > uint64(1<<62) {
		us = 0 // no time we could represent: treat as unknown
	}
	return ForwardedUDPPacket{
		LocalAddr:   f.GetLocalAddr(),
		PeerAddr:    f.GetPeerAddr(),
		ReceiveTime: time.UnixMicro(int64(us)),
		Payload:     append([]byte(nil), f.GetPayload()...),
		Worker:      f.GetWorkerIndex(),
	}, true
}

// UDPListeners routes forwarded packets to a child's UDP listeners by local
// address and worker index, as Envoy's child does: an exact address first,
// then the wildcard of the same port (0.0.0.0 then [::] for IPv4, [::] for
// IPv6). Safe for concurrent use.
type UDPListeners struct {
	mu sync.RWMutex
	m  map[string]map[uint32]func(ForwardedUDPPacket) // host:port -> worker -> deliver
}

// NewUDPListeners returns an empty router.
func NewUDPListeners() *UDPListeners {
	return &UDPListeners{m: make(map[string]map[uint32]func(ForwardedUDPPacket))}
}

// Add registers deliver for the listener on addr (an Envoy URL or host:port)
// and worker.
func (u *UDPListeners) Add(addr string, worker uint32, deliver func(ForwardedUDPPacket)) error {
	k, _, err := udpKey(addr)
	if err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.m[k] == nil {
		u.m[k] = make(map[uint32]func(ForwardedUDPPacket))
	}
	u.m[k][worker] = deliver
	return nil
}

// Deliver hands pkt to the listener of its local address and worker and
// reports whether there was one.
func (u *UDPListeners) Deliver(pkt ForwardedUDPPacket) bool {
	k, ip, err := udpKey(pkt.LocalAddr)
	if err != nil {
		return false
	}
	u.mu.RLock()
	workers, ok := u.m[k]
	if !ok {
		_, port, _ := net.SplitHostPort(k)
		wild := []string{"[::]:" + port}
		if ip.To4() != nil {
			wild = []string{"0.0.0.0:" + port, "[::]:" + port}
		}
		for _, w := range wild {
			if workers, ok = u.m[w]; ok {
				break
			}
		}
	}
	deliver := workers[pkt.Worker]
	u.mu.RUnlock()
	if deliver == nil {
		return false
	}
	deliver(pkt)
	return true
}

// udpKey normalizes an address (udp://host:port or host:port) to the
// host:port form Envoy's asString gives, with its IP.
func udpKey(addr string) (string, net.IP, error) {
	hp := addr
	if len(hp) > 6 && hp[:6] == "udp://" {
		hp = hp[6:]
	}
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return "", nil, fmt.Errorf("udp address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return "", nil, fmt.Errorf("udp address %q: host is not an IP address", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return "", nil, fmt.Errorf("udp address %q: bad port", addr)
	}
	return net.JoinHostPort(ip.String(), port), ip, nil
}
