package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
)

func TestProbeTimedOut(t *testing.T) {
	refused := fmt.Errorf("%w (last check: %w)", context.DeadlineExceeded, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED})
	hung := fmt.Errorf("%w (last check: %w)", context.DeadlineExceeded, fmt.Errorf("get: %w", context.DeadlineExceeded))
	answered := fmt.Errorf("%w (last check: %w)", context.DeadlineExceeded, errors.New("ready command exited 7"))
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{{"refused", refused, false}, {"hung", hung, true}, {"answered", answered, false}, {"bare deadline", context.DeadlineExceeded, true}} {
		if got := probeTimedOut(c.err); got != c.want {
			t.Errorf("%s: probeTimedOut(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
