package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

// TestReadyNotifySystemdNotify: `systemd-notify --ready`, which the
// examples suggest for --ready=notify, makes the generation ready and
// exits 0: it sends BARRIER=1 after READY=1 and used to fail ("Failed to
// invoke barrier") because the socket was removed at READY=1.
func TestReadyNotifySystemdNotify(t *testing.T) {
	skipUnlessLinux(t)
	notify, err := exec.LookPath("systemd-notify")
	if err != nil {
		t.Skip("systemd-notify not found (Debian: systemd)")
	}
	b := buildBinaries(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "notify.out")
	script := fmt.Sprintf(`%s --ready >%s 2>&1; echo "rc=$?" >>%s; exec sleep 600`, notify, out, out)
	startProc(t, b.Restarter, "--runtime-dir", dir, "--base-id", strconv.FormatUint(uint64(uniqueBaseID(t)), 10),
		"--log-format", "json", "--ready=notify", "--ready-timeout", "20s", "--", "/bin/sh", "-c", script)
	testutil.WaitFor(t, 20*time.Second, func() error {
		if st, err := restarterStatus(dir); err != nil || !generationReady(st, 0) {
			return fmt.Errorf("epoch 0 not ready yet (%v)", err)
		}
		b, _ := os.ReadFile(out)
		if !strings.Contains(string(b), "rc=") {
			return fmt.Errorf("systemd-notify has not finished: %q", b)
		}
		return nil
	})
	got, _ := os.ReadFile(out)
	if !strings.Contains(string(got), "rc=0") || strings.Contains(string(got), "barrier") {
		t.Fatalf("systemd-notify --ready: %q, want exit 0 and no barrier error", got)
	}
}
