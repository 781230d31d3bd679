package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hotrestart/restarter/baseid"
	"github.com/hotrestart/restarter/drain"
	"github.com/spf13/pflag"
)

// hotRestartVersion is what --hot-restart-version and /hot_restart_version
// print: the protocol version (Envoy's HOT_RESTART_VERSION) and ours.
// TESTPROXY_HOT_RESTART_VERSION makes a process report another one, so
// that tests can play a binary upgrade across versions.
const hotRestartVersion = "11.testproxy"

// maxBaseID is the largest base id (owned by package baseid).
const maxBaseID = baseid.Max

// Config is the parsed command line.
type Config struct {
	RestartEpoch              uint32
	BaseID                    uint32
	UseDynamicBaseID          bool
	BaseIDPath                string
	DrainTime                 time.Duration
	DrainStrategy             drain.Strategy
	ParentShutdownTime        time.Duration
	SocketPath                string
	SocketMode                os.FileMode
	Concurrency               int
	ReusePort                 bool
	Listen                    []string
	UDPListen                 []string
	AdminAddress              string
	AdminAddressPath          string
	Mode                      string // "serve" or "validate"
	HotRestartVersion         bool
	Version                   string // hot restart version reported (hotRestartVersion unless overridden)
	ConfigFile                string
	SkipHotRestartOnNoParent  bool
	SkipHotRestartParentStats bool
	StatsFlushInterval        time.Duration
	RetryDelay                time.Duration
	FailStart                 bool
	StartDelay                time.Duration
	FaultAt                   string // a handoff point (faultPoints), "" for none
	SdNotify                  bool   // send READY=1 to $NOTIFY_SOCKET once live
	Fault                     string // kill or hang
	FaultOnce                 string // a marker file: fault only while it does not exist, "" for every time
	TermImmediate             bool   // SIGTERM/SIGINT cut every connection at once, as Envoy does
	LogFormat                 string // "console" or "json"
	SharedMemory              bool   // model Envoy's shared-memory INITIALIZING guard
	ShmDir                    string // where its file lives
	argv                      []string
}

// errHelp is returned for -h/--help: print usage, exit 0.
var errHelp = pflag.ErrHelp

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	c := Config{argv: append([]string(nil), args...), Version: hotRestartVersion}
	if v := strings.TrimSpace(os.Getenv("TESTPROXY_HOT_RESTART_VERSION")); v != "" {
		c.Version = v
	}
	fs, r := c.flagSet(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return c, errHelp
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q: testproxy takes flags only", fs.Arg(0))
	}
	if err := c.convert(fs, r); err != nil {
		return c, err
	}
	return c, c.check()
}

// rawFlags are the flags that need converting into Config's types.
type rawFlags struct {
	epoch, baseID, drainS, pstS *int64
	strategy, mode              *string
}

// flagSet defines testproxy's flags over c.
func (c *Config) flagSet(stderr io.Writer) (*pflag.FlagSet, rawFlags) {
	var r rawFlags
	fs := pflag.NewFlagSet("testproxy", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.SortFlags = false
	r.epoch = fs.Int64("restart-epoch", 0, "hot restart epoch of this process (Envoy --restart-epoch)")
	r.baseID = fs.Int64("base-id", 0, fmt.Sprintf("base id separating instances on one host, 0..%d", maxBaseID))
	fs.BoolVar(&c.UseDynamicBaseID, "use-dynamic-base-id", false, "pick a free base id (epoch 0 only)")
	fs.StringVar(&c.BaseIDPath, "base-id-path", "", "write the base id in use to `FILE`")
	r.drainS = fs.Int64("drain-time-s", 600, "seconds the old process drains after a hot restart")
	r.strategy = fs.String("drain-strategy", "gradual", "gradual or immediate")
	r.pstS = fs.Int64("parent-shutdown-time-s", 900, "seconds after which the new process terminates the old one")
	fs.StringVar(&c.SocketPath, "socket-path", "@envoy_domain_socket", "hot restart socket path prefix (@ = abstract namespace)")
	r.mode = fs.String("socket-mode", "600", "octal mode of filesystem hot restart sockets")
	fs.IntVar(&c.Concurrency, "concurrency", 1, "number of workers")
	fs.BoolVar(&c.ReusePort, "reuse-port", false, "one listen socket per worker (SO_REUSEPORT)")
	fs.StringArrayVar(&c.Listen, "listen", []string{"127.0.0.1:10000"}, "HTTP listener `ADDR` (repeatable)")
	fs.StringArrayVar(&c.UDPListen, "udp-listen", nil, "UDP echo listener `ADDR`, forwarded to the child while draining like QUIC (repeatable)")
	fs.StringVar(&c.AdminAddress, "admin-address", "127.0.0.1:9901", "admin listener `ADDR`")
	fs.StringVar(&c.AdminAddressPath, "admin-address-path", "", "write the bound admin address to `FILE`")
	fs.StringVar(&c.Mode, "mode", "serve", "serve, or validate: check flags and --config and exit 0/1")
	fs.BoolVar(&c.HotRestartVersion, "hot-restart-version", false, "print the hot restart version and exit")
	fs.StringVarP(&c.ConfigFile, "config", "c", "", "config `FILE` (lines \"body: TEXT\", \"fail: true\")")
	fs.BoolVar(&c.SkipHotRestartOnNoParent, "skip-hot-restart-on-no-parent", false, "at epoch > 0 with no parent, start as if epoch 0")
	fs.BoolVar(&c.SkipHotRestartParentStats, "skip-hot-restart-parent-stats", false, "do not pull stats from the parent")
	fs.DurationVar(&c.StatsFlushInterval, "stats-flush-interval", 5*time.Second, "how often stats are pulled from the parent")
	fs.DurationVar(&c.RetryDelay, "hot-restart-retry-delay", time.Second, "pause between the 10 tries to reach a parent socket that is not there (Envoy: 1s)")
	fs.BoolVar(&c.FailStart, "fail-start", envBool("TESTPROXY_FAIL_START"), "fault test: exit 1 after taking the sockets, before going live (env TESTPROXY_FAIL_START=1)")
	fs.StringVar(&c.LogFormat, "log-format", "console", "console or json (Envoy's pattern strings are not supported)")
	fs.BoolVar(&c.TermImmediate, "term-immediate", envBool("TESTPROXY_TERM_IMMEDIATE"), "on SIGTERM/SIGINT close every connection at once, as Envoy does (default: let in-flight requests finish, up to 10s; env TESTPROXY_TERM_IMMEDIATE=1)")
	fs.BoolVar(&c.SharedMemory, "shared-memory", envBool("TESTPROXY_SHARED_MEMORY"), "model Envoy's shared-memory guard: a start while another epoch initializes exits 1 (env TESTPROXY_SHARED_MEMORY=1)")
	fs.StringVar(&c.ShmDir, "shm-dir", envOr("TESTPROXY_SHM_DIR", "/dev/shm"), "`DIR` of the --shared-memory file (env TESTPROXY_SHM_DIR)")
	fs.StringVar(&c.FaultAt, "fault-at", "", "fault test, epoch > 0: at this handoff `POINT` (before-admin, after-admin, after-listen, after-stats, after-drain) die or hang (--fault)")
	fs.BoolVar(&c.SdNotify, "sd-notify", false, "test aid: send READY=1 to $NOTIFY_SOCKET once live (Envoy does not; a wrapper would)")
	fs.StringVar(&c.Fault, "fault", "kill", "fault test: kill (SIGKILL itself) or hang (SIGSTOP itself) at --fault-at")
	fs.StringVar(&c.FaultOnce, "fault-once", "", "fault test: fault at --fault-at only if `FILE` does not exist, creating it first (a restart of the same epoch goes through)")
	fs.DurationVar(&c.StartDelay, "start-delay", envDuration("TESTPROXY_START_DELAY"), "fault test: stay INITIALIZING this long before going live (env TESTPROXY_START_DELAY)")
	return fs, r
}

// convert turns the raw flags into Config's values, checking their ranges.
func (c *Config) convert(fs *pflag.FlagSet, r rawFlags) error {
	if *r.epoch < 0 || *r.epoch > math.MaxUint32 {
		return fmt.Errorf("--restart-epoch %d out of range: use 0..%d", *r.epoch, uint32(math.MaxUint32))
	}
	c.RestartEpoch = uint32(*r.epoch)
	if *r.baseID < 0 || *r.baseID > maxBaseID {
		return fmt.Errorf("--base-id %d out of range: use 0..%d", *r.baseID, maxBaseID)
	}
	c.BaseID = uint32(*r.baseID)
	if c.UseDynamicBaseID && c.RestartEpoch != 0 {
		return fmt.Errorf("--use-dynamic-base-id is only valid at --restart-epoch 0 (got %d): pass the id in use with --base-id", c.RestartEpoch)
	}
	if c.UseDynamicBaseID && fs.Changed("base-id") {
		return errors.New("give --base-id or --use-dynamic-base-id, not both")
	}
	for _, d := range []struct {
		name string
		v    int64
		dst  *time.Duration
	}{{"drain-time-s", *r.drainS, &c.DrainTime}, {"parent-shutdown-time-s", *r.pstS, &c.ParentShutdownTime}} {
		if d.v < 0 || d.v > math.MaxInt64/int64(time.Second) {
			return fmt.Errorf("--%s %d out of range: use whole seconds >= 0", d.name, d.v)
		}
		*d.dst = time.Duration(d.v) * time.Second
	}
	s, err := drain.ParseStrategy(*r.strategy)
	if err != nil {
		return fmt.Errorf("--drain-strategy %q: use gradual or immediate", *r.strategy)
	}
	c.DrainStrategy = s
	m, err := strconv.ParseUint(*r.mode, 8, 32)
	if err != nil || m > 0o777 {
		return fmt.Errorf("--socket-mode %q: use an octal mode such as 600", *r.mode)
	}
	c.SocketMode = os.FileMode(m)
	return nil
}

// check checks the values that need no conversion.
func (c *Config) check() error {
	if c.FaultAt != "" && !slices.Contains(faultPoints, c.FaultAt) {
		return fmt.Errorf("--fault-at %q: use one of %s", c.FaultAt, strings.Join(faultPoints, ", "))
	}
	if c.Fault != "kill" && c.Fault != "hang" {
		return fmt.Errorf("--fault %q: use kill or hang", c.Fault)
	}
	if c.SocketPath == "" || c.SocketPath == "@" {
		return fmt.Errorf("--socket-path %q: give a path or @name", c.SocketPath)
	}
	if c.LogFormat != "console" && c.LogFormat != "json" {
		return fmt.Errorf("--log-format %q: use console or json (testproxy does not take Envoy's pattern strings)", c.LogFormat)
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		return fmt.Errorf("--concurrency %d out of range: use 1..1024", c.Concurrency)
	}
	if len(c.Listen) == 0 {
		return errors.New("--listen: give at least one address")
	}
	seen := map[string]bool{}
	for _, a := range c.Listen {
		if err := checkAddr(a); err != nil {
			return fmt.Errorf("--listen %q: %w", a, err)
		}
		if seen[a] {
			return fmt.Errorf("--listen %q given twice", a)
		}
		seen[a] = true
	}
	for _, a := range c.UDPListen {
		if err := checkAddr(a); err != nil {
			return fmt.Errorf("--udp-listen %q: %w", a, err)
		}
	}
	if err := checkAddr(c.AdminAddress); err != nil {
		return fmt.Errorf("--admin-address %q: %w", c.AdminAddress, err)
	}
	switch c.Mode {
	case "serve", "validate":
	default:
		return fmt.Errorf("--mode %q: use serve or validate", c.Mode)
	}
	if c.StatsFlushInterval <= 0 {
		return fmt.Errorf("--stats-flush-interval %s: use a positive duration", c.StatsFlushInterval)
	}
	if c.RetryDelay <= 0 {
		return fmt.Errorf("--hot-restart-retry-delay %s: use a positive duration", c.RetryDelay)
	}
	if c.StartDelay < 0 {
		return fmt.Errorf("--start-delay %s: use a duration >= 0", c.StartDelay)
	}
	return nil
}

func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("want HOST:PORT: %w", err)
	}
	if net.ParseIP(host) == nil {
		return errors.New("host must be an IP address, e.g. 127.0.0.1 or [::1]")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q: use 0..65535", port)
	}
	return nil
}

func envBool(name string) bool {
	v, _ := strconv.ParseBool(os.Getenv(name))
	return v
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envDuration(name string) time.Duration {
	d, _ := time.ParseDuration(strings.TrimSpace(os.Getenv(name)))
	return d
}

// fileConfig is the optional --config file: "key: value" lines, # comments.
type fileConfig struct {
	Body string // appended to "/" responses
	Fail bool   // validation fails: lets tests make a reload fail
}

func loadConfig(path string) (fileConfig, error) {
	var fc fileConfig
	if path == "" {
		return fc, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fc, fmt.Errorf("config: %w", err)
	}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return fc, fmt.Errorf("config %s:%d: %q is not \"key: value\"", path, i+1, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "body":
			fc.Body = v
		case "fail":
			f, err := strconv.ParseBool(v)
			if err != nil {
				return fc, fmt.Errorf("config %s:%d: fail %q: use true or false", path, i+1, v)
			}
			fc.Fail = f
		default:
			return fc, fmt.Errorf("config %s:%d: unknown key %q: use body or fail", path, i+1, k)
		}
	}
	if fc.Fail {
		return fc, fmt.Errorf("config %s: fail: true", path)
	}
	return fc, nil
}
