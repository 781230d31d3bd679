package integration

// Shared harness for the end-to-end tests of this package (loadtest_*_test.go,
// supervisors_*_test.go). Everything here runs real processes on loopback.
//
//   - skipUnlessLinux(t): skip with a clear message off Linux.
//   - buildBinaries(t) Binaries: `go build -o dir/ ./cmd/restarter ./cmd/testproxy`
//     from the module root, once per package run (sync.Once), into a temp dir
//     removed by TestMain. Binaries.Dir, .Restarter, .Testproxy are paths.
//   - freeAddr(t) "127.0.0.1:port": a loopback port free at the time of the call.
//   - uniqueSocketPath(t) "@itest_<pid>_<n>": an abstract hot-restart --socket-path
//     nobody else uses; uniqueBaseID(t): a --base-id no other test uses.
//   - newProxyEnv(t) *ProxyEnv: the above bundled for one test proxy instance
//     (Listen, Admin, SocketPath, BaseID, RuntimeDir), with ProxyArgs() giving the
//     testproxy flags and RestarterArgs(extra...) the restarter flags in front of
//     "-- testproxy ...".
//   - startRestarter(t, args...) *Proc: starts bin/restarter with args (the caller
//     passes everything, "--" and the command included). Its stderr (the log)
//     goes to a file; on test failure the log is printed. t.Cleanup SIGTERMs it
//     and SIGKILLs after 15s. startProc(t, path, args...) does the same for any binary.
//     With INTEGRATION_LOG_DIR=dir set, every process's full log is kept there.
//   - (*Proc).Signal, .Wait(d), .Log() (printed when a test fails; read by a
//     test only where a message is the feature), .Children() (direct child pids).
//   - a restarter's state (status_test.go): (*Proc).Status, .WaitStatus,
//     .WaitReady, .WaitStarted, .WaitReloads; tests wait on these, on /proc
//     (handoff_test.go) and on the proxy's admin, never on the log.
//   - testutil.WaitFor(t, d, func() error): poll every 10ms until nil, or fail with the
//     last error after d.
//   - getServerInfo(addr) (state, epoch, err): the proxy's admin /server_info.
//   - getBody(url): one GET on a fresh connection.
//   - procsWithArg(binary, arg) []int: live processes of that executable whose
//     command line contains arg (e.g. the test's socket path): the orphan scan.
//   - boundSockets(prefix) []string: abstract/filesystem Unix sockets in
//     /proc/net/unix whose name starts with prefix (stale socket scan).
//   - lockHeld(path) bool: whether some process holds an flock on path.

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
	"golang.org/x/sys/unix"
)

// Binaries are the freshly built commands under test.
type Binaries struct {
	Dir       string
	Restarter string
	Testproxy string
}

// build holds the binaries of one package run.
var build testutil.Build

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("integration: every test skipped with -short (end-to-end tests with real processes)")
		os.Exit(0)
	}
	code := m.Run()
	build.Cleanup()
	os.Exit(code)
}

func skipUnlessLinux(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("end-to-end tests need Linux (abstract sockets, /proc, PDEATHSIG); GOOS=%s", runtime.GOOS)
	}
}

// buildBinaries builds cmd/restarter and cmd/testproxy once per package run.
func buildBinaries(t testing.TB) Binaries {
	t.Helper()
	skipUnlessLinux(t)
	dir := build.Dir(t, "./cmd/restarter", "./cmd/testproxy")
	return Binaries{Dir: dir, Restarter: filepath.Join(dir, "restarter"), Testproxy: filepath.Join(dir, "testproxy")}
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	return testutil.FreeAddr(t)
}

var uniqueSeq atomic.Int64

// uniqueSocketPath is an abstract --socket-path private to this test.
func uniqueSocketPath(t testing.TB) string {
	return fmt.Sprintf("@itest_%d_%d", os.Getpid(), uniqueSeq.Add(1))
}

// uniqueBaseID is a base id unlikely to be used by any other test process:
// random in a high range, distinct within this process.
func uniqueBaseID(t testing.TB) uint32 {
	return uint32(1_000_000 + rand.IntN(400_000_000) + int(uniqueSeq.Add(1)))
}

// ProxyEnv is one proxy instance's addresses and identity.
type ProxyEnv struct {
	Bin        Binaries
	Listen     string // data listener 127.0.0.1:port
	Admin      string // admin listener 127.0.0.1:port
	SocketPath string
	BaseID     uint32
	RuntimeDir string // restarter --runtime-dir (locks, pid file)
}

func newProxyEnv(t testing.TB) *ProxyEnv {
	t.Helper()
	b := buildBinaries(t)
	return &ProxyEnv{
		Bin:        b,
		Listen:     freeAddr(t),
		Admin:      freeAddr(t),
		SocketPath: uniqueSocketPath(t),
		BaseID:     uniqueBaseID(t),
		RuntimeDir: t.TempDir(),
	}
}

// URL is the data listener's URL for path.
func (e *ProxyEnv) URL(path string) string { return "http://" + e.Listen + path }

// ProxyArgs are the testproxy flags of this instance (no hot-restart flags:
// the restarter appends those with --envoy).
func (e *ProxyEnv) ProxyArgs(extra ...string) []string {
	return append([]string{e.Bin.Testproxy, "--listen", e.Listen, "--admin-address", e.Admin,
		"--socket-path", e.SocketPath, "--stats-flush-interval", "1s", "--hot-restart-retry-delay", "100ms"}, extra...)
}

// RestarterArgs: restarter flags for this instance, then restarterFlags,
// then "--" and the testproxy command with proxyExtra.
func (e *ProxyEnv) RestarterArgs(restarterFlags []string, proxyExtra ...string) []string {
	args := []string{"--envoy", "--runtime-dir", e.RuntimeDir, "--pid-file", filepath.Join(e.RuntimeDir, "restarter.pid"),
		"--base-id", strconv.FormatUint(uint64(e.BaseID), 10), "--log-format", "json",
		"--ready-envoy-admin", e.Admin, "--ready-interval", "5ms", "--ready-timeout", "20s"}
	args = append(args, restarterFlags...)
	args = append(args, "--")
	return append(args, e.ProxyArgs(proxyExtra...)...)
}

// Proc is a started process whose stderr (and stdout) go to a log file.
type Proc struct {
	t       testing.TB
	Cmd     *exec.Cmd
	Pid     int
	LogPath string
	// RuntimeDir is a restarter's --runtime-dir: where Status finds it.
	RuntimeDir string
	done       chan struct{}
	state      *os.ProcessState
}

// startProc starts path with args; t.Cleanup stops it (SIGTERM, then SIGKILL
// after 15s) and prints its log if the test failed.
func startProc(t testing.TB, path string, args ...string) *Proc {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), filepath.Base(path)+"-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("start %s: %v", path, err)
	}
	logf.Close()
	p := &Proc{t: t, Cmd: cmd, Pid: cmd.Process.Pid, LogPath: logf.Name(), done: make(chan struct{})}
	go func() {
		cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(15 * time.Second)
		if t.Failed() {
			t.Logf("log of %s (pid %d):\n%s", filepath.Base(path), p.Pid, tail(p.Log(), 200))
		}
		if dir := os.Getenv("INTEGRATION_LOG_DIR"); dir != "" {
			name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()) + "-" + strconv.Itoa(p.Pid) + ".log"
			_ = os.WriteFile(filepath.Join(dir, name), []byte(p.Log()), 0o644)
		}
	})
	return p
}

// startRestarter starts the restarter with args (see ProxyEnv.RestarterArgs).
func startRestarter(t testing.TB, args ...string) *Proc {
	t.Helper()
	p := startProc(t, buildBinaries(t).Restarter, args...)
	for i, a := range args {
		if a == "--" {
			break
		}
		if v, ok := strings.CutPrefix(a, "--runtime-dir="); ok {
			p.RuntimeDir = v
		} else if a == "--runtime-dir" && i+1 < len(args) {
			p.RuntimeDir = args[i+1]
		}
	}
	return p
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error { return syscall.Kill(p.Pid, sig) }

// Exited reports whether the process has been reaped.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to d for the process to exit and returns its exit code
// (-1 with an error on timeout; 128+signal when signalled).
func (p *Proc) Wait(d time.Duration) (int, error) {
	select {
	case <-p.done:
	case <-time.After(d):
		return -1, fmt.Errorf("pid %d still running after %v", p.Pid, d)
	}
	return testutil.ExitCode(p.state), nil
}

// Stop sends SIGTERM, waits up to d, then SIGKILLs. It is idempotent.
func (p *Proc) Stop(d time.Duration) {
	if p.Exited() {
		return
	}
	_ = p.Signal(syscall.SIGTERM)
	if _, err := p.Wait(d); err != nil {
		_ = p.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// Log is the process's output so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Children are the pids whose parent is p (from /proc/<pid>/task/*/children).
func (p *Proc) Children() []int { return childrenOf(p.Pid) }

func childrenOf(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, s := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(s); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

var probeClient = &http.Client{
	Timeout:   2 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// getServerInfo reads state and restart_epoch from the admin /server_info.
func getServerInfo(admin string) (state string, epoch int, err error) {
	si, err := testutil.GetServerInfo(admin)
	if err != nil {
		return "", -1, err
	}
	return si.State, int(si.Opts.RestartEpoch), nil
}

// waitLive waits until the admin reports LIVE at epoch.
func waitLive(t testing.TB, admin string, epoch int, d time.Duration) {
	t.Helper()
	testutil.WaitFor(t, d, func() error {
		st, ep, err := getServerInfo(admin)
		if err != nil {
			return err
		}
		if st != "LIVE" || ep != epoch {
			return fmt.Errorf("server_info: state %s epoch %d, want LIVE at epoch %d", st, ep, epoch)
		}
		return nil
	})
}

// waitServing waits until the restarter of env reports epoch ready
// (`restarter status --json`): the proxy's admin saying LIVE is not enough
// before a stop, as the restarter ends a generation it has not yet seen ready
// with SIGKILL (a stop then drains nothing).
func waitServing(t testing.TB, env *ProxyEnv, epoch uint32, d time.Duration) {
	t.Helper()
	testutil.WaitFor(t, d, func() error {
		st, err := restarterStatus(env.RuntimeDir)
		if err != nil {
			return err
		}
		if !generationReady(st, epoch) {
			return fmt.Errorf("epoch %d not ready yet: %+v", epoch, st.Generations)
		}
		return nil
	})
}

// getBody does one GET on a fresh connection and returns the 2xx body.
func getBody(url string) (string, error) {
	resp, err := probeClient.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 != 2 {
		return string(b), fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return string(b), nil
}

// procsWithArg lists live processes running binary whose command line
// contains arg ("" matches any).
func procsWithArg(binary, arg string) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		pid, _ := strconv.Atoi(filepath.Base(d))
		if !execed(pid, binary) {
			continue
		}
		if arg != "" {
			cl, err := os.ReadFile(d + "/cmdline")
			if err != nil || !bytes.Contains(cl, []byte(arg)) {
				continue
			}
		}
		if testutil.Alive(pid) { // a zombie keeps its exe link only briefly; skip it anyway
			out = append(out, pid)
		}
	}
	return out
}

// boundSockets lists Unix socket names in /proc/net/unix that start with
// prefix (abstract names are shown with a leading '@').
func boundSockets(prefix string) []string {
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		name := strings.TrimRight(fields[7], "@") // Envoy-style NUL padding shows as '@'
		if strings.HasPrefix(name, prefix) {
			out = append(out, name)
		}
	}
	return out
}

// lockHeld reports whether some open file description holds an flock on path.
func lockHeld(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return true
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return false
}

// assertNothingLeft fails unless no testproxy of env is alive, no hot-restart
// socket of env is bound, and no base id lock in env's runtime dir is held.
// It waits up to d for stragglers to go.
func assertNothingLeft(t testing.TB, env *ProxyEnv, d time.Duration) {
	t.Helper()
	testutil.WaitFor(t, d, func() error {
		if p := procsWithArg(env.Bin.Testproxy, env.SocketPath); len(p) > 0 {
			return fmt.Errorf("orphan testproxy processes: %v", p)
		}
		if s := boundSockets(env.SocketPath); len(s) > 0 {
			return fmt.Errorf("hot-restart sockets still bound: %v", s)
		}
		locks, _ := filepath.Glob(filepath.Join(env.RuntimeDir, "*.lock"))
		for _, l := range locks {
			if lockHeld(l) {
				return fmt.Errorf("lock %s still held", l)
			}
		}
		return nil
	})
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = append([]string{fmt.Sprintf("... (%d lines before)", len(l)-lines)}, l[len(l)-lines:]...)
	}
	return strings.Join(l, "\n")
}

// deadlineCtx is a context ending a little before the test's own deadline.
func deadlineCtx(t testing.TB) context.Context {
	ctx := context.Background()
	if tt, ok := t.(*testing.T); ok {
		if dl, ok := tt.Deadline(); ok {
			c, cancel := context.WithDeadline(ctx, dl.Add(-5*time.Second))
			t.Cleanup(cancel)
			return c
		}
	}
	return ctx
}
