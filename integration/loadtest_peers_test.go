package integration

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/hotrestart/restarter/integration/loadgen"
	"github.com/hotrestart/restarter/internal/osutil"
	"github.com/hotrestart/restarter/internal/testutil"
)

// The peer comparison (make loadtest-peers, LOADTEST_PEERS=1): the same
// scenarios against the restarter (testproxy, drain 1 s, parent shutdown
// 2 s, default pacing), HAProxy (master-worker, listeners passed through
// the master's "expose-fd listeners" socket, SIGUSR2 to the master) and
// nginx (SIGHUP to the master), each driven by the same independent
// open-loop client, vegeta (as a library, so that each response's
// generation can be read: testproxy names its pid in the body, HAProxy and
// nginx send it as X-Pid). A system that is not installed is skipped.

// peer is one system under test, started and reloadable.
type peer struct {
	name   string
	url    string
	reload func() error
	stop   func()
	// explain gives failed requests causes from the system's own events
	// (the restarter's); nil for the peers.
	explain func(fs []loadgen.Failure) []string
}

// peerSystems are the systems of LOADTEST_SYSTEMS (default all), each with a
// function that starts it.
var peerSystems = map[string]func(t *testing.T) peer{
	"restarter":       func(t *testing.T) peer { return startRestarterPeer(t, "") },
	"restarter-envoy": func(t *testing.T) peer { return startRestarterPeer(t, "envoy") },
	"haproxy":         startHAProxy,
	"nginx":           startNginx,
}

func startRestarterPeer(t *testing.T, pacing string) peer {
	env := newProxyEnv(t)
	flags := timings(time.Second)
	if pacing != "" {
		flags = append(flags, "--reload-pacing", pacing)
	}
	r := startRestarter(t, env.RestarterArgs(flags)...)
	waitLive(t, env.Admin, 0, 20*time.Second)
	rec := recordLives(t, r, time.Second)
	name := "restarter"
	if pacing == "envoy" {
		name = "restarter (--reload-pacing=envoy)"
	}
	return peer{name: name, url: env.URL("/"), reload: func() error { return r.Signal(syscall.SIGHUP) },
		stop:    func() { r.Stop(30 * time.Second) },
		explain: func(fs []loadgen.Failure) []string { return causes(fs, rec.lives(), time.Second) }}
}

// backend is the tiny HTTP server behind HAProxy and nginx.
func backend(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func startHAProxy(t *testing.T) peer {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skipf("haproxy not installed: %v", err)
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := fmt.Sprintf(`global
  master-worker
  nbthread 2
  stats socket %[1]s/admin.sock mode 600 level admin expose-fd listeners
  hard-stop-after 30s
defaults
  mode http
  option http-keep-alive
  timeout connect 5s
  timeout client 30s
  timeout server 30s
frontend fe
  bind %[2]s
  http-response set-header X-Pid %%pid
  default_backend be
backend be
  server s1 %[3]s
`, dir, addr, backend(t))
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, bin, "-W", "-db", "-f", path)
	waitHTTP(t, "http://"+addr+"/")
	return peer{name: "HAProxy", url: "http://" + addr + "/", reload: func() error { return p.Signal(syscall.SIGUSR2) },
		stop: func() { p.Stop(30 * time.Second) }}
}

func startNginx(t *testing.T) peer {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Skipf("nginx not installed: %v", err)
	}
	dir := t.TempDir()
	addr := freeAddr(t)
	cfg := fmt.Sprintf(`daemon off;
master_process on;
worker_processes 2;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream be { server %[3]s; keepalive 32; }
  server {
    listen %[2]s;
    location / {
      proxy_pass http://be;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      add_header X-Pid $pid;
    }
  }
}
`, dir, addr, backend(t))
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, bin, "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", path)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("LOADTEST_PEER_LOGS") == "1" {
			b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Logf("nginx error.log:\n%s", b)
		}
	})
	waitHTTP(t, "http://"+addr+"/")
	return peer{name: "nginx", url: "http://" + addr + "/", reload: func() error { return p.Signal(syscall.SIGHUP) },
		stop: func() { p.Stop(30 * time.Second) }}
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, func() error {
		resp, err := probeClient.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	})
}

// peerFigures is one cell of the peer table.
type peerFigures struct {
	System, Mode                              string
	Rate                                      int // reloads/s
	Busy                                      int
	Sent, OK, Refused, Reset, Timeout, Non2xx int64
	Other                                     int64
	Signals, Generations                      int
	LatP50, LatP99                            time.Duration // SIGHUP to the new generation answering
	StartP50, StartP99                        time.Duration // the new process's start to its first answer
	LoadBefore, LoadAfter                     string
	Samples                                   []string
	Failures                                  []loadgen.Failure // by time only: vegeta does not say which connection
}

func (f peerFigures) row() string {
	ms := func(d time.Duration) string {
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64)
	}
	return fmt.Sprintf("| %s | %s | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d of %d | %s / %s | %s / %s | %s → %s |",
		f.System, f.Mode, f.Rate, f.Busy, f.Sent, f.OK, f.Refused, f.Reset, f.Timeout, f.Non2xx, f.Other,
		f.Generations, f.Signals, ms(f.LatP50), ms(f.LatP99), ms(f.StartP50), ms(f.StartP99), f.LoadBefore, f.LoadAfter)
}

const peerHeader = "| system | mode | reloads/s | busy | sent | ok | refused | reset | timeout | non2xx | other | new pids answering, of signals | SIGHUP → new generation answers, ms p50 / p99 | its process start → answers, ms p50 / p99 | load avg |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"

// procStartTicks is field 22 of /proc/<pid>/stat; false if the process is gone.
func procStartTicks(pid int) (int64, bool) {
	st, err := osutil.ReadStat(pid)
	if err != nil || st.StartTime == 0 {
		return 0, false
	}
	return int64(st.StartTime), true
}

func classifyVegeta(r *vegeta.Result) string {
	e := r.Error
	switch {
	case e == "" && r.Code >= 200 && r.Code < 300:
		return "ok"
	case strings.Contains(e, "connection refused"):
		return "refused"
	case strings.Contains(e, "reset by peer"), strings.Contains(e, "EOF"), strings.Contains(e, "broken pipe"),
		strings.Contains(e, "server closed idle connection"):
		return "reset"
	case strings.Contains(e, "timeout"), strings.Contains(e, "deadline exceeded"):
		return "timeout"
	case r.Code != 0:
		return "non2xx"
	}
	return "other"
}

// runPeer offers `rate` requests/s for d to p with vegeta while reloading
// it `reloads` times a second.
func runPeer(t *testing.T, p peer, keepAlive bool, rate, reloads, busy int, d time.Duration) peerFigures {
	t.Helper()
	startBurners(t, busy)
	f := peerFigures{System: p.name, Mode: modeName(keepAlive), Rate: reloads, Busy: busy, LoadBefore: loadAvg()}
	// POST: net/http replays an idempotent request whose kept-alive
	// connection was closed under it, which would hide the loss.
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodPost, URL: p.url})
	atk := vegeta.NewAttacker(vegeta.KeepAlive(keepAlive), vegeta.Timeout(5*time.Second), vegeta.Connections(10000),
		vegeta.MaxBody(4096))
	type seen struct {
		first time.Time
		start int64 // boot ticks; -1 unknown
	}
	gens := map[int]*seen{}
	type hup struct {
		at    time.Time
		ticks int64
	}
	var hups []hup
	done := make(chan struct{})
	go func() {
		defer close(done)
		stopAt := time.Now().Add(d - 2*time.Second)
		tick := time.NewTicker(time.Second / time.Duration(reloads))
		defer tick.Stop()
		for now := range tick.C {
			if now.After(stopAt) {
				return
			}
			hups = append(hups, hup{time.Now(), bootTicks()})
			if err := p.reload(); err != nil {
				t.Errorf("reload %s: %v", p.name, err)
			}
		}
	}()
	msgs := map[string]bool{}
	for r := range atk.Attack(tr, vegeta.Rate{Freq: rate, Per: time.Second}, d, p.name) {
		f.Sent++
		switch classifyVegeta(r) {
		case "ok":
			f.OK++
			pid := generationPIDOf(r)
			if pid == 0 {
				continue
			}
			if g := gens[pid]; g == nil {
				st, ok := procStartTicks(pid)
				if !ok {
					st = -1
				}
				gens[pid] = &seen{first: r.Timestamp.Add(r.Latency), start: st}
			}
			continue
		case "refused":
			f.Refused++
		case "reset":
			f.Reset++
		case "timeout":
			f.Timeout++
		case "non2xx":
			f.Non2xx++
		default:
			f.Other++
		}
		if len(f.Failures) < 10_000 {
			f.Failures = append(f.Failures, loadgen.Failure{Start: r.Timestamp, End: r.Timestamp.Add(r.Latency),
				Class: classifyVegeta(r), Msg: r.Error, NoConnInfo: true})
		}
		if m := r.Error; !msgs[m] && len(f.Samples) < 10 {
			msgs[m] = true
			f.Samples = append(f.Samples, fmt.Sprintf("%s at %s", m, r.Timestamp.Format("15:04:05.000")))
		}
	}
	<-done
	f.Signals = len(hups)
	f.Generations = len(gens) - 1
	// Boot ticks to wall time (10 ms resolution).
	bootZero := time.Now().Add(-time.Duration(bootTicks()) * 10 * time.Millisecond)
	var lat, startLat []time.Duration
	for _, h := range hups {
		var best *seen
		for _, g := range gens {
			if g.start >= h.ticks && (best == nil || g.first.Before(best.first)) {
				best = g
			}
		}
		if best != nil {
			lat = append(lat, best.first.Sub(h.at))
			startLat = append(startLat, best.first.Sub(bootZero.Add(time.Duration(best.start)*10*time.Millisecond)))
		}
	}
	f.LatP50, f.LatP99 = pct(lat, 50), pct(lat, 99)
	f.StartP50, f.StartP99 = pct(startLat, 50), pct(startLat, 99)
	f.LoadAfter = loadAvg()
	return f
}

// generationPIDOf is the answering generation's pid: X-Pid, else the
// testproxy body "epoch E pid P".
func generationPIDOf(r *vegeta.Result) int {
	if v := r.Headers.Get("X-Pid"); v != "" {
		n, _ := strconv.Atoi(v)
		return n
	}
	f := strings.Fields(string(r.Body))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "pid" {
			n, _ := strconv.Atoi(f[i+1])
			return n
		}
	}
	return 0
}

// TestLoadPeers prints the peer table (LOADTEST_PEERS=1; make
// loadtest-peers). LOADTEST_SYSTEMS, LOADTEST_RATES, LOADTEST_MODES,
// LOADTEST_BUSY, LOADTEST_RATE and LOADTEST_SECONDS choose the cells. The
// restarter's rows must show no loss (its default pacing); the peers' are
// reported as measured.
func TestLoadPeers(t *testing.T) {
	skipUnlessLinux(t)
	if os.Getenv("LOADTEST_PEERS") != "1" {
		t.Skip("set LOADTEST_PEERS=1 (make loadtest-peers) for the HAProxy / nginx comparison")
	}
	rate := envInt("LOADTEST_RATE", 1000)
	d := time.Duration(envInt("LOADTEST_SECONDS", 60)) * time.Second
	var rows []string
	for _, busy := range envList("LOADTEST_BUSY", []string{"0"}) {
		b, _ := strconv.Atoi(busy)
		for _, sys := range envList("LOADTEST_SYSTEMS", []string{"restarter", "haproxy", "nginx"}) {
			start, ok := peerSystems[sys]
			if !ok {
				t.Fatalf("LOADTEST_SYSTEMS: unknown system %q", sys)
			}
			for _, rs := range envList("LOADTEST_RATES", []string{"2", "5", "10", "20"}) {
				n, err := strconv.Atoi(rs)
				if err != nil || n <= 0 {
					t.Fatalf("LOADTEST_RATES: %q is not a positive number", rs)
				}
				for _, mode := range envList("LOADTEST_MODES", []string{"new-conn", "keep-alive"}) {
					t.Run(fmt.Sprintf("%s/busy%d/%dps/%s", sys, b, n, mode), func(t *testing.T) {
						p := start(t)
						f := runPeer(t, p, mode == "keep-alive", rate, n, b, d)
						p.stop()
						t.Log(f.row())
						for _, s := range f.Samples {
							t.Log("error: " + s)
						}
						if p.explain != nil {
							for _, c := range p.explain(f.Failures) {
								t.Log("loss cause: " + c)
							}
						}
						rows = append(rows, f.row())
						if sys == "restarter" {
							if lost := f.Sent - f.OK; lost > 0 {
								t.Errorf("restarter lost %d of %d: %v", lost, f.Sent, f.Samples)
							}
						}
					})
				}
			}
		}
	}
	t.Logf("machine: %s; %d requests/s for %v per cell, drain 1 s / parent shutdown 2 s (restarter)\n%s\n%s",
		machine(), rate, d, peerHeader, strings.Join(rows, "\n"))
}
