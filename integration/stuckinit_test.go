package integration

import (
	"encoding/binary"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/shmguard"
)

// TestStuckInitializingFlagCleared: a generation that died during start-up
// left the shared-memory INITIALIZING flag set (envoy #33446; testproxy
// --shared-memory models it, recording the holder's pid). Without help every
// later reload would fail with "previous envoy process is still
// initializing". The restarter sees before the reload that the holder is
// dead, clears the flag, and the reload succeeds; the service never stops.
func TestStuckInitializingFlagCleared(t *testing.T) {
	env := newProxyEnv(t)
	shmDir := t.TempDir()
	t.Setenv("TESTPROXY_SHM_DIR", shmDir) // the restarter looks there too
	startRestarter(t, env.RestarterArgs([]string{"--drain-time", "2s", "--parent-shutdown-time", "4s"}, "--shared-memory")...)
	waitLive(t, env.Admin, 0, 20*time.Second)

	// What a generation SIGKILLed while initializing leaves behind.
	path := shmguard.Path(shmDir, env.BaseID)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("epoch 0 made no shared-memory file: %v", err)
	}
	dead := exec.Command("/bin/true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(b[48:], shmguard.Initializing)
	binary.LittleEndian.PutUint64(b[56:], uint64(dead.Process.Pid))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	out, err := exec.Command(env.Bin.Restarter, "reload", "--runtime-dir", env.RuntimeDir, "--timeout", "30s").CombinedOutput()
	if err != nil {
		t.Fatalf("reload with a stuck flag: %v\n%s", err, out)
	}
	waitLive(t, env.Admin, 1, 20*time.Second)
	if body, err := getBody(env.URL("/")); err != nil || !strings.HasPrefix(body, "epoch 1 ") {
		t.Fatalf("after the reload: %q %v, want epoch 1 serving", body, err)
	}
	// The reload succeeding is the proof (the proxy refuses to start on a
	// set flag); the flag left is no longer the dead holder's.
	if b, err := os.ReadFile(path); err != nil || binary.LittleEndian.Uint64(b[48:]) == shmguard.Initializing &&
		binary.LittleEndian.Uint64(b[56:]) == uint64(dead.Process.Pid) {
		t.Errorf("shared memory after the reload (%v): still the dead holder's INITIALIZING flag", err)
	}
}
