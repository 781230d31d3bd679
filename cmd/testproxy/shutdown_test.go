package main

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

// waitInitializing waits until the generation's admin answers /ready with
// 503 INITIALIZING (it holds the parent's admin and listen sockets).
func (p *proc) waitInitializing(t *testing.T) string {
	t.Helper()
	admin := p.admin(t)
	testutil.WaitFor(t, 30*time.Second, func() error {
		if p.exited() {
			t.Fatalf("%s exited (%v) while initializing", p.name, p.err)
		}
		code, body, err := get(admin + "/ready")
		if err != nil {
			return err
		}
		if code != 503 || strings.TrimSpace(body) != "INITIALIZING" {
			return fmt.Errorf("/ready = %d %q, want 503 INITIALIZING", code, body)
		}
		return nil
	})
	return admin
}

// TestShutdownTerminatesParent: like Envoy's InstanceImpl::shutdown(),
// SIGTERM, SIGINT and /quitquitquit of a generation send terminate to its
// hot-restart parent, also while it is still initializing (--start-delay).
// The parent exits 0 on that request; the generation itself exits 0.
func TestShutdownTerminatesParent(t *testing.T) {
	quit := func(t *testing.T, p *proc, admin string) {
		resp, err := client.Post(admin+"/quitquitquit", "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	sig := func(s syscall.Signal) func(*testing.T, *proc, string) {
		return func(t *testing.T, p *proc, _ string) { p.cmd.Process.Signal(s) }
	}
	for _, tc := range []struct {
		name   string
		live   bool // the child went live before it is stopped
		stopIt func(t *testing.T, p *proc, admin string)
	}{
		{"SIGTERM initializing", false, sig(syscall.SIGTERM)},
		{"SIGINT initializing", false, sig(syscall.SIGINT)},
		{"quitquitquit initializing", false, quit},
		{"SIGTERM live", true, sig(syscall.SIGTERM)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newInstance(t)
			common := []string{"--drain-time-s", "60", "--parent-shutdown-time-s", "120"}
			p0 := in.start(t, 0, common...)
			p0.waitLive(t, 0)
			var p1 *proc
			var admin1 string
			if tc.live {
				p1 = in.start(t, 1, common...)
				admin1 = p1.waitLive(t, 1)
			} else {
				p1 = in.start(t, 1, append(common, "--start-delay", "10m")...)
				admin1 = p1.waitInitializing(t)
			}
			if p0.exited() {
				t.Fatalf("epoch 0 exited before its child was stopped: %v", p0.err)
			}
			tc.stopIt(t, p1, admin1)
			// Epoch 0 drains for 60 s and its child's parent-shutdown
			// time is 120 s: only the child's terminate ends it now.
			if code := p0.waitExit(t, 20*time.Second); code != 0 {
				t.Errorf("epoch 0 exit %d after its child's shutdown, want 0 (terminated)", code)
			}
			if code := p1.waitExit(t, 20*time.Second); code != 0 {
				t.Errorf("epoch 1 exit %d, want 0", code)
			}
		})
	}
}

// TestShutdownWithoutParent: a generation whose parent is already gone, or
// that never had one, shuts down promptly on SIGTERM (no retry loop).
func TestShutdownWithoutParent(t *testing.T) {
	in := newInstance(t)
	common := []string{"--drain-time-s", "60", "--parent-shutdown-time-s", "120"}
	p0 := in.start(t, 0, common...)
	p0.waitLive(t, 0)
	p1 := in.start(t, 1, append(common, "--start-delay", "10m")...)
	p1.waitInitializing(t)
	p0.cmd.Process.Kill()
	p0.waitExit(t, 10*time.Second)
	start := time.Now()
	p1.cmd.Process.Signal(syscall.SIGTERM)
	if code := p1.waitExit(t, 20*time.Second); code != 0 {
		t.Errorf("epoch 1 exit %d after SIGTERM with its parent dead, want 0", code)
	}
	t.Logf("epoch 1 took %s to exit with a dead parent", time.Since(start))
}
