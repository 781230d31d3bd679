package main

import (
	"bufio"
	"context"
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

// build holds the real restarter binary (no race detector), built once.
var build testutil.Build

// builtRestarter builds the real restarter binary once.
func builtRestarter(b *testing.B) string {
	b.Helper()
	return filepath.Join(build.Dir(b, "./cmd/restarter"), "restarter")
}

// children lists the pids of pid's children (all threads).
func children(pid int) []int {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var out []int
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// execed reports whether pid has exec'd path.
func execed(pid int, path string) bool {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return err == nil && exe == path
}

func sleepPath(b *testing.B) string {
	p, err := exec.LookPath("sleep")
	if err != nil {
		b.Skip("no sleep binary")
	}
	p, _ = filepath.EvalSymlinks(p)
	return p
}

// builtProc is the real restarter started by startBuilt.
type builtProc struct {
	*exec.Cmd
	runDir string
}

func startBuilt(b *testing.B, extra ...string) builtProc {
	b.Helper()
	bin := builtRestarter(b)
	runDir := b.TempDir()
	args := append([]string{"--runtime-dir", runDir, "--log-level", "error", "--term-wait", "5s"}, extra...)
	args = append(args, "--", sleepPath(b), "100000")
	cmd := exec.Command(bin, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return builtProc{cmd, runDir}
}

// waitServing polls the restarter's status (its control socket) until the
// generation with pid is ready, so that the next SIGHUP is not held.
func (p builtProc) waitServing(b *testing.B, pid int) {
	b.Helper()
	testutil.WaitFor(b, 10*time.Second, func() error {
		path, err := control.Find(p.runDir, "")
		if err != nil {
			return err
		}
		c, err := control.Dial(path)
		if err != nil {
			return err
		}
		defer c.Close()
		st, err := c.Status(context.Background())
		if err != nil {
			return err
		}
		for _, g := range st.Generations {
			if g.PID == pid && g.Ready != nil {
				return nil
			}
		}
		return fmt.Errorf("pid %d not ready in %+v", pid, st.Generations)
	})
}

// waitNewChild polls until pid has a child not in old that has exec'd path.
func waitNewChild(b *testing.B, pid int, old map[int]bool, path string) int {
	end := time.Now().Add(10 * time.Second)
	for time.Now().Before(end) {
		for _, c := range children(pid) {
			if !old[c] && execed(c, path) {
				return c
			}
		}
	}
	b.Fatalf("no new child of %d", pid)
	return 0
}

// BenchmarkSIGHUPToExec: from kill -HUP to the new generation having exec'd
// the proxy. Baseline: fork+exec of the same binary by os/exec in this process.
func BenchmarkSIGHUPToExec(b *testing.B) {
	sp := sleepPath(b)
	r := startBuilt(b, "--ready-after", "1ms")
	defer func() { r.Process.Signal(syscall.SIGTERM); r.Wait() }()
	first := waitNewChild(b, r.Process.Pid, map[int]bool{}, sp)
	r.waitServing(b, first)
	prev := first
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		old := map[int]bool{}
		for _, c := range children(r.Process.Pid) {
			old[c] = true
		}
		t0 := time.Now()
		r.Process.Signal(syscall.SIGHUP)
		c := waitNewChild(b, r.Process.Pid, old, sp)
		total += time.Since(t0)
		b.StopTimer()
		// Wait until it is ready (1ms) so the next HUP is not held, then
		// end the old one as Envoy's new epoch does to its parent.
		r.waitServing(b, c)
		syscall.Kill(prev, syscall.SIGTERM)
		prev = c
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs-hup-to-exec")
	var base time.Duration
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		c := exec.Command(sp, "100000")
		c.Start()
		base += time.Since(t0)
		c.Process.Kill()
		c.Wait()
	}
	b.ReportMetric(float64(base.Microseconds())/20, "µs-baseline-forkexec")
}

// BenchmarkSIGTERMToExit: from kill -TERM to the restarter's exit when the
// child leaves at once. Baseline: TERM and wait a bare child.
func BenchmarkSIGTERMToExit(b *testing.B) {
	sp := sleepPath(b)
	var total time.Duration
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		r := startBuilt(b)
		waitNewChild(b, r.Process.Pid, map[int]bool{}, sp)
		b.StartTimer()
		t0 := time.Now()
		r.Process.Signal(syscall.SIGTERM)
		err := r.Wait()
		total += time.Since(t0)
		b.StopTimer()
		if err != nil {
			b.Fatalf("restarter: %v", err)
		}
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs-term-to-exit")
	var base time.Duration
	for i := 0; i < 20; i++ {
		c := exec.Command(sp, "100000")
		c.Start()
		for !execed(c.Process.Pid, sp) {
		}
		t0 := time.Now()
		c.Process.Signal(syscall.SIGTERM)
		c.Wait()
		base += time.Since(t0)
	}
	b.ReportMetric(float64(base.Microseconds())/20, "µs-baseline-term-wait-child")
}

func vmRSS(pid int) float64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkIdleRSS: the restarter's resident memory while idle with two
// generations (target < 10 MiB; hot-restarter.py ~14 MiB). Baseline: an idle
// python3 interpreter, when python3 is installed.
func BenchmarkIdleRSS(b *testing.B) {
	sp := sleepPath(b)
	var rss float64
	for i := 0; i < b.N; i++ {
		r := startBuilt(b, "--ready-after", "10ms")
		first := waitNewChild(b, r.Process.Pid, map[int]bool{}, sp)
		r.waitServing(b, first)
		r.Process.Signal(syscall.SIGHUP)
		waitNewChild(b, r.Process.Pid, map[int]bool{first: true}, sp)
		time.Sleep(time.Second) // idle: the measurement window, not a state
		rss = vmRSS(r.Process.Pid)
		r.Process.Signal(syscall.SIGTERM)
		r.Wait()
	}
	b.ReportMetric(rss, "MiB-RSS-idle-2-generations")
	if py, err := exec.LookPath("python3"); err == nil {
		c := exec.Command(py, "-c", "import signal, subprocess, time, sys, os; time.sleep(30)")
		if c.Start() == nil {
			time.Sleep(500 * time.Millisecond)
			b.ReportMetric(vmRSS(c.Process.Pid), "MiB-baseline-python3-idle")
			c.Process.Kill()
			c.Wait()
		}
	}
}
