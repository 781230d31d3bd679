package main

import "github.com/hotrestart/restarter/supervisor"

// reloadPacing resolves --reload-pacing. auto protects a draining
// generation where the restarter knows Envoy's hot restart runs (--envoy,
// explicit or because COMMAND is envoy, and the START_SCRIPT form of
// hot-restarter.py), since only there does a third generation terminate the
// oldest; for any other command it never holds a reload.
func (c Config) reloadPacing() supervisor.Pacing {
	if c.Pacing != "auto" && c.Pacing != "" {
		return supervisor.Pacing(c.Pacing)
	}
	if c.Envoy || c.Script {
		return supervisor.PacingProtectDrain
	}
	return supervisor.PacingNone
}
