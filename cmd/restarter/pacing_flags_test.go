package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotrestart/restarter/supervisor"
)

func TestPacingFlags(t *testing.T) {
	script := filepath.Join(t.TempDir(), "start.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want supervisor.Pacing
	}{
		{[]string{"--", "/bin/true"}, supervisor.PacingNone},                              // not known to be Envoy
		{[]string{"--envoy", "--", "/bin/true"}, supervisor.PacingProtectDrain},           // Envoy's hot restart
		{[]string{script}, supervisor.PacingProtectDrain},                                 // hot-restarter.py's form
		{[]string{"--reload-pacing", "envoy", "--", "/bin/true"}, supervisor.PacingEnvoy}, // chosen
		{[]string{"--reload-pacing", "none", "--envoy", "--", "/bin/true"}, supervisor.PacingNone},
	} {
		c, err := parseFlags(tc.args)
		if err != nil {
			t.Fatalf("parseFlags(%q): %v", tc.args, err)
		}
		if got := c.reloadPacing(); got != tc.want {
			t.Errorf("parseFlags(%q): pacing %q, want %q", tc.args, got, tc.want)
		}
	}
	c, err := parseFlags([]string{"--max-reload-delay", "3s", "--", "/bin/true"})
	if err != nil || c.MaxReloadDelay != 3*time.Second {
		t.Errorf("--max-reload-delay 3s: got %v, %v; want 3s", c.MaxReloadDelay, err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--reload-pacing", "sometimes", "--", "/bin/true"}, `--reload-pacing "sometimes": use auto, protect-drain, envoy or none`},
		{[]string{"--max-reload-delay", "-1s", "--", "/bin/true"}, "--max-reload-delay (-1s) must not be negative"},
	} {
		_, err := parseFlags(tc.args)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFlags(%q): got %v, want a usage error containing %q", tc.args, err, tc.want)
		}
	}
}
