package integration

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
)

// stopLoad is what a few keep-alive clients saw around a stop.
type stopLoad struct {
	ok, okAfter, refused, cut, connClose int
	inflightAtStop, inflightOK           int
}

// TestGracefulStop: Envoy (testproxy --term-immediate) cuts every
// connection on SIGTERM. A plain stop of the restarter therefore cuts the
// requests in flight; with --stop-drain-time the serving generation drains
// first (POST /drain_listeners?graceful): requests in flight finish, kept-alive
// connections get their responses with "Connection: close", and the TERM
// comes once no connection is left, before the stop drain time is over.
func TestGracefulStop(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"plain", nil},
		{"graceful", []string{"--stop-drain-time", "10s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newProxyEnv(t)
			flags := append([]string{"--drain-time", "1s", "--parent-shutdown-time", "2s", "--term-wait", "10s"}, tc.flags...)
			r := startRestarter(t, env.RestarterArgs(flags, "--term-immediate", "--drain-strategy", "immediate")...)
			waitServing(t, env, 0, 20*time.Second)
			res, took, drained := loadAcrossStop(t, env, r)
			code, err := r.Wait(time.Second)
			t.Logf("%s stop: took %v; in flight at SIGTERM %d (finished %d); after SIGTERM: %d ok (%d with Connection: close), %d cut, %d refused; exit %d",
				tc.name, took.Round(time.Millisecond), res.inflightAtStop, res.inflightOK, res.okAfter, res.connClose, res.cut, res.refused, code)
			if err != nil || code != 0 {
				t.Fatalf("restarter exit %d (%v), want 0", code, err)
			}
			if res.inflightAtStop == 0 {
				t.Fatal("no request was in flight at SIGTERM: the test proves nothing")
			}
			switch tc.name {
			case "plain":
				// Go's client replays a cut GET once, so a cut request may
				// end as "refused": count what did not finish.
				if res.inflightOK == res.inflightAtStop {
					t.Errorf("a plain stop let all %d requests in flight finish (the proxy should cut them)", res.inflightAtStop)
				}
			case "graceful":
				if !drained {
					t.Error("the proxy never reported DRAINING during the graceful stop")
				}
				if res.cut != 0 || res.inflightOK != res.inflightAtStop {
					t.Errorf("graceful stop cut %d requests; %d of %d in flight finished", res.cut, res.inflightOK, res.inflightAtStop)
				}
				if res.connClose == 0 {
					t.Error("no response told a kept-alive client to close during the drain")
				}
				if took >= 10*time.Second {
					t.Errorf("the stop took %v: it did not end when the connections were gone", took)
				}
			}
		})
	}
}

// loadAcrossStop runs 4 keep-alive clients (300 ms requests back to back),
// SIGTERMs the restarter once each has been served twice, and returns
// what they saw until the restarter exited.
func loadAcrossStop(t *testing.T, env *ProxyEnv, r *Proc) (stopLoad, time.Duration, bool) {
	const workers = 4
	var (
		mu       sync.Mutex
		res      stopLoad
		served   [workers]atomic.Int32
		stopAt   atomic.Int64 // unix nanos of the SIGTERM
		finished atomic.Bool
		wg       sync.WaitGroup
	)
	for i := 0; i < workers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer c.CloseIdleConnections()
			for !finished.Load() {
				start := time.Now()
				resp, err := c.Get(env.URL("/slow?ms=300"))
				var body error
				if err == nil {
					_, body = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if body == nil && resp.StatusCode != 200 {
						body = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				end := time.Now()
				s := stopAt.Load()
				inflight := s != 0 && start.UnixNano() < s && end.UnixNano() > s
				after := s != 0 && end.UnixNano() > s
				mu.Lock()
				switch {
				case err == nil && body == nil:
					res.ok++
					served[i].Add(1)
					if after {
						res.okAfter++
						if resp.Close {
							res.connClose++
						}
					}
					if inflight {
						res.inflightOK++
					}
				case errors.Is(err, syscall.ECONNREFUSED):
					res.refused++
				default:
					if after {
						res.cut++
					}
				}
				if inflight {
					res.inflightAtStop++
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}(i)
	}
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		all := true
		for i := range served {
			all = all && served[i].Load() >= 2
		}
		if all {
			break
		}
		if time.Now().After(end) {
			finished.Store(true)
			wg.Wait()
			t.Fatalf("the clients were not served before the stop: %+v", res)
		}
	}
	start := time.Now()
	stopAt.Store(start.UnixNano())
	if err := r.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	drained := false
	for !r.Exited() && time.Since(start) < 30*time.Second {
		if st, _, err := getServerInfo(env.Admin); err == nil && st == "DRAINING" {
			drained = true
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	finished.Store(true)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return res, took, drained
}

// TestGracefulStopSecondSignal: while a graceful stop drains (an open
// connection keeps it waiting), SIGHUP starts no generation and a second
// SIGTERM stops at once instead of waiting out --stop-drain-time.
func TestGracefulStopSecondSignal(t *testing.T) {
	env := newProxyEnv(t)
	r := startRestarter(t, env.RestarterArgs([]string{"--drain-time", "30s", "--parent-shutdown-time", "40s",
		"--stop-drain-time", "60s"}, "--term-immediate")...)
	waitServing(t, env, 0, 20*time.Second)
	c, err := net.Dial("tcp", env.Listen) // an idle connection: the drain cannot end by itself
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := r.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, func() error {
		if st, _, err := getServerInfo(env.Admin); err != nil || st != "DRAINING" {
			return fmt.Errorf("server_info state %q (%v), want DRAINING", st, err)
		}
		return nil
	})
	if err := r.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// Ignored: nothing to wait for, so a settle time shows that no reload
	// was asked for or started.
	testutil.Settle()
	if st, err := r.Status(); err != nil || st.Reloads.Requested != 0 || st.NextEpoch != 1 || len(st.Generations) != 1 {
		t.Fatalf("after SIGHUP during the graceful stop: status %+v (%v), want no reload and epoch 0 alone", st, err)
	}
	start := time.Now()
	if err := r.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	code, err := r.Wait(20 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("after the second SIGTERM: exit %d (%v), want 0", code, err)
	}
	t.Logf("second SIGTERM: exited %v later (stop drain time 60s)", time.Since(start).Round(time.Millisecond))
}
