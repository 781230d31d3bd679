package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHotRestartVersionUpgradeRefused: the restarter in --envoy mode runs
// the real testproxy through a wrapper that can report another hot restart
// version (TESTPROXY_HOT_RESTART_VERSION from a file), as a binary upgrade
// would. A reload across versions is refused before anything starts, names
// both versions, and the serving generation keeps serving; with the version
// back, the reload goes through.
func TestHotRestartVersionUpgradeRefused(t *testing.T) {
	env := newProxyEnv(t)
	dir := t.TempDir()
	verFile := filepath.Join(dir, "version")
	wrapper := filepath.Join(dir, "proxy")
	script := "#!/bin/sh\nv=$(cat " + verFile + " 2>/dev/null)\n" +
		"if [ -n \"$v\" ]; then TESTPROXY_HOT_RESTART_VERSION=$v; export TESTPROXY_HOT_RESTART_VERSION; fi\n" +
		"exec " + env.Bin.Testproxy + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	args := env.RestarterArgs([]string{"--drain-time", "1s", "--parent-shutdown-time", "2s"})
	for i, a := range args { // run the wrapper instead of testproxy itself
		if a == env.Bin.Testproxy {
			args[i] = wrapper
		}
	}
	startRestarter(t, args...)
	waitLive(t, env.Admin, 0, 20*time.Second)
	reload := func() (string, error) {
		out, err := exec.Command(env.Bin.Restarter, "reload", "--runtime-dir", env.RuntimeDir, "--timeout", "30s").CombinedOutput()
		return string(out), err
	}
	if out, err := reload(); err != nil {
		t.Fatalf("reload with the same version: %v\n%s", err, out)
	}
	waitLive(t, env.Admin, 1, 20*time.Second)

	if err := os.WriteFile(verFile, []byte("12.upgraded\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := reload()
	if err == nil || !strings.Contains(out, `"11.testproxy"`) || !strings.Contains(out, `"12.upgraded"`) || !strings.Contains(out, "full restart") {
		t.Fatalf("reload across hot restart versions: %v\n%s\nwant a refusal naming 11.testproxy, 12.upgraded and a full restart", err, out)
	}
	if state, epoch, err := getServerInfo(env.Admin); err != nil || state != "LIVE" || epoch != 1 {
		t.Fatalf("after the refused reload: %s epoch %d (%v), want epoch 1 LIVE", state, epoch, err)
	}
	if body, err := getBody(env.URL("/")); err != nil || !strings.HasPrefix(body, "epoch 1 ") {
		t.Fatalf("service after the refused reload: %q %v", body, err)
	}

	if err := os.Remove(verFile); err != nil {
		t.Fatal(err)
	}
	if out, err := reload(); err != nil {
		t.Fatalf("reload with the serving version again: %v\n%s", err, out)
	}
	waitLive(t, env.Admin, 2, 20*time.Second)
}
