package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

// noneLeft waits until no process has marker among its arguments.
func noneLeft(t *testing.T, marker string) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if pids := testutil.PIDsWithArg(marker); len(pids) > 0 {
			return fmt.Errorf("processes left with argument %s: %v", marker, pids)
		}
		return nil
	})
}

// waitSome waits until a process has marker among its arguments.
func waitSome(t *testing.T, marker string) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, func() error {
		if len(testutil.PIDsWithArg(marker)) == 0 {
			return fmt.Errorf("no process with argument %s yet", marker)
		}
		return nil
	})
}

// Issue 8 item 6: a validator killed at --validate-timeout takes what it
// started with it (the sleep under sh survived before).
func TestValidatorTimeoutEndsItsProcessGroup(t *testing.T) {
	t.Parallel()
	marker := testutil.SleepMarker()
	r := startRestarter(t, nil, args(fast, []string{"--validate-cmd", "sleep " + marker + "; true",
		"--validate-timeout", "300ms"}, proxyArgs())...)
	r.waitStart(0, 1)
	runDir := filepath.Join(r.dir, "run")
	code, _, errs := cli(t, "reload", "--runtime-dir", runDir)
	if code != 1 || !strings.Contains(errs, "still running after --validate-timeout") {
		t.Fatalf("reload: exit %d, stderr %q; want 1, validator timed out", code, errs)
	}
	noneLeft(t, marker)
}

// A validator that succeeds but left a background child: the child goes
// when the validator ends.
func TestValidatorLeftoverChildEnded(t *testing.T) {
	t.Parallel()
	marker := testutil.SleepMarker()
	r := startRestarter(t, nil, args(fast, []string{"--validate-cmd", "sleep " + marker + " & exit 0"}, proxyArgs())...)
	r.waitStart(0, 1)
	if code, out, errs := cli(t, "reload", "--runtime-dir", filepath.Join(r.dir, "run")); code != 0 {
		t.Fatalf("reload: exit %d, %q %q; want 0", code, out, errs)
	}
	noneLeft(t, marker)
}

// A validator still running when the restarter stops does not outlive it.
func TestValidatorEndedOnRestarterExit(t *testing.T) {
	t.Parallel()
	marker := testutil.SleepMarker()
	r := startRestarter(t, nil, args(fast, []string{"--validate-cmd", "sleep " + marker + "; true",
		"--validate-timeout", "5m"}, proxyArgs())...)
	r.waitStart(0, 1)
	r.waitReady(0)
	r.signal(syscall.SIGHUP)
	waitSome(t, marker)
	r.signal(syscall.SIGTERM)
	if code := r.wait(20 * time.Second); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	noneLeft(t, marker)
}

// A --ready-cmd that leaves a background child: ended with each check.
func TestReadyCmdLeftoverChildEnded(t *testing.T) {
	t.Parallel()
	marker := testutil.SleepMarker()
	r := startRestarter(t, nil, args(fast[:2], []string{"--ready-cmd", "sleep " + marker + " & exit 0",
		"--ready-interval", "50ms"}, proxyArgs())...)
	r.waitStart(0, 1)
	r.waitReady(0)
	noneLeft(t, marker)
}
