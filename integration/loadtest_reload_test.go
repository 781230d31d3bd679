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

	"github.com/hotrestart/restarter/control"
	"github.com/hotrestart/restarter/integration/loadgen"
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

// loadFigures is one measured configuration.
type loadFigures struct {
	System      string // "restarter", "haproxy", "nginx"
	Mode        string // "new-conn" or "keep-alive"
	Restart     string // "hot" (restarter) or "naive" (stop, then start)
	Pacing      string // the restarter's --reload-pacing
	Busy        int    // CPU burners beside the run
	Drain       time.Duration
	ReloadEvery time.Duration
	Duration    time.Duration
	Rate        int
	Signals     int // SIGHUPs (or naive restarts) issued
	Reloads     int // reloads done (new generation ready)
	Failed      int // reloads failed
	Held        int // reloads held by pacing
	Forced      int // held reloads that reached --max-reload-delay
	FinalEpoch  int
	Res         loadgen.Result
	Listen      loadgen.ListenStats
	Latency     []time.Duration // per SIGHUP: until a generation started after it answered
	OwnLatency  []time.Duration // per SIGHUP: that generation's start to its first answer (no hold)
	Causes      []string        // one line per loss cause, most frequent first
	LoadBefore  string
	LoadAfter   string
}

// line is one greppable summary line.
func (f loadFigures) line() string {
	return fmt.Sprintf("LOADTEST system=%s restart=%s pacing=%s busy=%d mode=%s rate=%d/s duration=%v reload_every=%v signals=%d reloads_done=%d reloads_failed=%d held=%d forced=%d final_epoch=%d sent=%d ok=%d refused=%d reset=%d timeout=%d non2xx=%d other=%d skipped=%d listen_overflows=%d listen_drops=%d p50=%v p99=%v max=%v reload_p50=%v reload_p99=%v start_to_answer_p50=%v start_to_answer_p99=%v loadavg=%s..%s",
		f.System, f.Restart, f.Pacing, f.Busy, f.Mode, f.Rate, f.Duration, f.ReloadEvery, f.Signals, f.Reloads, f.Failed, f.Held, f.Forced, f.FinalEpoch,
		f.Res.Sent, f.Res.OK, f.Res.Refused, f.Res.Reset, f.Res.Timeout, f.Res.Non2xx, f.Res.Other, f.Res.Skipped,
		f.Listen.ListenOverflows, f.Listen.ListenDrops, f.Res.P50, f.Res.P99, f.Res.Max,
		pct(f.Latency, 50).Round(100*time.Microsecond), pct(f.Latency, 99).Round(100*time.Microsecond),
		pct(f.OwnLatency, 50).Round(100*time.Microsecond), pct(f.OwnLatency, 99).Round(100*time.Microsecond), f.LoadBefore, f.LoadAfter)
}

const tableHeader = "| system | mode | reloads/s | busy | sent | ok | refused | reset | timeout | non2xx | other+skipped | reloads done | SIGHUP → answers p50 / p99 | start → answers p50 / p99 | load avg |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"

// row is one Markdown table row.
func (f loadFigures) row() string {
	sys := f.System
	if f.Pacing != "" {
		sys += " (" + f.Pacing + ")"
	}
	if f.Restart == "naive" {
		sys = "naive restart"
	}
	rate := "-"
	if f.ReloadEvery > 0 {
		rate = strconv.FormatFloat(float64(time.Second)/float64(f.ReloadEvery), 'g', 3, 64)
	}
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	return fmt.Sprintf("| %s | %s | %s | %d | %d | %d | %d | %d | %d | %d | %d | %d of %d | %v / %v | %v / %v | %s → %s |",
		sys, f.Mode, rate, f.Busy, f.Res.Sent, f.Res.OK, f.Res.Refused, f.Res.Reset,
		f.Res.Timeout, f.Res.Non2xx, f.Res.Other+f.Res.Skipped, f.Reloads, f.Signals,
		r(pct(f.Latency, 50)), r(pct(f.Latency, 99)), r(pct(f.OwnLatency, 50)), r(pct(f.OwnLatency, 99)), f.LoadBefore, f.LoadAfter)
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
// it returns the load result, the kernel's listen-drop growth and the times
// restarts were issued.
func runLoad(t *testing.T, cfg loadgen.Config, every time.Duration, restart func(i int)) (loadgen.Result, loadgen.ListenStats, []time.Time) {
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
	var at []time.Time
loop:
	for {
		select {
		case <-loadDone:
			break loop
		case <-tick.C:
			if time.Now().After(stopAt) {
				continue
			}
			at = append(at, time.Now())
			restart(len(at) - 1)
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
	return res, after.Sub(before), at
}

// scenario is one load-test configuration of the restarter.
type scenario struct {
	keepAlive bool
	rate      int           // requests/s
	d         time.Duration // load duration
	every     time.Duration // SIGHUP interval
	drain     time.Duration // parent-shutdown time is twice this
	pacing    string        // --reload-pacing ("" = the default)
	busy      int           // CPU burners beside the run
}

// hotReloadUnderLoad: the restarter runs testproxy; SIGHUP every sc.every
// while load is offered, with sc.busy CPU burners beside it.
func hotReloadUnderLoad(t *testing.T, sc scenario) loadFigures {
	t.Helper()
	env := newProxyEnv(t)
	flags := timings(sc.drain)
	if sc.pacing != "" {
		flags = append(flags, "--reload-pacing", sc.pacing)
	}
	r := startRestarter(t, env.RestarterArgs(flags)...)
	waitLive(t, env.Admin, 0, 20*time.Second)
	rec := recordLives(t, r, sc.drain)
	startBurners(t, sc.busy)
	load0 := loadAvg()

	res, ls, sighups := runLoad(t, loadConfig(env, sc.keepAlive, sc.rate, sc.d), sc.every, func(int) {
		if err := r.Signal(syscall.SIGHUP); err != nil {
			t.Errorf("SIGHUP: %v", err)
		}
	})
	// Let the last reload settle so the counts are final.
	st := r.WaitStatus(t, 30*time.Second, "the last reload settled", func(st control.Status) error {
		c := st.Reloads
		if st.Reloading || st.Pending || c.Started != c.Succeeded+c.Failed {
			return fmt.Errorf("reloading %v, pending %v, counts %+v", st.Reloading, st.Pending, c)
		}
		if c.Held != c.Released+c.Forced {
			return fmt.Errorf("%d reloads held, %d released or forced", c.Held, c.Released+c.Forced)
		}
		_, ep, err := getServerInfo(env.Admin)
		if err != nil {
			return err
		}
		if uint64(ep) != c.Succeeded {
			return fmt.Errorf("serving epoch %d, reloads done %d", ep, c.Succeeded)
		}
		return nil
	})
	_, ep, _ := getServerInfo(env.Admin)
	pacing := sc.pacing
	if pacing == "" {
		pacing = "protect-drain"
	}
	gens := rec.lives()
	c := st.Reloads
	f := loadFigures{
		System: "restarter", Mode: modeName(sc.keepAlive), Restart: "hot", Pacing: pacing, Busy: sc.busy,
		Drain: sc.drain, ReloadEvery: sc.every, Duration: sc.d, Rate: sc.rate,
		Signals: len(sighups), Reloads: int(c.Succeeded), Failed: int(c.Failed),
		Held: int(c.Held), Forced: int(c.Forced),
		FinalEpoch: ep, Res: res, Listen: ls, LoadBefore: load0, LoadAfter: loadAvg(),
		Causes: causes(res.Failures, gens, sc.drain),
	}
	f.Latency, f.OwnLatency = sighupLatencies(sighups, res.Generations, func(pid int) (time.Time, bool) {
		g := gens[pid]
		if g == nil || g.Started.IsZero() {
			return time.Time{}, false
		}
		return g.Started, true
	})
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
	load0 := loadAvg()
	res, ls, at := runLoad(t, loadConfig(env, keepAlive, rate, d), every, func(int) {
		cur.Stop(10 * time.Second)
		cur = startProc(t, args[0], args[1:]...)
		restarts++
	})
	f := loadFigures{System: "testproxy", Mode: modeName(keepAlive), Restart: "naive", Drain: 2 * time.Second, ReloadEvery: every, Duration: d, Rate: rate,
		Signals: len(at), Reloads: restarts, Res: res, Listen: ls, LoadBefore: load0, LoadAfter: loadAvg()}
	cur.Stop(10 * time.Second)
	assertNothingLeft(t, env, 10*time.Second)
	return f
}

// TestReloadUnderLoad is the bounded CI variant of the zero-downtime claim,
// on a busy machine: two CPU burners beside an open-loop client at a fixed
// rate while the restarter is SIGHUPed twice a second (faster than its
// parent-shutdown time, so pacing holds and coalesces reloads); any
// refused, reset, timed-out or non-2xx request fails it, with each loss's
// cause in the message.
func TestReloadUnderLoad(t *testing.T) {
	skipUnlessLinux(t)
	if fullMode() {
		t.Skip("LOADTEST_FULL=1: TestReloadUnderLoadFull runs instead")
	}
	const rate = 500
	for _, keepAlive := range []bool{false, true} {
		t.Run(modeName(keepAlive), func(t *testing.T) {
			sc := scenario{keepAlive: keepAlive, rate: rate, d: 16 * time.Second, every: 500 * time.Millisecond, drain: time.Second, busy: 2}
			f := hotReloadUnderLoad(t, sc)
			t.Log(f.line())
			checkNoLoss(t, f, 4, int64(rate)*int64(sc.d/time.Second))
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
		t.Errorf("lost %d of %d requests during %d reloads: %v; causes:\n%s", n, f.Res.Sent, f.Reloads, f.Res, strings.Join(f.Causes, "\n"))
	}
	if f.Listen.ListenOverflows > 0 || f.Listen.ListenDrops > 0 {
		// Machine-wide counters: other processes can add to them, so log
		// rather than fail; a loss of ours shows up as a failed request.
		t.Logf("kernel listen counters grew during the run: %+v (machine-wide)", f.Listen)
	}
}

// envList is a comma-separated list from the environment, or def.
func envList(name string, def []string) []string {
	if v := os.Getenv(name); v != "" {
		return strings.Split(v, ",")
	}
	return def
}

// TestReloadUnderLoadFull is the README's variant (LOADTEST_FULL=1): 1,000
// requests/s for 60 s (>= 60,000) per cell at 2, 5, 10 and 20 SIGHUPs/s,
// new-connection and keep-alive, quiet and with two CPU burners, drain 1 s,
// parent shutdown 2 s. The default pacing must lose nothing; other
// policies (LOADTEST_PACING=protect-drain,envoy) are reported. It prints a
// Markdown table. LOADTEST_RATES, LOADTEST_BUSY, LOADTEST_MODES and
// LOADTEST_SECONDS narrow it.
func TestReloadUnderLoadFull(t *testing.T) {
	skipUnlessLinux(t)
	if !fullMode() {
		t.Skip("set LOADTEST_FULL=1 (make loadtest) for the full load test")
	}
	rate := envInt("LOADTEST_RATE", 1000)
	d := time.Duration(envInt("LOADTEST_SECONDS", 62)) * time.Second
	var rows []string
	for _, pacing := range envList("LOADTEST_PACING", []string{"protect-drain"}) {
		for _, busy := range envList("LOADTEST_BUSY", []string{"0", "2"}) {
			for _, rs := range envList("LOADTEST_RATES", []string{"2", "5", "10", "20"}) {
				for _, mode := range envList("LOADTEST_MODES", []string{"new-conn", "keep-alive"}) {
					n, _ := strconv.Atoi(rs)
					b, _ := strconv.Atoi(busy)
					if n <= 0 {
						t.Fatalf("LOADTEST_RATES: %q is not a positive number", rs)
					}
					sc := scenario{keepAlive: mode == "keep-alive", rate: rate, d: d, every: time.Second / time.Duration(n),
						drain: time.Second, pacing: pacing, busy: b}
					t.Run(fmt.Sprintf("%s/busy%d/%dps/%s", pacing, b, n, mode), func(t *testing.T) {
						f := hotReloadUnderLoad(t, sc)
						t.Log(f.line())
						for _, c := range f.Causes {
							t.Log("loss cause: " + c)
						}
						rows = append(rows, f.row())
						if pacing == "protect-drain" {
							checkNoLoss(t, f, 10, int64(rate)*int64(d/time.Second)*9/10)
						}
					})
				}
			}
		}
	}
	if os.Getenv("LOADTEST_NAIVE") != "0" {
		for _, keepAlive := range []bool{false, true} {
			t.Run(fmt.Sprintf("naive/%s", modeName(keepAlive)), func(t *testing.T) {
				f := naiveRestartUnderLoad(t, keepAlive, rate, 20*time.Second, 500*time.Millisecond)
				t.Log(f.line())
				rows = append(rows, f.row())
			})
		}
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
