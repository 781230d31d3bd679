package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"
)

// This file keeps checking the serving generation after it became ready.
//
// Every LiveInterval the serving generation is checked: its process state
// (a stopped process, SIGSTOP or a debugger, accepts connections into its
// backlog and answers none), and its readiness probe again when the probe
// can be asked twice (Rechecker) and still reaches it. LiveFailures failed
// checks in a row make it hung, and the restarter then SIGKILLs every
// generation and exits 1, so the service manager starts afresh from epoch
// 0. Starting a new generation instead would not help under Envoy: the new
// one asks the hung parent for its admin, sockets and stats and would block
// on it; and a hung process handles no SIGTERM.
//
// Only a probe that times out counts: one that is refused (nothing listens
// on its address: it went with a failed successor, as Envoy's admin, which
// every new generation takes first, does) or answers "no" is not a hang. Such a generation, like one whose probe cannot be
// asked again (--ready-after, notify), is then checked by its process state
// only: that is what its status says ("unprobed: ...").
//
// A generation that listened while it served and no longer listens was told
// to drain (a failed successor's drain_listeners can arrive just before it
// dies) or closed its listeners: nothing serves, so the next epoch is
// started at once, as after a rollback (rollback.go).
//
// While a newer generation starts, the probe is not asked (the admin address
// may already be the new one's); the process state still is.

// liveTimeout bounds one liveness probe: long enough for a --ready-cmd's
// fork and exec on a busy machine; a hung process makes it run out.
const liveTimeout = 5 * time.Second

func (s *Supervisor) checkLive() {
	g := s.serving()
	if g == nil {
		s.liveAt = time.Time{}
		return
	}
	rc, canProbe := s.cfg.Readiness.(Rechecker)
	starting := s.inflight != nil && s.inflight.g != nil && s.live(s.inflight.g)
	probe := canProbe && !g.probeLost && !starting
	s.liveBusy = true
	ctx, cancel := context.WithTimeout(s.baseCtx, liveTimeout)
	p := s.probe(g.epoch, g.pid)
	pid := g.pid
	m := liveMsg{g: g, probed: probe}
	startPID := 0
	if starting {
		m.starting, startPID = s.inflight.g, s.inflight.g.pid
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		m.stopped = stoppedState(pid)
		if startPID > 0 {
			m.startStop = stoppedState(startPID)
		}
		m.listening, m.known = listening(pid, p.Epoch)
		if m.probed = probe && !m.stopped; m.probed { // a stopped process is enough to know
			m.err = recheckUnlessStopped(ctx, rc, p)
			m.stopped = m.err != nil && stoppedState(pid)
		}
		send(s, s.livec, m)
	}()
}

// recheckUnlessStopped runs the probe, cut short when the process is found
// stopped meanwhile (a probe of a stopped process only times out).
func recheckUnlessStopped(ctx context.Context, rc Rechecker, p Probe) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if stoppedState(p.PID) {
					cancel()
					return
				}
			}
		}
	}()
	err := rc.Recheck(ctx, p)
	close(done)
	<-watched
	return err
}

func (s *Supervisor) handleLive(m liveMsg) {
	s.liveBusy = false
	s.liveAt = time.Now().Add(s.cfg.LiveInterval)
	s.checkStartingStopped(m)
	g := m.g
	if s.stopping || !s.live(g) || g != s.serving() {
		return
	}
	if g.listened && m.known && !m.listening && !m.stopped && s.inflight == nil && s.pending == nil {
		// It listened while it served and listens no more: it was told to
		// drain (by a generation that then died) or closed its listeners.
		// Nothing serves; start the next epoch now (see rollback.go).
		s.log.Error("the serving generation no longer listens; starting the next epoch now",
			zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.Uint32("next_epoch", s.nextEpoch))
		g.health = "not listening: starting the next epoch"
		s.startReload(&reloadOp{recovery: true})
		return
	}
	if !m.stopped && m.probed && m.err != nil && !probeTimedOut(m.err) {
		// The probe failed without timing out: refused (its address went
		// with a failed successor, as Envoy's admin does), or answered
		// "no". That is not a hang: a hung process holds its sockets and
		// does not answer.
		if !g.probeLost {
			g.probeLost, g.health = true, s.baseHealth(g)
			s.log.Warn("the serving generation's readiness probe fails without timing out; watching its process state only until the next reload",
				zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.Error(m.err))
			s.publish()
		}
		return
	}
	var err error
	switch {
	case m.stopped:
		err = errors.New("the process is stopped (SIGSTOP?)")
	case m.probed && m.err != nil:
		err = m.err
	}
	if err == nil {
		if h := s.baseHealth(g); g.liveFails > 0 || g.health != h {
			g.liveFails, g.health = 0, h
			s.publish()
		}
		return
	}
	g.liveFails++
	g.health = fmt.Sprintf("failing %d/%d: %v", g.liveFails, s.cfg.LiveFailures, err)
	s.log.Warn("serving generation failed a liveness check", zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid),
		zap.Int("failures", g.liveFails), zap.Int("threshold", s.cfg.LiveFailures), zap.Error(err))
	if g.liveFails < s.cfg.LiveFailures {
		s.publish()
		return
	}
	reason := fmt.Sprintf("serving epoch %d hung: %d liveness checks %s apart failed, the last: %v", g.epoch, g.liveFails, s.cfg.LiveInterval, err)
	if prev := s.stillListening(g); prev != nil {
		s.revive(g, prev, reason)
		return
	}
	s.log.Error("serving generation hung; killing all and exiting 1 so the service manager starts afresh", zap.Uint32("epoch", g.epoch), zap.String("reason", reason))
	s.fatal = reason
	s.beginKill(reason)
}

// baseHealth is a healthy generation's Health: "ok" when its probe checks
// it, "unprobed: why" when only its process state can be watched.
func (s *Supervisor) baseHealth(g *gen) string {
	switch _, ok := s.cfg.Readiness.(Rechecker); {
	case !ok:
		return "unprobed: this readiness check cannot be asked again; watching the process state only"
	case g.probeLost:
		return "unprobed: its readiness probe no longer reaches it (a failed generation took the address); watching its process state until the next reload"
	}
	return "ok"
}

// stillListening returns the newest older generation that still listens: a
// predecessor that was never told to drain (a readiness check such as
// --ready-after took a new generation for ready before it had taken over).
func (s *Supervisor) stillListening(g *gen) *gen {
	var best *gen
	for _, o := range s.gens {
		if o == g || o.epoch >= g.epoch || o.state != StateDraining || o.termed || !o.listened {
			continue
		}
		if yes, known := listening(o.pid, o.epoch); yes && known && (best == nil || o.epoch > best.epoch) {
			best = o
		}
	}
	return best
}

// revive ends the hung generation g (SIGKILL: it handles no signal) and makes
// prev, which still listens, the serving generation again; the next reload
// reuses g's epoch number, whose parent socket is prev's.
func (s *Supervisor) revive(g, prev *gen, reason string) {
	s.log.Error("serving generation hung, but its predecessor still listens (it was never told to drain): killing the hung one; the predecessor serves",
		zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.Uint32("serving_epoch", prev.epoch), zap.String("reason", reason))
	g.failed, g.op = reason, nil
	g.state = StateStarting // not serving any more; it goes with SIGKILL
	s.killTree(g)
	g.termed, g.killAt = true, time.Now().Add(s.cfg.TermWait)
	prev.state, prev.termAt, prev.drainAt = StateReady, time.Time{}, time.Time{}
	prev.liveFails, prev.health = 0, s.baseHealth(prev)
	s.nextEpoch = prev.epoch + 1
	s.stateEvent(prev, false, "serving again")
}

// checkStartingStopped ends a starting generation found stopped (SIGSTOP,
// a debugger) by LiveFailures checks in a row, instead of waiting out
// --ready-timeout: after drain_listeners nothing else serves meanwhile.
func (s *Supervisor) checkStartingStopped(m liveMsg) {
	g := m.starting
	if g == nil || s.stopping || !s.live(g) || g.state != StateStarting || g.failed != "" {
		return
	}
	if !m.startStop {
		g.stopFails = 0
		return
	}
	if g.stopFails++; g.stopFails >= s.cfg.LiveFailures {
		s.notReady(g, fmt.Errorf("stopped (SIGSTOP?) at %d liveness checks in a row", g.stopFails))
	}
}

// probeTimedOut reports whether a readiness probe's error is a timeout: the
// last check of the poll (poll's "%w (last check: %w)") or the probe itself
// ran out of time, rather than being refused or answered.
func probeTimedOut(err error) bool {
	if m, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := m.Unwrap(); len(errs) > 1 {
			err = errs[len(errs)-1]
		}
	}
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
