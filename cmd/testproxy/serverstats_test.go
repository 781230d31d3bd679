package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
	"github.com/hotrestart/restarter/uds"
)

// TestParentServerStats: like Envoy's server, the child folds the parent's
// num_connections and memory_allocated from the stats reply into
// server.parent_connections, server.total_connections and
// server.memory_allocated; they drop back to its own once the parent is gone.
func TestParentServerStats(t *testing.T) {
	in := newInstance(t)
	common := []string{"--drain-time-s", "30", "--parent-shutdown-time-s", "60", "--stats-flush-interval", "100ms"}
	p0 := in.start(t, 0, common...)
	admin0 := p0.waitLive(t, 0)
	// One request in flight on epoch 0 for the whole test: one parent connection.
	slow := make(chan error, 1)
	go func() {
		code, body, err := get("http://" + in.listen() + "/slow?ms=600000")
		if err == nil && code != 200 {
			err = fmt.Errorf("status %d: %s", code, body)
		}
		slow <- err
	}()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if n, err := stat(admin0, "server.total_connections"); err != nil || n != 1 {
			return fmt.Errorf("epoch 0 server.total_connections = %d (%v), want 1", n, err)
		}
		return nil
	})
	if n, err := stat(admin0, "server.parent_connections"); err != nil || n != 0 {
		t.Errorf("epoch 0 server.parent_connections = %d (%v), want 0 (no parent)", n, err)
	}
	p1 := in.start(t, 1, common...)
	admin1 := p1.waitLive(t, 1)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if n, err := stat(admin1, "server.parent_connections"); err != nil || n != 1 {
			return fmt.Errorf("epoch 1 server.parent_connections = %d (%v), want 1", n, err)
		}
		// /stats itself is served by admin, not counted: ours is 0.
		if n, err := stat(admin1, "server.total_connections"); err != nil || n != 1 {
			return fmt.Errorf("epoch 1 server.total_connections = %d (%v), want 1", n, err)
		}
		return nil
	})
	withParent, err := stat(admin1, "server.memory_allocated")
	if err != nil || withParent == 0 {
		t.Fatalf("epoch 1 server.memory_allocated = %d (%v), want ours plus the parent's", withParent, err)
	}
	p0.cmd.Process.Kill()
	p0.waitExit(t, 10*time.Second)
	<-slow
	testutil.WaitFor(t, 20*time.Second, func() error {
		if n, err := stat(admin1, "server.parent_connections"); err != nil || n != 0 {
			return fmt.Errorf("epoch 1 server.parent_connections = %d (%v) after the parent died, want 0", n, err)
		}
		return nil
	})
	if strings.Contains(p1.log.String(), "panic") {
		t.Errorf("epoch 1 panicked")
	}
}

// TestShutdownAdminReply: testproxy as a parent answers shutdown_admin as
// Envoy's server does: the original start time and enable_reuse_port_default
// true (Envoy's default; a child takes it over).
func TestShutdownAdminReply(t *testing.T) {
	in := newInstance(t)
	p0 := in.start(t, 0)
	p0.waitLive(t, 0)
	id, _ := strconv.ParseUint(in.baseID, 10, 32)
	c, err := uds.DialChild(uds.Config{SocketPath: in.socket, BaseID: uint32(id), Epoch: 1, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rep, err := c.ShutdownParentAdmin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rep.EnableReusePortDefault {
		t.Errorf("enable_reuse_port_default = false, want true (Envoy's default)")
	}
	if d := time.Since(time.Unix(int64(rep.OriginalStartTimeUnixSeconds), 0)); d < 0 || d > 5*time.Minute {
		t.Errorf("original_start_time_unix_seconds %d is not the parent's start", rep.OriginalStartTimeUnixSeconds)
	}
}
