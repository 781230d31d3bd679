//go:build linux

package uds

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// nobodyBinary returns setpriv and a copy of the test binary that nobody can
// execute, or skips the test where that cannot be done.
func nobodyBinary(t *testing.T) (setpriv, bin string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as nobody (setpriv); skipped")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv not found (util-linux): cannot drop to nobody")
	}
	exe, _ := os.Executable()
	dir, err := os.MkdirTemp("", "udspeer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	bin = dir + "/udstest"
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return setpriv, bin
}

const floodDatagrams = 20000

// floodMain sends floodDatagrams stats requests to the parent socket of
// epoch 0 at path as fast as it can.
func floodMain(path string) int {
	pa, err := sockAddr(SocketName(path, RoleParent, 0, 0))
	if err != nil {
		fmt.Println(err)
		return 1
	}
	conn, err := net.DialUnix("unixgram", nil, pa)
	if err != nil {
		fmt.Println("dial:", err)
		return 1
	}
	defer conn.Close()
	msg := frame([]byte{0x0a, 0x02, 0x1a, 0x00})
	for i := range floodDatagrams {
		if _, err := conn.Write(msg); err != nil {
			fmt.Println("write", i, err)
			return 1
		}
	}
	fmt.Println("sent " + strconv.Itoa(floodDatagrams))
	return 0
}

// TestRefusedFloodLogsBounded: another uid floods the parent socket with
// requests. Each is refused, the log gets a bounded number of lines (the
// first refusal, then at most one summary per interval with the count,
// issue 11), and the parent still serves its real child.
func TestRefusedFloodLogsBounded(t *testing.T) {
	setpriv, bin := nobodyBinary(t)
	core, logs := observer.New(zapcore.WarnLevel)
	path := testPath()
	cfg := testConfig(t, path, 0)
	cfg.Logger = zap.New(core)
	var called atomic.Int32
	p, err := ListenParent(cfg, ParentHandler{StatsTo: func(*StatsEncoder) { called.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cmd := exec.Command(setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), "UDS_TEST_HELPER=flood", "UDS_PATH="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "sent ") {
		t.Fatalf("nobody flood: %v\n%s", err, out)
	}
	// Requests are served in order: an answer to ours means every flooded
	// datagram before it was read (and refused).
	c, err := DialChild(testConfig(t, path, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.StatsInto(context.Background(), NewStore()); err != nil {
		t.Fatalf("stats after the flood: %v", err)
	}
	if n := called.Load(); n != 1 {
		t.Errorf("stats callback ran %d times, want 1 (ours only)", n)
	}
	refused := logs.FilterMessageSnippet("refused").Len()
	t.Logf("%d datagrams from nobody made %d log lines (%d mention refusal)", floodDatagrams, logs.Len(), refused)
	if refused == 0 {
		t.Errorf("no refusal was logged at all, want the first one")
	}
	// The flood takes well under an interval; allow one summary per
	// interval of a slow machine besides the first line.
	if logs.Len() > 5 {
		t.Errorf("%d warnings for one flood, want at most 5 (first, then summaries)", logs.Len())
	}
	// Close reports what was not logged: every datagram is accounted for.
	p.Close()
	total := 0
	for _, e := range logs.All() {
		total++
		if n, ok := e.ContextMap()["suppressed_since_last"].(int64); ok {
			total += int(n)
			if e.Message == "more hot-restart input was dropped than logged" {
				total-- // the closing summary is no drop of its own
			}
		}
	}
	if total != floodDatagrams {
		t.Errorf("the log accounts for %d dropped datagrams, want %d", total, floodDatagrams)
	}
}

// TestWarnDropSummarizes: after the first line, drops within the interval
// are counted, and the next line past the interval carries the count.
func TestWarnDropSummarizes(t *testing.T) {
	core, logs := observer.New(zapcore.WarnLevel)
	e := &endpoint{log: zap.New(core), drops: dropLog{interval: time.Hour}}
	for range 7 {
		e.warnDrop("refused a hot-restart datagram")
	}
	if logs.Len() != 1 {
		t.Fatalf("%d lines for 7 drops within the interval, want 1", logs.Len())
	}
	e.drops.last = e.drops.last.Add(-2 * time.Hour) // the interval has passed
	e.warnDrop("refused a hot-restart datagram")
	all := logs.All()
	if len(all) != 2 {
		t.Fatalf("%d lines, want 2", len(all))
	}
	if n := all[1].ContextMap()["suppressed_since_last"]; n != int64(6) {
		t.Errorf("second line suppressed_since_last = %v, want 6", n)
	}
	e.flushDrops()
	if logs.Len() != 2 {
		t.Errorf("flush with nothing suppressed wrote a line")
	}
}
