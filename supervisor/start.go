package supervisor

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// This file starts reloads and generations.

func (s *Supervisor) startReload(op *reloadOp) {
	if s.holdReload(op) {
		return
	}
	s.inflight = op
	if !op.initial {
		s.counts.Started++
		s.log.Info("reload", zap.Uint32("epoch", s.nextEpoch))
		s.emit(Event{Kind: EventReloading})
	}
	if s.cfg.Validate != nil && !op.initial && !op.recovery {
		op.validating = true
		epoch := s.nextEpoch
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			err := s.cfg.Validate(s.baseCtx, s.probe(epoch, 0))
			send(s, s.validc, validMsg{op, err})
		}()
		s.publish()
		return
	}
	s.launch(op)
}

func (s *Supervisor) handleValidated(v validMsg) {
	if v.op != s.inflight {
		return
	}
	v.op.validating = false
	if s.stopping {
		s.finishReload(v.op, FailureAborted, "restarter is stopping")
		return
	}
	if v.err != nil {
		s.log.Error("reload aborted: validation failed; the old generation keeps serving",
			zap.Uint32("epoch", s.nextEpoch), zap.Error(v.err))
		s.finishReload(v.op, FailureValidation, "validation failed: "+v.err.Error())
		return
	}
	s.launch(v.op)
}

func (s *Supervisor) vars(epoch uint32) Vars {
	return Vars{Epoch: epoch, BaseID: s.cfg.BaseID, DrainTimeS: Seconds(s.cfg.DrainTime), ParentShutdownTimeS: Seconds(s.cfg.ParentShutdownTime)}
}

func (s *Supervisor) launch(op *reloadOp) {
	epoch := s.nextEpoch
	v := s.vars(epoch)
	argv := Expand(s.cfg.Argv, v)
	if s.cfg.Envoy {
		argv = append(argv, EnvoyArgs(v)...)
	}
	var extra []string
	if s.cfg.GenerationEnv != nil {
		extra = s.cfg.GenerationEnv(epoch)
	}
	p, err := s.startGeneration(ProcSpec{Path: argv[0], Args: argv, Env: Env(environ(), v, extra), Dir: s.cfg.Dir, Setpgid: true})
	pid := p.PID
	if err != nil {
		s.log.Error("start failed", zap.Uint32("epoch", epoch), zap.Error(err))
		if s.serving() == nil {
			s.fatal = fmt.Sprintf("epoch %d: %v", epoch, err)
			s.beginStop(s.fatal)
		}
		s.finishReload(op, FailureStart, err.Error())
		return
	}
	g := &gen{epoch: epoch, pid: pid, pidfd: p.PidFD, startPID: pid, pgid: pid, state: StateStarting, started: time.Now(), op: op}
	if st, ok := readProcStat(pid); ok {
		g.pgStart = st.start
	}
	op.g = g
	s.gens = append(s.gens, g)
	s.writeRecord()
	rctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.ReadyTimeout)
	g.cancel = cancel
	probe := s.probe(epoch, pid)
	probe.Report = func(err error) { send(s, s.checkc, readyMsg{g, err}) }
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.cfg.Readiness.Ready(rctx, probe)
		send(s, s.readyc, readyMsg{g, err})
	}()
	s.stateEvent(g, false, "started", zap.Strings("argv", argv))
}

// startGeneration starts spec with the reaper held (so its exit status is
// never confused with a recycled pid's, see reaper.StartWatched) and returns
// the process with a pidfd: from the Starter when it is a PidfdStarter,
// else from pidfd_open right after the start, before our reaper can have
// reaped it (we are its only reaper, so its pid cannot be reused yet).
func (s *Supervisor) startGeneration(spec ProcSpec) (Proc, error) {
	p := Proc{PidFD: -1}
	_, err := s.reaper.StartWatched(func() (int, error) {
		var err error
		if ps, ok := s.starter.(PidfdStarter); ok {
			p, err = ps.StartProc(spec)
		} else if p.PID, err = s.starter.Start(spec); err == nil {
			p.PidFD = pidfdOpen(p.PID)
		}
		return p.PID, err
	}, func(st int) { send(s, s.exitc, exitMsg{p.PID, st}) })
	return p, err
}

// watch tracks pid, a process re-parented to us that was seen alive at seen.
func (s *Supervisor) watch(pid int, seen time.Time) {
	deliver := func(st int) { send(s, s.exitc, exitMsg{pid, st}) }
	if st, done := s.reaper.WatchSeen(pid, seen, deliver); done {
		// Already reaped: deliver from another goroutine, since this one
		// is the state machine that receives it.
		s.wg.Add(1)
		go func() { defer s.wg.Done(); deliver(st) }()
	}
}

func (s *Supervisor) findDescendant(g *gen) int {
	want := "RESTART_EPOCH=" + strconv.FormatUint(uint64(g.epoch), 10)
	for _, pid := range orphanChildren() {
		if pid == g.startPID || s.reaper.Watched(pid) {
			continue
		}
		if environHas(pid, want) {
			return pid
		}
	}
	return 0
}
