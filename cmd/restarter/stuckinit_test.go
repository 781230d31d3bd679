package main

import (
	"encoding/binary"
	"github.com/hotrestart/restarter/internal/testutil"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/hotrestart/restarter/internal/shmguard"
)

// TestEnvoyInitializingFlagRefusesReload: Envoy's shared memory for the
// instance's base id has INITIALIZING set while no generation is starting.
// The reload is refused before anything starts (the new epoch would exit
// with "previous envoy process is still initializing"), the reason says
// what the restarter cannot tell apart, and the serving generation stays;
// once the flag is clear the reload goes through.
func TestEnvoyInitializingFlagRefusesReload(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("Envoy's shared-memory layout is known for amd64 only")
	}
	t.Parallel()
	baseID := uint32(100_000 + rand.IntN(300_000_000))
	path := shmguard.EnvoyPath(baseID)
	b := make([]byte, 104) // size_, version_, two mutexes, flags_
	binary.NativeEndian.PutUint64(b[0:], 104)
	binary.NativeEndian.PutUint64(b[8:], 11)
	binary.NativeEndian.PutUint64(b[96:], 1)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Skipf("cannot write %s: %v", path, err)
	}
	t.Cleanup(func() { os.Remove(path) })

	r := startRestarter(t, nil, args(fast, []string{"--base-id", strconv.FormatUint(uint64(baseID), 10)}, proxyArgs())...)
	runDir := filepath.Join(r.dir, "run")
	r.waitReady(0)
	g0 := r.waitStart(0, 1)
	code, _, errs := cli(t, "reload", "--runtime-dir", runDir)
	if code != 1 || !strings.Contains(errs, "INITIALIZING") || !strings.Contains(errs, "full restart") || !strings.Contains(errs, "try again later") {
		t.Fatalf("reload with Envoy's INITIALIZING flag set: exit %d, stderr %q", code, errs)
	}
	if n := len(r.starts()); n != 1 || !testutil.Alive(g0.pid) {
		t.Fatalf("after the refused reload: %d starts, epoch 0 alive %v; want 1 and alive", n, testutil.Alive(g0.pid))
	}
	binary.NativeEndian.PutUint64(b[96:], 0)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errs := cli(t, "reload", "--runtime-dir", runDir); code != 0 {
		t.Fatalf("reload once the flag is clear: exit %d, %q %q", code, out, errs)
	}
	r.waitStart(1, 1)
}
