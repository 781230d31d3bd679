package testutil

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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
