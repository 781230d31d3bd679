package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotrestart/restarter/drain"
)

func TestParseFlagsDefaults(t *testing.T) {
	t.Setenv("TESTPROXY_FAIL_START", "")
	t.Setenv("TESTPROXY_START_DELAY", "")
	c, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"restart epoch", c.RestartEpoch, uint32(0)},
		{"base id", c.BaseID, uint32(0)},
		{"drain time", c.DrainTime, 600 * time.Second},
		{"parent shutdown time", c.ParentShutdownTime, 900 * time.Second},
		{"drain strategy", c.DrainStrategy, drain.Gradual},
		{"socket path", c.SocketPath, "@envoy_domain_socket"},
		{"socket mode", c.SocketMode, os.FileMode(0o600)},
		{"concurrency", c.Concurrency, 1},
		{"listen", strings.Join(c.Listen, ","), "127.0.0.1:10000"},
		{"admin", c.AdminAddress, "127.0.0.1:9901"},
		{"mode", c.Mode, "serve"},
		{"fail start", c.FailStart, false},
		{"start delay", c.StartDelay, time.Duration(0)},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestParseFlagsValues(t *testing.T) {
	c, err := parseFlags([]string{
		"--restart-epoch", "3", "--base-id", "42", "--drain-time-s", "5", "--drain-strategy", "immediate",
		"--parent-shutdown-time-s", "7", "--socket-path", "/run/x", "--socket-mode", "640",
		"--concurrency", "4", "--reuse-port", "--listen", "127.0.0.1:8080", "--listen", "[::1]:8081",
		"--admin-address", "127.0.0.1:0", "--start-delay", "2s", "--fail-start",
	}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	want := Config{RestartEpoch: 3, BaseID: 42, DrainTime: 5 * time.Second, DrainStrategy: drain.Immediate,
		ParentShutdownTime: 7 * time.Second, SocketPath: "/run/x", SocketMode: 0o640, Concurrency: 4, ReusePort: true,
		AdminAddress: "127.0.0.1:0", StartDelay: 2 * time.Second, FailStart: true}
	if c.RestartEpoch != want.RestartEpoch || c.BaseID != want.BaseID || c.DrainTime != want.DrainTime ||
		c.DrainStrategy != want.DrainStrategy || c.ParentShutdownTime != want.ParentShutdownTime ||
		c.SocketPath != want.SocketPath || c.SocketMode != want.SocketMode || c.Concurrency != want.Concurrency ||
		c.ReusePort != want.ReusePort || c.AdminAddress != want.AdminAddress || c.StartDelay != want.StartDelay ||
		c.FailStart != want.FailStart {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
	if got := strings.Join(c.Listen, ","); got != "127.0.0.1:8080,[::1]:8081" {
		t.Fatalf("listen = %q, want both addresses in order", got)
	}
}

func TestParseFlagsEnv(t *testing.T) {
	t.Setenv("TESTPROXY_FAIL_START", "1")
	t.Setenv("TESTPROXY_START_DELAY", "1500ms")
	c, err := parseFlags(nil, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !c.FailStart || c.StartDelay != 1500*time.Millisecond {
		t.Fatalf("FailStart=%v StartDelay=%v, want true 1.5s from the environment", c.FailStart, c.StartDelay)
	}
}

// TestParseFlagsErrors: every bad value is refused and the message names it.
func TestParseFlagsErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string // must appear in the error
	}{
		{"negative epoch", []string{"--restart-epoch", "-1"}, "-1"},
		{"epoch not a number", []string{"--restart-epoch", "one"}, "one"},
		{"base id too big", []string{"--base-id", "429496729"}, "429496729"},
		{"dynamic at epoch 1", []string{"--use-dynamic-base-id", "--restart-epoch", "1"}, "--use-dynamic-base-id"},
		{"dynamic and base id", []string{"--use-dynamic-base-id", "--base-id", "3"}, "not both"},
		{"negative drain", []string{"--drain-time-s", "-5"}, "-5"},
		{"negative parent shutdown", []string{"--parent-shutdown-time-s", "-2"}, "-2"},
		{"strategy", []string{"--drain-strategy", "fast"}, `"fast"`},
		{"socket mode not octal", []string{"--socket-mode", "689"}, `"689"`},
		{"socket mode too big", []string{"--socket-mode", "7777"}, `"7777"`},
		{"empty socket path", []string{"--socket-path", ""}, "--socket-path"},
		{"concurrency 0", []string{"--concurrency", "0"}, "0"},
		{"listen no port", []string{"--listen", "127.0.0.1"}, `"127.0.0.1"`},
		{"listen hostname", []string{"--listen", "localhost:80"}, `"localhost:80"`},
		{"listen bad port", []string{"--listen", "127.0.0.1:70000"}, `"127.0.0.1:70000"`},
		{"listen twice", []string{"--listen", "127.0.0.1:1", "--listen", "127.0.0.1:1"}, "twice"},
		{"admin bad", []string{"--admin-address", "nope"}, `"nope"`},
		{"mode", []string{"--mode", "check"}, `"check"`},
		{"unknown flag", []string{"--frobnicate"}, "frobnicate"},
		{"positional", []string{"extra"}, `"extra"`},
		{"flush interval", []string{"--stats-flush-interval", "0s"}, "0s"},
		{"retry delay", []string{"--hot-restart-retry-delay", "-1s"}, "-1s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseFlags(tc.args, &bytes.Buffer{})
			if err == nil {
				t.Fatalf("parseFlags(%q) = nil error, want one naming %s", tc.args, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseFlags(%q) error %q does not name %s", tc.args, err, tc.want)
			}
		})
	}
}

func TestRunExitCodes(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	bad := filepath.Join(dir, "bad.conf")
	garbage := filepath.Join(dir, "garbage.conf")
	os.WriteFile(good, []byte("# ok\nbody: hello\n"), 0o644)
	os.WriteFile(bad, []byte("fail: true\n"), 0o644)
	os.WriteFile(garbage, []byte("what\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"version", []string{"--hot-restart-version"}, 0, hotRestartVersion},
		{"validate good", []string{"--mode", "validate", "--config", good}, 0, "OK"},
		{"validate no config", []string{"--mode", "validate"}, 0, "OK"},
		{"validate fail", []string{"--mode", "validate", "--config", bad}, 1, "fail"},
		{"validate garbage", []string{"--mode", "validate", "--config", garbage}, 1, `"what"`},
		{"validate missing", []string{"--mode", "validate", "--config", filepath.Join(dir, "none")}, 1, "none"},
		{"bad flag", []string{"--drain-strategy", "x"}, 2, `"x"`},
		{"serve bad config", []string{"--config", bad}, 1, "invalid configuration"},
		{"help", []string{"--help"}, 0, "--restart-epoch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if code := runWith(tc.args, &out, &out); code != tc.code {
				t.Fatalf("exit %d, want %d; output:\n%s", code, tc.code, out.String())
			}
			if !strings.Contains(out.String(), tc.out) {
				t.Fatalf("output %q does not contain %q", out.String(), tc.out)
			}
		})
	}
}

// TestHotRestartVersionOverride: TESTPROXY_HOT_RESTART_VERSION makes the
// binary report another hot restart version, for binary-upgrade tests.
func TestHotRestartVersionOverride(t *testing.T) {
	t.Setenv("TESTPROXY_HOT_RESTART_VERSION", "12.other")
	var out bytes.Buffer
	if code := runWith([]string{"--hot-restart-version"}, &out, &out); code != 0 || strings.TrimSpace(out.String()) != "12.other" {
		t.Fatalf("--hot-restart-version with the override: exit %d, %q; want 0 and 12.other", code, out.String())
	}
}
