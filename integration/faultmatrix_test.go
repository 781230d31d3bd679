package integration

// The fault matrix of issue 8: for each readiness mode and each point of the
// hot-restart handoff, the new generation is killed (SIGKILL) or hung
// (SIGSTOP) there (testproxy --fault-at/--fault) under steady traffic, and
// the test asserts:
//
//   - before drain_listeners (before-admin .. after-stats) the old generation
//     serves throughout: not one request fails, it is still the serving
//     generation with the same pid, and the reload's answer says so;
//   - after drain_listeners (the old one already drains) service is back
//     within faultBound, by a recovery of the restarter or, where the new
//     generation had been ready and then died or hung, by the restarter
//     exiting 1 and the service manager (this test) starting it again;
//   - the restarter's verdict (reload exit code and text, exit code, status)
//     matches what happened, and nothing is left behind (process, hot-restart
//     socket, base id lock).
//
// `make test` runs a few cells; FAULTMATRIX_FULL=1 runs all 50 and logs the
// Markdown table of what each cost (FAULTMATRIX_MODES=url,cmd picks modes).

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotrestart/restarter/control"
	"github.com/hotrestart/restarter/integration/loadgen"
	"github.com/hotrestart/restarter/internal/testutil"
)

var (
	fmModes  = []string{"envoy-admin", "url", "cmd", "notify", "after"}
	fmPoints = []string{"before-admin", "after-admin", "after-listen", "after-stats", "after-drain"}
)

// faultBound is how long service may be gone after a fault past
// drain_listeners: --ready-timeout (3s) for a hang, plus the liveness checks
// (3 x 300ms) or a recovery start, plus one restart of the restarter.
const faultBound = 10 * time.Second

// fmRate is the steady load offered during each cell, requests per second.
const fmRate = 100

type fmCell struct{ mode, point, fault string }

func (c fmCell) name() string { return c.mode + "/" + c.point + "/" + c.fault }

type fmResult struct {
	cell              fmCell
	reloadCode        int
	verdict, outcome  string
	sent, failed      int64
	maxGap            time.Duration
	restarterExitCode int // -1: still running at the end of the cell
}

func TestFaultMatrix(t *testing.T) {
	skipUnlessLinux(t)
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("the --ready-cmd cells need curl")
	}
	var cells []fmCell
	full := os.Getenv("FAULTMATRIX_FULL") != ""
	if full {
		modes := fmModes
		if m := os.Getenv("FAULTMATRIX_MODES"); m != "" { // e.g. url,cmd
			modes = strings.Split(m, ",")
		}
		for _, m := range modes {
			for _, p := range fmPoints {
				for _, f := range []string{"kill", "hang"} {
					cells = append(cells, fmCell{m, p, f})
				}
			}
		}
	} else {
		cells = []fmCell{
			{"envoy-admin", "after-admin", "kill"},
			{"envoy-admin", "after-listen", "hang"},
			{"notify", "after-stats", "kill"},
			{"envoy-admin", "after-drain", "kill"},
		}
	}
	var results []fmResult
	for _, c := range cells {
		t.Run(strings.ReplaceAll(c.name(), "/", "_"), func(t *testing.T) {
			results = append(results, runFaultCell(t, c))
		})
	}
	var b strings.Builder
	b.WriteString("| readiness | fault at | fault | reload | restarter | requests failed / sent | longest gap |\n|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		fmt.Fprintf(&b, "| %s | %s | %s | exit %d: %s | %s | %d / %d | %s |\n", r.cell.mode, r.cell.point, r.cell.fault,
			r.reloadCode, r.verdict, r.outcome, r.failed, r.sent, r.maxGap.Round(10*time.Millisecond))
	}
	t.Logf("fault matrix (%d req/s of steady load per cell):\n%s", fmRate, b.String())
}

// fmInstance is one cell's restarter with its proxy environment.
type fmInstance struct {
	env  *ProxyEnv
	args []string
	p    *Proc
}

func runFaultCell(t *testing.T, c fmCell) fmResult {
	in := newFaultInstance(t, c)
	res := fmResult{cell: c, restarterExitCode: -1}
	in.p = startRestarter(t, in.args...)
	g0 := in.waitServing(t, 0)

	// Steady load, and a prober that records every gap between successes.
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var lg loadgen.Result
	var lgErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		lg, lgErr = loadgen.Run(ctx, loadgen.Config{URL: in.env.URL("/"), Rate: fmRate, Duration: 10 * time.Minute, Timeout: 3 * time.Second})
	}()
	gap := &gapProbe{}
	go func() { defer wg.Done(); gap.run(ctx, in.env.URL("/")) }()
	stopLoad := func() {
		cancel()
		wg.Wait()
		res.sent, res.failed, res.maxGap = lg.Sent, lg.Failed(), gap.max()
		if lgErr != nil {
			t.Fatalf("loadgen: %v", lgErr)
		}
	}
	defer func() {
		if ctx.Err() == nil {
			stopLoad()
		}
	}()
	time.Sleep(200 * time.Millisecond) // some load before the fault

	code, stderr := in.cli(t, "reload", "--timeout", "60s")
	res.reloadCode = code
	res.verdict = verdictOf(code, stderr)
	st, exited := in.settle(t)

	drained := c.point == "after-drain"
	switch {
	case exited:
		ec, _ := in.p.Wait(time.Second)
		res.restarterExitCode = ec
		if ec != 1 {
			t.Fatalf("restarter exit %d, want 1 (nothing served)\n%s", ec, tail(in.p.Log(), 40))
		}
		assertNothingLeft(t, in.env, 10*time.Second)
		// The service manager's part (Restart=on-failure): start it again.
		in.p = startRestarter(t, in.args...)
		in.waitServing(t, 0)
		res.outcome = "exit 1, restarted"
	default:
		g := servingGen(st)
		if g == nil {
			t.Fatalf("nothing serves and the restarter still runs: %+v", st)
		}
		if g.PID == g0.PID {
			res.outcome = "epoch 0 serves on"
		} else {
			res.outcome = fmt.Sprintf("recovered: epoch %d serves", g.Epoch)
		}
	}
	time.Sleep(300 * time.Millisecond) // load on whatever serves now
	stopLoad()

	if !drained {
		// The old generation was never told to drain: it serves throughout.
		if res.failed != 0 || exited || res.outcome != "epoch 0 serves on" {
			t.Errorf("%s: %d of %d requests failed (%s), outcome %q; want none failed and epoch 0 (pid %d) serving on",
				c.name(), res.failed, res.sent, lg, res.outcome, g0.PID)
		}
		// Under --ready-after a hung (stopped) process counts as ready: the
		// reload says ok, and the restarter restores epoch 0 when it finds
		// the new one hung. Every other cell says the reload failed and
		// that epoch 0 keeps serving.
		falseReady := c.mode == "after" && c.fault == "hang"
		if !falseReady && (code != 1 || !strings.Contains(stderr, "epoch 0 keeps serving")) {
			t.Errorf("%s: reload exit %d, %q; want 1 and \"epoch 0 keeps serving\"", c.name(), code, stderr)
		}
	} else {
		if res.maxGap > faultBound {
			t.Errorf("%s: service gone for %s, want at most %s", c.name(), res.maxGap, faultBound)
		}
		if code == 1 && strings.Contains(stderr, "keeps serving") {
			t.Errorf("%s: reload says %q, but epoch 0 had been told to drain", c.name(), stderr)
		}
		if code == 0 && !exited && res.outcome == "epoch 0 serves on" {
			t.Errorf("%s: reload ok, yet epoch 0 serves on", c.name())
		}
	}
	in.p.Stop(20 * time.Second)
	if ec, _ := in.p.Wait(time.Second); ec != 0 {
		t.Errorf("%s: restarter exit %d after stop, want 0", c.name(), ec)
	}
	assertNothingLeft(t, in.env, 10*time.Second)
	t.Logf("%s: reload exit %d (%s); %s; %d/%d requests failed; longest gap %s",
		c.name(), code, res.verdict, res.outcome, res.failed, res.sent, res.maxGap)
	return res
}

func newFaultInstance(t *testing.T, c fmCell) *fmInstance {
	t.Helper()
	env := newProxyEnv(t)
	dir := t.TempDir()
	var extra string
	flags := []string{"--envoy", "--runtime-dir", env.RuntimeDir, "--base-id", strconv.FormatUint(uint64(env.BaseID), 10),
		"--log-format", "json", "--ready-interval", "20ms", "--ready-timeout", "3s", "--term-wait", "2s",
		"--live-interval", "300ms", "--live-failures", "3", "--drain-time", "5s", "--parent-shutdown-time", "8s"}
	switch c.mode {
	case "envoy-admin":
		flags = append(flags, "--ready-envoy-admin", env.Admin)
	case "url":
		// Generations that share an address cannot be told apart by a URL
		// alone: the test proxy's /ready?epoch=N answers 200 only as epoch N.
		flags = append(flags, "--ready-url", "http://"+env.Admin+"/ready?epoch={{epoch}}")
	case "cmd":
		flags = append(flags, "--ready-cmd", `s=$(curl -sf --max-time 1 http://`+env.Admin+`/server_info | tr -d ' \n'); `+
			`case "$s" in *'"state":"LIVE"'*'"restart_epoch":{{epoch}},'*) exit 0;; esac; exit 1`)
	case "notify":
		extra = "--sd-notify"
		flags = append(flags, "--ready", "notify")
	case "after":
		flags = append(flags, "--ready-after", "1s")
	}
	wrapper := filepath.Join(dir, "proxy.sh")
	mark := filepath.Join(dir, "faulted")
	script := fmt.Sprintf(`#!/bin/sh
case " $* " in *" --mode validate "*|*" --hot-restart-version "*) exec %[1]q "$@";; esac
if [ "$RESTART_EPOCH" != 0 ] && [ ! -e %[2]q ]; then
	: > %[2]q
	exec %[1]q "$@" %[3]s --fault-at %[4]s --fault %[5]s
fi
exec %[1]q "$@" %[3]s
`, env.Bin.Testproxy, mark, extra, c.point, c.fault)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	args := append(append(flags, "--", wrapper), env.ProxyArgs()[1:]...)
	return &fmInstance{env: env, args: args}
}

func (in *fmInstance) cli(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(in.env.Bin.Restarter, append(args, "--runtime-dir", in.env.RuntimeDir)...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("restarter %v: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), strings.TrimSpace(out.String())
}

func (in *fmInstance) status() (control.Status, error) {
	return restarterStatus(in.env.RuntimeDir)
}

func servingGen(st control.Status) *control.Generation {
	var best *control.Generation
	for i, g := range st.Generations {
		if g.State == control.StateReady && (best == nil || g.Epoch > best.Epoch) {
			best = &st.Generations[i]
		}
	}
	return best
}

// waitServing waits until epoch is the serving generation and the data port
// answers.
func (in *fmInstance) waitServing(t *testing.T, epoch uint32) control.Generation {
	t.Helper()
	var g control.Generation
	testutil.WaitFor(t, 30*time.Second, func() error {
		st, err := in.status()
		if err != nil {
			return err
		}
		s := servingGen(st)
		if s == nil || s.Epoch != epoch {
			return fmt.Errorf("epoch %d not serving: %+v", epoch, st.Generations)
		}
		g = *s
		_, err = getBody(in.env.URL("/"))
		return err
	})
	return g
}

// settle waits until the restarter has exited, or has been in the same
// settled state (nothing reloading or starting, one generation serving the
// data port) for 2 s: long enough for the liveness checks to find a hung
// generation and for a recovery to start.
func (in *fmInstance) settle(t *testing.T) (control.Status, bool) {
	t.Helper()
	var last string
	var since time.Time
	var st control.Status
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if in.p.Exited() {
			return st, true
		}
		s, err := in.status()
		if err != nil {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		key := "unsettled"
		if g := servingGen(s); g != nil && !s.Reloading && !s.Stopping && !hasStarting(s) {
			if _, err := getBody(in.env.URL("/")); err == nil {
				key = fmt.Sprintf("%d/%d", g.Epoch, g.PID)
			}
		}
		if key != last {
			last, since = key, time.Now()
		} else if key != "unsettled" && time.Since(since) > 2*time.Second {
			return s, false
		}
		st = s
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("restarter did not settle in 60s; last status %+v", st)
	return st, false
}

func hasStarting(st control.Status) bool {
	for _, g := range st.Generations {
		if g.State == control.StateStarting {
			return true
		}
	}
	return false
}

func verdictOf(code int, out string) string {
	if code == 0 {
		return "ok"
	}
	for _, s := range []string{"keeps serving", "nothing serves"} {
		if strings.Contains(out, s) {
			return "failed, " + s
		}
	}
	return "failed"
}

// gapProbe GETs url every 10ms and keeps the longest time between two
// successes.
type gapProbe struct {
	mu     sync.Mutex
	lastOK time.Time
	gap    time.Duration
}

func (g *gapProbe) run(ctx context.Context, url string) {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		resp, err := c.Get(url)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			continue
		}
		now := time.Now()
		g.mu.Lock()
		if !g.lastOK.IsZero() && now.Sub(g.lastOK) > g.gap {
			g.gap = now.Sub(g.lastOK)
		}
		g.lastOK = now
		g.mu.Unlock()
	}
}

func (g *gapProbe) max() time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gap
}
