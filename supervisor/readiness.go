package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Probe is what a readiness check, and the validator before a reload, know
// of one generation: its values (the same ones its command line and
// environment get), its pid, how to run a command, and where to report why
// a check does not pass yet. Build it with Supervisor.probe, the one place
// that makes a generation's values.
type Probe struct {
	Vars     // Epoch, BaseID, DrainTimeS, ParentShutdownTimeS
	PID  int // the started process; 0 for the validator (nothing started yet)
	// Run runs a command through the supervisor's starter and reaper
	// (never use os/exec's Wait in a supervised process).
	Run CommandRunner
	Log *zap.Logger // nil: no log
	// Report, when set, hears why the generation is not ready yet: a
	// failing check's error, about once a second once the checks have
	// failed for failLogAfter (what status shows as its health).
	Report func(error)
}

// CommandRunner runs argv with env to its end and returns its exit status
// and output. Supervisor.Command is the one a supervisor hands out.
type CommandRunner func(ctx context.Context, argv, env []string) (CommandResult, error)

// Expand is args with this generation's placeholders replaced.
func (p Probe) Expand(args []string) []string { return Expand(args, p.Vars) }

// Env is the environment a command about this generation runs with: the
// restarter's own minus its private variables, plus RESTART_EPOCH, BASE_ID,
// DRAIN_TIME_S and PARENT_SHUTDOWN_TIME_S of the generation.
func (p Probe) Env() []string { return Env(environ(), p.Vars, nil) }

func (p Probe) logger() *zap.Logger {
	if p.Log == nil {
		return zap.NewNop()
	}
	return p.Log
}

// Readiness decides when a generation is ready. Ready blocks until the
// generation is ready (nil), or returns an error when ctx ends (the
// generation exited, the ready timeout passed, or shutdown) or readiness can
// never come.
type Readiness interface {
	Ready(ctx context.Context, p Probe) error
}

// After is ready once the generation has survived D.
type After struct{ D time.Duration }

// Ready implements Readiness.
func (a After) Ready(ctx context.Context, _ Probe) error {
	t := time.NewTimer(a.D)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Probe failures are logged (with the last error) once a check has been
// failing for failLogAfter, then every failLogEvery, so an operator sees why
// a generation is not ready long before the ready timeout. A check that
// passes within failLogAfter (the usual start) logs nothing.
const (
	failLogAfter = time.Second
	failLogEvery = 10 * time.Second
	reportEvery  = time.Second // Probe.Report: status may say it more often than the log
)

// poll calls try every interval until it returns nil or ctx ends.
func poll(ctx context.Context, p Probe, every time.Duration, try func() error) error {
	if every <= 0 {
		every = 200 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	log := p.logger()
	var last error // the last check's error
	var firstFail, lastLog, lastReport time.Time
	tries := 0
	for {
		tries++
		err := try()
		if err == nil {
			return nil
		}
		// A check cut short by ctx ending says nothing new: keep the one
		// before it, which usually says why (held by pid X, refused, ...).
		if last == nil || ctx.Err() == nil {
			last = err
		}
		now := time.Now()
		if firstFail.IsZero() {
			firstFail = now
		}
		if p.Report != nil && now.Sub(firstFail) >= failLogAfter && now.Sub(lastReport) >= reportEvery {
			lastReport = now
			p.Report(fmt.Errorf("not ready after %d checks over %v: %w", tries, now.Sub(firstFail).Round(100*time.Millisecond), last))
		}
		if now.Sub(firstFail) >= failLogAfter && (lastLog.IsZero() || now.Sub(lastLog) >= failLogEvery) {
			lastLog = now
			log.Warn("not ready yet", zap.Uint32("epoch", p.Epoch), zap.Int("pid", p.PID),
				zap.Duration("failing_for", now.Sub(firstFail).Round(time.Millisecond)), zap.Int("checks", tries), zap.Error(last))
		}
		select {
		case <-ctx.Done():
			// The generation exited, timed out or the restarter stops: say
			// what the check saw last (the cause is often here, e.g. an
			// address held by another process).
			lvl := zap.InfoLevel
			if le := (*ListenerError)(nil); errors.As(last, &le) && le.Listening {
				lvl = zap.WarnLevel // likely why the generation failed: say it loudly
			}
			log.Log(lvl, "readiness check ended", zap.Uint32("epoch", p.Epoch), zap.Int("pid", p.PID),
				zap.Int("checks", tries), zap.NamedError("last_check", last))
			return fmt.Errorf("%w (last check: %w)", ctx.Err(), last)
		case <-t.C:
		}
	}
}

// Rechecker is a Readiness that can be asked again about a generation that
// was ready before, to learn whether it still serves. The supervisor asks
// after a failed reload (see Supervisor docs on rollback). HTTP,
// CommandReady and EnvoyAdmin are Recheckers; After is not (the process being alive is all it
// knows, and the supervisor already knows that).
type Rechecker interface {
	Recheck(ctx context.Context, p Probe) error
}

// Recheck implements Rechecker. Its caller reports the outcome, so the
// check itself logs nothing (no "not ready yet" about a serving generation).
func (h HTTP) Recheck(ctx context.Context, p Probe) error { p.Log = nil; return h.Ready(ctx, p) }

// Recheck implements Rechecker, without logging (see HTTP.Recheck).
func (c CommandReady) Recheck(ctx context.Context, p Probe) error {
	p.Log = nil
	return c.Ready(ctx, p)
}

// Recheck implements Rechecker, without logging (see HTTP.Recheck).
func (e EnvoyAdmin) Recheck(ctx context.Context, p Probe) error { p.Log = nil; return e.Ready(ctx, p) }

// HTTP is ready when GET URL answers 200. Placeholders are expanded in URL.
//
// When the URL's host:port is an address of this host, the answer counts
// only while a process of the generation holds a listener for it (see
// EnvoyAdmin): another process answering there makes no generation ready.
// On an address the generations share (a listener passed from the old one
// to the new one), that proves the new generation holds the listener, not
// that it answered: the old one accepts on the same socket until it drains.
// A URL on another host is only asked: its answer says nothing about which
// generation serves.
type HTTP struct {
	URL      string
	Interval time.Duration
	Client   *http.Client // default: probeClient()
}

// probeClient is the default client of the HTTP probes: a short timeout and
// a new connection for every probe. Keep-alive would be wrong here: during a
// hot restart the admin (and often the probed) address passes from the old
// generation to the new one, and a kept-alive connection stays with the old
// process, so every probe would ask the old generation until it exits.
func probeClient() *http.Client {
	return &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
	}
}

// Ready implements Readiness.
func (h HTTP) Ready(ctx context.Context, p Probe) error {
	c := h.Client
	if c == nil {
		c = probeClient()
	}
	u := p.Expand([]string{h.URL})[0]
	hostport, err := urlHostPort(u)
	if err != nil {
		return err
	}
	local := isLocalHostPort(ctx, hostport)
	if !local {
		p.logger().Info("ready URL is not on this host: its answer cannot be tied to a generation",
			zap.Uint32("epoch", p.Epoch), zap.String("url", u))
	}
	return poll(ctx, p, h.Interval, func() error {
		code, _, err := get(ctx, c, u)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("GET %s: status %d, want 200", u, code)
		}
		if local { // after the answer: the /proc scan runs once it counts
			return generationHolds(ctx, hostport, p)
		}
		return nil
	})
}

// urlHostPort is the host:port an http(s) URL connects to.
func urlHostPort(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("ready url: %w", err)
	}
	if u.Host == "" {
		return "", fmt.Errorf("ready url %q: no host", raw)
	}
	port := u.Port()
	if port == "" {
		switch u.Scheme {
		case "https":
			port = "443"
		case "http":
			port = "80"
		default:
			return "", fmt.Errorf("ready url %q: scheme %q, want http or https", raw, u.Scheme)
		}
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

func get(ctx context.Context, c *http.Client, url string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("ready url: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// CommandReady is ready when Argv exits 0. Placeholders are expanded; the
// command gets the generation's environment variables (Probe.Env). Each
// run is a process group of its own, ended whole when the run ends (see
// Supervisor.Command). What the command checks is up to it: the restarter
// cannot tell which generation made it pass.
type CommandReady struct {
	Argv     []string
	Interval time.Duration
}

// Ready implements Readiness.
func (c CommandReady) Ready(ctx context.Context, p Probe) error {
	if p.Run == nil {
		return errors.New("ready command: no command runner")
	}
	argv := p.Expand(c.Argv)
	env := p.Env()
	return poll(ctx, p, c.Interval, func() error {
		res, err := p.Run(ctx, argv, env)
		if err != nil {
			return err
		}
		if res.Status != 0 {
			return fmt.Errorf("ready command exited %d: %s", res.Status, strings.TrimSpace(string(res.Output)))
		}
		return nil
	})
}

// EnvoyAdmin is ready when http://Addr/server_info reports state LIVE and
// command_line_options.restart_epoch equal to the generation's epoch, and
// the listener on Addr belongs to a process of the generation (its socket
// inode is in /proc/<pid>/fd of the generation's process tree). The admin
// address passes from parent to child during a hot restart, so the epoch
// check tells our generations apart; the ownership check keeps another
// process answering on the same address (another Envoy at epoch 0) from
// making a generation ready, and names it in the error.
type EnvoyAdmin struct {
	Addr     string // host:port, or a full http:// URL base
	Interval time.Duration
	Client   *http.Client // default: probeClient()
}

// Ready implements Readiness.
func (e EnvoyAdmin) Ready(ctx context.Context, p Probe) error {
	c := e.Client
	if c == nil {
		c = probeClient()
	}
	base := e.Addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	url := strings.TrimRight(base, "/") + "/server_info"
	hostport, err := urlHostPort(url)
	if err != nil {
		return err
	}
	return poll(ctx, p, e.Interval, func() error {
		code, body, err := get(ctx, c, url)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("GET %s: status %d", url, code)
		}
		state, epoch, err := ParseServerInfo(body)
		if err != nil {
			return err
		}
		if state != "LIVE" || epoch != p.Epoch {
			return fmt.Errorf("server_info: state %s epoch %d, want LIVE epoch %d", state, epoch, p.Epoch)
		}
		// The answer counts only if it came from the generation: checked
		// last, so the /proc scan runs once the answer is the right one.
		return generationHolds(ctx, hostport, p)
	})
}

// ParseServerInfo extracts state and command_line_options.restart_epoch from
// Envoy's /server_info JSON. restart_epoch may be a number or a string.
func ParseServerInfo(b []byte) (state string, epoch uint32, err error) {
	var si struct {
		State string `json:"state"`
		Opts  struct {
			RestartEpoch json.RawMessage `json:"restart_epoch"`
		} `json:"command_line_options"`
	}
	if err := json.Unmarshal(b, &si); err != nil {
		return "", 0, fmt.Errorf("server_info: %w", err)
	}
	raw := strings.Trim(strings.TrimSpace(string(si.Opts.RestartEpoch)), `"`)
	if raw == "" || raw == "null" {
		return si.State, 0, nil // proto3 JSON omits a zero epoch
	}
	n, err := strconv.ParseUint(raw, 10, 32)
	if err != nil {
		return si.State, 0, fmt.Errorf("server_info: restart_epoch %q: %w", raw, err)
	}
	return si.State, uint32(n), nil
}
