package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hotrestart/restarter/supervisor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Reload results: the values of restarter_reloads_total's result label.
const (
	ResultSuccess          = "success"
	ResultValidationFailed = "validation_failed" // the validator rejected the new config
	ResultStartFailed      = "start_failed"      // the new generation could not start or exited before it was ready
	ResultNotReady         = "not_ready"         // the new generation was not ready within the ready timeout
	ResultAborted          = "aborted"           // the restarter began to stop during the reload
	ResultOther            = "other"
)

// Exit kinds: the values of restarter_generation_exits_total's kind label.
const (
	ExitClean    = "clean"    // exited 0
	ExitStarting = "starting" // exited non-zero (or by a signal) before it was ready
	ExitServing  = "serving"  // exited non-zero while it was the serving generation
	ExitDraining = "draining" // exited non-zero while draining (e.g. killed at parent-shutdown time)
)

var (
	results = []string{ResultSuccess, ResultValidationFailed, ResultStartFailed, ResultNotReady, ResultAborted, ResultOther}
	kinds   = []string{ExitClean, ExitStarting, ExitServing, ExitDraining}
	states  = []supervisor.State{supervisor.StateStarting, supervisor.StateReady, supervisor.StateDraining}
)

// Metrics holds the series of one supervisor. Observe may be called from
// any goroutine; the zero value is not usable: call New.
type Metrics struct {
	reg *prometheus.Registry

	lastOK      prometheus.Gauge
	lastOKTime  prometheus.Gauge
	reloads     *prometheus.CounterVec
	duration    prometheus.Histogram
	generations *prometheus.GaugeVec
	epoch       prometheus.Gauge
	exits       *prometheus.CounterVec

	mu          sync.Mutex
	reloadStart time.Time
	lastState   map[int]supervisor.State // pid -> last state seen
}

// New returns Metrics registered in a registry of their own, with the Go
// and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "restarter_config_last_reload_successful",
			Help: "Whether the last reload (or the first start) succeeded: 1, or 0 after a failed reload."}),
		lastOKTime: prometheus.NewGauge(prometheus.GaugeOpts{Name: "restarter_config_last_reload_success_timestamp_seconds",
			Help: "Unix time of the last successful reload (or of the first generation becoming ready)."}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "restarter_reloads_total",
			Help: "Reloads by result."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "restarter_reload_duration_seconds",
			Help:    "Time from the start of a reload (validation) to its outcome.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}}),
		generations: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "restarter_generations",
			Help: "Live generations by state."}, []string{"state"}),
		epoch: prometheus.NewGauge(prometheus.GaugeOpts{Name: "restarter_epoch",
			Help: "Restart epoch of the serving generation."}),
		exits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "restarter_generation_exits_total",
			Help: "Generation exits by kind: clean (status 0), or abnormal while starting, serving or draining."}, []string{"kind"}),
		lastState: map[int]supervisor.State{},
	}
	for _, r := range results {
		m.reloads.WithLabelValues(r)
	}
	for _, k := range kinds {
		m.exits.WithLabelValues(k)
	}
	for _, s := range states {
		m.generations.WithLabelValues(string(s))
	}
	m.reg.MustRegister(m.lastOK, m.lastOKTime, m.reloads, m.duration, m.generations, m.epoch, m.exits,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the series are registered, for callers that add their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Result is a reload's result label value, from its Failure (never from
// its wording).
func Result(r supervisor.ReloadResult) string {
	switch {
	case r.OK:
		return ResultSuccess
	case r.Failure == supervisor.FailureValidation:
		return ResultValidationFailed
	case r.Failure == supervisor.FailureNotReady:
		return ResultNotReady
	case r.Failure == supervisor.FailureAborted:
		return ResultAborted
	case r.Failure == supervisor.FailureStart:
		return ResultStartFailed
	}
	return ResultOther
}

// Observe updates the series from one supervisor event.
func (m *Metrics) Observe(ev supervisor.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch ev.Kind {
	case supervisor.EventReloading:
		m.reloadStart = ev.Time
	case supervisor.EventReloaded:
		if r := ev.Reload; r != nil {
			m.reloads.WithLabelValues(Result(*r)).Inc()
			if !m.reloadStart.IsZero() {
				m.duration.Observe(r.At.Sub(m.reloadStart).Seconds())
				m.reloadStart = time.Time{}
			}
			if r.OK {
				m.success(r.At)
			} else {
				m.lastOK.Set(0)
			}
		}
	case supervisor.EventState:
		if g := ev.Generation; g != nil {
			if ev.First {
				m.success(ev.Time)
			}
			if g.State == supervisor.StateExited {
				m.exits.WithLabelValues(exitKind(m.lastState[g.PID], g.ExitStatus)).Inc()
				delete(m.lastState, g.PID)
			} else {
				m.lastState[g.PID] = g.State
			}
		}
	}
	counts := map[supervisor.State]int{}
	serving := -1
	for _, g := range ev.Status.Generations {
		counts[g.State]++
		if g.State == supervisor.StateReady && int(g.Epoch) > serving {
			serving = int(g.Epoch)
		}
	}
	for _, s := range states {
		m.generations.WithLabelValues(string(s)).Set(float64(counts[s]))
	}
	if serving >= 0 {
		m.epoch.Set(float64(serving))
	}
}

func (m *Metrics) success(at time.Time) {
	m.lastOK.Set(1)
	m.lastOKTime.Set(float64(at.UnixNano()) / 1e9)
}

func exitKind(was supervisor.State, status *int) string {
	if status != nil && *status == 0 {
		return ExitClean
	}
	switch was {
	case supervisor.StateReady:
		return ExitServing
	case supervisor.StateDraining:
		return ExitDraining
	}
	return ExitStarting
}

// Handler serves /metrics and /healthz. health is called (with a 1 s
// deadline) for each /healthz request; nil means healthy.
func (m *Metrics) Handler(health func(context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if err := health(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "unhealthy: %v\n", err)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// Server is a running metrics listener.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan error
}

// Listen binds addr (host:port; port 0 picks one) and serves h on it.
func Listen(addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener %s: %w", addr, err)
	}
	s := &Server{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln: ln, done: make(chan error, 1)}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the listener and waits (up to 2 s) for open requests.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}
