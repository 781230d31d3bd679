package main

import (
	"github.com/hotrestart/restarter/internal/testutil"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHotRestartVersionMismatchRefused: in --envoy mode, a reload whose new
// binary reports another --hot-restart-version than the serving generation
// was started with is refused before anything starts (Envoy would fail the
// hot restart inside the new process, envoy #3804); the serving generation
// keeps serving, and the error names both versions and the way out (a full
// restart). The same version reloads as usual.
func TestHotRestartVersionMismatchRefused(t *testing.T) {
	t.Parallel()
	r := startRestarter(t, nil, args(fast, []string{"--envoy", "--no-validate"}, proxyArgs())...)
	runDir := filepath.Join(r.dir, "run")
	r.waitReady(0)
	if code, out, errs := cli(t, "reload", "--runtime-dir", runDir); code != 0 {
		t.Fatalf("reload with the same version: exit %d, %q %q", code, out, errs)
	}
	g1 := r.waitStart(1, 1)
	r.waitReady(1)

	// The "new binary" now reports another version; epoch 1 was started
	// with 11.fake (recorded by its own pre-reload check).
	if err := os.WriteFile(filepath.Join(r.dir, "hot-restart-version"), []byte("12.fake\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs := cli(t, "reload", "--runtime-dir", runDir)
	if code != 1 || !strings.Contains(errs, `"11.fake"`) || !strings.Contains(errs, `"12.fake"`) || !strings.Contains(errs, "full restart") {
		t.Fatalf("reload across versions: exit %d, stderr %q; want 1 naming 11.fake, 12.fake and a full restart", code, errs)
	}
	if n := len(r.starts()); n != 2 || !testutil.Alive(g1.pid) {
		t.Fatalf("after the refused reload: %d starts, epoch 1 alive %v; want 2 and alive", n, testutil.Alive(g1.pid))
	}
	if st := statusJSON(t, runDir); genState(st, 1) != "ready" || st.LastReload == nil || st.LastReload.OK {
		t.Fatalf("status: %+v; want epoch 1 ready and a failed last reload", st)
	}

	// Back to the serving version: the reload goes ahead.
	if err := os.WriteFile(filepath.Join(r.dir, "hot-restart-version"), []byte("11.fake\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := cli(t, "reload", "--runtime-dir", runDir); code != 0 {
		t.Fatalf("reload with the serving version again: exit %d, %q %q", code, out, errs)
	}
	r.waitStart(2, 1)
	r.waitReady(2)
	r.signal(syscall.SIGTERM)
	if code := r.wait(30 * time.Second); code != 0 {
		t.Errorf("restarter exit %d after SIGTERM, want 0", code)
	}
}

func TestVersionArgs(t *testing.T) {
	got := strings.Join(versionArgs([]string{"-c", "x.yaml", "--mode", "serve", "--mode=validate", "--log-level", "info"}), " ")
	if want := "-c x.yaml --log-level info --hot-restart-version"; got != want {
		t.Errorf("versionArgs = %q, want %q", got, want)
	}
}
