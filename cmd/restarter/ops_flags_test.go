package main

import (
	"strings"
	"testing"
	"time"
)

// The operations flags: --metrics-address and --stop-drain-time.
func TestOpsFlags(t *testing.T) {
	cfg, err := parseFlags([]string{"--metrics-address", "127.0.0.1:0", "--stop-drain-time", "15s", "--", "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MetricsAddress != "127.0.0.1:0" || cfg.StopDrainTime != 15*time.Second {
		t.Fatalf("parsed %q %v", cfg.MetricsAddress, cfg.StopDrainTime)
	}
	if _, err := parseFlags([]string{"--stop-drain-time", "-1s", "--", "/bin/true"}); err == nil ||
		!strings.Contains(err.Error(), "--stop-drain-time (-1s) must not be negative") {
		t.Fatalf("negative --stop-drain-time: %v", err)
	}
	cfg, err = parseFlags([]string{"--", "/bin/true"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.StopDrainTime != 0 || cfg.MetricsAddress != "" {
		t.Fatalf("defaults: %v %q (both off)", cfg.StopDrainTime, cfg.MetricsAddress)
	}
	for _, want := range []string{"--metrics-address ADDR", "--stop-drain-time", "drain_listeners?graceful"} {
		if !strings.Contains(cfg.usage, want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}
