//go:build !linux

package integration

import (
	"errors"
	"fmt"
)

// becomeSubreaper needs Linux's PR_SET_CHILD_SUBREAPER.
func becomeSubreaper() error {
	return fmt.Errorf("child subreaper: Linux only: %w", errors.ErrUnsupported)
}
