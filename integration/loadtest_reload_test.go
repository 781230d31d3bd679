package integration

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/integration/loadgen"
	"github.com/hotrestart/restarter/internal/testutil"
)

// fullMode is true when LOADTEST_FULL=1 (make loadtest): the long variants
// that produce the README's figures.
func fullMode() bool { return os.Getenv("LOADTEST_FULL") == "1" }

// Timings of the proxy under test: short enough that several generations
// overlap during a fast series of reloads.
var restarterTimings = timings(2 * time.Second)

// timings are restarter flags for a drain time d, parent-shutdown time 2d.
func timings(d time.Duration) []string {
	return []string{"--drain-time", d.String(), "--parent-shutdown-time", (2 * d).String(), "--shutdown-grace", "2s", "--term-wait", "5s"}
}

// keepAliveEvery is the reload interval at which keep-alive clients lose
// nothing with a drain time of keepAliveDrain: longer than the drain, because
// Envoy's three-generation cap makes epoch N+1 terminate epoch N (a hard
// close, as Envoy exits) as soon as epoch N+2 starts, one reload interval
// after N began to drain. Whatever N still has open then is cut.
const (
	keepAliveDrain = time.Second
	keepAliveEvery = 1400 * time.Millisecond
)

// loadFigures is one measured configuration.
type loadFigures struct {
	Mode        string // "new-conn" or "keep-alive"
	Restart     string // "hot" (restarter) or "naive" (stop, then start)
	Drain       time.Duration
	ReloadEvery time.Duration
	Duration    time.Duration
	Rate        int
	Signals     int // SIGHUPs (or naive restarts) issued
	Reloads     int // reloads done (new generation ready)
	Failed      int // reloads failed
	FinalEpoch  int
	Res         loadgen.Result
	Listen      loadgen.ListenStats
}

// line is one greppable summary line.
func (f loadFigures) line() string {
	return fmt.Sprintf("LOADTEST restart=%s mode=%s rate=%d/s duration=%v reload_every=%v signals=%d reloads_done=%d reloads_failed=%d final_epoch=%d sent=%d ok=%d refused=%d reset=%d timeout=%d non2xx=%d other=%d skipped=%d listen_overflows=%d listen_drops=%d p50=%v p99=%v max=%v",
		f.Restart, f.Mode, f.Rate, f.Duration, f.ReloadEvery, f.Signals, f.Reloads, f.Failed, f.FinalEpoch,
		f.Res.Sent, f.Res.OK, f.Res.Refused, f.Res.Reset, f.Res.Timeout, f.Res.Non2xx, f.Res.Other, f.Res.Skipped,
		f.Listen.ListenOverflows, f.Listen.ListenDrops, f.Res.P50, f.Res.P99, f.Res.Max)
}

const tableHeader = "| restart | mode | drain | reload every | duration | reloads done | sent | ok | refused | reset | timeout | non2xx | other+skipped | ListenOverflows | ListenDrops | p99 |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"

// row is one Markdown table row.
func (f loadFigures) row() string {
	return fmt.Sprintf("| %s | %s | %v | %v | %v | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %v |",
		f.Restart, f.Mode, f.Drain, f.ReloadEvery, f.Duration, f.Reloads, f.Res.Sent, f.Res.OK, f.Res.Refused, f.Res.Reset,
		f.Res.Timeout, f.Res.Non2xx, f.Res.Other+f.Res.Skipped, f.Listen.ListenOverflows, f.Listen.ListenDrops, f.Res.P99.Round(time.Millisecond))
}

func loadConfig(env *ProxyEnv, keepAlive bool, rate int, d time.Duration) loadgen.Config {
	return loadgen.Config{
		URL: env.URL("/"), Rate: rate, Duration: d, KeepAlive: keepAlive, DisableRetries: keepAlive,
		Timeout: 5 * time.Second,
	}
}

func modeName(keepAlive bool) string {
	if keepAlive {
		return "keep-alive"
	}
	return "new-conn"
}

// runLoad runs the load generator while restart is called every `every`;
// it returns the load result, the kernel's listen-drop growth and the number
// of restarts issued.
func runLoad(t *testing.T, cfg loadgen.Config, every time.Duration, restart func(i int)) (loadgen.Result, loadgen.ListenStats, int) {
	t.Helper()
	before, err := loadgen.ReadListenStats()
	if err != nil {
		t.Fatalf("ReadListenStats: %v", err)
	}
	ctx, cancel := context.WithCancel(deadlineCtx(t))
	defer cancel()
	var (
		res    loadgen.Result
		runErr error
		wg     sync.WaitGroup
	)
	loadDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(loadDone)
		res, runErr = loadgen.Run(ctx, cfg)
	}()
	// Reloads only while load is offered, leaving the last drain time of
	// the run under load too.
	stopAt := time.Now().Add(cfg.Duration - 2*time.Second)
	tick := time.NewTicker(every)
	n := 0
loop:
	for {
		select {
		case <-loadDone:
			break loop
		case <-tick.C:
			if time.Now().After(stopAt) {
				continue
			}
			restart(n)
			n++
		}
	}
	tick.Stop()
	wg.Wait()
	if runErr != nil {
		t.Fatalf("loadgen: %v", runErr)
	}
	after, err := loadgen.ReadListenStats()
	if err != nil {
		t.Fatalf("ReadListenStats: %v", err)
	}
	return res, after.Sub(before), n
}

// hotReloadUnderLoad: the restarter runs testproxy; SIGHUP every `every`
// while load is offered.
func hotReloadUnderLoad(t *testing.T, keepAlive bool, rate int, d, every, drain time.Duration) loadFigures {
	t.Helper()
	env := newProxyEnv(t)
	r := startRestarter(t, env.RestarterArgs(timings(drain))...)
	waitLive(t, env.Admin, 0, 20*time.Second)

	res, ls, n := runLoad(t, loadConfig(env, keepAlive, rate, d), every, func(int) {
		if err := r.Signal(syscall.SIGHUP); err != nil {
			t.Errorf("SIGHUP: %v", err)
		}
	})
	// Let the last reload settle so the counts are final.
	testutil.WaitFor(t, 30*time.Second, func() error {
		evs := r.Events()
		started, done, failed := countEvents(evs, "reload"), countEvents(evs, "reload done"), countEvents(evs, "reload failed")
		if started != done+failed {
			return fmt.Errorf("%d reloads started, %d done, %d failed", started, done, failed)
		}
		_, ep, err := getServerInfo(env.Admin)
		if err != nil {
			return err
		}
		if ep != done {
			return fmt.Errorf("serving epoch %d, reloads done %d", ep, done)
		}
		return nil
	})
	evs := r.Events()
	_, ep, _ := getServerInfo(env.Admin)
	f := loadFigures{
		Mode: modeName(keepAlive), Restart: "hot", Drain: drain, ReloadEvery: every, Duration: d, Rate: rate,
		Signals: n, Reloads: countEvents(evs, "reload done"), Failed: countEvents(evs, "reload failed"),
		FinalEpoch: ep, Res: res, Listen: ls,
	}
	r.Stop(30 * time.Second)
	if code, err := r.Wait(time.Second); err != nil || code != 0 {
		t.Errorf("restarter exit: code %d, %v; want 0", code, err)
	}
	assertNothingLeft(t, env, 10*time.Second)
	return f
}

// naiveRestartUnderLoad: testproxy alone at epoch 0; every `every` it is
// SIGTERMed, and once it has exited a new one starts on the same port.
func naiveRestartUnderLoad(t *testing.T, keepAlive bool, rate int, d, every time.Duration) loadFigures {
	t.Helper()
	env := newProxyEnv(t)
	args := append(env.ProxyArgs("--drain-time-s", "2", "--parent-shutdown-time-s", "4"),
		"--base-id", strconv.FormatUint(uint64(env.BaseID), 10), "--restart-epoch", "0")
	cur := startProc(t, args[0], args[1:]...)
	waitLive(t, env.Admin, 0, 20*time.Second)
	restarts := 0
	res, ls, n := runLoad(t, loadConfig(env, keepAlive, rate, d), every, func(int) {
		cur.Stop(10 * time.Second)
		cur = startProc(t, args[0], args[1:]...)
		restarts++
	})
	f := loadFigures{Mode: modeName(keepAlive), Restart: "naive", Drain: 2 * time.Second, ReloadEvery: every, Duration: d, Rate: rate,
		Signals: n, Reloads: restarts, Res: res, Listen: ls}
	cur.Stop(10 * time.Second)
	assertNothingLeft(t, env, 10*time.Second)
	return f
}

// TestReloadUnderLoad is the bounded CI variant of the zero-downtime claim:
// an open-loop client at a fixed rate while the restarter is reloaded twice
// a second; any refused, reset, timed-out or non-2xx request fails it.
func TestReloadUnderLoad(t *testing.T) {
	skipUnlessLinux(t)
	if fullMode() {
		t.Skip("LOADTEST_FULL=1: TestReloadUnderLoadFull runs instead")
	}
	const rate = 500
	for _, tc := range []struct {
		keepAlive    bool
		d            time.Duration
		every, drain time.Duration
	}{
		{false, 22 * time.Second, 500 * time.Millisecond, 2 * time.Second},
		// Keep-alive reloads less often than the drain time: faster, the
		// three-generation cap hard-closes a generation while its
		// keep-alive connections are still open (see keepAliveEvery), and
		// 1 in 4 runs on a loaded machine lost a request or two.
		{true, 33 * time.Second, keepAliveEvery, keepAliveDrain},
	} {
		t.Run(modeName(tc.keepAlive), func(t *testing.T) {
			f := hotReloadUnderLoad(t, tc.keepAlive, rate, tc.d, tc.every, tc.drain)
			t.Log(f.line())
			checkNoLoss(t, f, 20, int64(rate)*int64(tc.d/time.Second))
		})
	}
}

func checkNoLoss(t *testing.T, f loadFigures, minReloads int, minSent int64) {
	t.Helper()
	if f.Reloads < minReloads {
		t.Errorf("got %d reloads done (of %d SIGHUPs), want at least %d", f.Reloads, f.Signals, minReloads)
	}
	if f.Failed > 0 {
		t.Errorf("got %d failed reloads, want 0", f.Failed)
	}
	if f.Res.Sent < minSent*9/10 {
		t.Errorf("got %d requests sent, want about %d", f.Res.Sent, minSent)
	}
	if n := f.Res.Failed(); n > 0 {
		t.Errorf("lost %d of %d requests during %d reloads: %v; errors: %q", n, f.Res.Sent, f.Reloads, f.Res, f.Res.Errors)
	}
	if f.Listen.ListenOverflows > 0 || f.Listen.ListenDrops > 0 {
		// Machine-wide counters: other processes can add to them, so log
		// rather than fail; a loss of ours shows up as a failed request.
		t.Logf("kernel listen counters grew during the run: %+v (machine-wide)", f.Listen)
	}
}

// TestReloadUnderLoadFull is the README's variant (LOADTEST_FULL=1): at least
// 50,000 requests and 100 reloads per mode at 2, 5 and 10 reloads/s, with
// the naive restart as baseline. It prints a Markdown table.
func TestReloadUnderLoadFull(t *testing.T) {
	skipUnlessLinux(t)
	if !fullMode() {
		t.Skip("set LOADTEST_FULL=1 (make loadtest) for the full load test")
	}
	rate := envInt("LOADTEST_RATE", 1000)
	d := time.Duration(envInt("LOADTEST_SECONDS", 55)) * time.Second
	var rows []string
	intervals := []time.Duration{500 * time.Millisecond, 200 * time.Millisecond, 100 * time.Millisecond}
	if d, err := time.ParseDuration(os.Getenv("LOADTEST_EVERY")); err == nil && d > 0 {
		intervals = []time.Duration{d} // one reload interval only, e.g. LOADTEST_EVERY=2s
	}
	for _, every := range intervals {
		for _, keepAlive := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/%v", modeName(keepAlive), every), func(t *testing.T) {
				f := hotReloadUnderLoad(t, keepAlive, rate, d, every, 2*time.Second)
				t.Log(f.line())
				rows = append(rows, f.row())
				if every >= 500*time.Millisecond && !keepAlive {
					checkNoLoss(t, f, 100, 50_000)
				} else if f.Res.Failed() > 0 {
					// Reloads faster than the drain time: Envoy's
					// three-generation cap applies (see keepAliveEvery).
					// Reported, not failed: the README states where zero
					// loss holds.
					t.Logf("reloads every %v with a %v drain: epoch N+2 makes N+1 terminate N after ~%v of drain, cutting %d requests (%v)",
						every, 2*time.Second, every, f.Res.Failed(), f.Res.Errors)
				}
			})
		}
	}
	// Keep-alive where zero loss is claimed: reloads slower than the drain.
	t.Run(fmt.Sprintf("keep-alive/%v/drain-%v", keepAliveEvery, keepAliveDrain), func(t *testing.T) {
		kd := time.Duration(100*keepAliveEvery) + 4*time.Second
		f := hotReloadUnderLoad(t, true, rate, kd, keepAliveEvery, keepAliveDrain)
		t.Log(f.line())
		rows = append(rows, f.row())
		checkNoLoss(t, f, 100, 50_000)
	})
	for _, keepAlive := range []bool{false, true} {
		t.Run(fmt.Sprintf("naive/%s", modeName(keepAlive)), func(t *testing.T) {
			f := naiveRestartUnderLoad(t, keepAlive, rate, 20*time.Second, 500*time.Millisecond)
			t.Log(f.line())
			rows = append(rows, f.row())
		})
	}
	t.Logf("machine: %s\n%s\n%s", machine(), tableHeader, strings.Join(rows, "\n"))
}

// TestNaiveRestartLoses is the baseline: the same load against a proxy that
// is stopped and started again (no hot restart) loses requests. It also
// proves the harness can see a loss at all.
func TestNaiveRestartLoses(t *testing.T) {
	skipUnlessLinux(t)
	if fullMode() {
		t.Skip("LOADTEST_FULL=1: TestReloadUnderLoadFull runs the baseline")
	}
	for _, keepAlive := range []bool{false, true} {
		t.Run(modeName(keepAlive), func(t *testing.T) {
			f := naiveRestartUnderLoad(t, keepAlive, 500, 8*time.Second, 500*time.Millisecond)
			t.Log(f.line())
			if f.Reloads < 5 {
				t.Fatalf("got %d naive restarts, want at least 5", f.Reloads)
			}
			if f.Res.Failed() == 0 {
				t.Fatalf("naive restarts lost nothing (%v): the harness cannot tell a hot restart from a cold one", f.Res)
			}
		})
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// machine describes where the figures were measured.
func machine() string {
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(l, ":", 2)[1])
				break
			}
		}
	}
	rel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		rel = strings.TrimSpace(string(b))
	}
	load, _ := os.ReadFile("/proc/loadavg")
	return fmt.Sprintf("%d CPUs (%s), Linux %s, loadavg %s", runtime.NumCPU(), cpu, rel, strings.TrimSpace(string(load)))
}
