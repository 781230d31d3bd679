package main

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestLimitMemory(t *testing.T) {
	if raceBuild {
		t.Skip("the limit is not set in race builds")
	}
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })

	t.Setenv("GOMEMLIMIT", "64MiB")
	debug.SetMemoryLimit(prev)
	limitMemory()
	if got := debug.SetMemoryLimit(-1); got != prev {
		t.Errorf("with GOMEMLIMIT set: limit %d, want it left at %d", got, prev)
	}

	os.Unsetenv("GOMEMLIMIT") // t.Setenv restores it
	limitMemory()
	if got := debug.SetMemoryLimit(-1); got != memoryLimit {
		t.Errorf("without GOMEMLIMIT: limit %d, want %d", got, memoryLimit)
	}
}
