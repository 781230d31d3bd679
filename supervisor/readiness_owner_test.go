package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// foreignLive is another process's admin: this test process answers LIVE at
// every epoch asked about, while the generation probed is a child that holds
// nothing (as an Envoy at epoch 0 on the admin address would fool us).
func foreignLive(t *testing.T) (addr string, gen int) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"state":"LIVE","command_line_options":{"restart_epoch":0}}`)
	}))
	t.Cleanup(srv.Close)
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return srv.Listener.Addr().String(), cmd.Process.Pid
}

// TestEnvoyAdminNotFooledByAnotherProcess: LIVE at the right epoch from a
// listener the generation does not hold is not ready, and the error names
// the holder.
func TestEnvoyAdminNotFooledByAnotherProcess(t *testing.T) {
	addr, gen := foreignLive(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := EnvoyAdmin{Addr: addr, Interval: 20 * time.Millisecond}.Ready(ctx, Probe{PID: gen})
	want := fmt.Sprintf("%s is held by pid %d", addr, os.Getpid())
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Ready = %v; want not ready, %q", err, want)
	}
	var le *ListenerError
	if !errors.As(err, &le) || le.Other != os.Getpid() {
		t.Fatalf("error %v: want a *ListenerError naming pid %d", err, os.Getpid())
	}
}

// TestReadyURLNotFooledByAnotherProcess: the same for --ready-url on a
// local address.
func TestReadyURLNotFooledByAnotherProcess(t *testing.T) {
	addr, gen := foreignLive(t)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := HTTP{URL: "http://" + addr + "/ready", Interval: 20 * time.Millisecond}.Ready(ctx, Probe{PID: gen})
	if err == nil || !strings.Contains(err.Error(), "held by pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("Ready = %v; want not ready, held by pid %d", err, os.Getpid())
	}
}

func TestURLHostPort(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080/x": "127.0.0.1:8080",
		"http://localhost/ready":  "localhost:80",
		"https://[::1]/":          "[::1]:443",
	} {
		if got, err := urlHostPort(in); err != nil || got != want {
			t.Errorf("urlHostPort(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x/", "/path", "http://"} {
		if _, err := urlHostPort(bad); err == nil {
			t.Errorf("urlHostPort(%q): no error", bad)
		}
	}
	if !isLocalHostPort(context.Background(), "127.0.0.1:80") || isLocalHostPort(context.Background(), "192.0.2.1:80") {
		t.Errorf("isLocalHostPort: 127.0.0.1 local=%v, 192.0.2.1 (TEST-NET) local=%v; want true, false",
			isLocalHostPort(context.Background(), "127.0.0.1:80"), isLocalHostPort(context.Background(), "192.0.2.1:80"))
	}
}

// TestProbeFailuresAreLogged: a check failing for longer than failLogAfter
// is logged with its last error, at most once per failLogEvery; its end is
// logged with the last error too.
func TestProbeFailuresAreLogged(t *testing.T) {
	core, logs := observer.New(zapcore.InfoLevel)
	ctx, cancel := context.WithTimeout(context.Background(), failLogAfter+500*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := poll(ctx, Probe{Vars: Vars{Epoch: 7}, Log: zap.New(core)}, 20*time.Millisecond, func() error {
		return errors.New("connection refused")
	})
	took := time.Since(start)
	if err == nil {
		t.Fatal("poll = nil, want the context's error")
	}
	warn := logs.FilterMessage("not ready yet").All()
	if max := int(took/failLogEvery) + 1; len(warn) < 1 || len(warn) > max {
		t.Fatalf("%d 'not ready yet' entries in %s, want 1..%d", len(warn), took, max)
	}
	if e := warn[0].ContextMap()["error"]; e != "connection refused" {
		t.Errorf("logged error %v, want the last check's error", e)
	}
	if n := logs.FilterMessage("readiness check ended").Len(); n != 1 {
		t.Errorf("%d 'readiness check ended' entries, want 1", n)
	}
}

// recordProbe is a readiness that records the Probe it was given.
type recordProbe struct {
	mu     sync.Mutex
	probes []Probe
}

func (r *recordProbe) Ready(ctx context.Context, p Probe) error {
	r.mu.Lock()
	r.probes = append(r.probes, p)
	r.mu.Unlock()
	return nil
}

// TestOneValueSet: the readiness check and the validator see the same
// per-generation values as the generation itself (drain and parent-shutdown
// seconds were 0 for readiness before), and a runner.
func TestOneValueSet(t *testing.T) {
	rec := &recordProbe{}
	var validated Probe
	h := start(t, Config{Readiness: rec, Validate: func(_ context.Context, next Probe) error {
		validated = next
		return nil
	}})
	h.waitState(0, StateReady)
	if res, err := h.s.Reload(context.Background()); err != nil || !res.OK {
		t.Fatalf("Reload = %+v, %v", res, err)
	}
	h.stop()
	want := Vars{Epoch: 1, BaseID: 0, DrainTimeS: 20, ParentShutdownTimeS: 30}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.probes) != 2 || rec.probes[1].Vars != want || rec.probes[1].Run == nil || rec.probes[1].PID == 0 {
		t.Fatalf("readiness probes %+v; want the second with %+v, a pid and a runner", rec.probes, want)
	}
	if validated.Vars != want || validated.Run == nil || validated.PID != 0 {
		t.Fatalf("validator probe %+v; want %+v, a runner, no pid", validated, want)
	}
}

// TestReadyCommandSeesDrainTimes: {{drain_time_s}} and DRAIN_TIME_S (and the
// parent-shutdown pair) reach a --ready-cmd with the real values.
func TestReadyCommandSeesDrainTimes(t *testing.T) {
	ready := CommandReady{Argv: []string{"/bin/sh", "-c",
		`test "{{drain_time_s}}/{{parent_shutdown_time_s}}/$DRAIN_TIME_S/$PARENT_SHUTDOWN_TIME_S" = 20/30/20/30`},
		Interval: 20 * time.Millisecond}
	h := start(t, Config{Readiness: ready})
	h.waitState(0, StateReady)
	h.stop()
}
