package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

// build holds the testproxy binary, built once per test run.
var build = testutil.Build{Race: raceEnabled}

func TestMain(m *testing.M) {
	code := m.Run()
	build.Cleanup()
	os.Exit(code)
}

func testproxyBin(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the testproxy binary; skipped in -short")
	}
	return filepath.Join(build.Dir(t, "./cmd/testproxy"), "testproxy")
}

// syncBuffer collects a process's stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type proc struct {
	name      string
	cmd       *exec.Cmd
	log       *syncBuffer
	done      chan struct{}
	err       error
	exitAt    time.Time // when Wait returned (no sooner than the exit); read after done
	adminPath string
}

// instance is one hot-restart family: a base id and socket path nobody else uses.
type instance struct {
	dir    string
	baseID string
	socket string
	port   int
}

func newInstance(t *testing.T) instance {
	t.Helper()
	id := 1000 + rand.IntN(400_000_000)
	return instance{
		dir:    t.TempDir(),
		baseID: strconv.Itoa(id),
		socket: fmt.Sprintf("@testproxy_test_%d_%d", os.Getpid(), id),
		port:   freePort(t),
	}
}

func (in instance) listen() string { return fmt.Sprintf("127.0.0.1:%d", in.port) }

func freePort(t *testing.T) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(testutil.FreeAddr(t))
	n, _ := strconv.Atoi(port)
	return n
}

// start runs one generation; it is stopped (TERM, then KILL) in t.Cleanup.
func (in instance) start(t *testing.T, epoch int, extra ...string) *proc {
	t.Helper()
	return in.startArgs(t, epoch, append([]string{"--base-id", in.baseID}, extra...))
}

// startArgs is start without --base-id.
func (in instance) startArgs(t *testing.T, epoch int, extra []string) *proc {
	t.Helper()
	adminPath := filepath.Join(in.dir, fmt.Sprintf("admin%d", epoch))
	args := []string{
		"--restart-epoch", strconv.Itoa(epoch), "--socket-path", in.socket,
		"--listen", in.listen(), "--admin-address", "127.0.0.1:0", "--admin-address-path", adminPath,
	}
	p := &proc{
		name:      fmt.Sprintf("epoch %d", epoch),
		cmd:       exec.Command(testproxyBin(t), append(args, extra...)...),
		log:       &syncBuffer{},
		done:      make(chan struct{}),
		adminPath: adminPath,
	}
	p.cmd.Stderr = p.log
	p.cmd.Stdout = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); p.exitAt = time.Now(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s log:\n%s", p.name, p.log.String())
		}
	})
	return p
}

func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode is the exit code, 128+signal for a signalled exit (as the
// restarter reports one).
func (p *proc) exitCode() int {
	<-p.done
	return testutil.ExitCode(p.cmd.ProcessState)
}

// waitExit waits for the process to end and returns its exit code.
func (p *proc) waitExit(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.exitCode()
	case <-time.After(d):
		t.Fatalf("%s still running after %s", p.name, d)
		return -1
	}
}

var client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(url string) (int, string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// admin returns the generation's admin base URL once it is written.
func (p *proc) admin(t *testing.T) string {
	t.Helper()
	var addr string
	testutil.WaitFor(t, 20*time.Second, func() error {
		if p.exited() {
			t.Fatalf("%s exited (%v) before binding admin", p.name, p.err)
		}
		b, err := os.ReadFile(p.adminPath)
		if err != nil || len(b) == 0 {
			return fmt.Errorf("%s admin address: %v", p.name, err)
		}
		addr = string(b)
		return nil
	})
	return "http://" + addr
}

func getServerInfo(admin string) (testutil.ServerInfo, error) { return testutil.GetServerInfo(admin) }

func (p *proc) waitLive(t *testing.T, epoch uint32) string {
	t.Helper()
	admin := p.admin(t)
	testutil.WaitFor(t, 30*time.Second, func() error {
		if p.exited() {
			t.Fatalf("%s exited (%v) before going live", p.name, p.err)
		}
		si, err := getServerInfo(admin)
		if err != nil {
			return err
		}
		if si.State != "LIVE" || si.Opts.RestartEpoch != epoch {
			return fmt.Errorf("server_info: state %s epoch %d, want LIVE epoch %d", si.State, si.Opts.RestartEpoch, epoch)
		}
		return nil
	})
	return admin
}

func stat(admin, name string) (uint64, error) {
	code, body, err := get(admin + "/stats")
	if err != nil {
		return 0, err
	}
	if code != 200 {
		return 0, fmt.Errorf("stats: status %d", code)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `: (\d+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0, fmt.Errorf("stats: no %s in\n%s", name, body)
	}
	return strconv.ParseUint(m[1], 10, 64)
}

var epochRE = regexp.MustCompile(`^epoch (\d+) pid \d+`)

// TestHotRestartUnderLoad hands over from epoch 0 to epoch 1 under a steady
// stream of new connections: no request fails, a slow request started on
// epoch 0 completes there, epoch 0 exits 0 once terminated, and the request
// counter on epoch 1 counts every request both served.
func TestHotRestartUnderLoad(t *testing.T) {
	in := newInstance(t)
	common := []string{"--drain-time-s", "1", "--parent-shutdown-time-s", "2", "--stats-flush-interval", "200ms"}
	p0 := in.start(t, 0, common...)
	p0.waitLive(t, 0)
	url := "http://" + in.listen()

	const rate, total = 200, 600 // 200 requests/s for 3 s, one connection each
	var ok, failed atomic.Int64
	var byEpoch [2]atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	trafficDone := make(chan struct{})
	go func() {
		defer close(trafficDone)
		tick := time.NewTicker(time.Second / rate)
		defer tick.Stop()
		for range total {
			<-tick.C
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, body, err := get(url + "/")
				if err == nil && code != 200 {
					err = fmt.Errorf("status %d: %s", code, body)
				}
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					return
				}
				ok.Add(1)
				if m := epochRE.FindStringSubmatch(body); m != nil && (m[1] == "0" || m[1] == "1") {
					byEpoch[m[1][0]-'0'].Add(1)
				}
			}()
		}
		wg.Wait()
	}()

	// A slow request on epoch 0, started before epoch 1 exists.
	slow := make(chan string, 1)
	go func() {
		code, body, err := get(url + "/slow?ms=1500")
		switch {
		case err != nil:
			slow <- "error: " + err.Error()
		case code != 200:
			slow <- fmt.Sprintf("status %d: %s", code, body)
		default:
			slow <- body
		}
	}()
	testutil.WaitFor(t, 5*time.Second, func() error {
		if n := byEpoch[0].Load(); n < 150 {
			return fmt.Errorf("epoch 0 served %d requests, want 150 before the restart", n)
		}
		return nil
	})

	restartAt := time.Now()
	p1 := in.start(t, 1, common...)
	admin1 := p1.waitLive(t, 1)

	if got := <-slow; !strings.HasPrefix(got, "epoch 0 ") {
		t.Errorf("slow request started on epoch 0: got %q, want a 200 from epoch 0", got)
	}
	<-trafficDone
	t.Logf("requests: %d sent, %d ok, %d failed; epoch 0 served %d, epoch 1 served %d",
		total, ok.Load(), failed.Load(), byEpoch[0].Load(), byEpoch[1].Load())
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed during the hot restart; first: %v", n, total, firstErr.Load())
	}
	if byEpoch[1].Load() == 0 {
		t.Errorf("epoch 1 served no request, want the traffic after the restart")
	}

	// Nothing but epoch 1's terminate, sent at its parent-shutdown time
	// (2 s after it started), ends epoch 0: its own drain ends after 1 s
	// and leaves it running.
	if code := p0.waitExit(t, 20*time.Second); code != 0 {
		t.Errorf("epoch 0 exit code %d, want 0", code)
	}
	if d := p0.exitAt.Sub(restartAt); d < 2*time.Second {
		t.Errorf("epoch 0 exited %s after epoch 1 started, want no sooner than epoch 1's parent-shutdown time (2s)", d)
	}
	waitParentLink(t, admin1, "terminated")

	// Every request served by either generation, plus the slow one.
	want := uint64(ok.Load()) + 1
	testutil.WaitFor(t, 10*time.Second, func() error {
		got, err := stat(admin1, "http.requests")
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("epoch 1 http.requests = %d, want %d", got, want)
		}
		return nil
	})
	if g, err := stat(admin1, "server.hot_restart_generation"); err != nil || g != 2 {
		t.Errorf("server.hot_restart_generation = %d (%v), want 2", g, err)
	}
}

// TestAdminEndpoints checks epoch 0's admin API and that /quitquitquit ends it with 0.
func TestAdminEndpoints(t *testing.T) {
	in := newInstance(t)
	p := in.start(t, 0, "--drain-time-s", "3", "--parent-shutdown-time-s", "9")
	admin := p.waitLive(t, 0)

	si, err := getServerInfo(admin)
	if err != nil {
		t.Fatal(err)
	}
	if si.Opts.BaseID != in.baseID || si.Opts.DrainTime != "3s" {
		t.Errorf("server_info options: base_id %q drain_time %q, want %q 3s", si.Opts.BaseID, si.Opts.DrainTime, in.baseID)
	}
	if code, body, err := get(admin + "/ready"); err != nil || code != 200 || strings.TrimSpace(body) != "LIVE" {
		t.Errorf("/ready = %d %q %v, want 200 LIVE", code, body, err)
	}
	if code, body, err := get(admin + "/hot_restart_version"); err != nil || code != 200 || strings.TrimSpace(body) != hotRestartVersion {
		t.Errorf("/hot_restart_version = %d %q %v, want %s", code, body, err, hotRestartVersion)
	}
	for i := range 3 {
		if code, body, err := get("http://" + in.listen() + "/"); err != nil || code != 200 || !strings.HasPrefix(body, "epoch 0 pid ") {
			t.Fatalf("request %d: %d %q %v", i, code, body, err)
		}
	}
	if n, err := stat(admin, "http.requests"); err != nil || n != 3 {
		t.Errorf("http.requests = %d (%v), want 3", n, err)
	}
	_, body, err := get(admin + "/stats?format=json")
	if err != nil {
		t.Fatal(err)
	}
	var js struct {
		Stats []struct {
			Name  string `json:"name"`
			Value uint64 `json:"value"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(body), &js); err != nil {
		t.Fatalf("/stats?format=json: %v in %q", err, body)
	}
	found := false
	for _, s := range js.Stats {
		if s.Name == "http.requests" && s.Value == 3 {
			found = true
		}
	}
	if !found {
		t.Errorf("/stats?format=json has no http.requests = 3: %s", body)
	}
	if code, _, _ := get(admin + "/quitquitquit"); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /quitquitquit = %d, want 405", code)
	}
	resp, err := client.Post(admin+"/quitquitquit", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code := p.waitExit(t, 15*time.Second); code != 0 {
		t.Errorf("exit code after /quitquitquit = %d, want 0", code)
	}
}

// TestSignals: SIGUSR1 is handled (testproxy.log_reopens counts it) and
// survived, SIGTERM ends the process with 0.
func TestSignals(t *testing.T) {
	in := newInstance(t)
	p := in.start(t, 0)
	admin := p.waitLive(t, 0)
	p.cmd.Process.Signal(syscall.SIGUSR1)
	testutil.WaitFor(t, 10*time.Second, func() error {
		if p.exited() {
			t.Fatalf("SIGUSR1 ended the process: %v", p.err)
		}
		st, ti, err := getTestproxyInfo(admin)
		if err != nil {
			return err
		}
		if ti.LogReopens != 1 || st != "LIVE" {
			return fmt.Errorf("after SIGUSR1: state %s log_reopens %d, want LIVE 1", st, ti.LogReopens)
		}
		return nil
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.waitExit(t, 15*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
}

// TestFailedStartKeepsParent: an epoch 1 that fails before going live exits 1
// and the parent keeps serving on its listeners.
func TestFailedStartKeepsParent(t *testing.T) {
	in := newInstance(t)
	p0 := in.start(t, 0, "--drain-time-s", "1", "--parent-shutdown-time-s", "2")
	p0.waitLive(t, 0)
	p1 := in.start(t, 1, "--fail-start")
	if code := p1.waitExit(t, 30*time.Second); code != 1 {
		t.Fatalf("epoch 1 with --fail-start: exit %d, want 1", code)
	}
	for i := range 20 {
		code, body, err := get("http://" + in.listen() + "/")
		if err != nil || code != 200 || !strings.HasPrefix(body, "epoch 0 ") {
			t.Fatalf("request %d after the failed start: %d %q %v", i, code, body, err)
		}
	}
	if p0.exited() {
		t.Fatalf("epoch 0 exited after its child failed: %v", p0.err)
	}
}

// TestStartDelayNotReady: while --start-delay holds it, epoch 0 answers /ready with 503.
func TestStartDelayNotReady(t *testing.T) {
	in := newInstance(t)
	p := in.start(t, 0, "--start-delay", "1m")
	admin := p.admin(t)
	testutil.WaitFor(t, 10*time.Second, func() error {
		code, body, err := get(admin + "/ready")
		if err != nil {
			return err
		}
		if code != 503 || strings.TrimSpace(body) != "INITIALIZING" {
			return fmt.Errorf("/ready = %d %q, want 503 INITIALIZING", code, body)
		}
		return nil
	})
	p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.waitExit(t, 15*time.Second); code != 0 {
		t.Errorf("SIGTERM during start delay: exit %d, want 0", code)
	}
}

// TestThreeGenerationsReusePort: two workers with a listen socket each are
// handed over twice (epoch 2 holds epoch 0's very sockets); epoch 2 taking
// admin makes epoch 1 terminate epoch 0 at once (at most three
// generations), and the counter survives both handoffs.
func TestThreeGenerationsReusePort(t *testing.T) {
	in := newInstance(t)
	// A parent-shutdown time out of reach of the test: no generation is
	// terminated at it, and epoch 1 does not shut down (which would
	// terminate epoch 0 too). Only epoch 2 taking admin can end epoch 0.
	common := []string{"--drain-time-s", "1", "--parent-shutdown-time-s", "600", "--stats-flush-interval", "100ms",
		"--concurrency", "2", "--reuse-port", "--drain-strategy", "immediate"}
	url := "http://" + in.listen() + "/"
	sent := 0
	burst := func(n int) {
		t.Helper()
		for i := range n {
			code, body, err := get(url)
			if err != nil || code != 200 || !epochRE.MatchString(body) {
				t.Fatalf("request %d: %d %q %v", sent+i, code, body, err)
			}
		}
		sent += n
	}
	p0 := in.start(t, 0, common...)
	p0.waitLive(t, 0)
	sockets0 := listenInodes(t, p0.cmd.Process.Pid, in.port)
	if len(sockets0) != 2 {
		t.Fatalf("epoch 0 listens on %d sockets %v, want 2 (one per worker)", len(sockets0), sockets0)
	}
	burst(20)
	p1 := in.start(t, 1, common...)
	p1.waitLive(t, 1)
	burst(20)
	p2 := in.start(t, 2, common...)
	admin2 := p2.waitLive(t, 2)
	burst(20)
	if code := p0.waitExit(t, 20*time.Second); code != 0 {
		t.Errorf("epoch 0 exit %d, want 0 (terminated by epoch 1 when epoch 2 took admin)", code)
	}
	if p1.exited() {
		t.Fatalf("epoch 1 exited (%v), want it draining: epoch 0 must go while epoch 1 lives", p1.err)
	}
	if got := listenInodes(t, p2.cmd.Process.Pid, in.port); !slices.Equal(got, sockets0) {
		t.Errorf("epoch 2 listens on sockets %v, want epoch 0's %v (both workers' handed over twice)", got, sockets0)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		got, err := stat(admin2, "http.requests")
		if err != nil {
			return err
		}
		if got != uint64(sent) {
			return fmt.Errorf("epoch 2 http.requests = %d, want %d", got, sent)
		}
		return nil
	})
	if g, err := stat(admin2, "server.hot_restart_generation"); err != nil || g != 3 {
		t.Errorf("server.hot_restart_generation = %d (%v), want 3", g, err)
	}
}

// TestKeepAliveClientMovesOn: a keep-alive client of a draining parent is
// told "Connection: close" (immediate strategy) and its next connection lands
// on the child, without a failed request.
func TestKeepAliveClientMovesOn(t *testing.T) {
	in := newInstance(t)
	common := []string{"--drain-time-s", "5", "--parent-shutdown-time-s", "10", "--drain-strategy", "immediate"}
	p0 := in.start(t, 0, common...)
	p0.waitLive(t, 0)
	tr := &http.Transport{MaxIdleConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	ka := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	type answer struct {
		epoch string
		close bool
	}
	ask := func() answer {
		t.Helper()
		resp, err := ka.Get("http://" + in.listen() + "/")
		if err != nil {
			t.Fatalf("keep-alive request: %v", err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := epochRE.FindStringSubmatch(string(b))
		if resp.StatusCode != 200 || m == nil {
			t.Fatalf("keep-alive request: %d %q", resp.StatusCode, b)
		}
		return answer{m[1], resp.Close}
	}
	if a := ask(); a.epoch != "0" || a.close {
		t.Fatalf("before the restart: %+v, want epoch 0 keep-alive", a)
	}
	p1 := in.start(t, 1, common...)
	p1.waitLive(t, 1)
	var seen []answer
	testutil.WaitFor(t, 10*time.Second, func() error {
		a := ask()
		seen = append(seen, a)
		if a.epoch != "1" {
			return fmt.Errorf("still on epoch %s", a.epoch)
		}
		return nil
	})
	// The last epoch-0 answer before the move must have asked to close.
	if len(seen) < 2 || !seen[len(seen)-2].close || seen[len(seen)-2].epoch != "0" {
		t.Fatalf("answers after the restart %+v: want epoch 0 with Connection: close, then epoch 1", seen)
	}
}

// TestDynamicBaseID: epoch 0 picks an id and writes it to --base-id-path;
// epoch 1 started with that id takes over.
func TestDynamicBaseID(t *testing.T) {
	in := newInstance(t)
	idPath := filepath.Join(in.dir, "base-id")
	common := []string{"--drain-time-s", "1", "--parent-shutdown-time-s", "2"}
	p0 := in.startArgs(t, 0, append(common, "--use-dynamic-base-id", "--base-id-path", idPath))
	p0.waitLive(t, 0)
	b, err := os.ReadFile(idPath)
	if err != nil {
		t.Fatal(err)
	}
	id, err := strconv.ParseUint(string(b), 10, 32)
	if err != nil {
		t.Fatalf("--base-id-path holds %q, want a number", b)
	}
	in.baseID = strconv.FormatUint(id, 10)
	sockets0 := listenInodes(t, p0.cmd.Process.Pid, in.port)
	p1 := in.start(t, 1, common...)
	p1.waitLive(t, 1)
	if got := listenInodes(t, p1.cmd.Process.Pid, in.port); len(got) != 1 || !slices.Equal(got, sockets0) {
		t.Errorf("epoch 1 with base id %d listens on sockets %v, want epoch 0's %v", id, got, sockets0)
	}
	if code := p0.waitExit(t, 20*time.Second); code != 0 {
		t.Errorf("epoch 0 exit %d, want 0", code)
	}
}

// TestNoParent: epoch 1 with no parent alive fails (exit 1) unless
// --skip-hot-restart-on-no-parent, which starts it as if it were epoch 0
// at the first refusal of its test_connection probe.
func TestNoParent(t *testing.T) {
	in := newInstance(t)
	fast := []string{"--hot-restart-retry-delay", "20ms"}
	p := in.start(t, 1, fast...)
	if code := p.waitExit(t, 20*time.Second); code != 1 {
		t.Fatalf("epoch 1 without a parent: exit %d, want 1", code)
	}
	// It failed at the handoff: admin is bound only after it.
	if _, err := os.Stat(p.adminPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("epoch 1 without a parent wrote its admin address (%v), want a failure before binding admin", err)
	}
	// The user-visible error names the cause (the feature, not a state).
	if !strings.Contains(p.log.String(), "no hot-restart parent") {
		t.Errorf("epoch 1's error does not name the missing hot-restart parent")
	}
	// Envoy's probe (test_connection) falls back at the first refusal: a
	// retry delay of ten minutes must not be waited out even once.
	p = in.start(t, 1, "--skip-hot-restart-on-no-parent", "--hot-restart-retry-delay", "10m")
	admin := p.waitLive(t, 1)
	waitParentLink(t, admin, "none")
	if code, body, err := get("http://" + in.listen() + "/"); err != nil || code != 200 || !strings.HasPrefix(body, "epoch 1 ") {
		t.Fatalf("epoch 1 started as epoch 0: %d %q %v", code, body, err)
	}
}

// TestSkipOnNoParentWithParent: with --skip-hot-restart-on-no-parent and a
// live parent, the probe gets no reply and the hot restart goes on as usual
// (stats come over: the generation gauge counts both).
func TestSkipOnNoParentWithParent(t *testing.T) {
	in := newInstance(t)
	common := []string{"--drain-time-s", "1", "--parent-shutdown-time-s", "2"}
	p0 := in.start(t, 0, common...)
	p0.waitLive(t, 0)
	p1 := in.start(t, 1, append(common, "--skip-hot-restart-on-no-parent")...)
	admin1 := p1.waitLive(t, 1)
	if g, err := stat(admin1, "server.hot_restart_generation"); err != nil || g != 2 {
		t.Errorf("server.hot_restart_generation = %d (%v), want 2 (taken over from epoch 0)", g, err)
	}
	if code := p0.waitExit(t, 20*time.Second); code != 0 {
		t.Errorf("epoch 0 exit %d, want 0", code)
	}
}

// TestParentDies: a parent killed with SIGKILL after the handoff is noticed at
// the next stats flushes; the child keeps serving and its counter keeps the
// parent's requests.
func TestParentDies(t *testing.T) {
	in := newInstance(t)
	common := []string{"--drain-time-s", "30", "--parent-shutdown-time-s", "60", "--stats-flush-interval", "100ms", "--hot-restart-retry-delay", "20ms"}
	p0 := in.start(t, 0, common...)
	p0.waitLive(t, 0)
	for i := range 5 {
		if code, _, err := get("http://" + in.listen() + "/"); err != nil || code != 200 {
			t.Fatalf("request %d: %d %v", i, code, err)
		}
	}
	p1 := in.start(t, 1, common...)
	admin1 := p1.waitLive(t, 1)
	p0.cmd.Process.Kill()
	p0.waitExit(t, 10*time.Second)
	waitParentLink(t, admin1, "gone") // noticed at the stats flushes
	if code, body, err := get("http://" + in.listen() + "/"); err != nil || code != 200 || !strings.HasPrefix(body, "epoch 1 ") {
		t.Fatalf("request after the parent died: %d %q %v", code, body, err)
	}
	if n, err := stat(admin1, "http.requests"); err != nil || n != 6 {
		t.Errorf("http.requests = %d (%v), want 6 (5 on the dead parent, 1 here)", n, err)
	}
}
