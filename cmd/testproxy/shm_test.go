package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/shmguard"
	"github.com/hotrestart/restarter/internal/testutil"
)

func readShm(t *testing.T, path string) shmguard.State {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := shmguard.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// waitFlagClear waits until a generation that went live has cleared the
// INITIALIZING flag at path. Like Envoy, testproxy says LIVE a moment before
// (Envoy clears the flag in drainParentListeners, once its workers started),
// so a start right after LIVE may still find it set.
func waitFlagClear(t *testing.T, path string) {
	t.Helper()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if st := readShm(t, path); st.Flags != 0 || st.Version != hotRestartVersion {
			return fmt.Errorf("after going live: %+v, want flags 0 and version %s", st, hotRestartVersion)
		}
		return nil
	})
}

// TestSharedMemoryGuard: with --shared-memory, testproxy plays Envoy's
// INITIALIZING guard. A start while another epoch initializes exits 1 with
// "previous envoy process is still initializing" before it asks anything of
// its parent, and harms nobody; a generation killed before it went live
// leaves the flag set, so every later start fails the same way (envoy
// #33446), and says the holder is dead. A generation that goes live clears it.
func TestSharedMemoryGuard(t *testing.T) {
	in := newInstance(t)
	common := []string{"--drain-time-s", "60", "--parent-shutdown-time-s", "120", "--shared-memory", "--shm-dir", in.dir,
		"--hot-restart-retry-delay", "20ms"}
	path := shmguard.Path(in.dir, mustUint32(t, in.baseID))
	p0 := in.start(t, 0, common...)
	p0.waitLive(t, 0)
	waitFlagClear(t, path)

	p1 := in.start(t, 1, append(common, "--start-delay", "10m")...)
	p1.waitInitializing(t)
	if st := readShm(t, path); st.Flags&shmguard.Initializing == 0 || st.PID != uint64(p1.cmd.Process.Pid) {
		t.Fatalf("while epoch 1 initializes: %+v, want INITIALIZING by pid %d", st, p1.cmd.Process.Pid)
	}
	p2 := in.start(t, 2, common...)
	if code := p2.waitExit(t, 30*time.Second); code != 1 {
		t.Fatalf("epoch 2 started while epoch 1 initializes: exit %d, want 1", code)
	}
	if p0.exited() || p1.exited() {
		t.Fatalf("the refused epoch 2 harmed a running one: epoch 0 exited %v, epoch 1 exited %v", p0.exited(), p1.exited())
	}
	// Epoch 2 took nothing: epoch 1 still holds the flag and its admin
	// (shutdown_admin would have closed it), and epoch 2 bound no admin.
	if st := readShm(t, path); st.Flags&shmguard.Initializing == 0 || st.PID != uint64(p1.cmd.Process.Pid) {
		t.Errorf("after the refused epoch 2: %+v, want INITIALIZING by epoch 1 (pid %d)", st, p1.cmd.Process.Pid)
	}
	p1.waitInitializing(t)
	if _, err := os.Stat(p2.adminPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused epoch 2 wrote an admin address (%v), want none", err)
	}
	// The user-visible error is Envoy's, and says the holder still runs.
	if !strings.Contains(p2.log.String(), "previous envoy process is still initializing") || !strings.Contains(p2.log.String(), "still runs") {
		t.Errorf("epoch 2's error does not say that epoch 1 is still initializing:\n%s", p2.log.String())
	}

	// Epoch 1 dies before it went live (SIGKILL runs no handler): the flag stays.
	p1.cmd.Process.Signal(syscall.SIGKILL)
	p1.waitExit(t, 10*time.Second)
	p1b := in.start(t, 1, common...)
	if code := p1b.waitExit(t, 30*time.Second); code != 1 {
		t.Fatalf("epoch 1 again after its predecessor died initializing: exit %d, want 1 (stuck flag)", code)
	}
	if st := readShm(t, path); st.Flags&shmguard.Initializing == 0 || st.PID != uint64(p1.cmd.Process.Pid) || testutil.Alive(int(st.PID)) {
		t.Errorf("after the second epoch 1: %+v, want INITIALIZING still held by the dead pid %d (a stuck flag)", st, p1.cmd.Process.Pid)
	}
	// The user-visible error names the stuck flag, the operator's cue.
	if !strings.Contains(p1b.log.String(), "flag is stuck") {
		t.Errorf("the stuck flag is not named as such:\n%s", p1b.log.String())
	}
	if code, body, err := get("http://" + in.listen() + "/"); err != nil || code != 200 || !strings.HasPrefix(body, "epoch 0 ") {
		t.Fatalf("epoch 0 stopped serving: %d %q %v", code, body, err)
	}
}

// TestSharedMemoryHotRestart: the guard lets a normal sequence of hot
// restarts through (each clears the flag once live).
func TestSharedMemoryHotRestart(t *testing.T) {
	in := newInstance(t)
	common := []string{"--drain-time-s", "1", "--parent-shutdown-time-s", "2", "--shared-memory", "--shm-dir", in.dir}
	path := shmguard.Path(in.dir, mustUint32(t, in.baseID))
	for epoch := range 3 {
		in.start(t, epoch, common...).waitLive(t, uint32(epoch))
		waitFlagClear(t, path)
	}
}

func mustUint32(t *testing.T, s string) uint32 {
	t.Helper()
	var v uint32
	for _, c := range s {
		v = v*10 + uint32(c-'0')
	}
	return v
}
