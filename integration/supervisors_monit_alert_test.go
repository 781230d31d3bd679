package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

// TestMonitReloadFailureAlerts: what examples/monit/envoy.monitrc claims,
// under a real monit. A config change runs `restarter reload` through
// monit's exec action, which ignores the program's exit status (monit
// 5.33: the failed reload changes no check's status); the example's
// `check program` on `restarter status --json` turns a failed last reload
// into a failed check (an alert), and back to OK after a good reload.
func TestMonitReloadFailureAlerts(t *testing.T) {
	monitBin := requireTools(t, "monit", "monit")[0]
	env := newProxyEnv(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "proxy.conf")
	if err := os.WriteFile(conf, []byte("body: one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	startRestarter(t, env.RestarterArgs(nil, "-c", conf)...)
	waitLive(t, env.Admin, 0, 20*time.Second)

	ctl := func(cmd ...string) string {
		return shellJoin(append(append([]string{env.Bin.Restarter}, cmd...), "--runtime-dir", env.RuntimeDir))
	}
	reload := filepath.Join(dir, "reload")
	writeRunScript(t, reload, ctl("reload"))
	check := filepath.Join(dir, "check-last-reload")
	// The example's check, with this test's paths.
	writeRunScript(t, check, fmt.Sprintf(`out=$(%s) || exit 2
if printf '%%s' "$out" | grep -q '"ok": *false'; then echo "last reload failed"; exit 1; fi
echo "last reload ok"`, ctl("status", "--json")))

	rc := filepath.Join(dir, "monitrc")
	if err := os.WriteFile(rc, []byte(fmt.Sprintf(`set daemon 1
set logfile %[1]s/monit.log
set pidfile %[1]s/monit.pid
set idfile %[1]s/monit.id
set statefile %[1]s/monit.state
set httpd unixsocket %[1]s/monit.sock
  allow test:test

check file proxy_config with path %[2]s
  if changed checksum then exec "%[3]s"

check program proxy_last_reload with path "%[4]s"
  if status != 0 then alert
`, dir, conf, reload, check)), 0o600); err != nil {
		t.Fatal(err)
	}
	runTool(t, monitBin, "-t", "-c", rc)
	startReaped(t, monitBin, "-I", "-c", rc)
	status := func(name string) string {
		out, _ := toolOutput(monitBin, "-c", rc, "status", name)
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "status" {
				return strings.Join(f[1:], " ")
			}
		}
		return ""
	}
	waitStatus := func(name, want string) {
		t.Helper()
		testutil.WaitFor(t, 30*time.Second, func() error {
			if st := status(name); st != want {
				return fmt.Errorf("monit status %s: %q, want %q", name, st, want)
			}
			return nil
		})
	}
	waitStatus("proxy_last_reload", "OK")

	// A broken config: monit sees the change and runs the reload, which fails.
	if err := os.WriteFile(conf, []byte("fail: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitStatus("proxy_last_reload", "Status failed")
	if st := status("proxy_config"); strings.Contains(strings.ToLower(st), "fail") {
		t.Logf("note: the file check itself reports %q", st)
	} else {
		t.Logf("the file check whose exec failed still reports %q: the exec action raises nothing", st)
	}
	if st, ep, err := getServerInfo(env.Admin); err != nil || st != "LIVE" || ep != 0 {
		t.Fatalf("after the failed reload: %s epoch %d (%v), want epoch 0 LIVE", st, ep, err)
	}

	// Fixed config: the next reload succeeds and the check recovers.
	if err := os.WriteFile(conf, []byte("body: two\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitStatus("proxy_last_reload", "OK")
	waitLive(t, env.Admin, 1, 20*time.Second)
}
