package main

import (
	"github.com/hotrestart/restarter/metrics"
	"github.com/hotrestart/restarter/supervisor"
	"go.uber.org/zap"
)

// metricsHook is --metrics-address: nil-safe, so serve needs no branches
// when the flag is not given.
type metricsHook struct {
	addr string
	m    *metrics.Metrics
}

func newMetricsHook(cfg Config) *metricsHook {
	if cfg.MetricsAddress == "" {
		return nil
	}
	return &metricsHook{addr: cfg.MetricsAddress, m: metrics.New()}
}

func (h *metricsHook) observe(ev supervisor.Event) {
	if h != nil {
		h.m.Observe(ev)
	}
}

// serve starts the listener (before any generation starts, so a bad
// address is a usage error) and returns its stop function.
func (h *metricsHook) serve(sup *supervisor.Supervisor, log *zap.Logger) (stop func(), err error) {
	if h == nil {
		return func() {}, nil
	}
	s, err := metrics.Listen(h.addr, h.m.Handler(sup.Ping))
	if err != nil {
		return nil, err
	}
	log.Info("metrics", zap.String("address", s.Addr()), zap.String("paths", "/metrics /healthz"))
	return func() { _ = s.Close() }, nil
}
