package uds

import (
	"context"
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

// ErrNoParent is returned (wrapped) when the parent socket does not exist or
// refuses datagrams after every retry.
var ErrNoParent = errors.New("no hot-restart parent")

// ErrNotRecognized is returned (wrapped) when the parent answered
// didnt_recognize_your_last_message.
var ErrNotRecognized = errors.New("parent did not recognize the request")

// Child talks to the parent process of the previous epoch. Its methods may
// be called from several goroutines; requests are serialized.
type Child struct {
	cfg        Config
	ep         *endpoint
	udp        *endpoint     // udp_child twin: forwarded UDP packets arrive here
	parentAddr *net.UnixAddr // nil at epoch 0
	parentName string
	mu         sync.Mutex // serializes requests and guards ep and dirty
	dirty      bool       // the last request was abandoned: late replies may be queued
	udpWG      sync.WaitGroup
	closeOnce  sync.Once
	closeErr   error
}

// DialChild binds child_<epoch%3> and its twin udp_child_<epoch%3>;
// requests go to parent_<(epoch-1)%3>. Like Envoy, a process binds its
// child sockets at epoch 0 too (so that two instances on one base id
// collide at once); there every request fails with ErrNoParent.
func DialChild(cfg Config) (*Child, error) {
	cfg = cfg.withDefaults()
	var parentAddr, udpParentAddr *net.UnixAddr
	parentName := ""
	if cfg.Epoch > 0 {
		parentName = SocketName(cfg.SocketPath, RoleParent, cfg.BaseID, cfg.Epoch-1)
		var err error
		if parentAddr, err = sockAddr(parentName); err != nil {
			return nil, err
		}
		if udpParentAddr, err = sockAddr(SocketName(cfg.SocketPath, RoleUDPParent, cfg.BaseID, cfg.Epoch-1)); err != nil {
			return nil, err
		}
	}
	name := SocketName(cfg.SocketPath, RoleChild, cfg.BaseID, cfg.Epoch)
	ep, err := newEndpoint(cfg, name)
	if err != nil {
		return nil, err
	}
	udpName := SocketName(cfg.SocketPath, RoleUDPChild, cfg.BaseID, cfg.Epoch)
	udp, err := newEndpoint(cfg, udpName)
	if err != nil {
		ep.close()
		return nil, err
	}
	ep.log = cfg.Logger.With(zap.String("socket", name))
	udp.log = cfg.Logger.With(zap.String("socket", udpName))
	if parentAddr != nil {
		ep.expectFrom = printable(parentAddr.Name)
		udp.expectFrom = printable(udpParentAddr.Name)
	} else {
		udp.expectFrom = "\x00no parent at epoch 0" // nobody may send here
	}
	return &Child{cfg: cfg, ep: ep, udp: udp, parentAddr: parentAddr, parentName: parentName}, nil
}

// Close closes the child sockets (removing filesystem sockets) and waits
// for ServeForwardedUDP's goroutine. A request in flight fails. Idempotent.
func (c *Child) Close() error {
	c.closeOnce.Do(func() {
		c.closeErr = errors.Join(c.ep.close(), c.udp.close())
		c.udpWG.Wait()
	})
	return c.closeErr
}

// ShutdownParentAdmin asks the parent to close its admin listener.
func (c *Child) ShutdownParentAdmin(ctx context.Context) (ShutdownAdminReply, error) {
	req := &pbRequest{Request: &pbRequest_ShutdownAdmin{ShutdownAdmin: &hotrestartpb.HotRestartMessage_Request_ShutdownAdmin{}}}
	var out ShutdownAdminReply
	err := c.roundTrip(ctx, req, func(r *pbReply, _ []int) (bool, error) {
		sa, ok := r.Reply.(*pbReply_ShutdownAdmin)
		if !ok {
			return false, nil
		}
		out.OriginalStartTimeUnixSeconds = sa.ShutdownAdmin.GetOriginalStartTimeUnixSeconds()
		out.EnableReusePortDefault = sa.ShutdownAdmin.GetEnableReusePortDefault()
		return true, nil
	})
	return out, err
}

// PassListenSocket asks the parent for its listening socket for address (an
// Envoy URL, see AddressURL) and worker index, in the process's own network
// namespace. It returns (nil, nil) when the parent has none (fd -1). The
// returned file is close-on-exec and the caller's.
func (c *Child) PassListenSocket(ctx context.Context, address string, worker uint32) (*os.File, error) {
	return c.RequestListenSocket(ctx, ListenSocket{Address: address, Worker: worker})
}

// RequestListenSocket is PassListenSocket for any ListenSocket, the network
// namespace included: the parent passes a socket only when all three match.
func (c *Child) RequestListenSocket(ctx context.Context, k ListenSocket) (*os.File, error) {
	address := k.Address
	req := &pbRequest{Request: &pbRequest_PassListenSocket{PassListenSocket: &hotrestartpb.HotRestartMessage_Request_PassListenSocket{
		Address: k.Address, WorkerIndex: k.Worker, NetworkNamespace: k.NetworkNamespace,
	}}}
	var out *os.File
	err := c.roundTrip(ctx, req, func(r *pbReply, fds []int) (bool, error) {
		pl, ok := r.Reply.(*pbReply_PassListenSocket)
		if !ok {
			return false, nil
		}
		switch fd := pl.PassListenSocket.GetFd(); {
		case fd == -1 && len(fds) == 0:
			return true, nil
		case fd == -1 || fd < 0:
			return true, fmt.Errorf("pass_listen_socket reply for %s: fd %d with %d fds attached", address, fd, len(fds))
		case len(fds) != 1:
			return true, fmt.Errorf("pass_listen_socket reply for %s: fd %d but %d fds attached, want 1", address, fd, len(fds))
		}
		out = os.NewFile(uintptr(fds[0]), address)
		return true, nil
	})
	return out, err
}

// StatsImport describes a stats reply that StatsInto imported.
type StatsImport struct {
	MemoryAllocated uint64
	NumConnections  uint64
	Counters        int // counter_deltas entries
	Gauges          int // gauges entries
}

// StatsInto pulls the parent's stats (counter deltas since the last pull,
// and gauges) and imports them into s with Envoy's semantics (see Store),
// reading the reply straight into the store without building maps; a reply
// that carries Envoy's dynamic stat-name spans goes through the generic
// decoder instead. The reply is checked whole before anything is imported,
// so a bad reply changes nothing.
func (c *Child) StatsInto(ctx context.Context, s *Store) (StatsImport, error) {
	req := &pbRequest{Request: &pbRequest_Stats{Stats: &hotrestartpb.HotRestartMessage_Request_Stats{}}}
	var out StatsImport
	wire := func(raw []byte) (bool, error) {
		b, err := statsBody(raw)
		if err == nil {
			var h statsHeader
			if h, err = scanStats(b, nil); err == nil {
				s.importWire(b, h)
				out = StatsImport{MemoryAllocated: h.mem, NumConnections: h.conns, Counters: h.counters, Gauges: h.gauges}
				return true, nil
			}
		}
		if errors.Is(err, errNotStats) {
			return false, nil // not a plain stats reply: decoded below
		}
		return true, err
	}
	err := c.send(ctx, req, sendRetry, wire, func(r *pbReply, _ []int) (bool, error) {
		st, ok := r.Reply.(*pbReply_Stats)
		if !ok {
			return false, nil
		}
		s.importMaps(st.Stats.GetCounterDeltas(), st.Stats.GetGauges())
		out = StatsImport{
			MemoryAllocated: st.Stats.GetMemoryAllocated(),
			NumConnections:  st.Stats.GetNumConnections(),
			Counters:        len(st.Stats.GetCounterDeltas()),
			Gauges:          len(st.Stats.GetGauges()),
		}
		return true, nil
	})
	return out, err
}

// DrainParentListeners tells the parent to drain its listeners. Like Envoy's
// protocol, there is no reply.
func (c *Child) DrainParentListeners(ctx context.Context) error {
	req := &pbRequest{Request: &pbRequest_DrainListeners{DrainListeners: &hotrestartpb.HotRestartMessage_Request_DrainListeners{}}}
	return c.roundTrip(ctx, req, nil)
}

// TestConnection probes the parent the way Envoy's child does when told to
// skip the hot restart if there is no parent: one test_connection request,
// no reply expected, and "allow failure": the first refusal (nobody bound
// to the parent socket) is final and returns ErrNoParent at once, with no
// retries.
func (c *Child) TestConnection(ctx context.Context) error {
	req := &pbRequest{Request: &pbRequest_TestConnection{TestConnection: &hotrestartpb.HotRestartMessage_Request_TestConnection{}}}
	return c.send(ctx, req, sendOnce, nil, nil)
}

// TerminateParent tells the parent to terminate. There is no reply.
func (c *Child) TerminateParent(ctx context.Context) error {
	req := &pbRequest{Request: &pbRequest_Terminate{Terminate: &hotrestartpb.HotRestartMessage_Request_Terminate{}}}
	return c.roundTrip(ctx, req, nil)
}

// replyFunc inspects a decoded reply and the fds that came with it. It
// returns false for a reply of another type (a stale answer to an earlier,
// abandoned request), which is dropped. It owns fds only when it returns true
// with a nil error; otherwise the caller closes them.
type replyFunc func(r *pbReply, fds []int) (bool, error)

// roundTrip sends req and, if onReply is not nil, waits for its reply, every
// step bounded by ctx or, when ctx has no deadline, cfg.Timeout.
func (c *Child) roundTrip(ctx context.Context, req *pbRequest, onReply replyFunc) error {
	return c.send(ctx, req, sendRetry, nil, onReply)
}

// How a request meets a refusal (ECONNREFUSED, ENOENT: no parent socket).
type sendPolicy int

const (
	sendRetry sendPolicy = iota // Config.ConnectRetries tries, RetryDelay apart
	sendOnce                    // Envoy's "allow failure": the first refusal is final
)

// send is roundTrip with the refusal policy and, for the stats reply, a
// decoder of the raw bytes tried before the generic one: wire reports
// whether it recognized (and consumed) the message.
func (c *Child) send(ctx context.Context, req *pbRequest, policy sendPolicy, wire func([]byte) (bool, error), onReply replyFunc) (err error) {
	if c.parentAddr == nil {
		return fmt.Errorf("%w: epoch 0 has none", ErrNoParent)
	}
	// Without a context deadline, Config.Timeout bounds the request; it is
	// applied as a socket deadline, with no timer of its own.
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Now().Add(c.cfg.Timeout)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	defer func() { c.dirty = err != nil }()
	if c.dirty {
		c.drainStale()
	}
	c.ep.setDeadline(dl)
	if ctx.Done() != nil {
		// Cancellation before the deadline wakes any blocked read or write.
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			c.ep.setDeadline(time.Unix(1, 0))
			close(fired)
		})
		defer func() {
			if !stop() {
				<-fired // it must not move the deadline of the next request
			}
		}()
	}
	if err := c.writeRequest(ctx, dl, req, policy); err != nil {
		return err
	}
	if onReply == nil {
		return nil
	}
	return c.readReply(ctx, wire, onReply)
}

// writeRequest sends req to the parent, retrying refusals as policy says.
func (c *Child) writeRequest(ctx context.Context, dl time.Time, req *pbRequest, policy sendPolicy) error {
	wire, err := appendMessage(c.ep.wbuf, &pbMsg{Requestreply: &hotrestartpb.HotRestartMessage_Request_{Request: req}})
	if err != nil {
		return err
	}
	c.ep.wbuf = wire[:0]
	tries := 0
	retry := func(err error) bool {
		if !noParent(err) {
			return false
		}
		tries++
		if policy == sendOnce || tries >= c.cfg.ConnectRetries {
			return false
		}
		c.ep.log.Info("parent socket not there yet, retrying", zap.String("parent", c.parentName), zap.Int("try", tries), zap.Error(err))
		if time.Until(dl) < c.cfg.RetryDelay {
			return false // no time left for another try
		}
		t := time.NewTimer(c.cfg.RetryDelay)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if err := sendFrames(c.ep.conn, c.parentAddr, wire, -1, retry); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("request to %s: %w", c.parentName, ctx.Err())
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("request to %s: %w", c.parentName, context.DeadlineExceeded)
		}
		if noParent(err) {
			return fmt.Errorf("%w: %s after %d tries: %w", ErrNoParent, c.parentName, tries, err)
		}
		return err
	}
	return nil
}

// readReply reads datagrams until a reply that onReply (or wire) accepts.
func (c *Child) readReply(ctx context.Context, wire func([]byte) (bool, error), onReply replyFunc) error {
	c.ep.dec.Reset()
	for {
		d, err := c.ep.readDatagram(1)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("waiting for %s: %w", c.parentName, ctx.Err())
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// The socket deadline is the context's; its timer may lag.
				return fmt.Errorf("waiting for %s: %w", c.parentName, context.DeadlineExceeded)
			}
			return fmt.Errorf("waiting for %s: %w", c.parentName, err)
		}
		raw, complete, err := c.ep.dec.Feed(d.data)
		if err != nil {
			c.ep.warnDrop("dropped a bad hot-restart frame", zap.Error(err))
		}
		if !complete {
			if len(d.fds) > 0 {
				fdpass.CloseAll(d.fds)
				c.ep.warnDrop("closed fds on a datagram that does not end a message", zap.Int("fds", len(d.fds)))
			}
			continue
		}
		if wire != nil && len(d.fds) == 0 {
			handled, err := wire(raw)
			if handled {
				if err != nil {
					c.ep.warnDrop("dropped an undecodable stats reply", zap.Error(err))
					continue
				}
				return nil
			}
		}
		done, err := c.handleReply(raw, d.fds, onReply)
		if done || err != nil {
			return err
		}
	}
}

// handleReply decodes one complete message and hands a reply to onReply;
// done reports that the request is answered (or failed with err).
func (c *Child) handleReply(raw []byte, fds []int, onReply replyFunc) (done bool, err error) {
	msg := &c.ep.msg
	proto.Reset(msg)
	if err := proto.Unmarshal(raw, msg); err != nil {
		fdpass.CloseAll(fds)
		c.ep.warnDrop("dropped an undecodable HotRestartMessage", zap.Error(err))
		return false, nil
	}
	if msg.GetDidntRecognizeYourLastMessage() {
		fdpass.CloseAll(fds)
		return true, fmt.Errorf("%s: %w", c.parentName, ErrNotRecognized)
	}
	reply := msg.GetReply()
	if reply == nil {
		fdpass.CloseAll(fds)
		c.ep.warnDrop("dropped a message that is not a reply")
		return false, nil
	}
	if _, isPass := reply.Reply.(*pbReply_PassListenSocket); !isPass && len(fds) > 0 {
		fdpass.CloseAll(fds)
		fds = nil
		c.ep.warnDrop("closed fds that came with a reply that carries none")
	}
	ok, err := onReply(reply, fds)
	if !ok || err != nil {
		fdpass.CloseAll(fds)
	}
	if err != nil {
		return true, err
	}
	if !ok {
		c.ep.log.Debug("dropped a reply of another type (stale)")
	}
	return ok, nil
}

// drainStale discards datagrams already queued before a request after an
// abandoned one: late replies (didnt_recognize_your_last_message above all)
// that would otherwise be taken for the answer to this one. Late replies of
// another type are skipped by type anyway.
func (c *Child) drainStale() {
	c.ep.setDeadline(time.Unix(1, 0))
	for {
		m, err := fdpass.RecvMsg(c.ep.conn, c.ep.rbuf, 1)
		if err != nil && !errors.Is(err, fdpass.ErrTruncated) {
			break
		}
		fdpass.CloseAll(m.FDs)
		c.ep.log.Debug("discarded a stale datagram")
	}
	c.ep.dec.Reset()
}
