package integration

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/control"
	"github.com/hotrestart/restarter/internal/testutil"
)

type slowResult struct {
	status int
	body   string
	err    error
	at     time.Time
}

// startSlow sends GET /slow?ms=ms on its own connection and returns a
// channel with the outcome; it returns once the proxy has counted the
// request (so it is in flight on the generation serving now).
func startSlow(t *testing.T, env *ProxyEnv, ms int) <-chan slowResult {
	t.Helper()
	before := statValue(t, env.Admin, "http.requests")
	out := make(chan slowResult, 1)
	c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		resp, err := c.Get(env.URL(fmt.Sprintf("/slow?ms=%d", ms)))
		if err != nil {
			out <- slowResult{err: err, at: time.Now()}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		out <- slowResult{status: resp.StatusCode, body: string(b), err: err, at: time.Now()}
	}()
	testutil.WaitFor(t, 10*time.Second, func() error {
		if n := statValue(t, env.Admin, "http.requests"); n <= before {
			return fmt.Errorf("http.requests %d: slow request not in flight yet", n)
		}
		return nil
	})
	return out
}

// statValue reads one stat from the admin /stats.
func statValue(t *testing.T, admin, name string) uint64 {
	t.Helper()
	b, err := getBody("http://" + admin + "/stats")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(b, "\n") {
		var v uint64
		if n, _ := fmt.Sscanf(l, name+": %d", &v); n == 1 && strings.HasPrefix(l, name+":") {
			return v
		}
	}
	return 0
}

// TestInflightRequestsAcrossReload: a request in flight on the old
// generation when a reload completes finishes there with 200; one slower
// than parent-shutdown time is cut at about parent-shutdown time.
func TestInflightRequestsAcrossReload(t *testing.T) {
	skipUnlessLinux(t)
	const (
		pst   = 4 * time.Second
		grace = 3 * time.Second
	)
	env := newProxyEnv(t)
	r := startRestarter(t, env.RestarterArgs([]string{"--drain-time", "2s", "--parent-shutdown-time", pst.String(),
		"--shutdown-grace", grace.String(), "--term-wait", "5s"})...)
	waitLive(t, env.Admin, 0, 20*time.Second)

	t.Run("finishes on the old generation", func(t *testing.T) {
		// Longer than the drain time, shorter than parent-shutdown time.
		res := startSlow(t, env, 3000)
		if err := r.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitLive(t, env.Admin, 1, 20*time.Second)
		reloaded := time.Now()
		got := <-res
		if got.err != nil || got.status != http.StatusOK {
			t.Fatalf("slow request across the reload: status %d, err %v; want 200", got.status, got.err)
		}
		if !strings.HasPrefix(got.body, "epoch 0 ") || !strings.Contains(got.body, "slept 3000ms") {
			t.Fatalf("got body %q, want it served by epoch 0 after 3000ms", got.body)
		}
		if !got.at.After(reloaded) {
			t.Fatalf("the slow request ended before the reload completed: it proves nothing")
		}
		t.Logf("LOADTEST inflight: 3000ms request finished on epoch 0, %v after epoch 1 went LIVE", got.at.Sub(reloaded).Round(time.Millisecond))
	})

	t.Run("cut at parent-shutdown time", func(t *testing.T) {
		// Epoch 0 may still be draining: let it go so that epoch 1 is
		// the only parent of epoch 2.
		testutil.WaitFor(t, 20*time.Second, func() error {
			if n := len(procsWithArg(env.Bin.Testproxy, env.SocketPath)); n != 1 {
				return fmt.Errorf("%d testproxy generations, want 1", n)
			}
			return nil
		})
		res := startSlow(t, env, 30_000)
		sighup := time.Now()
		if err := r.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitLive(t, env.Admin, 2, 20*time.Second)
		var got slowResult
		select {
		case got = <-res:
		case <-time.After(30 * time.Second):
			t.Fatalf("the 30s request was not cut within 30s of the reload")
		}
		if got.err == nil && got.status == http.StatusOK {
			t.Fatalf("a request longer than parent-shutdown time completed: %q", got.body)
		}
		cut := got.at.Sub(sighup)
		t.Logf("LOADTEST inflight: 30000ms request cut %v after SIGHUP (parent-shutdown %v, backstop at %v + %v grace): %v",
			cut.Round(time.Millisecond), pst, pst, grace, got.err)
		// Generous margin, but before the restarter's backstop: the proxy
		// itself must end its parent at parent-shutdown time.
		if cut < pst-500*time.Millisecond || cut > pst+grace {
			t.Errorf("request cut %v after SIGHUP, want about parent-shutdown time %v (and before the backstop at %v)", cut, pst, pst+grace)
		}
		// The restarter's backstop TERMs an old generation at its
		// successor's ready time plus parent-shutdown time plus grace:
		// epoch 1 must have gone before that, ended by epoch 2.
		st := r.WaitStatus(t, 20*time.Second, "epoch 1 exited", func(st control.Status) error {
			if g := epochGen(st, 1); g == nil || g.Exited == nil {
				return fmt.Errorf("epoch 1: %+v", g)
			}
			return nil
		})
		g1, g2 := epochGen(st, 1), epochGen(st, 2)
		if backstop := g2.Ready.Add(pst + grace); !g1.Exited.Before(backstop) {
			t.Errorf("epoch 1 exited at %v, not before the restarter's backstop at %v: the proxy did not end its parent at parent-shutdown time", *g1.Exited, backstop)
		}
	})
}
