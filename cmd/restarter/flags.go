package main

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hotrestart/restarter/baseid"
	"github.com/hotrestart/restarter/control"
	"github.com/hotrestart/restarter/supervisor"
	"github.com/spf13/pflag"
	"go.uber.org/zap/zapcore"
	"golang.org/x/sys/unix"
)

// Config is the parsed command line.
type Config struct {
	Argv   []string // resolved: Argv[0] is an absolute or PATH-resolved path
	Script bool     // START_SCRIPT form (no arguments, no placeholders)
	Envoy  bool

	DrainTime          time.Duration
	ParentShutdownTime time.Duration
	ShutdownGrace      time.Duration
	TermWait           time.Duration

	ReadyAfter      time.Duration
	ReadyURL        string
	ReadyCmd        string
	ReadyEnvoyAdmin string
	ReadyTimeout    time.Duration
	ReadyInterval   time.Duration
	ReadyNotify     bool // --ready=notify
	LiveInterval    time.Duration
	LiveFailures    int

	// Validator is the argv run before each reload (placeholders not yet
	// expanded); nil: no validation.
	Validator       []string
	ValidateTimeout time.Duration

	Watch         []string
	WatchDebounce time.Duration

	Pacing         string        // --reload-pacing: auto, or a supervisor.Pacing (see reloadPacing)
	MaxReloadDelay time.Duration // --max-reload-delay (0: the supervisor's default)

	BaseID        uint32
	DynamicBaseID bool
	BaseIDPath    string
	SocketPath    string // the proxy's --socket-path, for the dynamic base id check
	RuntimeDir    string
	PidFile       string
	Name          string

	LogFormat string
	LogLevel  zapcore.Level

	MetricsAddress string        // --metrics-address: Prometheus /metrics and /healthz
	StopDrainTime  time.Duration // --stop-drain-time: graceful stop (stop.go)

	Help    bool
	Version bool
	usage   string
}

// usageError marks bad input (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

const helpHead = `restarter: run generations of Envoy (or any proxy that hot-restarts the same
way) and hot-restart them safely. A drop-in replacement for Envoy's
restarter/hot-restarter.py.

Usage:
  restarter [flags] START_SCRIPT          the hot-restarter.py form: the script runs
                                          with no arguments and RESTART_EPOCH=<n>
  restarter [flags] -- COMMAND [ARG...]   exec form; {{epoch}}, {{base_id}},
                                          {{drain_time_s}}, {{parent_shutdown_time_s}}
                                          in any ARG are replaced per generation
  restarter status [--json]|reload|stop [--name N|--base-id N] [--runtime-dir D]
                                          control a running restarter through its
                                          control socket (see Control below)

Every generation gets RESTART_EPOCH, BASE_ID, DRAIN_TIME_S and
PARENT_SHUTDOWN_TIME_S in its environment. With --envoy (the default when
COMMAND's base name is "envoy") the restarter appends
  --restart-epoch N --base-id B --drain-time-s D --parent-shutdown-time-s P
and refuses those flags (and --use-dynamic-base-id) in COMMAND's own arguments.

Flags:
`

const helpTail = `
Signals:
  SIGHUP          reload: start the next epoch. Held while a generation is still
                  starting, and (--reload-pacing protect-drain, the default
                  with --envoy or a START_SCRIPT) while an older generation
                  still drains, which Envoy's third generation would cut (at
                  most --max-reload-delay; 'restarter status' says why); any
                  number coalesce into one pending reload. A new
                  generation that dies or is not ready within --ready-timeout is
                  rolled back (the old one keeps serving) and the next SIGHUP
                  retries the same epoch number.
  SIGUSR1         forwarded to every live generation (Envoy reopens access logs).
  SIGTERM, SIGINT SIGTERM to every generation, SIGKILL what is left after
                  --term-wait; exit as soon as the last one is gone. With
                  --stop-drain-time the serving generation drains first.

Readiness (one of; default --ready-after 5s):
  --ready-after D          ready once it has survived D
  --ready-url URL          ready when GET URL answers 200 (polled; placeholders work)
  --ready-cmd CMD          ready when "sh -c CMD" exits 0 (polled; placeholders work)
  --ready-envoy-admin ADDR ready when ADDR/server_info says state LIVE and
                           restart_epoch is this generation's epoch
  --ready=notify           each generation gets a NOTIFY_SOCKET of the restarter's
                           own (RUNTIME_DIR/NAME.EPOCH.notify, 0600); ready when a
                           process of its tree sends READY=1 (sd_notify(3))
Once a generation is ready, older ones drain; any still alive after
--parent-shutdown-time plus --shutdown-grace get SIGTERM, then SIGKILL after
--term-wait.

Safe reloads:
  Before each reload (not before epoch 0) the validator runs: --validate-cmd CMD
  as "sh -c CMD" (placeholders work), or in --envoy mode by default COMMAND with
  its own arguments and "--mode validate" instead of the restart flags. A
  non-zero exit (or --validate-timeout) aborts the reload: its output is logged,
  the old generation keeps serving, and the reload's outcome says why. Turn the
  default off with --no-validate (or --validate-cmd '').
  --watch PATH (repeatable) reloads after a file or directory changes, once per
  burst of changes after --watch-debounce of quiet (editors' rename-over saves and
  Kubernetes ConfigMap symlink swaps are seen). Watched paths must exist.

Control:
  The restarter serves RUNTIME_DIR/NAME.ctl (NAME is --name, else base-<id>;
  mode 0600, peers must be the same uid or root):
{{commands}}  With one instance running no selector is needed; with several give --name
  NAME or --base-id N. Without --runtime-dir the CLI searches every default
  location. See 'restarter status --help'.

systemd (Type=notify or Type=notify-reload; only when NOTIFY_SOCKET is set):
  READY=1 once epoch 0 is ready; on SIGHUP RELOADING=1 with MONOTONIC_USEC, then
  READY=1 when the new generation is ready, or READY=1 with STATUS= and ERRNO=
  when the reload failed and the old one still serves; STOPPING=1 on shutdown;
  STATUS= with the epochs and pids; WATCHDOG=1 every WatchdogSec/2 while the
  supervisor answers. NOTIFY_SOCKET and WATCHDOG_* never reach the proxy.

Exit codes:
  0  every generation exited 0, or all left within --term-wait after SIGTERM
  1  the serving generation died abnormally (all others are killed, as
     hot-restarter.py does, so the service manager restarts from epoch 0), the
     first generation failed, or generations had to be SIGKILLed at shutdown
  2  bad usage or setup failure before any child started (unknown flag, bad
     value, missing or non-executable command, base id already held)

The restarter is a child subreaper (it reaps every orphan, so it can be a
container's PID 1), its own pid never changes across reloads, and children get
SIGTERM if it is killed. Logs go to stderr through zap, one event per line with
epoch, pid and state; the proxy's stdout and stderr pass through unchanged.
`

// parseFlags parses args (without the program name). Bad input returns a
// *usageError whose message names the value and what to do.
func parseFlags(args []string) (Config, error) {
	var c Config
	fs := pflag.NewFlagSet("restarter", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.SetInterspersed(false) // START_SCRIPT's or COMMAND's own flags are not ours
	fs.SortFlags = false
	var raw rawFlags
	defineLifecycleFlags(fs, &c, &raw)
	defineReadinessFlags(fs, &c, &raw)
	defineReloadFlags(fs, &c, &raw)
	defineInstanceFlags(fs, &c, &raw)
	c.usage = helpHead + fs.FlagUsages() + strings.Replace(helpTail, "{{commands}}", control.CommandHelp("    "), 1)

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			c.Help = true
			return c, nil
		}
		return c, usagef("%v", err)
	}
	if c.Help || c.Version {
		return c, nil
	}
	if c.RuntimeDir == "" {
		c.RuntimeDir = control.DefaultRuntimeDir()
	}
	if err := checkDurations(&c, fs, raw); err != nil {
		return c, err
	}
	if err := checkInstance(&c, fs, raw); err != nil {
		return c, err
	}
	if err := checkReadiness(&c, fs, *raw.readyMode); err != nil {
		return c, err
	}
	if *raw.noValidate && *raw.validateCmd != "" {
		return c, usagef("give --validate-cmd or --no-validate, not both")
	}
	v := validatorChoice{cmd: *raw.validateCmd, set: fs.Changed("validate-cmd"), off: *raw.noValidate}
	return c, parseCommand(&c, fs, v)
}

// rawFlags are the flags whose values parseFlags checks or converts before
// they go into Config.
type rawFlags struct {
	drainS, pstS, baseID          *int64
	readyMode, validateCmd, level *string
	noValidate                    *bool
}

// defineLifecycleFlags: the generations' timeline (drain, parent shutdown,
// termination).
func defineLifecycleFlags(fs *pflag.FlagSet, c *Config, raw *rawFlags) {
	fs.BoolVar(&c.Envoy, "envoy", false, "append Envoy's hot-restart flags to COMMAND (default: on when COMMAND is envoy)")
	fs.DurationVar(&c.DrainTime, "drain-time", 600*time.Second, "how long an old generation drains (Envoy --drain-time-s)")
	raw.drainS = fs.Int64("drain-time-s", 600, "--drain-time in whole seconds (Envoy spelling)")
	fs.DurationVar(&c.ParentShutdownTime, "parent-shutdown-time", 900*time.Second, "when the new generation terminates the old; must be longer than --drain-time")
	raw.pstS = fs.Int64("parent-shutdown-time-s", 900, "--parent-shutdown-time in whole seconds (Envoy spelling)")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", 10*time.Second, "backstop: SIGTERM old generations still alive this long after parent-shutdown time")
	fs.DurationVar(&c.TermWait, "term-wait", 30*time.Second, "wait after SIGTERM before SIGKILL")
	fs.DurationVar(&c.StopDrainTime, "stop-drain-time", 0, "on SIGTERM/SIGINT drain the serving generation first, up to this long (with --ready-envoy-admin: POST /drain_listeners?graceful, done early at 0 connections); 0: stop at once")
}

// defineReadinessFlags: when a generation is ready, and how the serving one
// is checked.
func defineReadinessFlags(fs *pflag.FlagSet, c *Config, raw *rawFlags) {
	fs.DurationVar(&c.ReadyAfter, "ready-after", 5*time.Second, "a generation is ready once it has survived this long")
	fs.StringVar(&c.ReadyURL, "ready-url", "", "a generation is ready when GET `URL` answers 200 ({{epoch}} etc. are expanded)")
	fs.StringVar(&c.ReadyCmd, "ready-cmd", "", "a generation is ready when sh -c `CMD` exits 0 ({{epoch}} etc. are expanded)")
	fs.StringVar(&c.ReadyEnvoyAdmin, "ready-envoy-admin", "", "a generation is ready when Envoy's admin at `ADDR` reports LIVE at its epoch")
	fs.DurationVar(&c.ReadyTimeout, "ready-timeout", 5*time.Minute, "not ready by then counts as a failed start")
	fs.DurationVar(&c.ReadyInterval, "ready-interval", 200*time.Millisecond, "how often readiness is polled")
	fs.DurationVar(&c.LiveInterval, "live-interval", 5*time.Second, "how often the serving generation is checked (process state, readiness probe, still listening)")
	fs.IntVar(&c.LiveFailures, "live-failures", 3, "this many failed checks in a row make the serving generation hung: everything is killed and the restarter exits 1")
	raw.readyMode = fs.String("ready", "", "the value `notify` makes a generation ready when its process tree sends READY=1 to the NOTIFY_SOCKET it gets")
}

// defineReloadFlags: what runs before a reload and what triggers one.
func defineReloadFlags(fs *pflag.FlagSet, c *Config, raw *rawFlags) {
	raw.validateCmd = fs.String("validate-cmd", "", "run sh -c `CMD` before each reload; non-zero aborts it (default in --envoy mode: COMMAND --mode validate; '' turns that off)")
	raw.noValidate = fs.Bool("no-validate", false, "do not validate before reloads (turns off the --envoy mode default)")
	fs.DurationVar(&c.ValidateTimeout, "validate-timeout", 2*time.Minute, "a validator still running after this long is killed and the reload aborted")
	fs.StringArrayVar(&c.Watch, "watch", nil, "reload when the file or directory `PATH` changes (repeatable)")
	fs.DurationVar(&c.WatchDebounce, "watch-debounce", time.Second, "quiet time after a change before --watch reloads")
	fs.StringVar(&c.Pacing, "reload-pacing", "auto", "protect-drain: hold a reload while an older generation drains (Envoy's third generation would cut it); envoy: start at once, three generations live; none: never hold; auto: protect-drain with --envoy or a START_SCRIPT, else none")
	fs.DurationVar(&c.MaxReloadDelay, "max-reload-delay", 0, "longest a reload is held by --reload-pacing=protect-drain, then it cuts the drain (default --parent-shutdown-time + --shutdown-grace)")
}

// defineInstanceFlags: the instance's identity, files, logs and metrics.
func defineInstanceFlags(fs *pflag.FlagSet, c *Config, raw *rawFlags) {
	raw.baseID = fs.Int64("base-id", 0, fmt.Sprintf("base id passed to every generation (0..%d)", baseid.Max))
	fs.BoolVar(&c.DynamicBaseID, "use-dynamic-base-id", false, "pick a free base id once at start and keep it")
	fs.StringVar(&c.BaseIDPath, "base-id-path", "", "write the base id in use to `FILE`")
	fs.StringVar(&c.RuntimeDir, "runtime-dir", "", "`DIR` for locks and the control, notify and hot-restart sockets; created 0700, refused if others may write to it (default "+control.DefaultRuntimeDirRule+")")
	fs.StringVar(&c.PidFile, "pid-file", "", "write the restarter's pid to `FILE` (atomically; removed on exit)")
	fs.StringVar(&c.Name, "name", "", "instance name for the control CLI and socket (default base-<id>)")
	fs.StringVar(&c.LogFormat, "log-format", "console", "console or json")
	fs.StringVar(&c.MetricsAddress, "metrics-address", "", "serve Prometheus /metrics and /healthz on `ADDR` (host:port)")
	raw.level = fs.String("log-level", "info", "debug, info, warn or error")
	fs.BoolVarP(&c.Help, "help", "h", false, "show this help")
	fs.BoolVar(&c.Version, "version", false, "print the version")
}

// checkDurations: no negative durations, no zero where zero would spin or
// never end, the Envoy-spelled second aliases, and parent shutdown after
// drain.
func checkDurations(c *Config, fs *pflag.FlagSet, raw rawFlags) error {
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"drain-time", c.DrainTime}, {"parent-shutdown-time", c.ParentShutdownTime}, {"shutdown-grace", c.ShutdownGrace},
		{"term-wait", c.TermWait}, {"ready-after", c.ReadyAfter}, {"ready-timeout", c.ReadyTimeout}, {"ready-interval", c.ReadyInterval},
		{"validate-timeout", c.ValidateTimeout}, {"watch-debounce", c.WatchDebounce}, {"stop-drain-time", c.StopDrainTime},
		{"live-interval", c.LiveInterval}, {"max-reload-delay", c.MaxReloadDelay}} {
		if p.d < 0 {
			return usagef("--%s (%s) must not be negative", p.name, p.d)
		}
	}
	if c.LiveFailures < 1 {
		return usagef("--live-failures (%d) must be at least 1", c.LiveFailures)
	}
	for _, p := range []struct {
		name string
		d    time.Duration
	}{{"term-wait", c.TermWait}, {"ready-timeout", c.ReadyTimeout}, {"ready-interval", c.ReadyInterval},
		{"validate-timeout", c.ValidateTimeout}, {"live-interval", c.LiveInterval}} {
		if p.d == 0 {
			return usagef("--%s must be longer than 0", p.name)
		}
	}
	alias := func(long, short string, n int64, d *time.Duration) error {
		if !fs.Changed(short) {
			return nil
		}
		if fs.Changed(long) {
			return usagef("give --%s or --%s, not both", long, short)
		}
		if n < 0 {
			return usagef("--%s (%d) must not be negative", short, n)
		}
		*d = time.Duration(n) * time.Second
		return nil
	}
	if err := alias("drain-time", "drain-time-s", *raw.drainS, &c.DrainTime); err != nil {
		return err
	}
	if err := alias("parent-shutdown-time", "parent-shutdown-time-s", *raw.pstS, &c.ParentShutdownTime); err != nil {
		return err
	}
	if c.ParentShutdownTime <= c.DrainTime {
		return usagef("--parent-shutdown-time (%s) must be longer than --drain-time (%s)", c.ParentShutdownTime, c.DrainTime)
	}
	if _, err := supervisor.ParsePacing(c.Pacing); err != nil && c.Pacing != "auto" {
		return usagef("--reload-pacing %q: use auto, protect-drain, envoy or none", c.Pacing)
	}
	return nil
}

// checkInstance: the base id's range and source, the log format and level.
func checkInstance(c *Config, fs *pflag.FlagSet, raw rawFlags) error {
	if *raw.baseID < 0 || *raw.baseID > baseid.Max {
		return usagef("--base-id %d out of range: use 0..%d", *raw.baseID, baseid.Max)
	}
	c.BaseID = uint32(*raw.baseID)
	if c.DynamicBaseID && fs.Changed("base-id") {
		return usagef("give --base-id or --use-dynamic-base-id, not both")
	}
	if c.LogFormat != "console" && c.LogFormat != "json" {
		return usagef("--log-format %q: use console or json", c.LogFormat)
	}
	lv, err := zapcore.ParseLevel(*raw.level)
	if err != nil {
		return usagef("--log-level %q: use debug, info, warn or error", *raw.level)
	}
	c.LogLevel = lv
	return nil
}

// checkReadiness checks --name, --watch and that one readiness check at
// most is chosen.
func checkReadiness(c *Config, fs *pflag.FlagSet, readyMode string) error {
	if c.Name != "" || fs.Changed("name") {
		if err := control.ValidName(c.Name); err != nil {
			return usagef("--name: %v", err)
		}
	}
	switch readyMode {
	case "":
	case "notify":
		c.ReadyNotify = true
	default:
		return usagef("--ready %q: the only value is notify (--ready=notify); for the other checks use --ready-after, --ready-url, --ready-cmd or --ready-envoy-admin", readyMode)
	}
	n := 0
	for _, s := range []string{c.ReadyURL, c.ReadyCmd, c.ReadyEnvoyAdmin, readyMode} {
		if s != "" {
			n++
		}
	}
	if n > 1 {
		return usagef("give only one of --ready-url, --ready-cmd, --ready-envoy-admin, --ready=notify")
	}
	if n == 1 && fs.Changed("ready-after") {
		return usagef("--ready-after cannot be combined with --ready-url, --ready-cmd, --ready-envoy-admin or --ready=notify")
	}
	for _, p := range c.Watch {
		if p == "" {
			return usagef("--watch needs a path")
		}
	}
	if c.ReadyURL != "" {
		u, err := url.Parse(c.ReadyURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usagef("--ready-url %q: want an http:// or https:// URL", c.ReadyURL)
		}
	}
	return nil
}

// validatorChoice is what --validate-cmd and --no-validate asked for; the
// validator is settled once COMMAND is known (the envoy default).
type validatorChoice struct {
	cmd      string
	set, off bool // --validate-cmd given (maybe ''), --no-validate
}

func (v validatorChoice) validator(c *Config) []string {
	switch {
	case v.off || v.set && v.cmd == "":
		return nil
	case v.cmd != "":
		return []string{"/bin/sh", "-c", v.cmd}
	case c.Envoy && !c.Script && len(c.Argv) > 0:
		return envoyValidator(c.Argv)
	}
	return nil
}

// parseCommand reads START_SCRIPT or -- COMMAND [ARG...] after the flags,
// and settles what depends on it: --envoy's default, the validator, the
// hot-restart socket.
func parseCommand(c *Config, fs *pflag.FlagSet, v validatorChoice) error {
	rest := fs.Args()
	dash := fs.ArgsLenAtDash()
	switch {
	case len(rest) == 0:
		return usagef("missing START_SCRIPT or -- COMMAND; see --help")
	case dash == 0:
		// exec form
	case dash < 0 && len(rest) == 1:
		c.Script = true
	default:
		return usagef("unexpected arguments %q after START_SCRIPT %q: use -- COMMAND [ARG...] to pass arguments", rest[1:], rest[0])
	}
	if c.Script {
		p, err := filepath.Abs(rest[0])
		if err != nil {
			return usagef("START_SCRIPT %q: %v", rest[0], err)
		}
		if err := checkExecutable(p); err != nil {
			return usagef("START_SCRIPT %q: %v", rest[0], err)
		}
		if fs.Changed("envoy") && c.Envoy {
			return usagef("--envoy needs the exec form: restarter --envoy -- envoy ARG...; a START_SCRIPT gets RESTART_EPOCH in its environment")
		}
		c.Argv = []string{p}
		c.Validator = v.validator(c)
		return nil
	}
	p, err := exec.LookPath(rest[0])
	if err != nil {
		return usagef("COMMAND %q: %v", rest[0], unwrapExec(err))
	}
	if !filepath.IsAbs(p) {
		if p, err = filepath.Abs(p); err != nil {
			return usagef("COMMAND %q: %v", rest[0], err)
		}
	}
	c.Argv = append([]string{p}, rest[1:]...)
	if !fs.Changed("envoy") && filepath.Base(rest[0]) == "envoy" {
		c.Envoy = true
	}
	if c.Envoy {
		if err := checkEnvoyArgs(rest[1:]); err != nil {
			return err
		}
	}
	c.SocketPath = socketPath(rest[1:])
	c.Validator = v.validator(c) // before the socket flags: validation binds no socket
	if c.Envoy {
		return privateHotRestartSocket(c, rest[1:])
	}
	return nil
}

// hotRestartSocketName is the --socket-path the restarter gives Envoy in
// its runtime dir; Envoy appends _[udp_]{parent,child}_<base id*10+n>, so
// instances with different base ids in one dir never collide.
const hotRestartSocketName = "hotrestart"

// longestSocketSuffix is the longest name Envoy appends to --socket-path:
// "_udp_parent_" and the largest base id times ten plus two.
var longestSocketSuffix = "_udp_parent_" + strconv.FormatUint(uint64(baseid.Max)*10+2, 10)

// privateHotRestartSocket: abstract socket names (Envoy's default) have no
// permissions, so any local user can squat or reach them. When COMMAND sets
// no --socket-path, every generation gets one in the 0700 runtime dir, with
// --socket-mode 600 unless COMMAND sets its own mode.
func privateHotRestartSocket(c *Config, args []string) error {
	if hasFlag(args, "--socket-path") {
		return nil
	}
	p := filepath.Join(c.RuntimeDir, hotRestartSocketName)
	if !filepath.IsAbs(p) {
		abs, err := filepath.Abs(p)
		if err != nil {
			return usagef("--runtime-dir %q: %v", c.RuntimeDir, err)
		}
		p = abs
	}
	if n := len(p) + len(longestSocketSuffix); n > maxSocketPath {
		return usagef("the hot-restart socket %s%s would be %d bytes, longer than a Unix socket path may be (%d): use a shorter --runtime-dir, or give COMMAND its own --socket-path",
			p, longestSocketSuffix, n, maxSocketPath)
	}
	c.SocketPath = p
	c.Argv = append(c.Argv, "--socket-path", p)
	if !hasFlag(args, "--socket-mode") {
		c.Argv = append(c.Argv, "--socket-mode", "600")
	}
	return nil
}

// hasFlag reports whether args set the long flag name (as "name value" or
// "name=value").
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// envoyValidator is COMMAND with its own arguments and --mode validate
// (any --mode of its own replaced); the restart flags are never in Argv.
func envoyValidator(argv []string) []string {
	out := []string{argv[0]}
	for i := 1; i < len(argv); i++ {
		a := argv[i]
		if a == "--mode" {
			i++ // and its value
			continue
		}
		if strings.HasPrefix(a, "--mode=") {
			continue
		}
		out = append(out, a)
	}
	return append(out, "--mode", "validate")
}

func unwrapExec(err error) error {
	var e *exec.Error
	if errors.As(err, &e) {
		return e.Err
	}
	return err
}

func checkExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return errors.Unwrap(err)
	}
	if !fi.Mode().IsRegular() {
		return errors.New("not a regular file")
	}
	if err := unix.Access(p, unix.X_OK); err != nil {
		return fmt.Errorf("not executable (chmod +x it): %w", err)
	}
	return nil
}

// owned are the proxy flags the restarter sets itself in envoy mode.
var owned = map[string]string{
	"--restart-epoch":          "the restarter counts epochs itself",
	"--use-dynamic-base-id":    "use the restarter's --use-dynamic-base-id, which keeps one id for every epoch",
	"--base-id":                "pass --base-id to the restarter instead",
	"--drain-time-s":           "pass --drain-time to the restarter instead",
	"--parent-shutdown-time-s": "pass --parent-shutdown-time to the restarter instead",
}

func checkEnvoyArgs(args []string) error {
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if why, ok := owned[name]; ok {
			return usagef("COMMAND sets %s, which the restarter owns in --envoy mode: remove it (%s)", name, why)
		}
	}
	return nil
}

func socketPath(args []string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--socket-path="); ok {
			return v
		}
		if a == "--socket-path" && i+1 < len(args) {
			return args[i+1]
		}
	}
	return baseid.DefaultSocketPath
}
