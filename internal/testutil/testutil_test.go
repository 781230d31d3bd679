package testutil

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestWaitForReturnsOnceTrue(t *testing.T) {
	n := 0
	WaitFor(t, 5*time.Second, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if n != 3 {
		t.Fatalf("got %d calls, want 3", n)
	}
}

// fatalRecorder records Fatalf instead of ending the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = format
	panic(r)
}

func TestWaitForFailsWithTheLastError(t *testing.T) {
	r := &fatalRecorder{TB: t}
	start := time.Now()
	func() {
		defer func() {
			if p := recover(); p != r {
				t.Fatalf("got panic %v, want Fatalf", p)
			}
		}()
		WaitFor(r, 50*time.Millisecond, func() error { return errors.New("never") })
	}()
	if r.msg == "" || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("Fatalf %q after %v, want a failure after 50ms", r.msg, time.Since(start))
	}
}

func TestBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go build")
	}
	var b Build
	defer b.Cleanup()
	dir := b.Dir(t, "./cmd/testproxy")
	out, err := exec.Command(filepath.Join(dir, "testproxy"), "--hot-restart-version").CombinedOutput()
	if err != nil || len(out) == 0 {
		t.Fatalf("built testproxy --hot-restart-version: %q, %v", out, err)
	}
	if again := b.Dir(t, "./cmd/restarter"); again != dir {
		t.Fatalf("second Dir = %s, want the first build's %s", again, dir)
	}
	b.Cleanup()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("Cleanup left %s: %v", dir, err)
	}
}

func TestProcHelpers(t *testing.T) {
	marker := SleepMarker()
	cmd := exec.Command("sleep", marker)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if got := PIDsWithArg(marker); len(got) != 1 || got[0] != pid {
		t.Fatalf("PIDsWithArg(%s) = %v, want [%d]", marker, got, pid)
	}
	if ppid, _, ok := ProcStat(pid); !ok || ppid != os.Getpid() || !Alive(pid) {
		t.Fatalf("ProcStat(%d) = ppid %d ok %v, alive %v; want our child, alive", pid, ppid, ok, Alive(pid))
	}
	if n := CountFDs(t, pid); n < 3 {
		t.Fatalf("CountFDs(sleep) = %d, want at least stdin, stdout, stderr", n)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	if c := ExitCode(cmd.ProcessState); c != 128+15 {
		t.Fatalf("ExitCode(SIGTERMed) = %d, want 143", c)
	}
	if Alive(pid) || len(PIDsWithArg(marker)) != 0 {
		t.Fatalf("after Wait: alive %v, PIDsWithArg %v", Alive(pid), PIDsWithArg(marker))
	}
	if c := ExitCode(nil); c != -1 {
		t.Fatalf("ExitCode(nil) = %d, want -1", c)
	}
	before := CountFDs(t, 0)
	f, _ := os.Open(os.DevNull)
	if got := CountFDs(t, 0); got != before+1 {
		t.Errorf("CountFDs(self) with one more open file = %d, want %d", got, before+1)
	}
	f.Close()
}

func TestFreeAddrNeverTwice(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		a := FreeAddr(t)
		if seen[a] {
			t.Fatalf("FreeAddr returned %s twice", a)
		}
		seen[a] = true
	}
}
