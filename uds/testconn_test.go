//go:build linux

package uds

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hotrestart/restarter/uds/hotrestartpb"
	"google.golang.org/protobuf/proto"
)

// TestTestConnectionGetsNoReply: like Envoy's parent, ours sends nothing for
// test_connection, so the next datagram the child reads is the reply to its
// next request (Envoy's child would take a stray answer for that reply).
func TestTestConnectionGetsNoReply(t *testing.T) {
	path := testPath()
	p, err := ListenParent(testConfig(t, path, 0), ParentHandler{
		ShutdownAdmin: func() ShutdownAdminReply { return ShutdownAdminReply{OriginalStartTimeUnixSeconds: 42} },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	// On the wire: test_connection, then shutdown_admin; one datagram back.
	ca, _ := sockAddr(SocketName(path, RoleChild, 0, 1))
	pa, _ := sockAddr(SocketName(path, RoleParent, 0, 0))
	conn, err := net.ListenUnixgram("unixgram", ca)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, payload := range [][]byte{{0x0a, 0x02, 0x3a, 0x00}, {0x0a, 0x02, 0x12, 0x00}} {
		if _, err := conn.WriteToUnix(frame(payload), pa); err != nil {
			t.Fatal(err)
		}
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, MaxDatagram)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var m hotrestartpb.HotRestartMessage
	if err := proto.Unmarshal(buf[headerLen:n], &m); err != nil {
		t.Fatal(err)
	}
	if m.GetReply().GetShutdownAdmin().GetOriginalStartTimeUnixSeconds() != 42 {
		t.Fatalf("first datagram after test_connection + shutdown_admin: %v, want the shutdown_admin reply", &m)
	}
	conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, err := conn.Read(buf); err == nil {
		t.Errorf("a second datagram arrived (%x): test_connection was answered", buf[:n])
	}
	conn.Close()

	// Through the library: TestConnection succeeds and the next request
	// gets its own reply.
	c, err := DialChild(testConfig(t, path, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.TestConnection(context.Background()); err != nil {
		t.Fatalf("TestConnection with a live parent: %v", err)
	}
	if sa, err := c.ShutdownParentAdmin(context.Background()); err != nil || sa.OriginalStartTimeUnixSeconds != 42 {
		t.Fatalf("ShutdownParentAdmin after TestConnection = %+v, %v", sa, err)
	}
}

// TestTestConnectionNoParentIsFinal: with nobody on the parent socket the
// first refusal is final (Envoy's "allow failure"): ErrNoParent at once,
// even with retries configured that would take a minute.
func TestTestConnectionNoParentIsFinal(t *testing.T) {
	cfg := testConfig(t, testPath(), 1)
	cfg.ConnectRetries, cfg.RetryDelay = 10, time.Minute
	c, err := DialChild(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.TestConnection(ctx); !errors.Is(err, ErrNoParent) {
		t.Fatalf("TestConnection without a parent: %v, want ErrNoParent at the first refusal", err)
	}
}
