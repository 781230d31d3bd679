package uds

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/hotrestart/restarter/fdpass"
	"github.com/hotrestart/restarter/uds/hotrestartpb"
	"go.uber.org/zap"
	"google.golang.org/protobuf/proto"
)

type (
	pbMsg       = hotrestartpb.HotRestartMessage
	pbRequest   = hotrestartpb.HotRestartMessage_Request
	pbReply     = hotrestartpb.HotRestartMessage_Reply
	pbMsg_Reply = hotrestartpb.HotRestartMessage_Reply_
)

// ShutdownAdminReply is the parent's answer to a shutdown-admin request.
type ShutdownAdminReply struct {
	OriginalStartTimeUnixSeconds uint64
	EnableReusePortDefault       bool
}

// ParentHandler holds the callbacks a Parent runs for its child's requests,
// one at a time on the Parent's goroutine. Nil callbacks: PassListenSocket
// falls back to Listeners (if set), else the reply carries fd -1; the others
// are no-ops or zero replies. StatsTo writes the stats reply directly, one
// stat at a time (Store.ExportTo does it for a Store). The Parent does not
// close files returned by PassListenSocket. A callback must not call
// Parent.Close (Close waits for the goroutine running the callback); start a
// goroutine for that.
type ParentHandler struct {
	Listeners        *Listeners
	PassListenSocket func(ListenSocket) (*os.File, bool)
	ShutdownAdmin    func() ShutdownAdminReply
	StatsTo          func(e *StatsEncoder)
	DrainListeners   func()
	Terminate        func()
}

// Parent serves the hot-restart requests of the child of the next epoch.
type Parent struct {
	cfg       Config
	h         ParentHandler
	ep        *endpoint
	childAddr *net.UnixAddr
	enc       StatsEncoder
	statsBuf  []byte // storage of the last stats reply
	lastStats int    // its bytes
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	// The udp_parent twin: forwarded UDP packets go from it to the child's
	// udp_child socket.
	udp          *endpoint
	udpChildAddr *net.UnixAddr
	udpMu        sync.Mutex // serializes ForwardUDPPacket
	udpBuf       []byte
}

// ListenParent binds parent_<epoch%3> and its twin udp_parent_<epoch%3>,
// as every Envoy process does, and serves the child of epoch+1 on a
// goroutine of its own until Close.
func ListenParent(cfg Config, h ParentHandler) (*Parent, error) {
	p, err := newIdleParent(cfg, h)
	if err != nil {
		return nil, err
	}
	go p.serve()
	return p, nil
}

// newIdleParent is ListenParent without the serving goroutine, for tests
// that drive handleDatagram themselves. Close it with closeSockets.
func newIdleParent(cfg Config, h ParentHandler) (*Parent, error) {
	cfg = cfg.withDefaults()
	name := SocketName(cfg.SocketPath, RoleParent, cfg.BaseID, cfg.Epoch)
	childAddr, err := sockAddr(SocketName(cfg.SocketPath, RoleChild, cfg.BaseID, cfg.Epoch+1))
	if err != nil {
		return nil, err
	}
	udpChildAddr, err := sockAddr(SocketName(cfg.SocketPath, RoleUDPChild, cfg.BaseID, cfg.Epoch+1))
	if err != nil {
		return nil, err
	}
	ep, err := newEndpoint(cfg, name)
	if err != nil {
		return nil, err
	}
	udpName := SocketName(cfg.SocketPath, RoleUDPParent, cfg.BaseID, cfg.Epoch)
	udp, err := newEndpoint(cfg, udpName)
	if err != nil {
		ep.close()
		return nil, err
	}
	ep.log = cfg.Logger.With(zap.String("socket", name))
	ep.expectFrom = printable(childAddr.Name)
	udp.log = cfg.Logger.With(zap.String("socket", udpName))
	return &Parent{cfg: cfg, h: h, ep: ep, childAddr: childAddr, udp: udp, udpChildAddr: udpChildAddr, done: make(chan struct{})}, nil
}

// closeSockets closes both sockets (removing filesystem sockets).
func (p *Parent) closeSockets() error {
	return errors.Join(p.ep.close(), p.udp.close())
}

// Close stops serving, closes the sockets (removing filesystem sockets) and
// blocks until the Parent's goroutine is gone. Idempotent.
func (p *Parent) Close() error {
	p.closeOnce.Do(func() {
		p.closeErr = p.closeSockets()
		<-p.done
	})
	return p.closeErr
}

func (p *Parent) serve() {
	defer close(p.done)
	defer p.ep.flushDrops()
	for {
		// One fd of room so that a stray fd is received and closed rather
		// than truncating the control data.
		d, err := p.ep.readDatagram(1)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			p.ep.log.Error("hot-restart socket failed; parent stops serving", zap.Error(err))
			return
		}
		p.handleDatagram(d.data, d.fds)
	}
}

// handleDatagram feeds one datagram to the decoder and answers a completed
// request. It never panics on bad input and closes fds (requests carry none).
func (p *Parent) handleDatagram(data []byte, fds []int) {
	if len(fds) > 0 {
		fdpass.CloseAll(fds)
		p.ep.warnDrop("closed fds that came with a request (requests carry none)", zap.Int("fds", len(fds)))
	}
	raw, ok, err := p.ep.dec.Feed(data)
	if err != nil {
		p.ep.warnDrop("dropped a bad hot-restart frame", zap.Error(err))
	}
	if !ok {
		return
	}
	reply, wire, f := p.dispatch(raw)
	if reply == nil && wire == nil {
		return
	}
	if err := p.send(reply, wire, f); err != nil {
		p.ep.warnDrop("could not reply to the child", zap.Error(err))
	}
}

// dispatch decodes one request and runs its callback. It returns the reply
// (nil when the request has none) and the file whose fd travels with it, or
// for stats the reply already in wire form (framed, in p.statsBuf's storage).
func (p *Parent) dispatch(raw []byte) (*pbMsg, []byte, *os.File) {
	msg := &p.ep.msg
	proto.Reset(msg)
	if err := proto.Unmarshal(raw, msg); err != nil {
		p.ep.warnDrop("dropped an undecodable HotRestartMessage", zap.Int("bytes", len(raw)), zap.Error(err))
		return nil, nil, nil
	}
	req := msg.GetRequest()
	if req == nil {
		p.ep.warnDrop("child sent something other than a request; answering didnt_recognize_your_last_message")
		return notRecognized(), nil, nil
	}
	switch r := req.Request.(type) {
	case *pbRequest_PassListenSocket:
		reply, f := p.passListenSocket(r.PassListenSocket)
		return reply, nil, f
	case *pbRequest_ShutdownAdmin:
		var sa ShutdownAdminReply
		if p.h.ShutdownAdmin != nil {
			sa = p.h.ShutdownAdmin()
		}
		return &pbMsg{Requestreply: &hotrestartpb.HotRestartMessage_Reply_{Reply: &pbReply{
			Reply: &pbReply_ShutdownAdmin{ShutdownAdmin: &hotrestartpb.HotRestartMessage_Reply_ShutdownAdmin{
				OriginalStartTimeUnixSeconds: sa.OriginalStartTimeUnixSeconds,
				EnableReusePortDefault:       sa.EnableReusePortDefault,
			}},
		}}}, nil, nil
	case *pbRequest_Stats:
		return nil, p.statsReply(), nil
	case *pbRequest_DrainListeners:
		if p.h.DrainListeners != nil {
			p.h.DrainListeners()
		}
		return nil, nil, nil // Envoy does not answer drain
	case *pbRequest_TestConnection:
		// Envoy's parent sends nothing for it, and Envoy's child reads no
		// reply: an answer would be taken for the reply to its next request.
		p.ep.log.Debug("test_connection from the child")
		return nil, nil, nil
	case *pbRequest_Terminate:
		p.ep.log.Info("child asked us to terminate")
		if p.h.Terminate != nil {
			p.h.Terminate()
		}
		return nil, nil, nil // Envoy does not answer terminate
	default:
		p.ep.warnDrop("child sent an unfamiliar request; answering didnt_recognize_your_last_message")
		return notRecognized(), nil, nil
	}
}

// passListenSocket answers a pass_listen_socket request: the reply, and the
// file whose fd travels with it (nil for fd -1).
func (p *Parent) passListenSocket(r *hotrestartpb.HotRestartMessage_Request_PassListenSocket) (*pbMsg, *os.File) {
	k := ListenSocket{
		Address:          r.GetAddress(),
		NetworkNamespace: r.GetNetworkNamespace(),
		Worker:           r.GetWorkerIndex(),
	}
	var f *os.File
	var ok bool
	switch {
	case p.h.PassListenSocket != nil:
		f, ok = p.h.PassListenSocket(k)
	case p.h.Listeners != nil:
		f, ok = p.h.Listeners.LookupSocket(k)
	}
	fd := int32(-1)
	if ok && f != nil {
		fd = int32(rawFD(f))
	}
	if fd < 0 {
		f = nil
	}
	p.ep.log.Debug("pass_listen_socket", zap.String("address", k.Address), zap.String("network_namespace", k.NetworkNamespace),
		zap.Uint32("worker", k.Worker), zap.Int32("fd", fd))
	return &pbMsg{Requestreply: &hotrestartpb.HotRestartMessage_Reply_{Reply: &pbReply{
		Reply: &pbReply_PassListenSocket{PassListenSocket: &hotrestartpb.HotRestartMessage_Reply_PassListenSocket{Fd: fd}},
	}}}, f
}

// statsReply answers a stats request in wire form (framed, in p.statsBuf's
// storage).
func (p *Parent) statsReply() []byte {
	// The buffer is kept for the next pull (a child pulls every stats
	// flush), sized from the last reply with some room to grow: a big
	// reply then costs no allocation, and no garbage collection.
	e := &p.enc
	e.reset(p.statsBuf, p.lastStats+p.lastStats/8)
	if p.h.StatsTo != nil {
		p.h.StatsTo(e)
	}
	wire := e.finish()
	p.statsBuf, p.lastStats = e.b[:0], len(wire)
	return wire
}

type (
	pbRequest_PassListenSocket = hotrestartpb.HotRestartMessage_Request_PassListenSocket_
	pbRequest_ShutdownAdmin    = hotrestartpb.HotRestartMessage_Request_ShutdownAdmin_
	pbRequest_Stats            = hotrestartpb.HotRestartMessage_Request_Stats_
	pbRequest_DrainListeners   = hotrestartpb.HotRestartMessage_Request_DrainListeners_
	pbRequest_Terminate        = hotrestartpb.HotRestartMessage_Request_Terminate_
	pbRequest_TestConnection   = hotrestartpb.HotRestartMessage_Request_TestConnection_
	pbReply_PassListenSocket   = hotrestartpb.HotRestartMessage_Reply_PassListenSocket_
	pbReply_ShutdownAdmin      = hotrestartpb.HotRestartMessage_Reply_ShutdownAdmin_
	pbReply_Stats              = hotrestartpb.HotRestartMessage_Reply_Stats_
)

func notRecognized() *pbMsg { return &pbMsg{DidntRecognizeYourLastMessage: true} }

// send writes reply, or wire when reply is nil (with f's fd, if f is not
// nil), to the child socket, bounded by cfg.Timeout.
func (p *Parent) send(reply *pbMsg, wire []byte, f *os.File) error {
	var err error
	if reply != nil {
		if wire, err = appendMessage(p.ep.wbuf, reply); err != nil {
			return err
		}
	}
	if cap(wire) <= 1<<20 {
		p.ep.wbuf = wire[:0]
	}
	p.ep.conn.SetWriteDeadline(time.Now().Add(p.cfg.Timeout))
	if f == nil {
		err = sendFrames(p.ep.conn, p.childAddr, wire, -1, nil)
	} else {
		// Control keeps f's fd valid while it travels, without os.File.Fd's
		// switch to blocking mode.
		rc, cerr := f.SyscallConn()
		if cerr != nil {
			return fmt.Errorf("reply: listen socket: %w", cerr)
		}
		if cerr := rc.Control(func(fd uintptr) {
			err = sendFrames(p.ep.conn, p.childAddr, wire, int(fd), nil)
		}); cerr != nil {
			return fmt.Errorf("reply: listen socket: %w", cerr)
		}
	}
	if err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	return nil
}

// rawFD returns f's descriptor without os.File.Fd's side effect of putting it
// in blocking mode; -1 if f is closed.
func rawFD(f *os.File) int {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	if rc.Control(func(u uintptr) { fd = int(u) }) != nil {
		return -1
	}
	return fd
}
