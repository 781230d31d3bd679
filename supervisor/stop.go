package supervisor

import (
	"syscall"
	"time"

	"go.uber.org/zap"
)

// This file is the stop and deadline logic of the state machine; the
// signalling it calls (signalTree, killTree, kill) is per platform.

// beginStop: SIGTERM every generation that was ready, SIGKILL every one that
// never was (see notReady: its SIGTERM would terminate its parent), SIGKILL
// what is left after TermWait.
func (s *Supervisor) beginStop(reason string) {
	if s.stopping {
		return
	}
	s.stopping = true
	s.stopAt = time.Now().Add(s.cfg.TermWait)
	s.cancelAll()
	s.failOps("restarter is stopping")
	s.log.Info("stopping", zap.String("reason", reason), zap.Int("generations", len(s.gens)))
	s.emit(Event{Kind: EventStopping})
	for _, g := range s.gens {
		if g.state == StateStarting {
			s.killTree(g)
			continue
		}
		s.signalTree(g, syscall.SIGTERM) // a start script's forked proxy too
	}
}

// beginKill: an unrecoverable failure; SIGKILL everything (the Python
// restarter's behaviour, so the service manager restarts from epoch 0).
func (s *Supervisor) beginKill(reason string) {
	s.beginStop(reason)
	for _, g := range s.gens {
		s.killTree(g)
	}
}

func (s *Supervisor) handleDeadlines() {
	now := time.Now()
	if s.stopping && !s.stopAt.IsZero() && !now.Before(s.stopAt) {
		for _, g := range s.gens {
			s.log.Warn("still alive after the term wait; sending SIGKILL", zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid),
				zap.String("state", string(g.state)), zap.Duration("term_wait", s.cfg.TermWait))
			s.killTree(g)
			s.unclean = true
		}
		s.stopAt = time.Time{}
	}
	for _, g := range s.gens {
		if !g.termed && !g.termAt.IsZero() && !now.Before(g.termAt) {
			g.termed = true
			g.killAt = now.Add(s.cfg.TermWait)
			s.log.Warn("old generation outlived parent-shutdown time plus grace; sending SIGTERM",
				zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.String("state", string(g.state)))
			s.kill(g, syscall.SIGTERM)
			s.publish()
		}
		if !g.killAt.IsZero() && !now.Before(g.killAt) {
			g.killAt = time.Time{}
			s.log.Warn("still alive after the term wait; sending SIGKILL", zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid),
				zap.String("state", string(g.state)), zap.Duration("term_wait", s.cfg.TermWait))
			s.killTree(g)
		}
	}
	if op := s.inflight; !s.stopping && op != nil && !op.confirmAt.IsZero() && !now.Before(op.confirmAt) {
		s.confirmRollback()
	}
	if !s.stopping && !s.liveBusy && !s.liveAt.IsZero() && !now.Before(s.liveAt) {
		s.checkLive()
	}
}
