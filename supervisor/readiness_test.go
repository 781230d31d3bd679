package supervisor

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

func TestParseServerInfo(t *testing.T) {
	for _, c := range []struct {
		name, in string
		state    string
		epoch    uint32
		err      bool
	}{
		{"number", `{"state":"LIVE","command_line_options":{"restart_epoch":3}}`, "LIVE", 3, false},
		{"string", `{"state":"LIVE","command_line_options":{"restart_epoch":"12"}}`, "LIVE", 12, false},
		{"omitted zero", `{"state":"DRAINING","command_line_options":{}}`, "DRAINING", 0, false},
		{"no options", `{"state":"PRE_INITIALIZING"}`, "PRE_INITIALIZING", 0, false},
		{"negative", `{"state":"LIVE","command_line_options":{"restart_epoch":-1}}`, "LIVE", 0, true},
		{"garbage epoch", `{"state":"LIVE","command_line_options":{"restart_epoch":"x"}}`, "LIVE", 0, true},
		{"not json", `<html>`, "", 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			st, ep, err := ParseServerInfo([]byte(c.in))
			if (err != nil) != c.err || st != c.state || ep != c.epoch {
				t.Fatalf("got %q %d %v, want %q %d err=%v", st, ep, err, c.state, c.epoch, c.err)
			}
		})
	}
}

func FuzzParseServerInfo(f *testing.F) {
	f.Add([]byte(`{"state":"LIVE","command_line_options":{"restart_epoch":3}}`))
	f.Add([]byte(`{"state":"LIVE","command_line_options":{"restart_epoch":"3"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = ParseServerInfo(b)
	})
}

func TestEnvoyAdminReadiness(t *testing.T) {
	var epoch atomic.Int32
	epoch.Store(-1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := epoch.Load()
		if e < 0 {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"state":"LIVE","command_line_options":{"restart_epoch":%d}}`, e)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	epoch.Store(1)
	if err := (EnvoyAdmin{Addr: srv.Listener.Addr().String(), Interval: 20 * time.Millisecond}).Ready(ctx, selfProbe(2)); err == nil {
		t.Fatalf("ready while server_info reports epoch 1, want epoch 2")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	go func() { time.Sleep(100 * time.Millisecond); epoch.Store(2) }()
	if err := (EnvoyAdmin{Addr: srv.URL, Interval: 20 * time.Millisecond}).Ready(ctx2, selfProbe(2)); err != nil {
		t.Fatalf("not ready at epoch 2: %v", err)
	}
}

func TestHTTPReadiness(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := (HTTP{URL: srv.URL, Interval: 10 * time.Millisecond}).Ready(ctx, selfProbe(0)); err != nil || n.Load() != 3 {
		t.Fatalf("HTTP ready = %v after %d polls, want nil after 3", err, n.Load())
	}
}

// TestEnvoyAdminReadinessUsesFreshConnections models a hot restart of the
// admin address: the old generation keeps answering on connections it
// already has, only new connections reach the new generation. A probe that
// kept its connection alive would never see the new epoch.
func TestEnvoyAdminReadinessUsesFreshConnections(t *testing.T) {
	var handedOver atomic.Bool
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		epoch := r.Context().Value(connEpochKey{}).(int)
		fmt.Fprintf(w, `{"state":"LIVE","command_line_options":{"restart_epoch":%d}}`, epoch)
	}))
	srv.Config.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		e := 1
		if handedOver.Load() {
			e = 2
		}
		return context.WithValue(ctx, connEpochKey{}, e)
	}
	srv.Start()
	defer srv.Close()
	probe := EnvoyAdmin{Addr: srv.Listener.Addr().String(), Interval: 20 * time.Millisecond}

	// Warm the probe's connection while epoch 1 owns the address (a must-pass
	// step: its deadline is for a busy machine, not a bound).
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := probe.Ready(ctx, selfProbe(1)); err != nil {
		t.Fatalf("epoch 1 not ready: %v", err)
	}
	handedOver.Store(true)
	ctx2, cancel2 := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel2()
	if err := probe.Ready(ctx2, selfProbe(2)); err != nil {
		t.Fatalf("epoch 2 not seen after the handover (probe reused the old connection?): %v", err)
	}
}

type connEpochKey struct{}

// selfProbe is a probe of a generation that is this test process: the
// test's own listeners belong to it.
func selfProbe(epoch uint32) Probe {
	return Probe{Vars: Vars{Epoch: epoch}, PID: os.Getpid()}
}

// A starting generation whose checks keep failing says why in its health
// (what `restarter status` shows), here the holder of the probed address.
func TestStartingHealthSaysWhyNotReady(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	h := start(t, Config{Readiness: HTTP{URL: srv.URL, Interval: 20 * time.Millisecond}, ReadyTimeout: time.Minute})
	held := fmt.Sprintf("is held by pid %d", os.Getpid())
	testutil.WaitFor(t, 20*time.Second, func() error {
		st := h.s.Status()
		if len(st.Generations) != 1 || st.Generations[0].State != StateStarting {
			return fmt.Errorf("generations %+v, want epoch 0 starting", st.Generations)
		}
		if hl := st.Generations[0].Health; !strings.HasPrefix(hl, "not ready after ") || !strings.Contains(hl, held) {
			return fmt.Errorf("health %q, want why it is not ready (%s)", hl, held)
		}
		return nil
	})
	h.stop()
}
