package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

func freeUDPAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// udpAsk sends payload to addr from a fresh socket and returns the answer.
func udpAsk(t *testing.T, addr, payload string) (string, error) {
	t.Helper()
	c, err := net.Dial("udp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	if _, err := c.Write([]byte(payload)); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// TestUDPForwardedDuringDrain: testproxy's UDP listener plays a QUIC
// listener across a hot restart. Epoch 1 takes the socket but, like Envoy's
// child, does not read it while epoch 0 drains; epoch 0 forwards every
// datagram over the udp_ twin sockets (forwarded_udp_packet) and epoch 1
// answers it from the shared socket. Once epoch 0 is terminated, epoch 1
// reads the socket itself. No datagram is lost on the way.
func TestUDPForwardedDuringDrain(t *testing.T) {
	in := newInstance(t)
	udp := freeUDPAddr(t)
	common := []string{"--udp-listen", udp, "--drain-time-s", "60", "--parent-shutdown-time-s", "120", "--stats-flush-interval", "100ms"}
	p0 := in.start(t, 0, common...)
	p0.waitLive(t, 0)
	var ans string
	testutil.WaitFor(t, 10*time.Second, func() (err error) {
		ans, err = udpAsk(t, udp, "hello")
		return err
	})
	if !strings.HasPrefix(ans, "epoch 0 pid ") || !strings.HasSuffix(ans, ": hello") || strings.Contains(ans, "forwarded") {
		t.Fatalf("epoch 0 answered %q, want its own answer", ans)
	}

	p1 := in.start(t, 1, common...)
	admin1 := p1.waitLive(t, 1)
	// Epoch 0 drains: every datagram it reads goes to epoch 1.
	const n = 50
	for i := range n {
		want := fmt.Sprintf("during drain %d", i)
		ans, err := udpAsk(t, udp, want)
		if err != nil {
			t.Fatalf("datagram %d during drain: %v", i, err)
		}
		if !strings.HasPrefix(ans, "epoch 1 pid ") || !strings.HasSuffix(ans, " forwarded: "+want) {
			t.Fatalf("datagram %d during drain answered %q, want epoch 1 answering a forwarded packet", i, ans)
		}
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		got, err := stat(admin1, "udp.forwarded_received")
		if err != nil || got != n {
			return fmt.Errorf("epoch 1 udp.forwarded_received = %d (%v), want %d", got, err, n)
		}
		return nil
	})

	// Once its parent is gone, epoch 1 reads the socket itself.
	p0.cmd.Process.Kill()
	p0.waitExit(t, 10*time.Second)
	testutil.WaitFor(t, 20*time.Second, func() error {
		ans, err := udpAsk(t, udp, "after")
		if err != nil {
			return err
		}
		if ans == "" || !strings.HasPrefix(ans, "epoch 1 pid ") || strings.Contains(ans, "forwarded") {
			return fmt.Errorf("after the parent died: %q, want epoch 1's own answer", ans)
		}
		return nil
	})
}
