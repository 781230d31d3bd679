//go:build linux

package uds

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hotrestart/restarter/uds/hotrestartpb"
	"google.golang.org/protobuf/proto"
)

// TestForwardedUDPPacket: a packet the parent forwards over the udp_ twins
// reaches the child's handler with every field, in order.
func TestForwardedUDPPacket(t *testing.T) {
	p, c, _ := startPair(t, ParentHandler{})
	got := make(chan ForwardedUDPPacket, 4)
	c.ServeForwardedUDP(func(pkt ForwardedUDPPacket) { got <- pkt })
	at := time.UnixMicro(1_700_000_000_123_456)
	want := []ForwardedUDPPacket{
		{LocalAddr: "udp://127.0.0.1:443", PeerAddr: "udp://127.0.0.1:5555", ReceiveTime: at, Payload: []byte("quic initial"), Worker: 1},
		{LocalAddr: "udp://[::1]:443", PeerAddr: "udp://[::1]:6666", ReceiveTime: at, Payload: bytes.Repeat([]byte{7}, 5000), Worker: 0},
	}
	for _, pkt := range want {
		if err := p.ForwardUDPPacket(pkt); err != nil {
			t.Fatal(err)
		}
	}
	for i, w := range want {
		select {
		case g := <-got:
			if g.LocalAddr != w.LocalAddr || g.PeerAddr != w.PeerAddr || !g.ReceiveTime.Equal(w.ReceiveTime) ||
				!bytes.Equal(g.Payload, w.Payload) || g.Worker != w.Worker {
				t.Errorf("packet %d: got %+v, want %+v", i, g, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("packet %d never reached the child", i)
		}
	}
	// The main parent socket does not take forwarded packets (Envoy's
	// parent answers didnt_recognize_your_last_message there).
	fwd := &pbMsg{Requestreply: &hotrestartpb.HotRestartMessage_Request_{Request: &pbRequest{
		Request: &pbRequest_ForwardedUdpPacket{ForwardedUdpPacket: &hotrestartpb.HotRestartMessage_Request_ForwardedUdpPacket{Payload: []byte("x")}},
	}}}
	reply, _, _ := p.dispatch(mustMarshal(t, fwd))
	if reply == nil || !reply.GetDidntRecognizeYourLastMessage() {
		t.Errorf("forwarded_udp_packet on the main socket: reply %v, want didnt_recognize", reply)
	}
}

// TestForwardUDPNoChild: with no child bound, forwarding fails at once with
// ErrNoChild (Envoy blocks ~10 s retrying, then aborts).
func TestForwardUDPNoChild(t *testing.T) {
	p, err := ListenParent(testConfig(t, testPath(), 0), ParentHandler{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.ForwardUDPPacket(ForwardedUDPPacket{LocalAddr: "udp://127.0.0.1:1", Payload: []byte("x")}); !errors.Is(err, ErrNoChild) {
		t.Fatalf("ForwardUDPPacket without a child: %v, want ErrNoChild", err)
	}
}

// TestEpochZeroBindsChildSockets: like Envoy, epoch 0 binds child_0 and
// udp_child_0 too; a second instance on the same base id collides at once,
// and requests from epoch 0 fail with ErrNoParent without a send.
func TestEpochZeroBindsChildSockets(t *testing.T) {
	path := testPath()
	c, err := DialChild(testConfig(t, path, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := DialChild(testConfig(t, path, 3)); err == nil {
		t.Fatal("a second DialChild on child_0 succeeded, want address in use")
	}
	if err := c.TestConnection(context.Background()); !errors.Is(err, ErrNoParent) {
		t.Errorf("TestConnection at epoch 0: %v, want ErrNoParent", err)
	}
	p, err := ListenParent(testConfig(t, path, 0), ParentHandler{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if _, err := ListenParent(testConfig(t, path, 3), ParentHandler{}); err == nil {
		t.Fatal("a second ListenParent on parent_0 / udp_parent_0 succeeded, want address in use")
	}
}

func TestUDPListenersRoute(t *testing.T) {
	u := NewUDPListeners()
	var hit string
	add := func(addr string, w uint32) {
		t.Helper()
		if err := u.Add(addr, w, func(ForwardedUDPPacket) { hit = addr }); err != nil {
			t.Fatal(err)
		}
	}
	add("udp://127.0.0.1:443", 0)
	add("udp://127.0.0.1:443", 1)
	add("0.0.0.0:8443", 0)
	add("udp://[::]:9443", 0)
	for _, tc := range []struct {
		local  string
		worker uint32
		want   string // "" = not delivered
	}{
		{"udp://127.0.0.1:443", 1, "udp://127.0.0.1:443"},
		{"udp://127.0.0.1:443", 2, ""},
		{"udp://127.0.0.2:443", 0, ""},
		{"udp://10.0.0.1:8443", 0, "0.0.0.0:8443"},
		{"udp://10.0.0.1:9443", 0, "udp://[::]:9443"},
		{"udp://[2001:db8::1]:9443", 0, "udp://[::]:9443"},
		{"udp://[2001:db8::1]:8443", 0, ""},
		{"not an address", 0, ""},
	} {
		hit = ""
		ok := u.Deliver(ForwardedUDPPacket{LocalAddr: tc.local, Worker: tc.worker})
		if hit != tc.want || ok != (tc.want != "") {
			t.Errorf("Deliver(%s, worker %d) went to %q (%v), want %q", tc.local, tc.worker, hit, ok, tc.want)
		}
	}
	if err := u.Add("udp://nohost", 0, nil); err == nil {
		t.Errorf("Add of a bad address succeeded")
	}
}

func mustMarshal(t *testing.T, m *pbMsg) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
