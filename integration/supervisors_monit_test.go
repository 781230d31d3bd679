package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

// monitStatus is what `monit status NAME` says about a process check.
type monitStatus struct {
	Status    string // "OK", "Does not exist", "Initializing", ...
	Pid       int
	Collected time.Time // when monit last checked it
	Raw       string
}

func parseMonitStatus(out string) monitStatus {
	st := monitStatus{Raw: out}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch {
		case f[0] == "status":
			st.Status = strings.Join(f[1:], " ")
		case f[0] == "pid":
			st.Pid, _ = strconv.Atoi(f[1])
		case f[0] == "data" && f[1] == "collected" && len(f) > 2:
			st.Collected, _ = time.ParseInLocation("Mon, 02 Jan 2006 15:04:05", strings.Join(f[2:], " "), time.Local)
		}
	}
	return st
}

// TestMonit runs the restarter under a real monit (-I, foreground) with a
// `check process` on its pid file, as examples/monit/envoy.monitrc does:
// monit starts it, reloads (SIGHUP to the pid in the pid file, then
// `restarter reload`) leave monit satisfied with the same pid and no restart, a SIGKILL of the restarter is
// noticed and monit starts it again at epoch 0, and `monit stop` stops every
// generation cleanly.
func TestMonit(t *testing.T) {
	monitBin := requireTools(t, "monit", "monit")[0]
	setsidBin := requireTools(t, "util-linux", "setsid", "flock")[0]
	env := supervisedEnv(t)
	dir := t.TempDir()
	self, err := os.Executable() // the subreaper wrapper around monit
	if err != nil {
		t.Fatal(err)
	}
	cleanupLeftovers(t, env.ProxyEnv, dir, monitBin, self)

	restarterLog := filepath.Join(dir, "restarter.log")
	start := filepath.Join(dir, "start")
	stop := filepath.Join(dir, "stop")
	// monit wants the start program to return: the restarter runs in its own
	// session, its output in a file (the example's form).
	writeRunScript(t, start, "exec "+shellQuote(setsidBin)+" -f "+env.Command+" >>"+shellQuote(restarterLog)+" 2>&1 </dev/null")
	// The stop program is the control CLI's stop, as in the example; it
	// records in stopReport what it saw once `restarter stop` returned.
	stopReport := filepath.Join(dir, "stop-report")
	writeRunScript(t, stop, fmt.Sprintf(`p=$(cat %[1]s)
%[2]s
rc=$?
st=$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null)
pf=removed; [ -e %[1]s ] && pf=left
lk=free; [ -e %[4]s ] && ! flock -n %[4]s true && lk=held
echo "rc=$rc pidfile=$pf lock=$lk restarter=${st:-gone}" >%[3]s
exit $rc`, shellQuote(env.PidFile), shellJoin([]string{env.Bin.Restarter, "stop", "--runtime-dir", env.RuntimeDir, "--timeout", "20s"}),
		shellQuote(stopReport), shellQuote(filepath.Join(env.RuntimeDir, fmt.Sprintf("base-id-%d.lock", env.BaseID)))))

	rc := filepath.Join(dir, "monitrc")
	monitLog := filepath.Join(dir, "monit.log")
	conf := fmt.Sprintf(`set daemon 1
set logfile %[1]s/monit.log
set pidfile %[1]s/monit.pid
set idfile %[1]s/monit.id
set statefile %[1]s/monit.state
set httpd unixsocket %[1]s/monit.sock
  allow test:test

check process testproxy with pidfile %[2]s
  start program = "%[3]s" with timeout 30 seconds
  stop program = "%[4]s" with timeout 30 seconds
`, dir, env.PidFile, start, stop)
	if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil { // monit refuses a control file readable by others
		t.Fatal(err)
	}
	runTool(t, monitBin, "-t", "-c", rc)

	// Under a subreaper: the daemonized restarter is reaped when killed,
	// even where PID 1 does not reap orphans.
	monit := startReaped(t, monitBin, "-I", "-c", rc)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(monitLog)
			t.Logf("monit log:\n%s", tail(string(b), 60))
			b, _ = os.ReadFile(restarterLog)
			t.Logf("restarter log:\n%s", tail(string(b), 100))
		}
	})
	// Before the reaper's SIGTERM to monit: monit stops the service.
	t.Cleanup(func() { _, _ = toolOutput(monitBin, "-c", rc, "stop", "testproxy") })

	status := func() (monitStatus, error) {
		out, err := toolOutput(monitBin, "-c", rc, "status", "testproxy")
		if err != nil {
			return monitStatus{}, err
		}
		return parseMonitStatus(out), nil
	}
	// waitMonitOK waits until monit, in a check made after `after`, says OK
	// with pid.
	waitMonitOK := func(pid int, after time.Time) monitStatus {
		var st monitStatus
		testutil.WaitFor(t, 20*time.Second, func() (err error) {
			if st, err = status(); err != nil {
				return err
			}
			// monit's timestamps have whole seconds: a check stamped in a
			// later second than after surely ran after it.
			if st.Status != "OK" || st.Pid != pid || st.Collected.Before(after.Truncate(time.Second).Add(time.Second)) {
				return fmt.Errorf("monit status: %q pid %d collected %v; want OK, pid %d, checked after %v", st.Status, st.Pid, st.Collected, pid, after.Format(time.TimeOnly))
			}
			return nil
		})
		return st
	}
	restarts := func() int {
		b, _ := os.ReadFile(monitLog)
		return strings.Count(string(b), "trying to restart")
	}

	var pid0 int
	testutil.WaitFor(t, 20*time.Second, func() (err error) {
		pid0, err = readPidFile(env.PidFile)
		return err
	})
	servingPid(t, env.ProxyEnv, 0, 20*time.Second)
	waitMonitOK(pid0, time.Now())
	r0 := restarts()

	// A reload leaves monit satisfied: same pid, status OK, no restart.
	for epoch := 1; epoch <= 2; epoch++ {
		how, reload := "SIGHUP", func() {
			if err := syscall.Kill(pid0, syscall.SIGHUP); err != nil {
				t.Fatalf("kill -HUP %d: %v", pid0, err)
			}
		}
		if epoch == 2 { // what the example's config watch runs: waits for the outcome
			how, reload = "restarter reload", func() {
				out := runTool(t, env.Bin.Restarter, "reload", "--runtime-dir", env.RuntimeDir, "--timeout", "20s")
				t.Logf("restarter reload: %s", strings.TrimSpace(out))
			}
		}
		reloadUnderLoad(t, env.ProxyEnv, fmt.Sprintf("monit, %s #%d", how, epoch), epoch, reload)
		waitProxies(t, env.ProxyEnv, 1, 15*time.Second)
		st := waitMonitOK(pid0, time.Now())
		if p, err := readPidFile(env.PidFile); err != nil || p != pid0 {
			t.Fatalf("after reload #%d the pid file says %d (%v), want %d", epoch, p, err, pid0)
		}
		if n := restarts(); n != r0 {
			t.Fatalf("monit restarted the service during reload #%d (%d restarts in its log)", epoch, n-r0)
		}
		t.Logf("monit after reload #%d: status %s, pid %d", epoch, st.Status, st.Pid)
	}

	// A SIGKILL of the restarter: monit notices and starts it again; its
	// proxies got SIGTERM (parent-death signal) and epoch 0 serves again.
	killed := time.Now()
	if err := syscall.Kill(pid0, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid0, err)
	}
	var pid1 int
	testutil.WaitFor(t, 30*time.Second, func() (err error) {
		if pid1, err = readPidFile(env.PidFile); err != nil {
			return err
		}
		if pid1 == pid0 || !alive(pid1) {
			return fmt.Errorf("pid file says %d (the killed restarter was %d)", pid1, pid0)
		}
		return nil
	})
	servingPid(t, env.ProxyEnv, 0, 30*time.Second)
	waitProxies(t, env.ProxyEnv, 1, 15*time.Second)
	st := waitMonitOK(pid1, time.Now())
	if restarts() == r0 {
		t.Errorf("monit's log shows no restart after the restarter was killed")
	}
	t.Logf("monit: restarter pid %d killed, monit started pid %d (%d start attempts), epoch 0 serving %v later; status %s",
		pid0, pid1, restarts()-r0, time.Since(killed).Round(10*time.Millisecond), st.Status)

	// monit stop (the command only asks the daemon, which then runs the stop
	// program): when `restarter stop` returns, the pid file must be removed
	// and the base id lock free, since monit's "restart" runs the start
	// program right after it (a restarter started while the base id is
	// still held exits 2).
	runTool(t, monitBin, "-c", rc, "stop", "testproxy")
	var report string
	testutil.WaitFor(t, 30*time.Second, func() error {
		b, err := os.ReadFile(stopReport)
		if err != nil || !strings.HasSuffix(string(b), "\n") {
			return fmt.Errorf("monit has not finished its stop program: %v", err)
		}
		report = strings.TrimSpace(string(b))
		return nil
	})
	t.Logf("monit's stop program: %s", report)
	if !strings.HasPrefix(report, "rc=0 pidfile=removed lock=free ") {
		t.Errorf("after `restarter stop` returned (monit's stop program): %s; want rc=0, the pid file removed, the base id lock free", report)
	}
	if st := strings.TrimPrefix(report[strings.LastIndex(report, " ")+1:], "restarter="); st != "gone" && st != "Z" {
		// Seen now and then: the CLI's WaitGone ends when the control socket
		// stops answering, a moment before the process has exited.
		t.Logf("note: `restarter stop` returned while the restarter process was still in state %s (its pid file and lock already released)", st)
	}
	pidFileLeft := func() bool { _, err := os.Stat(env.PidFile); return !os.IsNotExist(err) }
	waitProxies(t, env.ProxyEnv, 0, 10*time.Second)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if alive(pid1) || pidFileLeft() {
			return fmt.Errorf("after monit stop: restarter %d alive %v, pid file %s left %v", pid1, alive(pid1), env.PidFile, pidFileLeft())
		}
		return nil
	})
	assertNothingLeft(t, env.ProxyEnv, 10*time.Second)

	if err := monit.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := monit.Wait(15 * time.Second); err != nil {
		t.Errorf("monit (under its reaper) did not exit on SIGTERM: %v", err)
	}
}
