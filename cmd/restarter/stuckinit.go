package main

import (
	"context"
	"fmt"
	"os"

	"github.com/hotrestart/restarter/internal/shmguard"
	"github.com/hotrestart/restarter/supervisor"
	"go.uber.org/zap"
)

// withStuckInitCheck wraps the pre-reload validation with what the restarter
// can do about a stuck INITIALIZING flag in the hot-restart shared memory
// (envoy #33446): a generation that died during start-up leaves it set, and
// every later generation then exits 1 with "previous envoy process is still
// initializing", so every reload would fail (the serving generation keeps
// serving, but can never be replaced).
//
//   - testproxy's own region (package shmguard; its directory from
//     TESTPROXY_SHM_DIR, default /dev/shm) records the pid that set the
//     flag: when that process is gone, the flag is stuck and is cleared
//     (logged), and the reload goes ahead.
//   - Envoy's region (/dev/shm/envoy_shared_memory_<base_id*10>) records no
//     pid and holds Envoy's process-shared mutexes: the restarter only
//     reads it (where its layout is known). Before a reload no generation of
//     ours is starting, so a set flag means either a generation that passed
//     the readiness check without having finished initializing, or a stuck
//     flag; the restarter cannot tell which, so it refuses the reload at once
//     and says both, with the way out of the second (a full restart: epoch 0
//     recreates the region), instead of starting a generation that must fail.
//
// next, if not nil, runs after.
func withStuckInitCheck(next func(context.Context, supervisor.Probe) error, status func() supervisor.Status, log *zap.Logger) func(context.Context, supervisor.Probe) error {
	dir := os.Getenv("TESTPROXY_SHM_DIR")
	if dir == "" {
		dir = "/dev/shm"
	}
	return func(ctx context.Context, p supervisor.Probe) error {
		epoch := p.Epoch
		st := status()
		for _, g := range st.Generations {
			if g.State == supervisor.StateStarting {
				return next0(ctx, next, p) // a live initialization: the flag is not stuck
			}
		}
		path := shmguard.Path(dir, st.BaseID)
		holder, cleared, err := shmguard.ClearIfStuck(path)
		switch {
		case err != nil:
			log.Warn("cannot inspect the shared-memory INITIALIZING flag", zap.String("path", path), zap.Error(err))
		case cleared:
			log.Warn("cleared a stuck INITIALIZING flag: the generation that set it died during start-up (envoy #33446)",
				zap.String("path", path), zap.Int("pid", holder), zap.Uint32("epoch", epoch))
		}
		envoy := shmguard.EnvoyPath(st.BaseID)
		if set, known, err := shmguard.EnvoyInitializing(envoy); err != nil {
			log.Warn("cannot read Envoy's shared memory", zap.String("path", envoy), zap.Error(err))
		} else if known && set {
			return fmt.Errorf("Envoy's shared memory %s has its INITIALIZING flag set while no generation is starting, "+
				"so the new epoch would exit with \"previous envoy process is still initializing\": either the serving "+
				"generation has not finished initializing although it passed the readiness check (try again later), or a "+
				"generation died during start-up and left the flag set (envoy #33446), and then hot restarts cannot resume "+
				"before a full restart (stop the restarter and start it again: epoch 0 recreates the region); the serving "+
				"generation keeps serving", envoy)
		}
		return next0(ctx, next, p)
	}
}

func next0(ctx context.Context, next func(context.Context, supervisor.Probe) error, p supervisor.Probe) error {
	if next == nil {
		return nil
	}
	return next(ctx, p)
}
