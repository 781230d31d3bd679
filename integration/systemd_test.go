package integration

// The restarter under a real systemd (PID 1 of a systemd-nspawn container,
// systemd_box_test.go): Debian 12's systemd 252 and bookworm-backports' 254.
// One box per systemd version, shared by the subtests; the restarter runs
// testproxy in Envoy mode with a config file the test edits to make a
// reload fail (testproxy's "fail: true" fails validation).
//
// Unit forms:
//   - execreload: Type=notify + ExecReload=restarter reload (252 and 254),
//     the form examples/systemd recommends;
//   - notifyreload: Type=notify-reload (254 only; 252 rejects the type).
//
// Skipped with -short, when not root, or where systemd-nspawn cannot run;
// the 254 box is skipped (with the reason) when its .debs cannot be fetched.
// Timings are logged (go test -v): boot, start, reload, failed reload, stop,
// watchdog restart.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

type unitForm struct {
	name    string
	service string // [Service] lines specific to the form
}

var (
	formExecReload = unitForm{"execreload", "Type=notify\n" +
		"ExecReload=/opt/restarter/restarter reload --name rt --runtime-dir /run/restarter\n"}
	formNotifyReload = unitForm{"notifyreload", "Type=notify-reload\n"}
)

// startDelay keeps each generation INITIALIZING this long, so that a start
// or reload that returns earlier did not wait for readiness.
const startDelay = 700 * time.Millisecond

func unitText(f unitForm) string {
	return "[Unit]\nDescription=restarter under test (" + f.name + ")\n\n[Service]\n" + f.service +
		"NotifyAccess=main\n" +
		"Environment=TESTPROXY_START_DELAY=" + startDelay.String() + " RESTARTER_INTERNAL_TEST_HOOKS=1\n" +
		"ExecStart=/opt/restarter/restarter --name rt --runtime-dir /run/restarter --log-format json --envoy \\\n" +
		"  --drain-time 1s --parent-shutdown-time 2s --term-wait 5s \\\n" +
		"  --ready-envoy-admin 127.0.0.1:9901 --ready-interval 20ms --ready-timeout 20s \\\n" +
		"  -- /opt/restarter/testproxy --listen 127.0.0.1:10000 --admin-address 127.0.0.1:9901 \\\n" +
		"  -c /etc/rt.conf --hot-restart-retry-delay 100ms --stats-flush-interval 1s\n" +
		"WatchdogSec=4s\nTimeoutStopSec=20s\nTimeoutStartSec=30s\nKillMode=mixed\n" +
		"Restart=on-failure\nRestartSec=100ms\nRuntimeDirectory=restarter\n"
}

func TestSystemd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the systemd tests boot containers")
	}
	skipUnlessLinux(t)
	if err := boxPrereqs(); err != nil {
		t.Skipf("systemd tests skipped: %v", err)
	}
	bin := buildBinaries(t)
	for _, flavor := range []string{"252", "254"} {
		t.Run("systemd"+flavor, func(t *testing.T) {
			box, err := bootBox(t, flavor, bin.Dir)
			var nb errNoBox
			if errors.As(err, &nb) {
				t.Skipf("systemd %s box cannot run here: %v", flavor, err)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer box.Down()
			t.Logf("timing: systemd %s box booted in %v (%s)", flavor, box.BootDur.Round(time.Millisecond), box.Version)
			t.Run("example-unit-verifies", func(t *testing.T) { verifyExampleUnit(t, box) })
			forms := []unitForm{formExecReload}
			if flavor == "254" {
				forms = append(forms, formNotifyReload)
			} else {
				t.Run("notifyreload-rejected", func(t *testing.T) {
					box.WriteFile("root/rt-nr.service", unitText(formNotifyReload))
					// Measured: 252 logs the line and ignores the setting (verify
					// exits 0), so the unit would silently run as Type=simple.
					out, err := box.Exec("systemd-analyze", "verify", "/root/rt-nr.service")
					if !strings.Contains(out, "Failed to parse service type") || !strings.Contains(out, "notify-reload") {
						t.Fatalf("systemd %s did not reject Type=notify-reload (err %v): %s", flavor, err, out)
					}
					t.Logf("systemd %s: %s", flavor, lastLines(out, 2))
				})
			}
			for _, f := range forms {
				t.Run(f.name, func(t *testing.T) { testUnitForm(t, box, f) })
			}
		})
	}
}

// boxInfo is the proxy's /server_info inside the box.
func boxInfo(box *sdBox) (state string, epoch int, err error) {
	out, err := box.Exec("curl", "-s", "--max-time", "2", "http://127.0.0.1:9901/server_info")
	if err != nil {
		return "", -1, fmt.Errorf("curl server_info: %v: %s", err, out)
	}
	var si struct {
		State string `json:"state"`
		Opts  struct {
			Epoch int `json:"restart_epoch"`
		} `json:"command_line_options"`
	}
	if err := json.Unmarshal([]byte(out), &si); err != nil {
		return "", -1, fmt.Errorf("server_info %q: %w", out, err)
	}
	return si.State, si.Opts.Epoch, nil
}

func assertLive(t *testing.T, box *sdBox, epoch int, when string) {
	t.Helper()
	st, ep, err := boxInfo(box)
	if err != nil || st != "LIVE" || ep != epoch {
		t.Fatalf("%s: server_info state %q epoch %d (%v), want LIVE at epoch %d", when, st, ep, err, epoch)
	}
	if body, err := box.Exec("curl", "-sf", "--max-time", "2", "http://127.0.0.1:10000/"); err != nil {
		t.Fatalf("%s: GET / on the data listener: %v: %s", when, err, body)
	}
}

func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

func testUnitForm(t *testing.T, box *sdBox, f unitForm) {
	const unit = "rt.service"
	box.WriteFile("etc/rt.conf", "body: one\n")
	box.Install(unit, unitText(f))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("journal of %s:\n%s", unit, lastN(box.Journal(unit), 80))
		}
		box.Systemctl("stop", unit)
		box.Systemctl("reset-failed", unit)
	})
	systemctl := func(args ...string) (string, int, time.Duration) {
		var out string
		var code int
		d := timed(func() { out, code = box.Systemctl(args...) })
		return out, code, d
	}

	// start returns once epoch 0 is ready (READY=1), not before.
	out, code, d := systemctl("start", unit)
	if code != 0 {
		t.Fatalf("systemctl start: exit %d: %s", code, out)
	}
	t.Logf("timing: %s start %v", f.name, d.Round(time.Millisecond))
	if d < startDelay {
		t.Errorf("systemctl start returned after %v, before the generation could be ready (start delay %v)", d, startDelay)
	}
	assertLive(t, box, 0, "right after systemctl start")
	mainPID := box.Show(unit, "MainPID")

	// reload returns once epoch 1 is ready.
	out, code, d = systemctl("reload", unit)
	if code != 0 {
		t.Fatalf("systemctl reload: exit %d: %s", code, out)
	}
	t.Logf("timing: %s reload %v", f.name, d.Round(time.Millisecond))
	assertLive(t, box, 1, "right after systemctl reload")
	if got := box.Show(unit, "MainPID"); got != mainPID {
		t.Fatalf("MainPID changed across a reload: %s -> %s", mainPID, got)
	}

	// A reload whose validation fails: epoch 1 keeps serving; what systemctl says depends on the form.
	box.WriteFile("etc/rt.conf", "fail: true\n")
	out, code, d = systemctl("reload", unit)
	t.Logf("timing: %s failed reload %v; systemctl reload exit %d: %s", f.name, d.Round(time.Millisecond), code, strings.TrimSpace(out))
	errno, text := box.Show(unit, "StatusErrno"), box.Show(unit, "StatusText")
	switch f {
	case formExecReload:
		if code == 0 {
			t.Errorf("ExecReload form: systemctl reload exited 0 on a failed reload")
		}
	case formNotifyReload:
		// Measured fact: notify-reload cannot fail a reload job; the error is only in the status.
		if code != 0 {
			t.Errorf("notify-reload: systemctl reload exited %d on a failed reload (expected 0: the job cannot fail)", code)
		}
		if errno != "5" || !strings.Contains(text, "failed") {
			t.Errorf("notify-reload: after a failed reload StatusErrno=%q StatusText=%q, want 5 and the reason", errno, text)
		}
	}
	t.Logf("%s after the failed reload: ActiveState=%s StatusErrno=%s StatusText=%q", f.name, box.Show(unit, "ActiveState"), errno, text)
	if st := box.Show(unit, "ActiveState"); st != "active" {
		t.Fatalf("ActiveState %q after a failed reload, want active", st)
	}
	assertLive(t, box, 1, "after the failed reload")
	box.WriteFile("etc/rt.conf", "body: one\n")

	// Watchdog: a wedged state machine stops the WATCHDOG=1 pings; systemd
	// kills the restarter (SIGABRT) and Restart=on-failure starts epoch 0 again.
	restarts := box.Show(unit, "NRestarts")
	if out, code := box.Systemctl("kill", "--signal=SIGUSR2", "--kill-whom=main", unit); code != 0 {
		t.Fatalf("systemctl kill -s USR2: %d %s", code, out)
	}
	d = timed(func() { waitRestarted(t, box, unit, restarts, mainPID, 40*time.Second) })
	t.Logf("timing: %s watchdog restart after %v (WatchdogSec=4s)", f.name, d.Round(time.Millisecond))
	if j := box.Journal(unit); !strings.Contains(j, "atchdog timeout") {
		t.Errorf("no watchdog timeout in the journal:\n%s", lastN(j, 30))
	}
	assertLive(t, box, 0, "after the watchdog restart")

	// A crash of the restarter (SIGKILL): KillMode=mixed makes systemd kill
	// the rest of the cgroup (the proxy), Restart=on-failure starts over.
	mainPID = box.Show(unit, "MainPID")
	restarts = box.Show(unit, "NRestarts")
	oldProxy := boxProxyPIDs(box)
	if len(oldProxy) == 0 {
		t.Fatal("no testproxy process in the box")
	}
	if out, code := box.Systemctl("kill", "--signal=SIGKILL", "--kill-whom=main", unit); code != 0 {
		t.Fatalf("systemctl kill -s KILL: %d %s", code, out)
	}
	waitRestarted(t, box, unit, restarts, mainPID, 40*time.Second)
	for _, p := range boxProxyPIDs(box) {
		for _, o := range oldProxy {
			if p == o {
				t.Errorf("proxy pid %s of the killed restarter survived the restart", o)
			}
		}
	}
	assertLive(t, box, 0, "after the restart following the crash")

	// stop: the restarter stops its generations itself (KillMode=mixed sends
	// SIGTERM to it alone) and exits 0; nothing is left.
	out, code, d = systemctl("stop", unit)
	if code != 0 {
		t.Fatalf("systemctl stop: exit %d: %s", code, out)
	}
	t.Logf("timing: %s stop %v", f.name, d.Round(time.Millisecond))
	if r, st := box.Show(unit, "Result"), box.Show(unit, "ExecMainStatus"); r != "success" || st != "0" {
		t.Errorf("after stop: Result=%s ExecMainStatus=%s, want success and 0", r, st)
	}
	if left := boxProxyPIDs(box); len(left) > 0 {
		t.Errorf("testproxy still running after stop: %v", left)
	}
}

// waitRestarted waits until systemd restarted unit (NRestarts grew, a new
// MainPID) and the unit is active again.
func waitRestarted(t *testing.T, box *sdBox, unit, restarts, mainPID string, d time.Duration) {
	t.Helper()
	n0, _ := strconv.Atoi(restarts)
	testutil.WaitFor(t, d, func() error {
		n, _ := strconv.Atoi(box.Show(unit, "NRestarts"))
		pid, st := box.Show(unit, "MainPID"), box.Show(unit, "ActiveState")
		if n <= n0 || pid == mainPID || pid == "0" || st != "active" {
			return fmt.Errorf("NRestarts %d (was %d), MainPID %s (was %s), ActiveState %s", n, n0, pid, mainPID, st)
		}
		return nil
	})
}

// boxProxyPIDs lists the testproxy processes in the box (pids as the box sees them).
func boxProxyPIDs(box *sdBox) []string {
	out, _ := box.Exec("pgrep", "-x", "testproxy")
	return strings.Fields(out)
}

func lastN(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// verifyExampleUnit: examples/systemd/envoy.service, with the binaries'
// paths pointed at the box's, passes systemd-analyze verify.
func verifyExampleUnit(t *testing.T, box *sdBox) {
	b, err := os.ReadFile("../examples/systemd/envoy.service")
	if err != nil {
		t.Fatal(err)
	}
	unit := strings.NewReplacer("/usr/local/bin/restarter", "/opt/restarter/restarter",
		"/usr/local/bin/envoy", "/opt/restarter/testproxy").Replace(string(b))
	box.WriteFile("root/envoy.service", unit)
	out, err := box.Exec("systemd-analyze", "verify", "/root/envoy.service")
	if err != nil || strings.Contains(out, "envoy.service:") {
		t.Fatalf("systemd-analyze verify of the example unit: %v\n%s", err, out)
	}
}
