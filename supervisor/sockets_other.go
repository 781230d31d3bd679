//go:build !linux

package supervisor

import (
	"context"
	"fmt"
	"runtime"
)

// ListenerError says that the listener a readiness check relies on is not
// held by the generation being checked (Linux only).
type ListenerError struct {
	Addr      string
	Epoch     uint32
	Listening bool
	Other     int
	OtherDesc string
	OtherUID  int
}

func (e *ListenerError) Error() string {
	return fmt.Sprintf("%s: listener owner unknown on %s", e.Addr, runtime.GOOS)
}

// generationHolds needs /proc: elsewhere it says so.
func generationHolds(_ context.Context, hostport string, _ Probe) error {
	return fmt.Errorf("listener owner of %s: not supported on %s", hostport, runtime.GOOS)
}

// isLocalAddrPort is false where listeners cannot be inspected.
func isLocalHostPort(context.Context, string) bool { return false }
