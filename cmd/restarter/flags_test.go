package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseFlagsErrors(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec.sh")
	os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644)
	script := filepath.Join(dir, "start.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)
	envoy := filepath.Join(dir, "envoy")
	os.WriteFile(envoy, []byte("#!/bin/sh\n"), 0o755)

	for _, c := range []struct {
		name string
		args []string
		want string // substring of the message
	}{
		{"no command", nil, "missing START_SCRIPT"},
		{"unknown flag", []string{"--bogus", "--", "/bin/true"}, "unknown flag: --bogus"},
		{"bad duration", []string{"--term-wait", "soon", "--", "/bin/true"}, "soon"},
		{"negative drain", []string{"--drain-time", "-1s", "--", "/bin/true"}, "--drain-time (-1s) must not be negative"},
		{"negative term wait", []string{"--term-wait", "-5s", "--", "/bin/true"}, "--term-wait (-5s) must not be negative"},
		{"negative grace", []string{"--shutdown-grace", "-1s", "--", "/bin/true"}, "--shutdown-grace (-1s) must not be negative"},
		{"negative ready timeout", []string{"--ready-timeout", "-1m", "--", "/bin/true"}, "must not be negative"},
		{"zero term wait", []string{"--term-wait", "0s", "--", "/bin/true"}, "--term-wait must be longer than 0"},
		{"negative drain-time-s", []string{"--drain-time-s", "-3", "--", "/bin/true"}, "--drain-time-s (-3) must not be negative"},
		{"pst not longer than drain", []string{"--drain-time", "90s", "--parent-shutdown-time", "60s", "--", "/bin/true"},
			"--parent-shutdown-time (1m0s) must be longer than --drain-time (1m30s)"},
		{"pst equal drain (seconds aliases)", []string{"--drain-time-s", "60", "--parent-shutdown-time-s", "60", "--", "/bin/true"},
			"must be longer than --drain-time"},
		{"both drain spellings", []string{"--drain-time", "1s", "--drain-time-s", "2", "--", "/bin/true"}, "not both"},
		{"base id negative", []string{"--base-id", "-1", "--", "/bin/true"}, "--base-id -1 out of range"},
		{"base id too big", []string{"--base-id", "429496729", "--", "/bin/true"}, "--base-id 429496729 out of range"},
		{"base id and dynamic", []string{"--base-id", "3", "--use-dynamic-base-id", "--", "/bin/true"}, "not both"},
		{"log format", []string{"--log-format", "xml", "--", "/bin/true"}, `--log-format "xml"`},
		{"log level", []string{"--log-level", "loud", "--", "/bin/true"}, `--log-level "loud"`},
		{"two readiness", []string{"--ready-url", "http://x/", "--ready-cmd", "true", "--", "/bin/true"}, "only one of"},
		{"ready-after with url", []string{"--ready-after", "1s", "--ready-url", "http://x/", "--", "/bin/true"}, "cannot be combined"},
		{"bad ready url", []string{"--ready-url", "localhost:80", "--", "/bin/true"}, `--ready-url "localhost:80"`},
		{"missing command", []string{"--", "/nonexistent/proxy"}, `COMMAND "/nonexistent/proxy"`},
		{"command not in PATH", []string{"--", "no-such-proxy-xyz"}, `COMMAND "no-such-proxy-xyz": executable file not found`},
		{"command not executable", []string{"--", noexec}, "permission denied"},
		{"missing script", []string{filepath.Join(dir, "nope.sh")}, "no such file"},
		{"script not executable", []string{noexec}, "not executable"},
		{"script is a directory", []string{dir}, "not a regular file"},
		{"script with arguments", []string{script, "-c", "x"}, "use -- COMMAND"},
		{"envoy with script", []string{"--envoy", script}, "--envoy needs the exec form"},
		{"envoy restart-epoch", []string{"--", envoy, "-c", "x", "--restart-epoch", "3"}, "COMMAND sets --restart-epoch"},
		{"envoy restart-epoch=", []string{"--envoy", "--", "/bin/true", "--restart-epoch=3"}, "COMMAND sets --restart-epoch"},
		{"envoy dynamic base id", []string{"--", envoy, "--use-dynamic-base-id"}, "COMMAND sets --use-dynamic-base-id"},
		{"envoy base id", []string{"--", envoy, "--base-id", "2"}, "pass --base-id to the restarter"},
		{"envoy drain", []string{"--", envoy, "--drain-time-s=2"}, "COMMAND sets --drain-time-s"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseFlags(c.args)
			var ue *usageError
			if !errors.As(err, &ue) {
				t.Fatalf("parseFlags(%q) = %v, want a usage error", c.args, err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %q, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestParseFlagsOK(t *testing.T) {
	dir := t.TempDir()
	envoy := filepath.Join(dir, "envoy")
	os.WriteFile(envoy, []byte("#!/bin/sh\n"), 0o755)
	script := filepath.Join(dir, "start.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)

	c, err := parseFlags([]string{"--", envoy, "-c", "e.yaml", "--base-id-path", "/x", "--socket-path", "@mine"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Envoy || c.Script || c.Argv[0] != envoy || c.SocketPath != "@mine" {
		t.Errorf("envoy auto: got Envoy=%v Script=%v Argv=%q SocketPath=%q", c.Envoy, c.Script, c.Argv, c.SocketPath)
	}
	if c.DrainTime != 600*time.Second || c.ParentShutdownTime != 900*time.Second || c.TermWait != 30*time.Second ||
		c.ShutdownGrace != 10*time.Second || c.ReadyAfter != 5*time.Second || c.ReadyTimeout != 5*time.Minute {
		t.Errorf("defaults: %+v", c)
	}
	c, err = parseFlags([]string{"--envoy=false", "--", envoy})
	if err != nil || c.Envoy {
		t.Errorf("--envoy=false: Envoy=%v err=%v, want false", c.Envoy, err)
	}
	c, err = parseFlags([]string{"--drain-time-s", "5", "--parent-shutdown-time-s", "8", script})
	if err != nil || !c.Script || c.DrainTime != 5*time.Second || c.ParentShutdownTime != 8*time.Second || c.Argv[0] != script {
		t.Errorf("script form with -s aliases: %+v, %v", c, err)
	}
	c, err = parseFlags([]string{"--", "sh", "-c", "exec envoy"})
	if err != nil || c.Argv[0] != "/bin/sh" && c.Argv[0] != "/usr/bin/sh" || c.Envoy {
		t.Errorf("PATH lookup: Argv=%q Envoy=%v err=%v", c.Argv, c.Envoy, err)
	}
	c, err = parseFlags([]string{"--help"})
	if err != nil || !c.Help || !strings.Contains(c.usage, "Exit codes:") || !strings.Contains(c.usage, "--ready-envoy-admin") {
		t.Errorf("--help: %v %v", c.Help, err)
	}
	if c, err = parseFlags([]string{"--version"}); err != nil || !c.Version {
		t.Errorf("--version: %v %v", c.Version, err)
	}
}

func TestSubcommandsGoToTheControlCLI(t *testing.T) {
	empty := t.TempDir()
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"reload", "--runtime-dir", empty}, 1}, // nobody to talk to
		{[]string{"status", "--runtime-dir", empty, "--json"}, 1},
		{[]string{"stop", "--runtime-dir", empty}, 1},
		{[]string{"status", "--bogus"}, 2},
		{[]string{"reload", "--json"}, 2},
	} {
		if code := run(c.args); code != c.want {
			t.Errorf("run(%q) = %d, want %d", c.args, code, c.want)
		}
	}
}

func TestParseFlagsIssue4(t *testing.T) {
	dir := t.TempDir()
	envoy := filepath.Join(dir, "envoy")
	os.WriteFile(envoy, []byte("#!/bin/sh\n"), 0o755)
	script := filepath.Join(dir, "start.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n"), 0o755)

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"bad name", []string{"--name", "a/b", "--", "/bin/true"}, `--name: instance name "a/b"`},
		{"reserved name", []string{"--name", "base-3", "--", "/bin/true"}, "reserved"},
		{"empty name", []string{"--name", "", "--", "/bin/true"}, "--name: instance name is empty"},
		{"ready bogus", []string{"--ready", "soon", "--", "/bin/true"}, `--ready "soon": the only value is notify`},
		{"ready notify and url", []string{"--ready=notify", "--ready-url", "http://x/", "--", "/bin/true"}, "only one of"},
		{"ready notify and after", []string{"--ready=notify", "--ready-after", "1s", "--", "/bin/true"}, "cannot be combined"},
		{"validate and no-validate", []string{"--validate-cmd", "true", "--no-validate", "--", "/bin/true"}, "not both"},
		{"zero validate timeout", []string{"--validate-timeout", "0s", "--", "/bin/true"}, "--validate-timeout must be longer than 0"},
		{"negative debounce", []string{"--watch-debounce", "-1s", "--", "/bin/true"}, "--watch-debounce (-1s) must not be negative"},
		{"empty watch", []string{"--watch", "", "--", "/bin/true"}, "--watch needs a path"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseFlags(c.args)
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("parseFlags(%q) = %v, want a usage error containing %q", c.args, err, c.want)
			}
		})
	}

	for _, c := range []struct {
		name string
		args []string
		want []string // Validator
	}{
		{"envoy default", []string{"--", envoy, "-c", "e-{{epoch}}.yaml"}, []string{envoy, "-c", "e-{{epoch}}.yaml", "--mode", "validate"}},
		{"envoy own mode replaced", []string{"--", envoy, "--mode", "serve", "-c", "e.yaml", "--mode=serve"}, []string{envoy, "-c", "e.yaml", "--mode", "validate"}},
		{"envoy no-validate", []string{"--no-validate", "--", envoy, "-c", "e.yaml"}, nil},
		{"envoy empty validate-cmd", []string{"--validate-cmd", "", "--", envoy, "-c", "e.yaml"}, nil},
		{"envoy own validate-cmd", []string{"--validate-cmd", "check {{epoch}}", "--", envoy}, []string{"/bin/sh", "-c", "check {{epoch}}"}},
		{"not envoy", []string{"--", "/bin/true"}, nil},
		{"script", []string{script}, nil},
		{"script with validate-cmd", []string{"--validate-cmd", "check", script}, []string{"/bin/sh", "-c", "check"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := parseFlags(c.args)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(cfg.Validator, "\x00") != strings.Join(c.want, "\x00") || (cfg.Validator == nil) != (c.want == nil) {
				t.Fatalf("Validator = %q, want %q", cfg.Validator, c.want)
			}
		})
	}

	cfg, err := parseFlags([]string{"--ready=notify", "--watch", "/a", "--watch=/b", "--name", "edge", "--", "/bin/true"})
	if err != nil || !cfg.ReadyNotify || len(cfg.Watch) != 2 || cfg.Watch[1] != "/b" || cfg.WatchDebounce != time.Second ||
		cfg.ValidateTimeout != 2*time.Minute || cfg.Name != "edge" {
		t.Fatalf("got %+v, %v", cfg, err)
	}
	cfg, err = parseFlags([]string{"--ready", "notify", "--", "/bin/true"})
	if err != nil || !cfg.ReadyNotify {
		t.Fatalf("--ready notify: ReadyNotify=%v err=%v", cfg.ReadyNotify, err)
	}
	cfg, _ = parseFlags([]string{"--help"})
	for _, w := range []string{"--ready=notify", "--validate-cmd", "--no-validate", "--watch", "--watch-debounce", "restarter reload", "RELOADING=1", "--validate-timeout"} {
		if !strings.Contains(cfg.usage, w) {
			t.Errorf("--help lacks %q", w)
		}
	}
}
