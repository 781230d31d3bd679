package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hotrestart/restarter/sdnotify"
	"github.com/hotrestart/restarter/supervisor"
	"golang.org/x/sys/unix"
)

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
