package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotrestart/restarter/control"
	"github.com/hotrestart/restarter/sdnotify"
	"github.com/hotrestart/restarter/supervisor"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// maxSocketPath is the longest path a Unix socket can be bound at
// (sizeof(sun_path) - 1, unix(7)).
const maxSocketPath = 107

// notifyReady is --ready=notify: each generation gets a NOTIFY_SOCKET of
// the restarter's own (GenerationEnv), and is ready once a process of its
// tree sends READY=1 there (Ready). The socket is closed and removed when
// Ready returns; Close removes any left by a generation that never started.
type notifyReady struct {
	dir, instance string
	log           *zap.Logger

	mu sync.Mutex
	ls map[uint32]notifyEntry
}

type notifyEntry struct {
	l   *sdnotify.Listener
	err error
}

func newNotifyReady(dir, instance string, log *zap.Logger) *notifyReady {
	return &notifyReady{dir: dir, instance: instance, log: log, ls: map[uint32]notifyEntry{}}
}

func (n *notifyReady) path(epoch uint32) string {
	return filepath.Join(n.dir, n.instance+"."+strconv.FormatUint(uint64(epoch), 10)+".notify")
}

// Env creates epoch's socket and returns its NOTIFY_SOCKET. A socket left
// by an earlier start of the same epoch number (a start that failed before
// Ready ran) is closed first.
func (n *notifyReady) Env(epoch uint32) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if old, ok := n.ls[epoch]; ok && old.l != nil {
		old.l.Close()
	}
	l, err := sdnotify.ListenTree(n.path(epoch), n.log)
	n.ls[epoch] = notifyEntry{l, err}
	if err != nil {
		n.log.Error("--ready=notify: cannot create the generation's notify socket", zap.Uint32("epoch", epoch), zap.Error(err))
		return nil
	}
	return []string{"NOTIFY_SOCKET=" + l.Path()}
}

// Ready implements supervisor.Readiness.
func (n *notifyReady) Ready(ctx context.Context, p supervisor.Probe) error {
	n.mu.Lock()
	e, ok := n.ls[p.Epoch]
	n.mu.Unlock()
	switch {
	case !ok:
		return fmt.Errorf("--ready=notify: no notify socket for epoch %d", p.Epoch)
	case e.err != nil:
		return fmt.Errorf("--ready=notify: %w", e.err)
	}
	defer n.release(p.Epoch, e.l)
	e.l.SetRoot(p.PID)
	select {
	case <-e.l.Ready():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("no READY=1 from pid %d or its descendants on %s: %w", p.PID, e.l.Path(), ctx.Err())
	}
}

func (n *notifyReady) release(epoch uint32, l *sdnotify.Listener) {
	l.Close()
	n.mu.Lock()
	if n.ls[epoch].l == l {
		delete(n.ls, epoch)
	}
	n.mu.Unlock()
}

// Close closes every socket still open. Call it after the supervisor's Run
// returned (no Ready is running any more).
func (n *notifyReady) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for epoch, e := range n.ls {
		if e.l != nil {
			e.l.Close()
		}
		delete(n.ls, epoch)
	}
}

// validateFunc is Config.Validate for --validate-cmd (or the envoy default):
// argv runs through the supervisor's starter and reaper (never os/exec's
// Wait), with the new generation's placeholders and environment.
func validateFunc(cfg Config, sup func() *supervisor.Supervisor, log *zap.Logger) func(context.Context, uint32) error {
	desc := strings.Join(cfg.Validator, " ")
	if len(cfg.Validator) == 3 && cfg.Validator[0] == "/bin/sh" && cfg.Validator[1] == "-c" {
		desc = cfg.Validator[2]
	}
	return func(ctx context.Context, epoch uint32) error {
		v := supervisor.Vars{Epoch: epoch, BaseID: cfg.BaseID, DrainTimeS: supervisor.Seconds(cfg.DrainTime),
			ParentShutdownTimeS: supervisor.Seconds(cfg.ParentShutdownTime)}
		argv := supervisor.Expand(cfg.Validator, v)
		ctx, cancel := context.WithTimeout(ctx, cfg.ValidateTimeout)
		defer cancel()
		log.Info("validating before reload", zap.Uint32("epoch", epoch), zap.Strings("argv", argv))
		start := time.Now()
		res, err := sup().Command(ctx, argv, supervisor.Env(os.Environ(), v, nil))
		out := strings.TrimSpace(string(res.Output))
		fields := []zap.Field{zap.Uint32("epoch", epoch), zap.String("validator", desc),
			zap.Int("exit_status", res.Status), zap.Duration("took", time.Since(start)), zap.String("output", out)}
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			log.Error("validator killed after --validate-timeout", fields...)
			return fmt.Errorf("validator %q still running after --validate-timeout %s", desc, cfg.ValidateTimeout)
		case err != nil:
			log.Error("validator could not run", append(fields, zap.Error(err))...)
			return fmt.Errorf("validator %q: %w", desc, err)
		case res.Status != 0:
			log.Error("validator failed", fields...)
			if out == "" {
				return fmt.Errorf("validator %q exited %d (no output)", desc, res.Status)
			}
			return fmt.Errorf("validator %q exited %d: %s", desc, res.Status, tail(out, 1024))
		}
		log.Info("validated", fields...)
		return nil
	}
}

// tail is the last n bytes of s, on one line.
func tail(s string, n int) string {
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return strings.Join(strings.Fields(s), " ")
}

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
	out := control.Status{Name: name, PID: st.PID, BaseID: st.BaseID, Generations: make([]control.Generation, 0, len(gens))}
	for _, g := range gens {
		out.Generations = append(out.Generations, control.Generation{Epoch: g.Epoch, PID: g.PID, State: string(g.State),
			Started: g.StartedAt, Ready: g.ReadyAt, ExitStatus: g.ExitStatus})
	}
	if r := st.LastReload; r != nil {
		out.LastReload = &control.ReloadOutcome{OK: r.OK, Epoch: r.Epoch, Reason: r.Reason, At: r.At}
	}
	if h := st.Held; h != nil {
		out.ReloadHeld = &control.ReloadHeld{Since: h.Since, Until: h.Until, WaitingFor: h.Epoch, Rule: h.Rule, Reason: h.Reason}
	}
	return out
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
			return control.ReloadOutcome{OK: r.OK, Epoch: r.Epoch, Reason: r.Reason, At: r.At}, nil
		},
		StopFunc: func(context.Context) error {
			sup.Stop() // never ctl.Close here: Close waits for this call
			return nil
		},
	}
}

// notifySystemd turns supervisor events into sd_notify messages.
func notifySystemd(n *sdnotify.Notifier, ev supervisor.Event) {
	status := statusText(ev.Status)
	switch ev.Kind {
	case supervisor.EventState:
		if ev.First {
			_ = n.Ready(status)
			return
		}
		_ = n.Status(status)
	case supervisor.EventReloading:
		_ = n.Reloading("reloading to epoch " + strconv.FormatUint(uint64(ev.Status.NextEpoch), 10) + "; " + status)
	case supervisor.EventReloaded:
		r := ev.Reload
		if r == nil || r.OK {
			_ = n.Ready(status)
			return
		}
		serving := "nothing"
		if g := servingGen(ev.Status); g != nil {
			serving = "epoch " + strconv.FormatUint(uint64(g.Epoch), 10)
		}
		_ = n.ReloadFailed(fmt.Sprintf("reload to epoch %d failed: %s; %s still serving", r.Epoch, r.Reason, serving), int(unix.EIO))
	case supervisor.EventStopping:
		_ = n.Stopping("stopping; " + status)
	}
}

func servingGen(st supervisor.Status) *supervisor.Generation {
	var best *supervisor.Generation
	for i, g := range st.Generations {
		if g.State == supervisor.StateReady && (best == nil || g.Epoch > best.Epoch) {
			best = &st.Generations[i]
		}
	}
	return best
}

// statusText is the STATUS= line: every live generation's state, epoch and pid.
func statusText(st supervisor.Status) string {
	if len(st.Generations) == 0 {
		return "no generation running"
	}
	parts := make([]string, 0, len(st.Generations))
	for _, g := range st.Generations {
		state := string(g.State)
		if g.State == supervisor.StateReady {
			state = "serving"
		}
		parts = append(parts, fmt.Sprintf("epoch %d %s (pid %d)", g.Epoch, state, g.PID))
	}
	return strings.Join(parts, ", ")
}
