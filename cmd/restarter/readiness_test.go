package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// Issue 8 item 3: another process answering LIVE at epoch 0 on the admin
// address does not make epoch 0 ready; the restarter says who holds it, in
// its log while it waits and in its exit reason.
func TestReadyEnvoyAdminHeldByAnotherProcess(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"state":"LIVE","command_line_options":{"restart_epoch":0}}`)
	}))
	defer other.Close()
	addr := strings.TrimPrefix(other.URL, "http://")
	r := startRestarter(t, nil, args(fast[:2], []string{"--ready-envoy-admin", addr, "--ready-interval", "50ms",
		"--ready-timeout", "2s", "--term-wait", "1s"}, proxyArgs())...)
	if code := r.wait(30 * time.Second); code != 1 {
		t.Fatalf("exit %d, want 1 (the first generation never became ready)", code)
	}
	held := fmt.Sprintf("%s is held by pid %d", addr, os.Getpid())
	if r.countLog(`"msg":"exiting"`, held) != 1 {
		t.Errorf("no exit reason naming the holder (%q)", held)
	}
	if r.countLog(`"msg":"not ready yet"`, held) < 1 {
		t.Errorf("no 'not ready yet' warning naming the holder (%q) while waiting", held)
	}
	if r.countLog(`"msg":"ready"`) != 0 {
		t.Errorf("epoch 0 was ready on another process's answer")
	}
}

// --ready-url on a local address held by another process: the same.
func TestReadyURLHeldByAnotherProcess(t *testing.T) {
	t.Parallel()
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer other.Close()
	r := startRestarter(t, nil, args(fast[:2], []string{"--ready-url", other.URL + "/healthz", "--ready-interval", "50ms",
		"--ready-timeout", "1s", "--term-wait", "1s"}, proxyArgs())...)
	if code := r.wait(30 * time.Second); code != 1 {
		t.Fatalf("exit %d, want 1 (the first generation never became ready)", code)
	}
	if held := fmt.Sprintf("is held by pid %d", os.Getpid()); r.countLog(`"msg":"exiting"`, held) != 1 {
		t.Errorf("no exit reason naming the holder (%q)", held)
	}
}
