package drain

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// fakeClock is a manual clock: Advance fires due AfterFunc callbacks.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at      time.Time
	f       func()
	stopped bool
	fired   bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped && !t.fired
		t.stopped = true
		return was
	}
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	for _, t := range c.timers {
		if !t.stopped && !t.fired && !t.at.After(c.now) {
			t.fired = true
			due = append(due, t.f)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		f()
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestParseStrategy(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Strategy
		wantErr bool
	}{
		{"gradual", Gradual, false},
		{"immediate", Immediate, false},
		{"Gradual", 0, true},
		{"", 0, true},
		{"fast", 0, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseStrategy(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseStrategy(%q) error = %v, want error %v", tc.in, err, tc.wantErr)
			}
			if err == nil && got != tc.want {
				t.Fatalf("ParseStrategy(%q) = %v, want %v", tc.in, got, tc.want)
			}
			if err == nil && got.String() != tc.in {
				t.Fatalf("String() = %q, want %q", got.String(), tc.in)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(Config{DrainTime: -time.Second}); err == nil {
		t.Fatal("New with negative drain time: got nil error, want one")
	}
	if _, err := New(Config{Strategy: Strategy(7)}); err == nil {
		t.Fatal("New with unknown strategy: got nil error, want one")
	}
}

func TestDrainClose(t *testing.T) {
	// rnd is the value the random source returns; gradual closes when
	// rnd < elapsed/drain.
	for _, tc := range []struct {
		name     string
		strategy Strategy
		drain    time.Duration
		start    bool
		elapsed  time.Duration
		rnd      float64
		want     bool
		wantDone bool
	}{
		{"idle gradual", Gradual, 10 * time.Second, false, 0, 0, false, false},
		{"idle immediate", Immediate, 10 * time.Second, false, 0, 0, false, false},
		{"immediate at start", Immediate, 10 * time.Second, true, 0, 0.99, true, false},
		{"gradual at start", Gradual, 10 * time.Second, true, 0, 0, false, false},
		{"gradual 30% rnd .29", Gradual, 10 * time.Second, true, 3 * time.Second, 0.29, true, false},
		{"gradual 30% rnd .31", Gradual, 10 * time.Second, true, 3 * time.Second, 0.31, false, false},
		{"gradual at deadline", Gradual, 10 * time.Second, true, 10 * time.Second, 0.999, true, true},
		{"gradual after deadline", Gradual, 10 * time.Second, true, time.Minute, 0.999, true, true},
		{"gradual zero drain time", Gradual, 0, true, 0, 0.999, true, true},
		{"immediate deadline", Immediate, time.Second, true, time.Second, 0.5, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			m, err := New(Config{DrainTime: tc.drain, Strategy: tc.strategy, Clock: clk, Rand: func() float64 { return tc.rnd }})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if tc.start {
				if !m.Start() {
					t.Fatal("first Start() = false, want true")
				}
				if m.Start() {
					t.Fatal("second Start() = true, want false")
				}
			}
			clk.Advance(tc.elapsed)
			if got := m.Draining(); got != tc.start {
				t.Fatalf("Draining() = %v, want %v", got, tc.start)
			}
			if got := m.DrainClose(); got != tc.want {
				t.Fatalf("DrainClose() = %v, want %v", got, tc.want)
			}
			if got := isClosed(m.Done()); got != tc.wantDone {
				t.Fatalf("Done closed = %v, want %v", got, tc.wantDone)
			}
		})
	}
}

func TestDeadline(t *testing.T) {
	clk := newFakeClock()
	m, _ := New(Config{DrainTime: 5 * time.Second, Clock: clk})
	if _, ok := m.Deadline(); ok {
		t.Fatal("Deadline before Start: ok = true, want false")
	}
	m.Start()
	d, ok := m.Deadline()
	if want := clk.Now().Add(5 * time.Second); !ok || !d.Equal(want) {
		t.Fatalf("Deadline() = %v, %v; want %v, true", d, ok, want)
	}
	clk.Advance(4 * time.Second)
	if isClosed(m.Done()) {
		t.Fatal("Done closed 1s before the deadline")
	}
	clk.Advance(time.Second)
	if !isClosed(m.Done()) {
		t.Fatal("Done not closed at the deadline")
	}
}

func TestCloseStopsTimer(t *testing.T) {
	clk := newFakeClock()
	m, _ := New(Config{DrainTime: time.Second, Clock: clk})
	m.Start()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	clk.Advance(time.Hour)
	if isClosed(m.Done()) {
		t.Fatal("Done closed after Close stopped the timer")
	}
	if m.Start() {
		t.Fatal("Start after Close = true, want false")
	}
}

// TestGradualProbability checks the share of DrainClose()==true at several
// points of the drain against elapsed/drain-time with a seeded source.
func TestGradualProbability(t *testing.T) {
	const n = 20000
	for _, frac := range []float64{0.1, 0.25, 0.5, 0.75, 0.9} {
		clk := newFakeClock()
		r := rand.New(rand.NewPCG(1, 2))
		m, _ := New(Config{DrainTime: 100 * time.Second, Clock: clk, Rand: r.Float64})
		m.Start()
		clk.Advance(time.Duration(frac * float64(100*time.Second)))
		closes := 0
		for range n {
			if m.DrainClose() {
				closes++
			}
		}
		got := float64(closes) / n
		// 5 standard deviations of a binomial share: fails by chance ~never,
		// and always for a wrong formula (e.g. 1-frac or frac²).
		tol := 5 * math.Sqrt(frac*(1-frac)/n)
		if math.Abs(got-frac) > tol {
			t.Errorf("at %.0f%% of the drain: closed %.4f of connections, want %.4f ± %.4f", frac*100, got, frac, tol)
		}
		m.Close()
	}
}

func TestHTTPHandler(t *testing.T) {
	clk := newFakeClock()
	m, _ := New(Config{DrainTime: time.Second, Strategy: Immediate, Clock: clk})
	h := m.HTTPHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
	for _, tc := range []struct {
		name     string
		drain    bool
		protoMaj int
		want     string
	}{
		{"http1 idle", false, 1, ""},
		{"http1 draining", true, 1, "close"},
		{"http2 draining", true, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.drain {
				m.Start()
			}
			r := httptest.NewRequest("GET", "/", nil)
			r.ProtoMajor = tc.protoMaj
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if got := w.Header().Get("Connection"); got != tc.want {
				t.Fatalf("Connection header = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestShutdownHTTP runs a real server: a keep-alive client is told to close
// while draining, an in-flight request finishes, and ShutdownHTTP returns once
// the drain time is over.
func TestShutdownHTTP(t *testing.T) {
	m, _ := New(Config{DrainTime: 200 * time.Millisecond, Strategy: Immediate})
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-release })
	srv := httptest.NewUnstartedServer(m.HTTPHandler(mux))
	srv.Start()
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Close {
		t.Fatal("response before drain asks to close the connection")
	}

	slow := make(chan error, 1)
	go func() {
		resp, err := http.Get(srv.URL + "/slow")
		if err == nil {
			resp.Body.Close()
		}
		slow <- err
	}()

	m.Start()
	resp, err = http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !resp.Close {
		t.Fatal("response while draining does not carry Connection: close")
	}

	shut := make(chan error, 1)
	go func() { shut <- m.ShutdownHTTP(context.Background(), srv.Config) }()
	<-m.Done()
	close(release)
	if err := <-slow; err != nil {
		t.Fatalf("in-flight request during shutdown: %v", err)
	}
	if err := <-shut; err != nil {
		t.Fatalf("ShutdownHTTP: %v", err)
	}
}

func TestShutdownHTTPContext(t *testing.T) {
	m, _ := New(Config{DrainTime: time.Hour})
	m.Start()
	defer m.Close()
	srv := &http.Server{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.ShutdownHTTP(ctx, srv); !errors.Is(err, context.Canceled) {
		t.Fatalf("ShutdownHTTP with a canceled context = %v, want context.Canceled", err)
	}
}
