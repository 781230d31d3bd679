package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Config says what load to offer.
type Config struct {
	URL       string        // target, e.g. http://127.0.0.1:10000/
	Rate      int           // requests per second, > 0
	Duration  time.Duration // how long to offer load, > 0
	KeepAlive bool          // reuse connections; false opens a new connection per request
	Timeout   time.Duration // per request; default 5s
	// MaxInFlight bounds concurrent requests; a request that cannot start
	// because of it is counted in Result.Skipped. Default 2048.
	MaxInFlight int
	// DisableRetries stops net/http from silently retrying an idempotent
	// request whose reused connection was closed under it: with it set, a
	// keep-alive connection closed by a draining server counts as a reset.
	DisableRetries bool
}

// Result counts what happened to every request that was due.
type Result struct {
	Sent    int64 // requests started
	OK      int64 // 2xx responses read to the end
	Refused int64 // ECONNREFUSED
	Reset   int64 // ECONNRESET, EPIPE, or the connection closed before a response
	Timeout int64 // no complete response within Config.Timeout
	Non2xx  int64 // a response with a status outside 200-299
	Other   int64 // anything else; see Errors
	Skipped int64 // due but not started because MaxInFlight requests were already running

	// Errors holds up to 20 distinct messages of Other (and of the first
	// few of each class), for diagnosis.
	Errors []string
	// P50, P99 and Max are latencies of the OK requests.
	P50, P99, Max time.Duration

	// Failures has one record per failed request (up to maxFailures), so
	// that each loss can be given a cause.
	Failures []Failure
	// Generations are the server generations that answered, by pid, in the
	// order they were first seen.
	Generations []GenSeen
}

// Failure is one failed request.
type Failure struct {
	Start, End time.Time
	Class      string // refused, reset, timeout, non2xx, other
	Msg        string
	// Reused is true when the request went on a kept-alive connection;
	// ConnPID is then the pid of the generation that last answered on it
	// (0 when unknown, e.g. a fresh connection).
	Reused  bool
	ConnPID int
	Local   string // the client's address of the connection, when known
	// NoConnInfo marks a failure recorded by another client that does not
	// say which connection it used (the peer harness's vegeta).
	NoConnInfo bool
}

// GenSeen is a server generation as the client saw it.
type GenSeen struct {
	PID       int
	FirstSeen time.Time // first response from it
	LastSeen  time.Time
	OK        int64
}

const maxFailures = 10_000

// Failed is the number of requests that did not get a 2xx response, or
// were not even started.
func (r Result) Failed() int64 {
	return r.Refused + r.Reset + r.Timeout + r.Non2xx + r.Other + r.Skipped
}

func (r Result) String() string {
	return fmt.Sprintf("sent=%d ok=%d refused=%d reset=%d timeout=%d non2xx=%d other=%d skipped=%d p50=%v p99=%v max=%v",
		r.Sent, r.OK, r.Refused, r.Reset, r.Timeout, r.Non2xx, r.Other, r.Skipped, r.P50, r.P99, r.Max)
}

// Run offers the configured load and returns when every started request has
// finished. It stops issuing new requests early if ctx is cancelled.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.check(); err != nil {
		return Result{}, err
	}
	req, err := http.NewRequest(http.MethodGet, cfg.URL, nil)
	if err != nil {
		return Result{}, fmt.Errorf("loadgen: url %q: %w", cfg.URL, err)
	}
	client, closeIdle := cfg.client()
	defer closeIdle()

	var (
		c        counters
		wg       sync.WaitGroup
		sem      = make(chan struct{}, cfg.MaxInFlight)
		interval = time.Second / time.Duration(cfg.Rate)
		total    = int64(cfg.Duration / interval)
		start    = time.Now()
	)
	for i := int64(0); i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				i = total
				continue
			case <-t.C:
			}
		}
		select {
		case sem <- struct{}{}:
		default:
			c.skipped.Add(1)
			continue
		}
		c.sent.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c.do(client, req)
		}()
	}
	wg.Wait()
	return c.result(), nil
}

// check refuses a rate or duration that is not positive and fills in the
// defaults of Timeout and MaxInFlight.
func (cfg *Config) check() error {
	if cfg.Rate <= 0 {
		return fmt.Errorf("loadgen: rate %d must be positive", cfg.Rate)
	}
	if cfg.Duration <= 0 {
		return fmt.Errorf("loadgen: duration %v must be positive", cfg.Duration)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 2048
	}
	return nil
}

// client is the HTTP client of a run; closeIdle ends its kept connections.
func (cfg *Config) client() (client *http.Client, closeIdle func()) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
		DisableKeepAlives:   !cfg.KeepAlive,
		MaxIdleConnsPerHost: cfg.MaxInFlight,
		ForceAttemptHTTP2:   false,
	}
	var rt http.RoundTripper = tr
	if cfg.DisableRetries {
		rt = noRetry{tr}
	}
	return &http.Client{Transport: rt, Timeout: cfg.Timeout}, tr.CloseIdleConnections
}

// do sends one request and counts its outcome, with the connection it went
// on and the generation that answered.
func (c *counters) do(client *http.Client, req *http.Request) {
	t0 := time.Now()
	var ci connInfo
	trace := &httptrace.ClientTrace{GotConn: func(g httptrace.GotConnInfo) {
		ci.reused = g.Reused
		if g.Conn != nil {
			ci.local = g.Conn.LocalAddr().String()
		}
	}}
	resp, err := client.Do(req.Clone(httptrace.WithClientTrace(context.Background(), trace)))
	var pid int
	if err == nil {
		var body []byte
		body, err = io.ReadAll(io.LimitReader(resp.Body, 4096))
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
		}
		resp.Body.Close()
		pid = generationPID(resp.Header, body)
		if err == nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
			c.fail(classNon2xx, fmt.Sprintf("status %d", resp.StatusCode), t0, ci, pid)
			return
		}
	}
	if err != nil {
		c.fail(classify(err), err.Error(), t0, ci, 0)
		return
	}
	c.ok(t0, time.Now(), ci, pid)
}

// noRetry keeps net/http from replaying a request on a fresh connection
// when a reused one fails: the replay would hide the failure we count.
// net/http replays only idempotent methods, so the request goes as a POST
// with no body; the servers under test answer any method.
type noRetry struct{ t *http.Transport }

func (n noRetry) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Method = http.MethodPost
	return n.t.RoundTrip(r)
}

type class int

const (
	classRefused class = iota
	classReset
	classTimeout
	classNon2xx
	classOther
)

// classify sorts a client error into the class a reload test reports.
func classify(err error) class {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return classRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return classReset
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return classTimeout
	}
	return classOther
}

var classNames = [...]string{classRefused: "refused", classReset: "reset", classTimeout: "timeout", classNon2xx: "non2xx", classOther: "other"}

// connInfo is what the client trace saw of a request's connection.
type connInfo struct {
	reused bool
	local  string
}

// generationPID is the pid of the server generation that answered: an
// X-Pid header (set by the HAProxy and nginx configurations of the peer
// harness), else testproxy's body "epoch E pid P".
func generationPID(h http.Header, body []byte) int {
	if v := h.Get("X-Pid"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	f := strings.Fields(string(body))
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "pid" {
			if n, err := strconv.Atoi(f[i+1]); err == nil {
				return n
			}
		}
	}
	return 0
}

type counters struct {
	sent, skipped atomic.Int64
	mu            sync.Mutex
	byClass       [classOther + 1]int64
	okCount       int64
	lat           []time.Duration
	msgs          map[string]bool
	errs          []string
	failures      []Failure
	connPID       map[string]int // client address -> pid that last answered on it
	gens          map[int]*GenSeen
	genOrder      []int
}

func (c *counters) fail(cl class, msg string, start time.Time, ci connInfo, pid int) {
	end := time.Now()
	c.mu.Lock()
	if len(c.failures) < maxFailures {
		f := Failure{Start: start, End: end, Class: classNames[cl], Msg: msg, Reused: ci.reused, Local: ci.local}
		if ci.reused {
			f.ConnPID = c.connPID[ci.local]
		}
		if pid != 0 {
			f.ConnPID = pid
		}
		c.failures = append(c.failures, f)
	}
	c.mu.Unlock()
	c.record(cl, msg)
}

func (c *counters) record(cl class, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byClass[cl]++
	if c.msgs == nil {
		c.msgs = map[string]bool{}
	}
	if !c.msgs[msg] && len(c.errs) < 20 {
		c.msgs[msg] = true
		c.errs = append(c.errs, msg)
	}
}

func (c *counters) ok(start, end time.Time, ci connInfo, pid int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.okCount++
	c.lat = append(c.lat, end.Sub(start))
	if pid == 0 {
		return
	}
	if ci.local != "" {
		if c.connPID == nil {
			c.connPID = map[string]int{}
		}
		c.connPID[ci.local] = pid
	}
	if c.gens == nil {
		c.gens = map[int]*GenSeen{}
	}
	g := c.gens[pid]
	if g == nil {
		g = &GenSeen{PID: pid, FirstSeen: end}
		c.gens[pid] = g
		c.genOrder = append(c.genOrder, pid)
	}
	if end.Before(g.FirstSeen) {
		g.FirstSeen = end
	}
	if end.After(g.LastSeen) {
		g.LastSeen = end
	}
	g.OK++
}

func (c *counters) result() Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := Result{
		Sent:    c.sent.Load(),
		Skipped: c.skipped.Load(),
		OK:      c.okCount,
		Refused: c.byClass[classRefused],
		Reset:   c.byClass[classReset],
		Timeout: c.byClass[classTimeout],
		Non2xx:  c.byClass[classNon2xx],
		Other:   c.byClass[classOther],
		Errors:  slices.Clone(c.errs),

		Failures: slices.Clone(c.failures),
	}
	for _, pid := range c.genOrder {
		r.Generations = append(r.Generations, *c.gens[pid])
	}
	if n := len(c.lat); n > 0 {
		slices.Sort(c.lat)
		r.P50 = c.lat[n/2]
		r.P99 = c.lat[min(n-1, n*99/100)]
		r.Max = c.lat[n-1]
	}
	return r
}
