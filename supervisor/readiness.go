package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Probe describes the generation whose readiness is being checked.
type Probe struct {
	Epoch  uint32
	PID    int
	BaseID uint32
	// Command runs a command through the supervisor's starter and reaper
	// (never use os/exec's Wait in a supervised process).
	Command func(ctx context.Context, argv, env []string) (CommandResult, error)
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

func poll(ctx context.Context, every time.Duration, try func() error) error {
	if every <= 0 {
		every = 200 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var last error
	for {
		if last = try(); last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last check: %w)", ctx.Err(), last)
		case <-t.C:
		}
	}
}

// Rechecker is a Readiness that can be asked again about a generation that
// was ready before, to learn whether it still serves. The supervisor asks
// after a failed reload (see Supervisor docs on rollback). HTTP, Cmd and
// EnvoyAdmin are Recheckers; After is not (the process being alive is all it
// knows, and the supervisor already knows that).
type Rechecker interface {
	Recheck(ctx context.Context, p Probe) error
}

// Recheck implements Rechecker.
func (h HTTP) Recheck(ctx context.Context, p Probe) error { return h.Ready(ctx, p) }

// Recheck implements Rechecker.
func (c Cmd) Recheck(ctx context.Context, p Probe) error { return c.Ready(ctx, p) }

// Recheck implements Rechecker.
func (e EnvoyAdmin) Recheck(ctx context.Context, p Probe) error { return e.Ready(ctx, p) }

// HTTP is ready when GET URL answers 200. Placeholders are expanded in URL.
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
	url := Expand([]string{h.URL}, Vars{Epoch: p.Epoch, BaseID: p.BaseID})[0]
	return poll(ctx, h.Interval, func() error {
		code, _, err := get(ctx, c, url)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("GET %s: status %d, want 200", url, code)
		}
		return nil
	})
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

// Cmd is ready when Argv exits 0. Placeholders are expanded; the command
// gets the generation's environment variables.
type Cmd struct {
	Argv     []string
	Interval time.Duration
}

// Ready implements Readiness.
func (c Cmd) Ready(ctx context.Context, p Probe) error {
	v := Vars{Epoch: p.Epoch, BaseID: p.BaseID}
	argv := Expand(c.Argv, v)
	return poll(ctx, c.Interval, func() error {
		res, err := p.Command(ctx, argv, Env(environ(), v, nil))
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
// command_line_options.restart_epoch equal to the generation's epoch (the
// admin address passes from parent to child during a hot restart, so the
// epoch check tells the generations apart).
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
	return poll(ctx, e.Interval, func() error {
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
		return nil
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
