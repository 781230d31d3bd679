package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotrestart/restarter/supervisor"
	"go.uber.org/zap"
)

// hotRestartVersionTimeout bounds each --hot-restart-version run.
const hotRestartVersionTimeout = 10 * time.Second

// errVersionMismatch is wrapped by the error that refuses a reload across
// hot-restart versions.
var errVersionMismatch = errors.New("hot restart version mismatch")

// withHotRestartVersionCheck wraps the pre-reload validation in --envoy mode
// (exec form) with Envoy's binary-upgrade rule: a hot restart between
// binaries of different --hot-restart-version fails inside the new Envoy
// (envoy #3804), with an error the operator rarely sees. Before each reload
// it runs the new binary's COMMAND --hot-restart-version (bounded) and
// compares it with the version the serving generation was started with: the
// one its own pre-reload check recorded, or, for a generation started
// without one (epoch 0), what its executable (/proc/PID/exe, the binary it
// runs even if the file was replaced since) reports. A mismatch refuses the
// reload with both versions named; the path for such upgrades is a full
// restart (stop, then start again at epoch 0). next, if not nil, runs after
// a passed check.
func withHotRestartVersionCheck(cfg Config, next func(context.Context, supervisor.Probe) error, status func() supervisor.Status, log *zap.Logger) func(context.Context, supervisor.Probe) error {
	if !cfg.Envoy || cfg.Script || len(cfg.Argv) == 0 {
		return next
	}
	// COMMAND's arguments with the placeholders of epoch, as the validator
	// gets them.
	args := func(v supervisor.Vars, epoch uint32) []string {
		v.Epoch = epoch
		return supervisor.Expand(versionArgs(cfg.Argv[1:]), v)
	}
	var mu sync.Mutex
	byEpoch := map[uint32]string{} // version each checked generation was started with
	run := func(ctx context.Context, p supervisor.Probe, argv []string) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, hotRestartVersionTimeout)
		defer cancel()
		res, err := p.Run(ctx, argv, p.Env()) // the next generation's values, as the validator gets them
		out := strings.TrimSpace(string(res.Output))
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return "", fmt.Errorf("%s --hot-restart-version still running after %s", argv[0], hotRestartVersionTimeout)
		case err != nil:
			return "", err
		case res.Status != 0 || out == "":
			return "", fmt.Errorf("%s --hot-restart-version exited %d: %q", argv[0], res.Status, tail(out, 256))
		}
		return lastLine(out), nil
	}
	return func(ctx context.Context, p supervisor.Probe) error {
		epoch := p.Epoch
		serving, ok := servingGeneration(status())
		if ok {
			mu.Lock()
			old, known := byEpoch[serving.Epoch]
			mu.Unlock()
			if !known {
				v, err := run(ctx, p, append([]string{"/proc/" + strconv.Itoa(serving.PID) + "/exe"}, args(p.Vars, serving.Epoch)...))
				if err != nil {
					log.Warn("cannot tell the serving generation's hot restart version; not comparing",
						zap.Uint32("epoch", serving.Epoch), zap.Error(err))
				}
				old = v
			}
			v, err := run(ctx, p, append([]string{cfg.Argv[0]}, args(p.Vars, epoch)...))
			if err != nil {
				return fmt.Errorf("the new binary's hot restart version: %w (a binary that cannot tell it cannot hot-restart either)", err)
			}
			if old != "" && v != old {
				log.Error("hot restart version mismatch: reload refused", zap.Uint32("serving_epoch", serving.Epoch),
					zap.String("serving_version", old), zap.String("new_version", v))
				return fmt.Errorf("%w: the serving generation (epoch %d) runs hot restart version %q, the new binary %s reports %q; "+
					"Envoy cannot hot-restart between them: upgrade with a full restart (stop the restarter and start it again, which starts at epoch 0)",
					errVersionMismatch, serving.Epoch, old, cfg.Argv[0], v)
			}
			mu.Lock()
			byEpoch[epoch] = v
			mu.Unlock()
		}
		if next != nil {
			return next(ctx, p)
		}
		return nil
	}
}

// versionArgs is COMMAND's arguments without --mode, plus --hot-restart-version.
func versionArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--mode":
			i++
		case strings.HasPrefix(a, "--mode="):
		default:
			out = append(out, a)
		}
	}
	return append(out, "--hot-restart-version")
}

// servingGeneration is the newest ready generation.
func servingGeneration(st supervisor.Status) (supervisor.Generation, bool) {
	var g supervisor.Generation
	found := false
	for _, x := range st.Generations {
		if x.State == supervisor.StateReady && (!found || x.Epoch > g.Epoch) {
			g, found = x, true
		}
	}
	return g, found
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[i+1:])
	}
	return s
}
