//go:build !linux

package integration

// bootTicks is 0 where there is no CLOCK_BOOTTIME: the peers' start
// latencies read as unknown.
func bootTicks() int64 { return 0 }
