package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hotrestart/restarter/supervisor"
)

func TestPacingFlags(t *testing.T) {
	c, err := parseFlags([]string{"--", "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Pacing != supervisor.PacingProtectDrain || c.MaxReloadDelay != 0 {
		t.Errorf("defaults: got pacing %q, max delay %v; want protect-drain, 0 (derived)", c.Pacing, c.MaxReloadDelay)
	}
	c, err = parseFlags([]string{"--reload-pacing", "envoy", "--max-reload-delay", "3s", "--", "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Pacing != supervisor.PacingEnvoy || c.MaxReloadDelay != 3*time.Second {
		t.Errorf("got pacing %q, max delay %v; want envoy, 3s", c.Pacing, c.MaxReloadDelay)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--reload-pacing", "sometimes", "--", "/bin/true"}, `--reload-pacing "sometimes": use protect-drain or envoy`},
		{[]string{"--max-reload-delay", "-1s", "--", "/bin/true"}, "--max-reload-delay (-1s) must not be negative"},
	} {
		_, err := parseFlags(tc.args)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFlags(%q): got %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
}
