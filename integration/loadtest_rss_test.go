package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/control"
	"github.com/hotrestart/restarter/internal/testutil"
)

// procStatus reads numeric fields (kB or counts) of /proc/<pid>/status.
func procStatus(pid int, names ...string) map[string]float64 {
	out := map[string]float64{}
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, n := range names {
			if v, ok := strings.CutPrefix(sc.Text(), n+":"); ok {
				out[n], _ = strconv.ParseFloat(strings.Fields(v)[0], 64)
			}
		}
	}
	return out
}

// TestRestarterRSSAfterReloads measures the restarter's own memory (VmRSS,
// VmHWM, threads) idle and after LOADTEST_RELOADS (default 500) reloads of
// testproxy, one after the other (target: at most 10 MiB after 500). It is a
// measurement, run with LOADTEST_FULL=1 or LOADTEST_RSS=1, and fails only
// when the RSS keeps growing: the last 100 reloads must not add more than
// the first 100 did.
func TestRestarterRSSAfterReloads(t *testing.T) {
	skipUnlessLinux(t)
	if !fullMode() && os.Getenv("LOADTEST_RSS") != "1" {
		t.Skip("set LOADTEST_RSS=1 or LOADTEST_FULL=1 for the RSS-after-reloads measurement")
	}
	n := envInt("LOADTEST_RELOADS", 500)
	env := newProxyEnv(t)
	// Short drain so generations leave quickly; the pacing default holds
	// each reload until the previous generation has gone.
	// The binary as `make build` ships it: static, no race detector.
	bin := filepath.Join(t.TempDir(), "restarter")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/restarter")
	cmd.Dir = moduleDir(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	r := startProc(t, bin, env.RestarterArgs([]string{"--drain-time", "50ms", "--parent-shutdown-time", "100ms",
		"--shutdown-grace", "2s", "--term-wait", "5s", "--log-level", "warn"})...)
	r.RuntimeDir = env.RuntimeDir // for Status: started through startProc, as its own build
	waitLive(t, env.Admin, 0, 20*time.Second)
	fields := []string{"VmRSS", "VmHWM", "Threads"}
	idle := procStatus(r.Pid, fields...)
	var at100 map[string]float64
	var before400 map[string]float64
	for i := 1; i <= n; i++ {
		if err := r.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		testutil.WaitFor(t, 30*time.Second, func() error {
			_, ep, err := getServerInfo(env.Admin)
			if err != nil {
				return err
			}
			if ep != i {
				return fmt.Errorf("serving epoch %d, want %d", ep, i)
			}
			return nil
		})
		switch i {
		case 100:
			at100 = procStatus(r.Pid, fields...)
		case n - 100:
			before400 = procStatus(r.Pid, fields...)
		}
	}
	r.WaitStatus(t, 20*time.Second, "the last old generation gone", func(st control.Status) error {
		for _, g := range st.Generations {
			if g.State != control.StateExited && int(g.Epoch) != n {
				return fmt.Errorf("epoch %d still %s", g.Epoch, g.State)
			}
		}
		return nil
	})
	after := procStatus(r.Pid, fields...)
	t.Logf("LOADTEST rss reloads=%d idle_rss_kib=%.0f rss_after_100_kib=%.0f rss_after_%d_kib=%.0f rss_after_%d_kib=%.0f hwm_kib=%.0f threads_idle=%.0f threads_after=%.0f",
		n, idle["VmRSS"], at100["VmRSS"], n-100, before400["VmRSS"], n, after["VmRSS"], after["VmHWM"], idle["Threads"], after["Threads"])
	if n >= 300 {
		first, last := at100["VmRSS"]-idle["VmRSS"], after["VmRSS"]-before400["VmRSS"]
		if last > first && last > 1024 {
			t.Errorf("RSS grew %.0f KiB over the last 100 reloads (%.0f over the first 100): a leak", last, first)
		}
	}
	r.Stop(30 * time.Second)
}

// moduleDir is the module root (where go.mod is), from this package's directory.
func moduleDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	return dir
}
