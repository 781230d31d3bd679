package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hotrestart/restarter/control"
)

// Issue 8 item 3: another process answering LIVE at epoch 0 on the admin
// address does not make epoch 0 ready; the restarter tells the operator who
// holds it, in status while it waits (and in its log) and in its exit reason.
func TestReadyEnvoyAdminHeldByAnotherProcess(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"state":"LIVE","command_line_options":{"restart_epoch":0}}`)
	}))
	defer other.Close()
	addr := strings.TrimPrefix(other.URL, "http://")
	const readyTimeout = 3 * time.Second
	r := startRestarter(t, nil, args(fast[:2], []string{"--ready-envoy-admin", addr, "--ready-interval", "50ms",
		"--ready-timeout", readyTimeout.String(), "--term-wait", "1s"}, proxyArgs())...)
	held := fmt.Sprintf("%s is held by pid %d", addr, os.Getpid())
	// What the operator sees while epoch 0 waits (before --ready-timeout
	// ends the wait): the holder, by pid.
	r.waitStatus("the holder named while epoch 0 waits", func(st control.Status) error {
		if len(st.Generations) == 0 {
			return fmt.Errorf("no generation yet")
		}
		g := st.Generations[0]
		if g.Ready != nil {
			t.Fatalf("epoch 0 ready on another process's answer: %+v", g)
		}
		if !strings.Contains(g.Health, held) {
			if g.State != control.StateStarting {
				t.Fatalf("epoch 0 is %s and its health %q does not name the holder (%q)", g.State, g.Health, held)
			}
			return fmt.Errorf("health %q does not name the holder (%q) yet", g.Health, held)
		}
		return nil
	})
	if code := r.wait(30 * time.Second); code != 1 {
		t.Fatalf("exit %d, want 1 (the first generation never became ready)", code)
	}
	if rec := r.exitRecord(); !strings.Contains(rec.Reason, held) {
		t.Errorf("exit reason %q does not name the holder (%q)", rec.Reason, held)
	}
}

// --ready-url on a local address held by another process: the exit reason
// names the holder.
func TestReadyURLHeldByAnotherProcess(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer other.Close()
	r := startRestarter(t, nil, args(fast[:2], []string{"--ready-url", other.URL + "/healthz", "--ready-interval", "50ms",
		"--ready-timeout", "1s", "--term-wait", "1s"}, proxyArgs())...)
	if code := r.wait(30 * time.Second); code != 1 {
		t.Fatalf("exit %d, want 1 (the first generation never became ready)", code)
	}
	if held, rec := fmt.Sprintf("is held by pid %d", os.Getpid()), r.exitRecord(); !strings.Contains(rec.Reason, held) {
		t.Errorf("exit reason %q does not name the holder (%q)", rec.Reason, held)
	}
}
