package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestS6 runs the restarter as an s6 service (examples/s6/envoy/run adapted
// to the test proxy) under a real s6-supervise: s6-svc -h reloads with no
// failed request while s6-svstat keeps showing the same pid, and s6-svc -d
// stops every generation cleanly.
func TestS6(t *testing.T) {
	tools := requireTools(t, "s6", "s6-supervise", "s6-svc", "s6-svstat")
	superviseBin, svcBin, svstatBin := tools[0], tools[1], tools[2]
	env := supervisedEnv(t)
	svc := filepath.Join(t.TempDir(), "testproxy")
	cleanupLeftovers(t, env.ProxyEnv, svc, superviseBin)
	writeRunScript(t, filepath.Join(svc, "run"), "exec "+env.Command)

	sup := startProc(t, superviseBin, svc)
	// Before startProc's SIGTERM of s6-supervise: down, then exit.
	t.Cleanup(func() { _, _ = toolOutput(svcBin, "-wD", "-T", "15000", "-dx", svc) })

	svstat := func() (string, error) {
		out, err := toolOutput(svstatBin, svc)
		return strings.TrimSpace(out), err
	}
	upPid := func() (int, error) {
		out, err := svstat()
		if err != nil {
			return 0, err
		}
		if !strings.HasPrefix(out, "up ") || pidIn(out) == 0 {
			return 0, fmt.Errorf("s6-svstat: %q, want up with a pid", out)
		}
		return pidIn(out), nil
	}
	pid0 := reloadsKeepPid(t, env, "s6-svstat", upPid, func() { runTool(t, svcBin, "-h", svc) })

	// s6-svc -d: SIGTERM (then SIGCONT) and keep it down.
	runTool(t, svcBin, "-wD", "-T", "15000", "-d", svc)
	out, err := svstat()
	if err != nil || !strings.HasPrefix(out, "down ") {
		t.Fatalf("s6-svstat after s6-svc -d: %q, %v", out, err)
	}
	// s6-svstat reports how the service ended: "exitcode 0" for a clean stop.
	if !strings.Contains(out, "exitcode 0") {
		t.Errorf("s6-svstat after s6-svc -d: %q, want exitcode 0 (a clean stop)", out)
	}
	t.Logf("s6: after s6-svc -d: %s", out)
	waitProxies(t, env.ProxyEnv, 0, 10*time.Second)
	if alive(pid0) {
		t.Errorf("restarter pid %d alive after s6-svc -d", pid0)
	}
	if _, err := os.Stat(env.PidFile); !os.IsNotExist(err) {
		t.Errorf("pid file %s after s6-svc -d: %v, want it removed", env.PidFile, err)
	}
	assertNothingLeft(t, env.ProxyEnv, 10*time.Second)

	// s6-svc -x: s6-supervise exits now that the service is down.
	runTool(t, svcBin, "-x", svc)
	if code, err := sup.Wait(10 * time.Second); err != nil || code != 0 {
		t.Errorf("s6-supervise exit: %d, %v", code, err)
	}
}
