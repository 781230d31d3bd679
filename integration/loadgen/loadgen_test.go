package loadgen

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func run(t *testing.T, cfg Config) Result {
	t.Helper()
	if cfg.Rate == 0 {
		cfg.Rate = 200
	}
	if cfg.Duration == 0 {
		cfg.Duration = 250 * time.Millisecond
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestRunCountsEachClass(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer bad.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	reset := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}))
	defer reset.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + ln.Addr().String() + "/"
	ln.Close()

	tests := []struct {
		name string
		cfg  Config
		get  func(Result) int64
	}{
		{"ok", Config{URL: ok.URL}, func(r Result) int64 { return r.OK }},
		{"ok keep-alive", Config{URL: ok.URL, KeepAlive: true, DisableRetries: true}, func(r Result) int64 { return r.OK }},
		{"non2xx", Config{URL: bad.URL}, func(r Result) int64 { return r.Non2xx }},
		{"refused", Config{URL: closedURL}, func(r Result) int64 { return r.Refused }},
		{"timeout", Config{URL: slow.URL, Timeout: 100 * time.Millisecond, Rate: 50}, func(r Result) int64 { return r.Timeout }},
		{"reset", Config{URL: reset.URL}, func(r Result) int64 { return r.Reset }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := run(t, tt.cfg)
			if res.Sent == 0 {
				t.Fatalf("sent nothing: %v", res)
			}
			if got := tt.get(res); got != res.Sent {
				t.Fatalf("got %d of %d in the expected class: %v %q", got, res.Sent, res, res.Errors)
			}
			if tt.name == "ok" || tt.name == "ok keep-alive" {
				if res.Failed() != 0 || res.P99 == 0 {
					t.Fatalf("got %v, want no failure and latencies", res)
				}
			} else if res.Failed() != res.Sent {
				t.Fatalf("Failed() = %d, want %d", res.Failed(), res.Sent)
			}
		})
	}
}

func TestRunIsOpenLoop(t *testing.T) {
	// A server that stalls every request must not lower the offered load:
	// all due requests are still sent.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(300 * time.Millisecond)
	}))
	defer slow.Close()
	res := run(t, Config{URL: slow.URL, Rate: 100, Duration: 500 * time.Millisecond})
	if want := int64(50); res.Sent != want || res.OK != want {
		t.Fatalf("got sent=%d ok=%d, want %d each: %v", res.Sent, res.OK, want, res)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "http://127.0.0.1:1/", Rate: 0, Duration: time.Second},
		{URL: "http://127.0.0.1:1/", Rate: 1, Duration: 0},
		{URL: "http://[::1", Rate: 1, Duration: time.Second},
	} {
		if _, err := Run(context.Background(), cfg); err == nil {
			t.Errorf("Run(%+v) = nil error, want one", cfg)
		}
	}
}

func TestParseNetstat(t *testing.T) {
	in := "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPHPHits\n" +
		"TcpExt: 0 7 9 100\n" +
		"IpExt: InNoRoutes\nIpExt: 0\n"
	s, err := parseNetstat(bufio.NewScanner(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	if s.ListenOverflows != 7 || s.ListenDrops != 9 {
		t.Fatalf("got %+v, want overflows 7 drops 9", s)
	}
	if _, err := parseNetstat(bufio.NewScanner(strings.NewReader("TcpExt: A B\nTcpExt: 1\n"))); err == nil {
		t.Fatal("mismatched lines: got nil error")
	}
	live, err := ReadListenStats()
	if err != nil {
		t.Fatalf("ReadListenStats on this machine: %v", err)
	}
	if d := live.Sub(live); d != (ListenStats{}) {
		t.Fatalf("Sub of itself = %+v", d)
	}
}
