package drain

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
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
	// IdleCloseAfter is how long a kept-alive connection of a TrackHTTP
	// server must have been idle before ShutdownHTTP closes it; default the
	// drain time, at least MinIdleCloseAfter. A client picks its most
	// recently used idle connection first, so the longer one has been idle,
	// the less likely the client is sending on it as it closes; one that is
	// used sooner gets "Connection: close" on its response and net/http
	// closes it after that response, which no request can race.
	IdleCloseAfter time.Duration
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
	tracked  map[*http.Server]*connTracker // TrackHTTP
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
	if cfg.IdleCloseAfter == 0 {
		cfg.IdleCloseAfter = cfg.DrainTime
	}
	cfg.IdleCloseAfter = max(cfg.IdleCloseAfter, MinIdleCloseAfter)
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

// TrackHTTP makes ShutdownHTTP close srv's idle keep-alive connections
// safely (see ShutdownHTTP). It wraps srv.ConnState, so call it after
// setting that and before Serve.
func (m *Manager) TrackHTTP(srv *http.Server) {
	t := &connTracker{conns: map[net.Conn]*connEntry{}}
	prev := srv.ConnState
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		t.set(c, st, time.Now())
		if prev != nil {
			prev(c, st)
		}
	}
	m.mu.Lock()
	if m.tracked == nil {
		m.tracked = map[*http.Server]*connTracker{}
	}
	m.tracked[srv] = t
	m.mu.Unlock()
}

// MinIdleCloseAfter is the least time a kept-alive connection must have
// been idle before ShutdownHTTP closes it (Config.IdleCloseAfter).
const MinIdleCloseAfter = 200 * time.Millisecond

// newCloseAfter is the same for a connection that has not sent its first
// request yet (net/http's Shutdown also gives those 5 s).
const newCloseAfter = 5 * time.Second

// idlePoll is how often ShutdownHTTP looks at the tracked connections.
const idlePoll = 10 * time.Millisecond

// connTracker follows the connections of one tracked server.
type connTracker struct {
	mu    sync.Mutex
	conns map[net.Conn]*connEntry
}

type connEntry struct {
	state http.ConnState
	since time.Time
}

func (t *connTracker) set(c net.Conn, st http.ConnState, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch st {
	case http.StateClosed, http.StateHijacked:
		delete(t.conns, c)
	default:
		t.conns[c] = &connEntry{state: st, since: now}
	}
}

// closeIdle closes the connections idle for at least idleAfter (new ones:
// newCloseAfter) with no request bytes waiting in the kernel; it returns how
// many are left open. Each is checked again just before it is closed, to
// keep the window in which a request could arrive as small as it can be.
func (t *connTracker) closeIdle(now time.Time, idleAfter time.Duration) int {
	due := func(e *connEntry) bool {
		wait := idleAfter
		if e.state == http.StateNew {
			wait = newCloseAfter
		}
		return (e.state == http.StateIdle || e.state == http.StateNew) && now.Sub(e.since) >= wait
	}
	t.mu.Lock()
	var idle []net.Conn
	for c, e := range t.conns {
		if due(e) {
			idle = append(idle, c)
		}
	}
	t.mu.Unlock()
	for _, c := range idle {
		t.mu.Lock()
		e := t.conns[c]
		ok := e != nil && due(e) && !readable(c)
		if ok {
			delete(t.conns, c) // net/http's StateClosed will find it gone
		}
		t.mu.Unlock()
		if ok {
			c.Close()
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

// ShutdownHTTP waits until the drain is over or ctx is done, then shuts the
// servers down. For a server given to TrackHTTP it does so without racing a
// client: every response now carries "Connection: close" (HTTPHandler), so a
// connection that carries one more request closes after its response; an
// idle one is closed by the server only once it has been idle for
// Config.IdleCloseAfter with nothing waiting to be read, so no request can
// be in flight on it (http.Server.Shutdown closes idle connections at once, and a
// client sending on one just then sees EOF). Once no tracked connection is
// left, or ctx is done, Shutdown is called with ctx, which stops the
// listeners and waits for what is still active until ctx is done. It returns
// the first error other than http.ErrServerClosed, or ctx's error if ctx
// ended the drain early.
func (m *Manager) ShutdownHTTP(ctx context.Context, srvs ...*http.Server) error {
	var early error
	select {
	case <-m.done:
	case <-ctx.Done():
		early = ctx.Err()
	}
	if early == nil {
		m.closeIdleTracked(ctx, srvs)
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

// closeIdleTracked closes the tracked servers' connections as they become
// safely idle, until none is left or ctx is done.
func (m *Manager) closeIdleTracked(ctx context.Context, srvs []*http.Server) {
	m.mu.Lock()
	var ts []*connTracker
	for _, s := range srvs {
		if t := m.tracked[s]; t != nil {
			ts = append(ts, t)
		}
	}
	m.mu.Unlock()
	if len(ts) == 0 {
		return
	}
	tick := time.NewTicker(idlePoll)
	defer tick.Stop()
	for {
		left := 0
		for _, t := range ts {
			left += t.closeIdle(time.Now(), m.cfg.IdleCloseAfter)
		}
		if left == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
