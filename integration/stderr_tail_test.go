package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/control"
	"github.com/hotrestart/restarter/internal/testutil"
)

// TestNotEnvoyNamedProxy: the test proxy under another name gets none of
// Envoy's flags. With --ready-envoy-admin and no --envoy the restarter
// warns at start; the reload's new generation then dies before it is ready
// (it starts as epoch 0 beside the serving one), and the failure is logged
// with the last lines of that generation's stderr, where the cause is.
func TestNotEnvoyNamedProxy(t *testing.T) {
	env := newProxyEnv(t)
	b, err := os.ReadFile(env.Bin.Testproxy)
	if err != nil {
		t.Fatal(err)
	}
	proxy := filepath.Join(t.TempDir(), "edgeproxy")
	if err := os.WriteFile(proxy, b, 0o755); err != nil {
		t.Fatal(err)
	}
	args := env.RestarterArgs(nil)
	for i, a := range args {
		if a == env.Bin.Testproxy {
			args[i] = proxy
		}
	}
	args = args[1:] // drop --envoy
	r := startRestarter(t, args...)
	waitLive(t, env.Admin, 0, 20*time.Second)
	if !strings.Contains(r.Log(), `"msg":"--ready-envoy-admin without --envoy`) {
		t.Errorf("no start-up warning about --ready-envoy-admin without --envoy:\n%s", tail(r.Log(), 20))
	}
	if err := r.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	r.WaitReloads(t, 30*time.Second, "the reload failed", func(c control.ReloadCounts) bool { return c.Failed == 1 })
	// The log line is the feature under test (what the operator reads), and
	// it is written once the pipe has drained, a little after the failure.
	const msg = "generation died before it was ready; the last lines of its stderr"
	var ev string
	testutil.WaitFor(t, 10*time.Second, func() error {
		for _, l := range strings.Split(r.Log(), "\n") {
			if strings.Contains(l, msg) {
				ev = l
				return nil
			}
		}
		return fmt.Errorf("no %q in the log", msg)
	})
	// The proxy's own last words: it logged its failure at error level.
	if !strings.Contains(ev, `"epoch":1`) || !strings.Contains(ev, `"stderr":[`) || !strings.Contains(ev, `\terror\ttestproxy`) {
		t.Errorf("failure line lacks the epoch or the proxy's stderr: %s", ev)
	}
	if st, ep, err := getServerInfo(env.Admin); err != nil || st != "LIVE" || ep != 0 {
		t.Errorf("after the failed reload: %s epoch %d (%v), want epoch 0 serving", st, ep, err)
	}
}
