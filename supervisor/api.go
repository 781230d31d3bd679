package supervisor

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// This file is the Supervisor's API for other goroutines, and the typed
// requests it sends into the state machine.

// request is one typed request into the state machine: apply runs on its
// goroutine (the run loop), as the only code that touches its state.
type request interface{ apply(s *Supervisor) }

// reloadReq asks for a reload; reply is nil for fire-and-forget (SIGHUP).
type reloadReq struct{ reply chan ReloadResult }

// signalReq forwards sig to every live generation.
type signalReq struct {
	sig  syscall.Signal
	done chan error
}

// stopReq begins shutdown.
type stopReq struct{}

// pingReq answers on done once the loop has run it.
type pingReq struct{ done chan error }

func (s *Supervisor) request(r request) error {
	select {
	case <-s.running:
	default:
		return errors.New("supervisor: not running")
	}
	select {
	case s.reqc <- r:
		return nil
	case <-s.loopDone:
		return ErrStopped
	}
}

// Reload asks for a reload and waits for its outcome: OK once the new
// generation is ready, or failed with the reason (validation failed, the new
// generation died or was not ready in time, shutdown). Requests made while a
// reload is in progress coalesce into one pending reload that runs after it;
// they all get that pending reload's result.
func (s *Supervisor) Reload(ctx context.Context) (ReloadResult, error) {
	reply := make(chan ReloadResult, 1)
	if err := s.request(reloadReq{reply: reply}); err != nil {
		return ReloadResult{}, err
	}
	select {
	case r := <-reply:
		return r, nil
	case <-ctx.Done():
		return ReloadResult{}, ctx.Err()
	case <-s.loopDone:
		select {
		case r := <-reply:
			return r, nil
		default:
		}
		return ReloadResult{}, ErrStopped
	}
}

// RequestReload asks for a reload without waiting (what SIGHUP does).
func (s *Supervisor) RequestReload() error {
	return s.request(reloadReq{})
}

// Signal sends sig to every live generation (SIGUSR1: reopen logs).
func (s *Supervisor) Signal(sig syscall.Signal) error {
	done := make(chan error, 1)
	if err := s.request(signalReq{sig: sig, done: done}); err != nil {
		return err
	}
	return <-done
}

// Stop begins shutdown: SIGTERM to every generation, SIGKILL after
// TermWait. It does not wait; Run returns when the last one is gone. It is
// idempotent.
func (s *Supervisor) Stop() {
	_ = s.request(stopReq{})
}

// Ping round-trips through the state-machine goroutine: nil means it is
// alive and answering (a systemd watchdog's health check). It returns ctx's
// error when the loop does not answer in time (or Run has not started by
// then), and ErrStopped once it has stopped.
func (s *Supervisor) Ping(ctx context.Context) error {
	select {
	case <-s.running:
	case <-ctx.Done():
		return ctx.Err()
	}
	done := make(chan error, 1)
	select {
	case s.reqc <- pingReq{done: done}:
	case <-s.loopDone:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed once the state machine has stopped.
func (s *Supervisor) Done() <-chan struct{} { return s.loopDone }

// Status returns a snapshot. It is safe to call from any goroutine,
// including from OnEvent.
func (s *Supervisor) Status() Status {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.snap
	st.Generations = append([]Generation(nil), s.snap.Generations...)
	if s.snap.LastReload != nil {
		lr := *s.snap.LastReload
		st.LastReload = &lr
	}
	return st
}

func (r reloadReq) apply(s *Supervisor) {
	if s.stopping {
		if r.reply != nil {
			r.reply <- ReloadResult{Epoch: s.nextEpoch, Failure: FailureAborted, Reason: "restarter is stopping", At: time.Now()}
		}
		return
	}
	s.counts.Requested++
	if s.inflight != nil {
		if s.pending == nil {
			s.pending = &reloadOp{}
			s.log.Info("reload held until the current generation is ready or has failed",
				zap.Uint32("epoch", s.nextEpoch))
		}
		if r.reply != nil {
			s.pending.waiters = append(s.pending.waiters, r.reply)
		}
		s.publish()
		return
	}
	op := &reloadOp{}
	if r.reply != nil {
		op.waiters = append(op.waiters, r.reply)
	}
	s.startReload(op)
	s.publish() // the request count, also when pacing held it silently
}

func (r signalReq) apply(s *Supervisor) {
	var errs []error
	for _, g := range s.gens {
		if err := s.signal(g, r.sig); err != nil && err != syscall.ESRCH {
			errs = append(errs, fmt.Errorf("kill %d: %w", g.pid, err))
		}
		s.log.Info("forwarded signal", zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid),
			zap.String("state", string(g.state)), zap.String("signal", r.sig.String()))
	}
	r.done <- errors.Join(errs...)
}

func (stopReq) apply(s *Supervisor) { s.beginStop("stop requested") }

func (r pingReq) apply(*Supervisor) { r.done <- nil }
