//go:build linux

package uds

import (
	"context"
	"testing"

	"go.uber.org/goleak"
)

// TestCloseLeavesNoGoroutine: Parent.Close and Child.Close block until
// everything they started is gone, and a second Close is harmless.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	path := testPath()
	p, err := ListenParent(testConfig(t, path, 0), ParentHandler{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := DialChild(testConfig(t, path, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stats(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := c.Close(); err != nil && i == 0 {
			t.Error(err)
		}
		if err := p.Close(); err != nil && i == 0 {
			t.Error(err)
		}
	}
	if _, err := c.Stats(context.Background()); err == nil {
		t.Error("a closed Child still answered")
	}
}
