package osutil

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

func TestProcessRunning(t *testing.T) {
	if !ProcessRunning(os.Getpid()) {
		t.Fatalf("ProcessRunning(self) = false")
	}
	// A child that exited but is not reaped yet is a zombie: gone.
	cmd := exec.Command("/bin/sh", "-c", "exit 0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for ProcessRunning(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("ProcessRunning(%d) still true for an exited, unreaped child", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Wait()
	if ProcessRunning(pid) {
		t.Fatalf("ProcessRunning(%d) = true after it was reaped", pid)
	}
}
