//go:build linux

package uds

import (
	"fmt"
	"os"
	"syscall"
	"testing"
)

// setUmask sets the process's umask for the test and restores it after.
// The umask is process-wide: tests that call it must not run in parallel.
func setUmask(t *testing.T, m int) {
	t.Helper()
	old := syscall.Umask(m)
	t.Cleanup(func() { syscall.Umask(old) })
}

// TestSocketModeLessUmask: like Envoy (fchmod before bind, nothing after),
// a filesystem socket ends up Config.SocketMode less the umask, never more
// open: 0660 under umask 022 gives 0640.
func TestSocketModeLessUmask(t *testing.T) {
	for _, tc := range []struct {
		mode  os.FileMode
		umask int
		want  os.FileMode
	}{
		{0o660, 0o022, 0o640},
		{0o666, 0o022, 0o644},
		{0o660, 0o000, 0o660},
		{0o600, 0o022, 0o600},
		{0o640, 0o077, 0o600},
		{0o777, 0o002, 0o775},
	} {
		t.Run(fmt.Sprintf("%#o under umask %#o", tc.mode, tc.umask), func(t *testing.T) {
			setUmask(t, tc.umask)
			path := t.TempDir() + "/hr"
			cfg := testConfig(t, path, 0)
			cfg.SocketMode = tc.mode
			p, err := ListenParent(cfg, ParentHandler{})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			name := SocketName(path, RoleParent, 0, 0)
			fi, err := os.Stat(name)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != tc.want {
				t.Errorf("%s: mode %v, want socket %#o", name, fi.Mode(), tc.want)
			}
		})
	}
}
