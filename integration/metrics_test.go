package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

// scrapeMetrics is one GET of /metrics as name -> value, keyed by the
// series as printed (`restarter_reloads_total{result="success"}`).
func scrapeMetrics(addr string) (map[string]float64, string, error) {
	resp, err := probeClient.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("/metrics: status %d", resp.StatusCode)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, string(b), nil
}

// waitSeries waits until every series in want has its value.
func waitSeries(t *testing.T, addr string, want map[string]float64) map[string]float64 {
	t.Helper()
	var got map[string]float64
	testutil.WaitFor(t, 20*time.Second, func() error {
		var err error
		if got, _, err = scrapeMetrics(addr); err != nil {
			return err
		}
		for k, v := range want {
			if got[k] != v {
				return fmt.Errorf("%s = %v, want %v", k, got[k], v)
			}
		}
		return nil
	})
	return got
}

// TestMetricsEndToEnd: --metrics-address serves every series from the
// start; a successful and a failed reload move the right ones; the scrape
// passes promtool; /healthz answers from the state machine.
func TestMetricsEndToEnd(t *testing.T) {
	env := newProxyEnv(t)
	conf := filepath.Join(t.TempDir(), "proxy.conf")
	if err := os.WriteFile(conf, []byte("body: one\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	maddr := freeAddr(t)
	// Two reloads back to back, the first generation still draining: Envoy's
	// native pacing, or the second would be held for the whole drain.
	r := startRestarter(t, env.RestarterArgs([]string{"--metrics-address", maddr, "--reload-pacing", "envoy"}, "-c", conf)...)
	waitLive(t, env.Admin, 0, 20*time.Second)

	got := waitSeries(t, maddr, map[string]float64{
		"restarter_config_last_reload_successful": 1,
		`restarter_generations{state="ready"}`:    1,
		"restarter_epoch":                         0,
	})
	for _, s := range []string{`restarter_reloads_total{result="success"}`, `restarter_reloads_total{result="validation_failed"}`,
		`restarter_reloads_total{result="start_failed"}`, `restarter_reloads_total{result="not_ready"}`,
		"restarter_reload_duration_seconds_count", `restarter_generation_exits_total{kind="clean"}`,
		`restarter_generation_exits_total{kind="starting"}`, "process_resident_memory_bytes", "go_goroutines"} {
		if _, ok := got[s]; !ok {
			t.Errorf("series %s missing at start", s)
		}
	}
	firstOK := got["restarter_config_last_reload_success_timestamp_seconds"]
	if firstOK == 0 {
		t.Error("no success timestamp after the first generation became ready")
	}

	// A reload that works.
	if err := r.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	got = waitSeries(t, maddr, map[string]float64{
		`restarter_reloads_total{result="success"}`: 1,
		"restarter_epoch":                         1,
		"restarter_config_last_reload_successful": 1,
		"restarter_reload_duration_seconds_count": 1,
	})
	okAt := got["restarter_config_last_reload_success_timestamp_seconds"]
	if okAt <= firstOK {
		t.Errorf("success timestamp %v did not move past %v", okAt, firstOK)
	}

	// A reload whose validation fails: the gauge drops to 0, the timestamp stays.
	if err := os.WriteFile(conf, []byte("fail: true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	got = waitSeries(t, maddr, map[string]float64{
		`restarter_reloads_total{result="validation_failed"}`: 1,
		`restarter_reloads_total{result="success"}`:           1,
		"restarter_config_last_reload_successful":             0,
		"restarter_epoch":                         1,
		"restarter_reload_duration_seconds_count": 2,
	})
	if v := got["restarter_config_last_reload_success_timestamp_seconds"]; v != okAt {
		t.Errorf("success timestamp moved on a failed reload: %v -> %v", okAt, v)
	}
	// The drained epoch 0 exits 0 after parent-shutdown time (900 s by
	// default here): not waited for; what is counted so far must be clean.
	if got[`restarter_generation_exits_total{kind="serving"}`] != 0 {
		t.Errorf("a serving exit was counted: %v", got)
	}

	_, text, err := scrapeMetrics(maddr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Log("promtool not found (Debian: apt-get install prometheus): lint skipped")
	} else {
		cmd := exec.Command("promtool", "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}

	if body, err := getBody("http://" + maddr + "/healthz"); err != nil || body != "ok\n" {
		t.Errorf("/healthz: %q %v", body, err)
	}
	// A stopped restarter answers nothing: the listener is closed on exit.
	r.Stop(15 * time.Second)
	if _, err := getBody("http://" + maddr + "/healthz"); err == nil {
		t.Error("/healthz still answers after the restarter exited")
	}
}

// TestMetricsAddressInUse: a taken --metrics-address is a usage error
// (exit 2) before any generation starts.
func TestMetricsAddressInUse(t *testing.T) {
	env := newProxyEnv(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ln := l.Addr().String()
	r := startRestarter(t, env.RestarterArgs([]string{"--metrics-address", ln})...)
	code, err := r.Wait(20 * time.Second)
	if err != nil || code != 2 {
		t.Fatalf("exit %d (%v), want 2", code, err)
	}
	if !strings.Contains(r.Log(), "--metrics-address "+ln) {
		t.Errorf("message does not name the flag and address:\n%s", r.Log())
	}
	if len(procsWithArg(env.Bin.Testproxy, env.SocketPath)) > 0 {
		t.Error("a generation was started despite the bad --metrics-address")
	}
}
