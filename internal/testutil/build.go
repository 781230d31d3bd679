package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Build compiles commands of this module once per test binary, into a
// temporary directory that Cleanup removes (call it from TestMain after
// m.Run). The zero value is ready to use.
type Build struct {
	Race bool // build with -race

	once sync.Once
	dir  string
	err  error
}

// Dir builds pkgs (paths relative to the module root, such as
// "./cmd/restarter") on the first call and returns the directory holding
// the binaries, each named after its package directory. Later calls return
// the same directory whatever pkgs they name.
func (b *Build) Dir(t testing.TB, pkgs ...string) string {
	t.Helper()
	b.once.Do(func() { b.dir, b.err = b.build(pkgs) })
	if b.err != nil {
		t.Fatalf("building %v: %v", pkgs, b.err)
	}
	return b.dir
}

// Cleanup removes what Dir built.
func (b *Build) Cleanup() {
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

func (b *Build) build(pkgs []string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "restarter-test-bin-")
	if err != nil {
		return "", err
	}
	// The go command that runs this test, not whatever PATH finds first.
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(gobin); err != nil {
		gobin = "go"
	}
	args := []string{"build", "-o", dir + "/"}
	if b.Race {
		args = append(args, "-race")
	}
	cmd := exec.Command(gobin, append(args, pkgs...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("go build: %w\n%s", err, out)
	}
	return dir, nil
}

// moduleRoot finds the directory holding go.mod at or above the current one.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the test directory")
		}
		dir = parent
	}
}
