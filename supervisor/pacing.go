package supervisor

import (
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Pacing is the policy for a reload that would make a third generation live.
//
// Envoy keeps at most three generations: when epoch N+2 starts, epoch N+1
// terminates epoch N at once, however far N's drain has got (envoy #15099).
// Whatever N still has in flight is cut. Pacing decides whether the
// supervisor starts such a reload at once or holds it until N has exited.
type Pacing string

// Pacing policies.
const (
	// PacingProtectDrain holds a reload while two generations are live (one
	// serving, one draining) until the draining one has exited, for at most
	// Config.MaxReloadDelay; held reloads coalesce into one. The default.
	PacingProtectDrain Pacing = "protect-drain"
	// PacingEnvoy starts a reload at once, as Envoy's hot-restarter.py does:
	// three generations may be live and the third cuts the oldest.
	PacingEnvoy Pacing = "envoy"
	// PacingNone never holds a reload, not even for the socket-slot rule:
	// for generations that do not hot-restart the way Envoy does.
	PacingNone Pacing = "none"
)

// ParsePacing parses "protect-drain", "envoy" or "none".
func ParsePacing(s string) (Pacing, error) {
	switch p := Pacing(s); p {
	case PacingProtectDrain, PacingEnvoy, PacingNone:
		return p, nil
	}
	return "", fmt.Errorf("reload pacing %q: use protect-drain, envoy or none", s)
}

// HeldReload describes a reload the supervisor is holding back (Status.Held).
type HeldReload struct {
	Since  time.Time `json:"since"`           // when the first held request arrived
	Until  time.Time `json:"until,omitzero"`  // when the bound lets it go (zero: only the exit releases it)
	Epoch  uint32    `json:"waiting_for"`     // the epoch whose exit releases it
	Reason string    `json:"reason"`          // why, in words
	Rule   string    `json:"rule"`            // "protect-drain" or "socket-slot"
	PID    int       `json:"waiting_for_pid"` // that epoch's pid
}

// pacingGen is what the decision needs of one live generation.
type pacingGen struct {
	epoch uint32
	pid   int
	state State
}

// paceDecision is the outcome of decidePacing.
type paceDecision struct {
	hold   bool
	held   HeldReload // when hold
	forced bool       // the bound was reached: start now although it cuts a drain
	cut    pacingGen  // when forced: the generation the start will terminate
}

// decidePacing says whether a reload that would start epoch next may start
// at now, given the live generations (each not yet exited), the policy, the
// bound maxDelay and since (when the reload was first held; zero if it was not).
//
// Two rules:
//   - socket-slot (every policy, no bound): epoch next binds the hot-restart
//     sockets of epoch next-3 (names repeat every epoch%3); while that epoch
//     lives the start would fail with "address already in use". The
//     supervisor's own backstop (parent-shutdown time + grace, SIGTERM,
//     SIGKILL) ends it, so the wait is bounded anyway.
//   - protect-drain: with a generation ready and another still alive beside
//     it (draining, or older), a start makes the ready one terminate the
//     older at once. Held until no such generation is left, or maxDelay
//     after since; then it goes ahead (forced) and the cut is the cost.
func decidePacing(p Pacing, gens []pacingGen, next uint32, since, now time.Time, maxDelay time.Duration) paceDecision {
	if p == PacingNone {
		return paceDecision{}
	}
	if since.IsZero() {
		since = now
	}
	for _, g := range gens {
		if g.epoch+3 <= next {
			return paceDecision{hold: true, held: HeldReload{Since: since, Epoch: g.epoch, PID: g.pid, Rule: "socket-slot",
				Reason: fmt.Sprintf("epoch %d (pid %d) is still alive and epoch %d would bind its hot-restart sockets (epoch %% 3)", g.epoch, g.pid, next)}}
		}
	}
	if p == PacingEnvoy {
		return paceDecision{}
	}
	// The oldest generation that the start would terminate: any live one
	// older than the newest ready generation.
	var ready *pacingGen
	for i := range gens {
		if gens[i].state == StateReady && (ready == nil || gens[i].epoch > ready.epoch) {
			ready = &gens[i]
		}
	}
	if ready == nil {
		return paceDecision{}
	}
	var oldest *pacingGen
	for i := range gens {
		if gens[i].epoch < ready.epoch && (oldest == nil || gens[i].epoch < oldest.epoch) {
			oldest = &gens[i]
		}
	}
	if oldest == nil {
		return paceDecision{}
	}
	until := since.Add(maxDelay)
	if !now.Before(until) {
		return paceDecision{forced: true, cut: *oldest}
	}
	return paceDecision{hold: true, held: HeldReload{Since: since, Until: until, Epoch: oldest.epoch, PID: oldest.pid, Rule: "protect-drain",
		Reason: fmt.Sprintf("epoch %d (pid %d) is still %s; starting epoch %d now would make epoch %d terminate it at once",
			oldest.epoch, oldest.pid, oldest.state, next, ready.epoch)}}
}

// pacer is the supervisor's pacing state (owned by the state machine).
type pacer struct {
	held *HeldReload // the reload being held, nil if none
}

func (s *Supervisor) pacingGens() []pacingGen {
	out := make([]pacingGen, 0, len(s.gens))
	for _, g := range s.gens {
		out = append(out, pacingGen{epoch: g.epoch, pid: g.pid, state: g.state})
	}
	return out
}

// holdReload is the pacing hook at the top of startReload: it returns true
// when op must wait (it is then the pending reload, merged with any other),
// false when op may start now. The first start and a recovery are never held.
func (s *Supervisor) holdReload(op *reloadOp) bool {
	if op.initial || op.recovery {
		return false
	}
	if s.pending != nil && s.pending != op {
		// A reload is already held: coalesce into it.
		s.pending.waiters = append(s.pending.waiters, op.waiters...)
		op.waiters = nil
		s.publish()
		return true
	}
	var since time.Time
	if s.pace.held != nil {
		since = s.pace.held.Since
	}
	now := time.Now()
	d := decidePacing(s.cfg.Pacing, s.pacingGens(), s.nextEpoch, since, now, s.cfg.MaxReloadDelay)
	if d.hold {
		prev := s.pace.held
		h := d.held
		s.pace.held = &h
		s.pending = op
		if prev == nil || prev.Rule != h.Rule || prev.Epoch != h.Epoch {
			msg := "reload held" // once per held reload; "reload released" or the forced warning ends it
			if prev != nil {
				msg = "reload still held"
			} else {
				s.counts.Held++
			}
			s.log.Info(msg, zap.Uint32("epoch", s.nextEpoch), zap.String("rule", h.Rule),
				zap.Uint32("waiting_for", h.Epoch), zap.Int("waiting_for_pid", h.PID), zap.Time("until", h.Until), zap.String("reason", h.Reason))
			s.emit(Event{Kind: EventReloadHeld, Held: &h})
		}
		return true
	}
	if s.pace.held != nil {
		delay := now.Sub(s.pace.held.Since)
		if d.forced {
			s.counts.Forced++
			s.log.Warn("held reload reached its maximum delay; starting it now, which cuts a draining generation",
				zap.Uint32("epoch", s.nextEpoch), zap.Duration("held", delay),
				zap.Uint32("cut_epoch", d.cut.epoch), zap.Int("cut_pid", d.cut.pid), zap.String("cut_state", string(d.cut.state)))
		} else {
			s.counts.Released++
			s.log.Info("reload released", zap.Uint32("epoch", s.nextEpoch), zap.Duration("held", delay))
		}
		s.pace.held = nil
	}
	return false
}

// pacingDeadline is when a held reload must be looked at again (its bound).
func (s *Supervisor) pacingDeadline() time.Time {
	if s.pace.held == nil || s.pending == nil || s.inflight != nil {
		return time.Time{}
	}
	return s.pace.held.Until
}

// releaseHeld starts the held reload when it may go now (the generation it
// waited for has exited, or the bound is reached). Called by the state
// machine after every event it handled.
func (s *Supervisor) releaseHeld() {
	if s.pace.held == nil || s.pending == nil || s.inflight != nil || s.stopping {
		if s.pending == nil && s.pace.held != nil {
			s.pace.held = nil // the pending reload went (failOps, stop)
		}
		return
	}
	p := s.pending
	s.pending = nil
	s.startReload(p) // its pacing hook holds p again if it must still wait
}

// heldSnap is the held reload for Status (a copy), nil if none.
func (s *Supervisor) heldSnap() *HeldReload {
	if s.pace.held == nil || s.pending == nil {
		return nil
	}
	h := *s.pace.held
	return &h
}

// pacingDefaults fills in the policy and its bound. The default bound is the
// parent-shutdown time plus the shutdown grace: the longest a draining
// generation can live before the supervisor's own backstop SIGTERMs it, so a
// hold never outlasts the drain it protects.
func (c *Config) pacingDefaults() {
	if c.Pacing == "" {
		c.Pacing = PacingProtectDrain
	}
	if c.MaxReloadDelay == 0 {
		c.MaxReloadDelay = c.ParentShutdownTime + c.ShutdownGrace
	}
}

func (c *Config) checkPacing() error {
	if _, err := ParsePacing(string(c.Pacing)); err != nil {
		return err
	}
	if c.MaxReloadDelay < 0 {
		return fmt.Errorf("max reload delay %s is negative: use 0 (the default) or more", c.MaxReloadDelay)
	}
	return nil
}
