package shmguard

import (
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestAttachVersionMismatchAndGarbage(t *testing.T) {
	path := Path(t.TempDir(), 7)
	if filepath.Base(path) != "testproxy_shared_memory_70" {
		t.Errorf("Path = %s, want the base id scaled by 10", path)
	}
	if err := Attach(path, "11.a", 0); err != nil {
		t.Fatal(err)
	}
	if err := Attach(path, "11.a", 1); !errors.Is(err, ErrStillInitializing) {
		t.Fatalf("second attach while initializing: %v, want ErrStillInitializing", err)
	}
	if err := ClearInitializing(path); err != nil {
		t.Fatal(err)
	}
	err := Attach(path, "12.b", 1)
	if err == nil || !strings.Contains(err.Error(), "hot restart version mismatch") || !strings.Contains(err.Error(), `"11.a"`) {
		t.Fatalf("attach with another version: %v, want a mismatch naming 11.a", err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("file mode %v (%v), want no access for group or others", fi.Mode(), err)
	}
	if err := os.WriteFile(path, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Attach(path, "11.a", 1); err == nil {
		t.Fatalf("attach to a file that is not ours succeeded")
	}
	if _, _, err := ClearIfStuck(path); err == nil {
		t.Fatalf("ClearIfStuck on a file that is not ours succeeded")
	}
}

// TestClearIfStuck: a flag set by a dead process is cleared, one set by a
// live process is left alone.
func TestClearIfStuck(t *testing.T) {
	dir := t.TempDir()
	path := Path(dir, 1)
	if _, cleared, err := ClearIfStuck(path); err != nil || cleared {
		t.Fatalf("no file: cleared %v, %v; want nothing", cleared, err)
	}
	if err := Attach(path, "11.a", 0); err != nil { // held by us: alive
		t.Fatal(err)
	}
	if holder, cleared, err := ClearIfStuck(path); err != nil || cleared || holder != os.Getpid() {
		t.Fatalf("live holder: holder %d cleared %v err %v; want %d, not cleared", holder, cleared, err, os.Getpid())
	}
	// A process that sets the flag and dies.
	dead := exec.Command("/bin/true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	st, _ := Decode(b)
	st.PID = uint64(dead.Process.Pid)
	if err := os.WriteFile(path, st.encode(), 0o600); err != nil {
		t.Fatal(err)
	}
	if holder, cleared, err := ClearIfStuck(path); err != nil || !cleared || holder != dead.Process.Pid {
		t.Fatalf("dead holder: holder %d cleared %v err %v; want %d cleared", holder, cleared, err, dead.Process.Pid)
	}
	if err := Attach(path, "11.a", 1); err != nil {
		t.Fatalf("attach after the stuck flag was cleared: %v", err)
	}
}

func TestEnvoyInitializing(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("Envoy's layout is known for amd64 only")
	}
	path := filepath.Join(t.TempDir(), "envoy_shared_memory_0")
	b := make([]byte, envoyShmSize)
	binary.NativeEndian.PutUint64(b[0:], envoyShmSize)
	binary.NativeEndian.PutUint64(b[8:], envoyShmVersion)
	for _, flags := range []uint64{0, 1} {
		binary.NativeEndian.PutUint64(b[envoyFlagsOffset:], flags)
		os.WriteFile(path, b, 0o600)
		set, known, err := EnvoyInitializing(path)
		if err != nil || !known || set != (flags == 1) {
			t.Errorf("flags %d: set %v known %v err %v", flags, set, known, err)
		}
	}
	os.WriteFile(path, b[:64], 0o600)
	if _, known, _ := EnvoyInitializing(path); known {
		t.Errorf("a region of another size was read as Envoy's")
	}
	if _, known, err := EnvoyInitializing(path + ".none"); known || err != nil {
		t.Errorf("missing region: known %v err %v", known, err)
	}
	if !strings.HasSuffix(EnvoyPath(3), "/envoy_shared_memory_30") {
		t.Errorf("EnvoyPath(3) = %s", EnvoyPath(3))
	}
}
