//go:build linux

package uds

import (
	"os"
	"testing"

	"github.com/hotrestart/restarter/uds/hotrestartpb"
	"google.golang.org/protobuf/proto"
)

func seedRequests() []*pbMsg {
	req := func(r *pbRequest) *pbMsg {
		return &pbMsg{Requestreply: &hotrestartpb.HotRestartMessage_Request_{Request: r}}
	}
	return []*pbMsg{
		req(&pbRequest{Request: &pbRequest_PassListenSocket{PassListenSocket: &hotrestartpb.HotRestartMessage_Request_PassListenSocket{Address: "tcp://127.0.0.1:80", WorkerIndex: 1}}}),
		req(&pbRequest{Request: &pbRequest_PassListenSocket{PassListenSocket: &hotrestartpb.HotRestartMessage_Request_PassListenSocket{Address: "tcp://127.0.0.1:80", WorkerIndex: 1, NetworkNamespace: "/var/run/netns/blue"}}}),
		req(&pbRequest{Request: &pbRequest_ShutdownAdmin{ShutdownAdmin: &hotrestartpb.HotRestartMessage_Request_ShutdownAdmin{}}}),
		req(&pbRequest{Request: &pbRequest_Stats{Stats: &hotrestartpb.HotRestartMessage_Request_Stats{}}}),
		req(&pbRequest{Request: &pbRequest_DrainListeners{DrainListeners: &hotrestartpb.HotRestartMessage_Request_DrainListeners{}}}),
		req(&pbRequest{Request: &pbRequest_Terminate{Terminate: &hotrestartpb.HotRestartMessage_Request_Terminate{}}}),
		req(&pbRequest{Request: &pbRequest_ForwardedUdpPacket{ForwardedUdpPacket: &hotrestartpb.HotRestartMessage_Request_ForwardedUdpPacket{
			LocalAddr: "udp://127.0.0.1:443", PeerAddr: "udp://[::1]:5555", ReceiveTimeEpochMicroseconds: 1, Payload: []byte("quic"), WorkerIndex: 2}}}),
		req(&pbRequest{Request: &hotrestartpb.HotRestartMessage_Request_TestConnection_{TestConnection: &hotrestartpb.HotRestartMessage_Request_TestConnection{}}}),
		notRecognized(),
	}
}

// FuzzDispatch feeds arbitrary datagrams (2-byte length, bytes) to a Parent's
// decoder and dispatcher. Nothing may panic, every reply must marshal, and
// only a pass_listen_socket reply may name an fd.
func FuzzDispatch(f *testing.F) {
	for _, m := range seedRequests() {
		b, _ := proto.Marshal(m)
		w := frame(b)
		f.Add(append([]byte{byte(len(w) >> 8), byte(len(w))}, w...))
	}
	for _, tc := range frameCases {
		if len(tc.dgrams) == 1 && len(tc.dgrams[0]) < 300 {
			w := tc.dgrams[0]
			f.Add(append([]byte{byte(len(w) >> 8), byte(len(w))}, w...))
		}
	}
	r, w, err := os.Pipe()
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	reg := NewListeners()
	reg.Add("tcp://127.0.0.1:80", 1, w)
	p, err := newIdleParent(Config{SocketPath: testPath()}, ParentHandler{Listeners: reg})
	if err != nil {
		f.Fatal(err)
	}
	defer p.closeSockets()
	// The child's udp forwarding socket decodes the same datagrams.
	c, err := DialChild(Config{SocketPath: testPath(), Epoch: 1})
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	f.Fuzz(func(t *testing.T, in []byte) {
		p.ep.dec.Reset()
		c.udp.dec.Reset()
		for rest := in; len(rest) >= 2; {
			n := min(int(rest[0])<<8|int(rest[1]), len(rest)-2)
			if pkt, ok := c.udp.decodeForwarded(rest[2 : 2+n]); ok && len(pkt.Payload) > len(in) {
				t.Fatalf("forwarded payload of %d bytes from %d input bytes", len(pkt.Payload), len(in))
			}
			rest = rest[2+n:]
		}
		for len(in) >= 2 {
			n := min(int(in[0])<<8|int(in[1]), len(in)-2)
			dg := in[2 : 2+n]
			in = in[2+n:]
			raw, ok, _ := p.ep.dec.Feed(dg)
			if !ok {
				continue
			}
			reply, wire, file := p.dispatch(raw)
			if wire != nil {
				var m pbMsg
				if reply != nil || file != nil || proto.Unmarshal(wire[headerLen:], &m) != nil || m.GetReply().GetStats() == nil {
					t.Fatalf("bad stats reply in wire form: %x", wire)
				}
				continue
			}
			if reply == nil {
				continue
			}
			if _, err := appendMessage(nil, reply); err != nil {
				t.Fatalf("reply does not marshal: %v", err)
			}
			_, isPass := reply.GetReply().GetReply().(*pbReply_PassListenSocket)
			if file != nil && !isPass {
				t.Fatalf("an fd would travel with %v", reply)
			}
		}
	})
}
