package metrics

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hotrestart/restarter/supervisor"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

// promtoolCheck runs `promtool check metrics` on a scrape; skips without promtool.
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Log("promtool not found (Debian: apt-get install prometheus): skipping the lint")
		return
	}
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestEverySeriesFromTheStart(t *testing.T) {
	m := New()
	s, err := Listen("127.0.0.1:0", m.Handler(func(context.Context) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	text := scrape(t, "http://"+s.Addr()+"/metrics")
	for _, want := range []string{
		"restarter_config_last_reload_successful 0",
		"restarter_config_last_reload_success_timestamp_seconds 0",
		`restarter_reloads_total{result="success"} 0`,
		`restarter_reloads_total{result="validation_failed"} 0`,
		`restarter_reloads_total{result="start_failed"} 0`,
		`restarter_reloads_total{result="not_ready"} 0`,
		"restarter_reload_duration_seconds_count 0",
		`restarter_generations{state="starting"} 0`,
		`restarter_generations{state="ready"} 0`,
		`restarter_generations{state="draining"} 0`,
		"restarter_epoch 0",
		`restarter_generation_exits_total{kind="clean"} 0`,
		`restarter_generation_exits_total{kind="serving"} 0`,
		"go_goroutines ", "process_start_time_seconds ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	promtoolCheck(t, text)
}

func TestObserve(t *testing.T) {
	m := New()
	t0 := time.Unix(1_700_000_000, 0)
	g0 := supervisor.Generation{Epoch: 0, PID: 100, State: supervisor.StateReady}
	g1 := supervisor.Generation{Epoch: 1, PID: 101, State: supervisor.StateStarting}
	st := func(gs ...supervisor.Generation) supervisor.Status { return supervisor.Status{Generations: gs} }
	one := 1
	zero := 0
	evs := []supervisor.Event{
		{Kind: supervisor.EventState, Time: t0, First: true, Generation: &g0, Status: st(g0)},
		{Kind: supervisor.EventReloading, Time: t0.Add(time.Second), Status: st(g0)},
		{Kind: supervisor.EventState, Time: t0.Add(time.Second), Generation: &g1, Status: st(g0, g1)},
		{Kind: supervisor.EventState, Time: t0.Add(3 * time.Second), Status: st(g0),
			Generation: &supervisor.Generation{Epoch: 1, PID: 101, State: supervisor.StateExited, ExitStatus: &one}},
		{Kind: supervisor.EventReloaded, Time: t0.Add(3 * time.Second), Status: st(g0),
			Reload: &supervisor.ReloadResult{Epoch: 1, Failure: supervisor.FailureStart, Reason: "epoch 1 exited with status 1 before it was ready", At: t0.Add(3 * time.Second)}},
	}
	for _, ev := range evs {
		m.Observe(ev)
	}
	check := func(name string, got, want float64) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("last_reload_successful after a failed reload", testutil.ToFloat64(m.lastOK), 0)
	check("success timestamp (first ready)", testutil.ToFloat64(m.lastOKTime), 1_700_000_000)
	check("start_failed", testutil.ToFloat64(m.reloads.WithLabelValues(ResultStartFailed)), 1)
	check("exits starting", testutil.ToFloat64(m.exits.WithLabelValues(ExitStarting)), 1)
	check("generations ready", testutil.ToFloat64(m.generations.WithLabelValues("ready")), 1)
	check("generations starting", testutil.ToFloat64(m.generations.WithLabelValues("starting")), 0)

	g1r := supervisor.Generation{Epoch: 1, PID: 102, State: supervisor.StateReady}
	g0d := g0
	g0d.State = supervisor.StateDraining
	for _, ev := range []supervisor.Event{
		{Kind: supervisor.EventReloading, Time: t0.Add(10 * time.Second), Status: st(g0)},
		{Kind: supervisor.EventState, Time: t0.Add(11 * time.Second), Generation: &g0d, Status: st(g0d, g1r)},
		{Kind: supervisor.EventState, Time: t0.Add(11 * time.Second), Generation: &g1r, Status: st(g0d, g1r)},
		{Kind: supervisor.EventReloaded, Time: t0.Add(12 * time.Second), Status: st(g0d, g1r),
			Reload: &supervisor.ReloadResult{Epoch: 1, OK: true, At: t0.Add(12 * time.Second)}},
		{Kind: supervisor.EventState, Time: t0.Add(20 * time.Second), Status: st(g1r),
			Generation: &supervisor.Generation{Epoch: 0, PID: 100, State: supervisor.StateExited, ExitStatus: &zero}},
	} {
		m.Observe(ev)
	}
	check("last_reload_successful", testutil.ToFloat64(m.lastOK), 1)
	check("success timestamp", testutil.ToFloat64(m.lastOKTime), 1_700_000_012)
	check("success", testutil.ToFloat64(m.reloads.WithLabelValues(ResultSuccess)), 1)
	check("epoch", testutil.ToFloat64(m.epoch), 1)
	check("exits clean", testutil.ToFloat64(m.exits.WithLabelValues(ExitClean)), 1)
	check("generations draining", testutil.ToFloat64(m.generations.WithLabelValues("draining")), 0)
	if n := testutil.CollectAndCount(m.duration); n != 1 {
		t.Errorf("duration histogram: %d series", n)
	}
	var buf bytes.Buffer
	if err := testutil.CollectAndCompare(m.duration, strings.NewReader(`
# HELP restarter_reload_duration_seconds Time from the start of a reload (validation) to its outcome.
# TYPE restarter_reload_duration_seconds histogram
restarter_reload_duration_seconds_bucket{le="0.05"} 0
restarter_reload_duration_seconds_bucket{le="0.1"} 0
restarter_reload_duration_seconds_bucket{le="0.25"} 0
restarter_reload_duration_seconds_bucket{le="0.5"} 0
restarter_reload_duration_seconds_bucket{le="1"} 0
restarter_reload_duration_seconds_bucket{le="2.5"} 2
restarter_reload_duration_seconds_bucket{le="5"} 2
restarter_reload_duration_seconds_bucket{le="10"} 2
restarter_reload_duration_seconds_bucket{le="30"} 2
restarter_reload_duration_seconds_bucket{le="60"} 2
restarter_reload_duration_seconds_bucket{le="300"} 2
restarter_reload_duration_seconds_bucket{le="+Inf"} 2
restarter_reload_duration_seconds_sum 4
restarter_reload_duration_seconds_count 2
`)); err != nil {
		t.Error(err, buf.String())
	}
}

func TestResult(t *testing.T) {
	for fail, want := range map[supervisor.Failure]string{
		supervisor.FailureValidation: ResultValidationFailed,
		supervisor.FailureNotReady:   ResultNotReady,
		supervisor.FailureStart:      ResultStartFailed,
		supervisor.FailureAborted:    ResultAborted,
		"":                           ResultOther, // a failure nobody classified
	} {
		if got := Result(supervisor.ReloadResult{Failure: fail, Reason: "whatever the words"}); got != want {
			t.Errorf("Result(%q) = %s, want %s", fail, got, want)
		}
	}
	if got := Result(supervisor.ReloadResult{OK: true}); got != ResultSuccess {
		t.Errorf("OK: %s", got)
	}
}

func TestHealthz(t *testing.T) {
	var sick error
	m := New()
	s, err := Listen("127.0.0.1:0", m.Handler(func(context.Context) error { return sick }))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if body := scrape(t, "http://"+s.Addr()+"/healthz"); body != "ok\n" {
		t.Fatalf("healthz: %q", body)
	}
	sick = errors.New("state machine not answering")
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "not answering") {
		t.Fatalf("healthz when sick: %d %q", resp.StatusCode, b)
	}
}

func TestListenBadAddress(t *testing.T) {
	_, err := Listen("127.0.0.1:99999", http.NotFoundHandler())
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:99999") {
		t.Fatalf("err = %v, want one naming the address", err)
	}
}
