package uds

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/hotrestart/restarter/internal/testutil"
)

// TestSquattedAbstractNameNamesTheSquatter: abstract names have no
// permissions, so another uid can bind a hot-restart name first; the bind
// error then names who holds it (uid and pid), not just EADDRINUSE.
func TestSquattedAbstractNameNamesTheSquatter(t *testing.T) {
	name := "@uds_squat_test_" + strconv.Itoa(os.Getpid())
	pid := testutil.SquatAbstract(t, name[1:])
	conn, _, err := bind(name, 0o600)
	if err == nil {
		conn.Close()
		t.Fatal("bind of a squatted name: got nil, want EADDRINUSE")
	}
	want := "pid " + strconv.Itoa(pid)
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("got %v, want EADDRINUSE naming %s and uid 65534", err, want)
	}
}
