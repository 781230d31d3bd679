package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hotrestart/restarter/supervisor"
	"go.uber.org/zap"
)

// gracefulStop is --stop-drain-time: Envoy exits at once on SIGTERM,
// cutting every connection, so the first SIGTERM/SIGINT drains the serving
// generation first: with --ready-envoy-admin it is asked to drain (Envoy
// admin POST /drain_listeners?graceful: Connection: close / GOAWAY, failing
// health checks, listeners closed at the end of its drain time), then the
// restarter waits the stop drain time, or less once the admin reports no
// open connection (server.total_connections 0), and only then stops as
// before (SIGTERM, SIGKILL after --term-wait). A second SIGTERM/SIGINT
// during the drain stops at once. Without --ready-envoy-admin it only waits
// (time for a load balancer to take the instance out). Off (0) by default:
// every stop would otherwise take that much longer, under any supervisor.
type gracefulStop struct {
	drainTime time.Duration
	admin     string
	log       *zap.Logger
	stopping  func(string) // systemd STOPPING=1
	client    *http.Client
	started   atomic.Bool
}

func newGracefulStop(cfg Config, log *zap.Logger, stopping func(string)) *gracefulStop {
	return &gracefulStop{drainTime: cfg.StopDrainTime, admin: cfg.ReadyEnvoyAdmin, log: log, stopping: stopping,
		client: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
}

// draining reports whether a graceful stop is under way (reloads are
// refused then: a new generation would only be stopped again).
func (g *gracefulStop) draining() bool { return g.started.Load() }

// stop handles one SIGTERM/SIGINT.
func (g *gracefulStop) stop(sup *supervisor.Supervisor) {
	if g.drainTime <= 0 || g.started.Swap(true) {
		sup.Stop()
		return
	}
	if supervisorServing(sup.Status()) == nil {
		sup.Stop()
		return
	}
	go g.drain(sup)
}

func supervisorServing(st supervisor.Status) *supervisor.Generation { return servingGen(st) }

func (g *gracefulStop) drain(sup *supervisor.Supervisor) {
	defer sup.Stop()
	start := time.Now()
	g.log.Info("graceful stop: draining before the stop", zap.String("stop_drain_time", g.drainTime.String()),
		zap.String("admin", g.admin))
	if g.stopping != nil {
		g.stopping(fmt.Sprintf("draining for up to %s before stopping", g.drainTime))
	}
	if g.admin != "" {
		if err := g.post("/drain_listeners?graceful"); err != nil {
			g.log.Warn("graceful stop: the drain request failed; waiting anyway", zap.Error(err))
		}
	}
	deadline := time.NewTimer(g.drainTime)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			g.log.Info("graceful stop: stop drain time over; stopping", zap.String("took", time.Since(start).String()))
			return
		case <-sup.Done():
			return
		case <-tick.C:
			if g.admin == "" {
				continue
			}
			if n, ok := g.connections(); ok && n == 0 {
				g.log.Info("graceful stop: no connections left; stopping", zap.String("took", time.Since(start).String()))
				return
			}
		}
	}
}

func (g *gracefulStop) post(path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+g.admin+path, nil)
	if err != nil {
		return err
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: status %d", path, resp.StatusCode)
	}
	return nil
}

// connections reads server.total_connections from the admin's /stats.
func (g *gracefulStop) connections() (uint64, bool) {
	resp, err := g.client.Get("http://" + g.admin + "/stats?filter=^server%5C.total_connections$")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, false
	}
	return parseTotalConnections(string(b))
}

// parseTotalConnections finds "server.total_connections: N" in the text
// form of Envoy's /stats (filtered or not).
func parseTotalConnections(body string) (uint64, bool) {
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, "server.total_connections: "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}
