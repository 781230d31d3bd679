package integration

import (
	"time"

	"golang.org/x/sys/unix"
)

// bootTicks is CLOCK_BOOTTIME in clock ticks (1/100 s), the unit of a
// process's start time in /proc/<pid>/stat.
func bootTicks() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts); err != nil {
		return 0
	}
	return ts.Nano() / int64(10*time.Millisecond)
}
