package drain

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Strategy is how connections are asked to close while draining.
type Strategy int

const (
	// Gradual asks a connection to close with probability elapsed/drain-time,
	// and always once the drain time is over (Envoy's default).
	Gradual Strategy = iota
	// Immediate asks every connection to close as soon as draining starts.
	Immediate
)

// String returns the strategy's Envoy spelling: "gradual" or "immediate".
func (s Strategy) String() string {
	switch s {
	case Gradual:
		return "gradual"
	case Immediate:
		return "immediate"
	}
	return fmt.Sprintf("Strategy(%d)", int(s))
}

// ParseStrategy parses Envoy's --drain-strategy values "gradual" and "immediate".
func ParseStrategy(s string) (Strategy, error) {
	switch s {
	case "gradual":
		return Gradual, nil
	case "immediate":
		return Immediate, nil
	}
	return 0, fmt.Errorf("drain strategy %q: use gradual or immediate", s)
}

// Clock is the time source of a Manager; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f once d has passed, unless the returned stop is called first.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Config configures a Manager.
type Config struct {
	DrainTime time.Duration // how long draining lasts; 0 means it is over at Start
	Strategy  Strategy
	Clock     Clock          // default: the real clock
	Rand      func() float64 // uniform in [0,1); default math/rand/v2.Float64
}

// Manager tracks one drain. It is safe for concurrent use.
type Manager struct {
	cfg  Config
	done chan struct{}

	mu       sync.Mutex
	started  bool
	start    time.Time
	stop     func() bool
	closed   bool
	doneOnce sync.Once
}

// New returns an idle Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.DrainTime < 0 {
		return nil, fmt.Errorf("drain time %s is negative: use 0 or more", cfg.DrainTime)
	}
	if cfg.Strategy != Gradual && cfg.Strategy != Immediate {
		return nil, fmt.Errorf("drain strategy %d unknown: use Gradual or Immediate", int(cfg.Strategy))
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	return &Manager{cfg: cfg, done: make(chan struct{})}, nil
}

// Start begins draining. Only the first call has an effect; it reports
// whether this call started the drain.
func (m *Manager) Start() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.closed {
		return false
	}
	m.started = true
	m.start = m.cfg.Clock.Now()
	if m.cfg.DrainTime == 0 {
		m.finish()
		return true
	}
	m.stop = m.cfg.Clock.AfterFunc(m.cfg.DrainTime, m.finish)
	return true
}

func (m *Manager) finish() { m.doneOnce.Do(func() { close(m.done) }) }

// Draining reports whether Start has been called.
func (m *Manager) Draining() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.started
}

// Deadline returns when the drain ends; ok is false before Start.
func (m *Manager) Deadline() (t time.Time, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started {
		return time.Time{}, false
	}
	return m.start.Add(m.cfg.DrainTime), true
}

// DrainClose reports whether a connection should be closed now: never before
// Start; always with Immediate; with Gradual, with probability
// elapsed/drain-time, and always from the deadline on.
func (m *Manager) DrainClose() bool {
	m.mu.Lock()
	started, start := m.started, m.start
	m.mu.Unlock()
	if !started {
		return false
	}
	if m.cfg.Strategy == Immediate {
		return true
	}
	elapsed := m.cfg.Clock.Now().Sub(start)
	if elapsed >= m.cfg.DrainTime {
		return true
	}
	return m.cfg.Rand() < float64(elapsed)/float64(m.cfg.DrainTime)
}

// Done is closed when the drain time is over (never, if Start is not called).
func (m *Manager) Done() <-chan struct{} { return m.done }

// Close stops the deadline timer; Done is then never closed unless it already
// was. Close is idempotent and does not block.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	if m.stop != nil {
		m.stop()
		m.stop = nil
	}
	return nil
}

// HTTPHandler wraps next so that, while draining, an HTTP/1 response carries
// "Connection: close" whenever DrainClose says so; net/http then closes the
// connection after the response. HTTP/2 is left alone (Shutdown sends GOAWAY).
func (m *Manager) HTTPHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ProtoMajor == 1 && m.DrainClose() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
}

// ShutdownHTTP waits until the drain is over or ctx is done, then calls
// Shutdown on every server with ctx, which stops their listeners, closes idle
// connections and waits for active ones until ctx is done. It returns the
// first error other than http.ErrServerClosed, or ctx's error if ctx ended
// the drain early.
func (m *Manager) ShutdownHTTP(ctx context.Context, srvs ...*http.Server) error {
	var early error
	select {
	case <-m.done:
	case <-ctx.Done():
		early = ctx.Err()
	}
	var errs []error
	for _, s := range srvs {
		if err := s.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return early
}
