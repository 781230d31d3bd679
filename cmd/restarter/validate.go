package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hotrestart/restarter/supervisor"
	"go.uber.org/zap"
)

// validator is --validate-cmd (or the Envoy default, COMMAND with --mode
// validate): it runs before each reload with the next generation's values
// and environment, through the command runner of the supervisor's Probe
// (its starter and reaper, never os/exec's Wait).
type validator struct {
	argv    []string
	timeout time.Duration
	log     *zap.Logger
}

// desc is how the validator is named in errors: see validatorDesc.
func (v validator) desc() string { return validatorDesc(v.argv) }

// Validate is supervisor.Config.Validate.
func (v validator) Validate(ctx context.Context, next supervisor.Probe) error {
	argv := next.Expand(v.argv)
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	v.log.Info("validating before reload", zap.Uint32("epoch", next.Epoch), zap.Strings("argv", argv))
	start := time.Now()
	res, err := next.Run(ctx, argv, next.Env())
	out := strings.TrimSpace(string(res.Output))
	// The full argv is in the "validating before reload" line above: not repeated.
	fields := []zap.Field{zap.Uint32("epoch", next.Epoch),
		zap.Int("exit_status", res.Status), zap.Duration("took", time.Since(start)), zap.String("output", out)}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		v.log.Error("validator killed after --validate-timeout", fields...)
		return fmt.Errorf("validator %q still running after --validate-timeout %s", v.desc(), v.timeout)
	case err != nil:
		v.log.Error("validator could not run", append(fields, zap.Error(err))...)
		return fmt.Errorf("validator %q: %w", v.desc(), err)
	case res.Status != 0:
		v.log.Error("validator failed", fields...)
		if out == "" {
			return fmt.Errorf("validator %q exited %d (no output)", v.desc(), res.Status)
		}
		return fmt.Errorf("validator %q exited %d: %s", v.desc(), res.Status, tail(out, 1024))
	}
	v.log.Info("validated", fields...)
	return nil
}

// tail is the last n bytes of s, on one line.
func tail(s string, n int) string {
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return strings.Join(strings.Fields(s), " ")
}
