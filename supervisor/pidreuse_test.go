package supervisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

const nsLastPID = "/proc/sys/kernel/ns_last_pid"

// A new generation that gets the pid of an orphan the reaper reaped moments
// before (kept unclaimed for a late Watch) must not be reported dead with
// the orphan's status (issue 8 item 4). The pid is recycled on purpose by
// writing ns_last_pid; on a busy machine another process may take it first,
// so the test tries a few times.
func TestRecycledPIDIsNotGivenAnOrphansStatus(t *testing.T) {
	if err := os.WriteFile(nsLastPID, []byte("1000"), 0); err != nil {
		t.Skipf("cannot set %s (needs root in this pid namespace): %v", nsLastPID, err)
	}
	h := start(t, Config{Argv: []string{"/bin/sh", "-c", "exec sleep 1000"}})
	h.waitState(0, StateReady)
	pidFile := filepath.Join(t.TempDir(), "orphan")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for attempt := 0; attempt < 30; attempt++ {
		os.Remove(pidFile)
		// The inner sh is orphaned (its parent subshell exits at once), re-
		// parented to this process (the subreaper), exits 7 and is reaped
		// with nobody watching it. It leaves the command's process group
		// (setsid), which Command ends as a whole when the command exits,
		// and the command waits until it has.
		script := `(setsid sh -c 'echo $$ > "$1.tmp"; mv "$1.tmp" "$1"; exit 7' sh "$1" &); while [ ! -e "$1" ]; do sleep 0.01; done`
		if _, err := h.s.Command(ctx, []string{"/bin/sh", "-c", script, "sh", pidFile}, os.Environ()); err != nil {
			t.Fatal(err)
		}
		var orphan int
		testutil.WaitFor(t, 10*time.Second, func() error {
			b, err := os.ReadFile(pidFile)
			if err != nil {
				return err
			}
			orphan, err = strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				return err
			}
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", orphan)); err == nil {
				return fmt.Errorf("orphan %d not reaped yet", orphan)
			}
			return nil
		})
		if err := os.WriteFile(nsLastPID, []byte(strconv.Itoa(orphan-1)), 0); err != nil {
			t.Fatal(err)
		}
		res, err := h.s.Reload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		st := h.s.Status()
		var newPID int
		for _, g := range st.Generations {
			if g.Epoch == res.Epoch {
				newPID = g.PID
			}
		}
		if !res.OK && strings.Contains(res.Reason, "status 7") {
			t.Fatalf("epoch %d (attempt %d) was reported dead with the orphan %d's exit status 7: %+v", res.Epoch, attempt, orphan, res)
		}
		if !res.OK {
			t.Fatalf("reload failed: %+v", res)
		}
		if newPID == orphan {
			t.Logf("attempt %d: epoch %d got the orphan's pid %d and is tracked as ready", attempt, res.Epoch, orphan)
			return
		}
	}
	t.Skip("no new generation got the recycled pid in 30 tries (a busy machine took it each time)")
}
