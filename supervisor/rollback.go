package supervisor

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// This file is the end of a reload, and the rollback after a failed one.
//
// A rollback never kills the generation rolled back to because of what a
// readiness probe says: the admin address (and any address the generations
// share) may have passed to the failed generation, which took it with it.
// A generation that is alive and was never told to drain keeps serving. The
// only evidence that it was told to drain is the generation's own: it held
// listening sockets while it served and its process tree holds none now
// (Envoy's drain_listeners closes them). Only then is the next epoch started
// again at once (a recovery); and a failed recovery ends the restarter only
// while that evidence still says the old one does not listen.

func (s *Supervisor) finishReload(op *reloadOp, fail Failure, reason string) {
	if op == nil {
		return
	}
	epoch := s.nextEpoch
	if op.g != nil {
		epoch = op.g.epoch
	}
	ok := fail == ""
	res := ReloadResult{Epoch: epoch, OK: ok, Failure: fail, Reason: reason, At: time.Now()}
	if s.inflight == op {
		s.inflight = nil
	}
	recover := false
	if !ok {
		var confirm bool
		if recover, confirm = s.judgeRollback(op, &res); confirm {
			// Answer only once a drain_listeners the failed generation
			// sent just before it died has had time to close the old
			// one's listeners (confirmRollback).
			op.res, op.confirmAt = res, time.Now().Add(rollbackLook)
			s.inflight = op
			return
		}
	}
	s.answer(op, res, recover)
}

// confirmRollback looks again at the generation rolled back to, rollbackLook
// after the rollback, and answers the failed reload.
func (s *Supervisor) confirmRollback() {
	op := s.inflight
	op.confirmAt = time.Time{}
	s.inflight = nil
	res, recover := op.res, false
	if g := s.serving(); g != nil && g.listened {
		if yes, known := listening(g.pid, g.epoch); known && !yes {
			recover = s.notListening(op, g, &res)
		}
	}
	s.answer(op, res, recover)
}

// answer publishes a reload's outcome, answers its waiters, and starts what
// comes next: a recovery, or the pending reload.
func (s *Supervisor) answer(op *reloadOp, res ReloadResult, recover bool) {
	if !op.initial {
		s.last = &res
		if res.OK {
			s.counts.Succeeded++
			s.log.Info("reload done", zap.Uint32("epoch", res.Epoch))
		} else {
			s.counts.Failed++
			s.log.Warn("reload failed", zap.Uint32("epoch", res.Epoch), zap.String("reason", res.Reason), zap.String("serving", res.Serving))
		}
		s.emit(Event{Kind: EventReloaded, Reload: &res})
	}
	// Answer after the snapshot is updated, so a caller's Status() agrees.
	for _, w := range op.waiters {
		w <- res
	}
	op.waiters = nil
	switch {
	case s.stopping:
	case recover && s.pending == nil && s.inflight == nil:
		s.startReload(&reloadOp{recovery: true})
	case s.pending != nil && s.inflight == nil:
		p := s.pending
		s.pending = nil
		s.startReload(p)
	}
}

// judgeRollback fills in what serves after a failed reload and says
// whether the next epoch must be started again now (the old generation
// stopped listening), or whether the answer must wait for a second look
// (confirm: it still listens, but a drain may be under way). It is
// synchronous: /proc is read on the state machine, so the reload's answer
// already says what is true.
func (s *Supervisor) judgeRollback(op *reloadOp, res *ReloadResult) (recover, confirm bool) {
	g := s.serving()
	if g == nil || s.stopping {
		res.Serving = "nothing serves: the restarter is exiting"
		if s.fatal != "" {
			res.Serving = "nothing serves: " + s.fatal
		}
		return false, false
	}
	e := g.epoch
	res.ServingEpoch = &e
	res.Serving = fmt.Sprintf("epoch %d keeps serving", g.epoch)
	if op.g == nil { // validation failed or the start failed: nothing new ran
		return false, false
	}
	yes, known := listening(g.pid, g.epoch)
	if !yes && known && g.listened {
		return s.notListening(op, g, res), false
	}
	s.log.Info("rolled back: the old generation keeps serving", zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid),
		zap.Bool("listening", yes), zap.Bool("evidence", known && g.listened))
	s.recheckServing(g)
	return false, yes && g.listened
}

// notListening: the generation rolled back to held listening sockets while
// it served and holds none now; it was told to drain. Nothing serves. After
// a failed reload the next epoch is started again at once (recover); after a
// failed recovery the restarter exits 1 (killing a generation that does not
// listen costs no service).
func (s *Supervisor) notListening(op *reloadOp, g *gen, res *ReloadResult) (recover bool) {
	res.ServingEpoch = nil
	if op.recovery {
		reason := fmt.Sprintf("epoch %d stopped listening after a failed reload (it had been told to drain), and starting epoch %d again failed too: %s",
			g.epoch, res.Epoch, res.Reason)
		s.log.Error("recovery failed; nothing serves; exiting 1", zap.Uint32("epoch", res.Epoch), zap.String("reason", reason))
		res.Serving = "nothing serves: " + reason
		s.fatal = reason
		s.beginKill(reason)
		return false
	}
	s.log.Error("rolled back, but the old generation no longer listens (the failed one had told it to drain); starting the next epoch again now",
		zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.Uint32("next_epoch", s.nextEpoch))
	res.Serving = fmt.Sprintf("nothing serves: epoch %d had been told to drain and no longer listens; starting epoch %d again", g.epoch, s.nextEpoch)
	return true
}

// recheckServing asks the readiness probe again about the generation rolled
// back to. Its answer decides nothing about service (see the top of this
// file); a failure only means the probe cannot reach it any more (the failed
// generation took the admin address), so liveness checks stop using the
// probe for it until the next reload.
func (s *Supervisor) recheckServing(g *gen) {
	rc, ok := s.cfg.Readiness.(Rechecker)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, min(s.cfg.ReadyTimeout, recheckTimeout))
	probe := s.probe(g.epoch, g.pid)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		err := rc.Recheck(ctx, probe)
		send(s, s.recheckc, readyMsg{g, err})
	}()
}

// rollbackLook is how soon after a rollback the generation rolled back to is
// checked again.
const rollbackLook = 300 * time.Millisecond

// recheckTimeout bounds how long a serving generation may take to answer
// its readiness check again after a rollback.
const recheckTimeout = 2 * time.Second

func (s *Supervisor) handleRecheck(r readyMsg) {
	g := r.g
	if s.stopping || !s.live(g) || g != s.serving() {
		return
	}
	if r.err == nil {
		s.log.Info("rolled back: the old generation still answers its readiness probe", zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid))
		return
	}
	g.probeLost = true
	g.health = s.baseHealth(g)
	s.log.Warn("rolled back: the old generation keeps serving but no longer answers its readiness probe (the failed generation took the address with it); the next reload restores it",
		zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.Error(r.err))
	s.publish()
}
