package integration

import (
	"encoding/json"
	"fmt"
	"os/exec"

	"github.com/hotrestart/restarter/control"
)

// restarterStatus is `restarter status --json` for the instance whose
// runtime dir is runtimeDir: what tests wait on (not log lines).
func restarterStatus(restarter, runtimeDir string) (control.Status, error) {
	var st control.Status
	out, err := exec.Command(restarter, "status", "--json", "--runtime-dir", runtimeDir, "--timeout", "5s").Output()
	if err != nil {
		return st, fmt.Errorf("status: %w", err)
	}
	return st, json.Unmarshal(out, &st)
}

// generationReady reports whether epoch is ready in st.
func generationReady(st control.Status, epoch uint32) bool {
	for _, g := range st.Generations {
		if g.Epoch == epoch && g.State == control.StateReady {
			return true
		}
	}
	return false
}
