package supervisor

import (
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"
)

// This file is what happens to one generation: it becomes ready, or fails
// to, or exits.

func (s *Supervisor) handleReady(r readyMsg) {
	g := r.g
	if !s.live(g) || g.state != StateStarting || g.failed != "" || s.stopping {
		return
	}
	if r.err != nil {
		s.notReady(g, r.err)
		return
	}
	now := time.Now()
	g.state = StateReady
	g.ready = now
	g.cancel()
	g.health = s.baseHealth(g)
	if yes, _ := listening(g.pid, g.epoch); yes {
		g.listened = true
	}
	first := !s.everReady
	s.everReady = true
	s.nextEpoch = g.epoch + 1
	s.liveAt = now.Add(s.cfg.LiveInterval)
	for _, o := range s.gens {
		if o != g && (o.state == StateReady || o.state == StateStarting && o.epoch < g.epoch) {
			o.state = StateDraining
			o.health = ""
			o.drainAt = now.Add(s.cfg.DrainTime)
			o.termAt = now.Add(s.cfg.ParentShutdownTime + s.cfg.ShutdownGrace)
			s.stateEvent(o, false, "draining")
		}
	}
	s.stateEvent(g, first, "ready")
	if g.op != nil && g.op == s.inflight {
		s.finishReload(g.op, "", "")
	}
}

// notReady ends a generation that was not ready within --ready-timeout.
// It gets SIGKILL, with its whole process group, never SIGTERM: Envoy's
// SIGTERM handler (shutdown()) sends terminate to its hot-restart parent
// even while it is still initializing, which would end the healthy old
// generation; SIGKILL runs no handler. The reload finishes when it is gone.
func (s *Supervisor) notReady(g *gen, err error) {
	reason := fmt.Sprintf("epoch %d not ready within %s: %v", g.epoch, s.cfg.ReadyTimeout, err)
	if g.stopFails >= s.cfg.LiveFailures {
		reason = fmt.Sprintf("epoch %d not ready: %v", g.epoch, err)
	}
	g.failed = reason
	if s.serving() == nil {
		s.fatal = reason
		s.beginStop(reason)
		return
	}
	s.log.Error("new generation not ready; killing it (SIGKILL: a not-ready Envoy's SIGTERM would terminate its parent)",
		zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.String("state", string(g.state)), zap.Error(err))
	s.killTree(g)
	g.termed = true
	g.killAt = time.Now().Add(s.cfg.TermWait) // again, if the first did not end it
}

func (s *Supervisor) handleExit(e exitMsg) {
	var g *gen
	for _, o := range s.gens {
		if o.pid == e.pid {
			g = o
		}
	}
	if g == nil || s.adopt(g, e.status) || s.awaitGroup(g) {
		return
	}
	s.remove(g)
	wasState := g.state
	g.state = StateExited
	fields := []zap.Field{zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.String("state", string(StateExited)),
		zap.Int("exit_status", e.status), zap.String("was", string(wasState))}
	s.emitGen(g, false, time.Now(), &e.status)
	switch {
	case s.stopping:
		s.log.Info("generation exited", fields...)
	case g.failed != "":
		s.log.Warn("failed generation is gone", fields...)
		s.finishReload(g.op, FailureNotReady, g.failed)
	case wasState == StateStarting:
		s.startingExited(g, e.status, fields)
	case wasState == StateReady:
		s.servingExited(g, e.status, fields)
	case e.status != 0:
		s.log.Warn("draining generation exited abnormally", fields...)
	default:
		s.log.Info("generation exited", fields...)
	}
}

// adopt handles a start script that forked the proxy and exited 0: the
// supervisor tracks the proxy instead. Only while the generation starts or
// serves: a draining generation exiting 0 is the normal end of a hot
// restart, not a script handing over.
func (s *Supervisor) adopt(g *gen, status int) bool {
	if status != 0 || g.pid != g.startPID || s.stopping || g.failed != "" || g.state == StateDraining {
		return false
	}
	seen := time.Now()
	child := s.findDescendant(g)
	if child <= 0 {
		return false
	}
	s.closePidfd(g)
	g.pid = child
	g.pidfd = pidfdOpen(child)
	g.adoptedAt = time.Now()
	s.log.Info("start script exited; tracking the process it left behind",
		zap.Uint32("epoch", g.epoch), zap.Int("pid", child), zap.Int("start_pid", g.startPID), zap.String("state", string(g.state)))
	s.watch(child, seen)
	s.writeRecord()
	s.publish()
	return true
}

// awaitGroup: while stopping, a generation whose tracked process exited but
// whose process group still has members (a start script's forked proxy,
// shutting down after its SIGTERM) stays listed, tracking one of them, so
// the restarter exits only once nothing of it is left.
func (s *Supervisor) awaitGroup(g *gen) bool {
	if !s.stopping || g.pgid <= 0 {
		return false
	}
	seen := time.Now()
	child := 0 // a member our reaper reaps: a direct child (re-parented to us)
	for _, pid := range groupMembers(g.pgid, g.pgStart) {
		if st, ok := readProcStat(pid); ok && st.ppid == os.Getpid() && pid != g.pid && !s.reaper.Watched(pid) {
			child = pid
			break
		}
	}
	if child == 0 {
		return false
	}
	s.closePidfd(g)
	g.pid = child
	g.pidfd = pidfdOpen(g.pid)
	s.log.Info("generation's first process exited; waiting for the rest of its process group",
		zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.Int("pgid", g.pgid))
	s.watch(g.pid, seen)
	return true
}

// startingExited: a generation died before it was ready. With another one
// serving that is a rollback (finishReload judges whether the old one still
// serves); with nothing serving the restarter exits 1, whatever the exit
// status: a first generation that exits 0 without ever being ready has not
// served either.
func (s *Supervisor) startingExited(g *gen, status int, fields []zap.Field) {
	reason := fmt.Sprintf("epoch %d exited with status %d before it was ready", g.epoch, status)
	if s.serving() != nil {
		s.log.Error("new generation died before it was ready; rollback", fields...)
	} else {
		s.log.Error("generation died before it was ready and nothing else serves; exiting 1", fields...)
		s.fatal = reason
		s.beginKill(reason)
	}
	if g.op != nil && g.op == s.inflight {
		s.finishReload(g.op, FailureStart, reason)
	}
}

// servingExited: the serving generation exited. Non-zero is a crash. Zero
// with no stop requested and no newer generation starting means someone
// ended it (Envoy's terminate or /quitquitquit from a process that can
// reach it): the service is gone, so the restarter exits 1 and a service
// manager with Restart=on-failure brings it back (issue 11 item 6). A newer
// generation that is starting may still take over; if it fails too,
// nothing serves and that is fatal (startingExited).
func (s *Supervisor) servingExited(g *gen, status int, fields []zap.Field) {
	if status == 0 && s.inflight != nil && s.inflight.g != nil && s.live(s.inflight.g) {
		s.log.Warn("serving generation exited 0 while a newer one starts; the newer one must take over", fields...)
		return
	}
	if status == 0 {
		reason := fmt.Sprintf("serving epoch %d exited 0 with no stop requested and no newer generation (terminated by another process?)", g.epoch)
		s.log.Error("serving generation exited 0 unasked; stopping and exiting 1 so the service manager restarts it", fields...)
		s.fatal = reason
		s.beginStop(reason)
		return
	}
	reason := fmt.Sprintf("serving epoch %d exited with status %d", g.epoch, status)
	s.log.Error("serving generation died; killing all and exiting 1", fields...)
	s.fatal = reason
	s.beginKill(reason)
}
