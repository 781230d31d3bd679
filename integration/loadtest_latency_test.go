package integration

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/control"
	"github.com/hotrestart/restarter/internal/testutil"
)

// reloadLatencies are per-reload durations measured from the moment the
// test sent SIGHUP.
type reloadLatencies struct {
	Live      []time.Duration // until admin /server_info says LIVE at the new epoch
	Serve     []time.Duration // until the data listener answers from the new epoch
	Restarter []time.Duration // until the restarter started it (status: the generation's started time, fork+exec done)
	Ready     []time.Duration // until the restarter answered the reload (status: last_reload.at; its probe saw it LIVE)
}

func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)]
}

func (l reloadLatencies) line(n int) string {
	return fmt.Sprintf("LOADTEST latency reloads=%d live_p50=%v live_p99=%v serve_p50=%v serve_p99=%v restarter_p50=%v restarter_p99=%v ready_p50=%v ready_p99=%v",
		n, pct(l.Live, 50), pct(l.Live, 99), pct(l.Serve, 50), pct(l.Serve, 99),
		pct(l.Restarter, 50), pct(l.Restarter, 99), pct(l.Ready, 50), pct(l.Ready, 99))
}

// measureReloads SIGHUPs r n times, one reload after the other, starting
// from the serving epoch `from`.
func measureReloads(tb testing.TB, env *ProxyEnv, r *Proc, from, n int) reloadLatencies {
	tb.Helper()
	var l reloadLatencies
	for i := 0; i < n; i++ {
		epoch := from + i + 1
		want := "epoch " + strconv.Itoa(epoch) + " "
		// One reload's latency: the previous old generation is gone, so
		// pacing has nothing to hold (its cost is measured under load).
		testutil.WaitFor(tb, 20*time.Second, func() error {
			st, err := restarterStatus(env.RuntimeDir)
			if err != nil {
				return err
			}
			n := 0
			for _, g := range st.Generations {
				if g.State != "exited" { // status lists recent exits too
					n++
				}
			}
			if n != 1 || st.ReloadHeld != nil {
				return fmt.Errorf("%d generations live (held: %v), want 1 before the next SIGHUP", n, st.ReloadHeld)
			}
			return nil
		})
		t0 := time.Now()
		if err := r.Signal(syscall.SIGHUP); err != nil {
			tb.Fatal(err)
		}
		deadline := t0.Add(20 * time.Second)
		for {
			st, ep, err := getServerInfo(env.Admin)
			if err == nil && st == "LIVE" && ep == epoch {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("epoch %d not LIVE 20s after SIGHUP (state %s epoch %d, %v)", epoch, st, ep, err)
			}
		}
		l.Live = append(l.Live, time.Since(t0))
		for {
			b, err := getBody(env.URL("/"))
			if err == nil && strings.HasPrefix(b, want) {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("epoch %d not serving 20s after SIGHUP (last: %q, %v)", epoch, b, err)
			}
		}
		l.Serve = append(l.Serve, time.Since(t0))
		var started, ready time.Time
		r.WaitStatus(tb, 20*time.Second, fmt.Sprintf("reload to epoch %d done", epoch), func(st control.Status) error {
			lr, g := st.LastReload, epochGen(st, uint32(epoch))
			if lr == nil || int(lr.Epoch) != epoch || !lr.OK || g == nil {
				return fmt.Errorf("last reload %+v", lr)
			}
			started, ready = g.Started, lr.At
			return nil
		})
		l.Restarter = append(l.Restarter, max(0, started.Sub(t0)))
		l.Ready = append(l.Ready, max(0, ready.Sub(t0)))
	}
	return l
}

func startLatencyRestarter(tb testing.TB) (*ProxyEnv, *Proc) {
	tb.Helper()
	env := newProxyEnv(tb)
	// Long drain and parent-shutdown times would keep three generations
	// alive; the latency of one reload is what is measured here.
	r := startRestarter(tb, env.RestarterArgs([]string{"--drain-time", "1s", "--parent-shutdown-time", "2s",
		"--shutdown-grace", "2s", "--term-wait", "5s", "--ready-interval", "2ms"})...)
	waitLive(tb, env.Admin, 0, 20*time.Second)
	return env, r
}

// TestReloadLatency: SIGHUP to the new generation serving, median and p99,
// with the restarter's own share (SIGHUP to the new generation exec'd).
func TestReloadLatency(t *testing.T) {
	skipUnlessLinux(t)
	n := 20
	if fullMode() {
		n = 100
	}
	env, r := startLatencyRestarter(t)
	l := measureReloads(t, env, r, 0, n)
	t.Log(l.line(n))
	if st, err := r.Status(); err != nil || st.Reloads.Succeeded != uint64(n) || st.Reloads.Failed != 0 {
		t.Errorf("reload counts %+v (%v), want %d succeeded and none failed", st.Reloads, err, n)
	}
	// Not a timed assertion of speed: a sanity bound that catches a reload
	// that waits on a poll interval or a retry loop by mistake.
	if p50 := pct(l.Serve, 50); p50 > 2*time.Second {
		t.Errorf("median SIGHUP-to-serving %v: something waits by mistake", p50)
	}
	r.Stop(20 * time.Second)
	assertNothingLeft(t, env, 10*time.Second)
}

// BenchmarkReload reports SIGHUP-to-serving (and the restarter's share)
// against the baseline of a naive restart (SIGTERM, wait for exit, start
// again, first response) measured in the same run.
func BenchmarkReload(b *testing.B) {
	skipUnlessLinux(b)
	env, r := startLatencyRestarter(b)
	b.ResetTimer()
	l := measureReloads(b, env, r, 0, b.N)
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(pct(l.Serve, 50)), "ms-serve-p50")
	b.ReportMetric(ms(pct(l.Serve, 99)), "ms-serve-p99")
	b.ReportMetric(ms(pct(l.Live, 50)), "ms-live-p50")
	b.ReportMetric(ms(pct(l.Restarter, 50)), "ms-restarter-p50")
	r.Stop(20 * time.Second)

	// Baseline: the naive restart of the same proxy on the same port.
	nenv := newProxyEnv(b)
	args := append(nenv.ProxyArgs("--drain-time-s", "1", "--parent-shutdown-time-s", "2"),
		"--base-id", strconv.FormatUint(uint64(nenv.BaseID), 10))
	cur := startProc(b, args[0], args[1:]...)
	waitLive(b, nenv.Admin, 0, 20*time.Second)
	var naive []time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		cur.Stop(10 * time.Second)
		cur = startProc(b, args[0], args[1:]...)
		for {
			if _, err := getBody(nenv.URL("/")); err == nil {
				break
			}
			if time.Since(t0) > 20*time.Second {
				b.Fatal("naive restart: not serving after 20s")
			}
		}
		naive = append(naive, time.Since(t0))
	}
	b.ReportMetric(ms(pct(naive, 50)), "ms-naive-restart-p50")
	cur.Stop(10 * time.Second)
}
