package supervisor

import (
	"os"
	"time"

	"go.uber.org/zap"
)

func (s *Supervisor) genSnap(g *gen, exitedAt time.Time, status *int) Generation {
	out := Generation{Epoch: g.epoch, PID: g.pid, State: g.state, StartedAt: g.started, Health: g.health}
	if s.stopping && g.state != StateExited {
		out.State = StateStopping
	}
	if g.startPID != g.pid {
		out.StartPID = g.startPID
	}
	at := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	out.ReadyAt = at(g.ready)
	if status != nil {
		st := *status
		out.ExitedAt, out.ExitStatus = at(exitedAt), &st
		return out
	}
	out.DrainUntil = at(g.drainAt)
	if !g.termed {
		out.TermAt = at(g.termAt)
	}
	out.KillAt = at(g.killAt)
	if s.stopping && g.killAt.IsZero() {
		out.KillAt = at(s.stopAt)
	}
	return out
}

func (s *Supervisor) publish() Status {
	st := Status{PID: os.Getpid(), BaseID: s.cfg.BaseID, NextEpoch: s.nextEpoch, Stopping: s.stopping, Fatal: s.fatal,
		Reloading: s.inflight != nil && !s.inflight.initial, Pending: s.pending != nil, Generations: make([]Generation, 0, len(s.gens))}
	for _, g := range s.gens {
		st.Generations = append(st.Generations, s.genSnap(g, time.Time{}, nil))
	}
	if s.last != nil {
		lr := *s.last
		st.LastReload = &lr
	}
	st.Held = s.heldSnap()
	st.Reloads = s.counts
	s.mu.Lock()
	s.snap = st
	s.mu.Unlock()
	return st
}

func (s *Supervisor) emit(ev Event) {
	ev.Time = time.Now()
	ev.Status = s.publish()
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(ev)
	}
}

func (s *Supervisor) emitGen(g *gen, first bool, exitedAt time.Time, status *int) {
	gs := s.genSnap(g, exitedAt, status)
	s.emit(Event{Kind: EventState, Generation: &gs, First: first})
}

func (s *Supervisor) stateEvent(g *gen, first bool, msg string, extra ...zap.Field) {
	fields := append([]zap.Field{zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.String("state", string(g.state))}, extra...)
	s.log.Info(msg, fields...)
	s.emitGen(g, first, time.Time{}, nil)
}
