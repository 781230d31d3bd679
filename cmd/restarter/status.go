package main

import (
	"context"
	"errors"
	"sort"
	"sync"

	"github.com/hotrestart/restarter/control"
	"github.com/hotrestart/restarter/supervisor"
)

// history keeps the generations that exited recently, so `restarter status`
// can show them (the supervisor's snapshot lists only live ones).
type history struct {
	mu     sync.Mutex
	exited []supervisor.Generation
}

const historyLen = 8

func (h *history) observe(ev supervisor.Event) {
	if ev.Kind != supervisor.EventState || ev.Generation == nil || ev.Generation.State != supervisor.StateExited {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.exited = append(h.exited, *ev.Generation)
	if len(h.exited) > historyLen {
		h.exited = h.exited[len(h.exited)-historyLen:]
	}
}

// controlStatus converts a supervisor snapshot (plus recent exits) to what
// `restarter status` prints.
func (h *history) controlStatus(name string, st supervisor.Status) control.Status {
	h.mu.Lock()
	gens := append(append([]supervisor.Generation(nil), h.exited...), st.Generations...)
	h.mu.Unlock()
	sort.SliceStable(gens, func(i, j int) bool { return gens[i].StartedAt.Before(gens[j].StartedAt) })
	out := control.Status{Name: name, PID: st.PID, BaseID: st.BaseID, NextEpoch: st.NextEpoch, Stopping: st.Stopping,
		Reloading: st.Reloading, Pending: st.Pending, Fatal: st.Fatal, Generations: make([]control.Generation, 0, len(gens))}
	for _, g := range gens {
		out.Generations = append(out.Generations, control.Generation{Epoch: g.Epoch, PID: g.PID, State: string(g.State),
			Started: g.StartedAt, Ready: g.ReadyAt, ExitStatus: g.ExitStatus, Exited: g.ExitedAt, StartPID: g.StartPID,
			DrainUntil: g.DrainUntil, TermAt: g.TermAt, KillAt: g.KillAt, Health: g.Health})
	}
	out.Reloads = control.ReloadCounts(st.Reloads)
	if r := st.LastReload; r != nil {
		out.LastReload = reloadOutcome(*r)
	}
	if h := st.Held; h != nil {
		out.ReloadHeld = &control.ReloadHeld{Since: h.Since, Until: h.Until, WaitingFor: h.Epoch, Rule: h.Rule, Reason: h.Reason}
	}
	return out
}

func reloadOutcome(r supervisor.ReloadResult) *control.ReloadOutcome {
	return &control.ReloadOutcome{OK: r.OK, Epoch: r.Epoch, Reason: r.Reason, Failure: string(r.Failure), At: r.At, Serving: r.Serving, ServingEpoch: r.ServingEpoch}
}

// controlHandler serves the control socket from the supervisor.
func controlHandler(sup *supervisor.Supervisor, name string, h *history) control.Handler {
	return control.HandlerFuncs{
		StatusFunc: func(context.Context) (control.Status, error) {
			return h.controlStatus(name, sup.Status()), nil
		},
		ReloadFunc: func(ctx context.Context) (control.ReloadOutcome, error) {
			r, err := sup.Reload(ctx)
			if errors.Is(err, supervisor.ErrStopped) {
				return control.ReloadOutcome{}, errors.New("the restarter is stopping")
			}
			if err != nil {
				return control.ReloadOutcome{}, err
			}
			return *reloadOutcome(r), nil
		},
		StopFunc: func(context.Context) error {
			sup.Stop() // never ctl.Close here: Close waits for this call
			return nil
		},
	}
}
