package integration

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/integration/loadgen"
)

// startBurners starts n CPU-burning processes (`yes >/dev/null`), the
// "busy machine" of the load tests, and stops them (by their own pids) when
// the test ends. Skips when yes(1) is missing.
func startBurners(t testing.TB, n int) {
	t.Helper()
	if n == 0 {
		return
	}
	path, err := exec.LookPath("yes")
	if err != nil {
		t.Skipf("busy-machine variant needs yes(1): %v", err)
	}
	for i := 0; i < n; i++ {
		cmd := exec.Command(path) // stdout nil: /dev/null
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", path, err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
		})
	}
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// genLife is one generation's life as the restarter's status told it.
type genLife struct {
	Epoch, PID                    int
	Started, Ready, Drain, Exited time.Time
	ExitStatus                    int
}

// lifeRecorder polls a restarter's status for the whole test and keeps every
// generation's start, ready, drain and exit times by pid: status lists only
// the last few exited generations, and a load test reloads many times.
type lifeRecorder struct {
	r     *Proc
	drain time.Duration // the restarter's --drain-time: drain start = drain_until - drain
	mu    sync.Mutex
	gens  map[int]*genLife
}

// recordLives starts recording r's generations until the test ends.
func recordLives(t testing.TB, r *Proc, drain time.Duration) *lifeRecorder {
	l := &lifeRecorder{r: r, drain: drain, gens: map[int]*genLife{}}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			l.poll()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return l
}

func (l *lifeRecorder) poll() {
	st, err := l.r.Status()
	if err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, g := range st.Generations {
		x := l.gens[g.PID]
		if x == nil {
			x = &genLife{Epoch: int(g.Epoch), PID: g.PID}
			l.gens[g.PID] = x
		}
		x.Started = g.Started
		if g.Ready != nil {
			x.Ready = *g.Ready
		}
		if g.DrainUntil != nil {
			x.Drain = g.DrainUntil.Add(-l.drain)
		}
		if g.Exited != nil && g.ExitStatus != nil {
			x.Exited, x.ExitStatus = *g.Exited, *g.ExitStatus
		}
	}
}

// lives is what was recorded, with one last look at the status.
func (l *lifeRecorder) lives() map[int]*genLife {
	l.poll()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[int]*genLife, len(l.gens))
	for pid, g := range l.gens {
		c := *g
		out[pid] = &c
	}
	return out
}

// lossCause explains one failed request from the test's own records: which
// generation it went to (by the pid that last answered on its connection,
// or for a fresh connection the generation that exited or began draining
// nearest to it), and what happened to that generation around the failure.
// It returns a cause without numbers (to group by) and the details.
func lossCause(f loadgen.Failure, gens map[int]*genLife, drain time.Duration) (cause, detail string) {
	const near = 100 * time.Millisecond
	conn := "fresh connection"
	switch {
	case f.NoConnInfo:
		conn = "connection the client does not name"
	case f.Reused:
		conn = "kept-alive connection"
	}
	head := f.Class + " on a " + conn
	g := gens[f.ConnPID]
	if g == nil {
		best := time.Duration(1<<62 - 1)
		for _, o := range gens {
			var drainEnd time.Time
			if !o.Drain.IsZero() {
				drainEnd = o.Drain.Add(drain)
			}
			for _, at := range []time.Time{o.Exited, o.Drain, drainEnd} {
				if at.IsZero() {
					continue
				}
				if d := absDur(at.Sub(f.End)); d < best {
					best, g = d, o
				}
			}
		}
		if g == nil || best > near {
			return head + ": no generation changed state within 100ms", f.Msg
		}
		head += " (generation guessed by time: the nearest state change)"
	}
	detail = fmt.Sprintf("epoch %d pid %d; failed at %s after %v: %s", g.Epoch, g.PID, f.End.Format("15:04:05.000"),
		f.End.Sub(f.Start).Round(time.Millisecond), f.Msg)
	switch {
	case !g.Exited.IsZero() && absDur(g.Exited.Sub(f.End)) <= near:
		into := "?"
		if !g.Drain.IsZero() {
			into = g.Exited.Sub(g.Drain).Round(10 * time.Millisecond).String()
		}
		detail += fmt.Sprintf("; it exited %v from the failure, %s into its drain", g.Exited.Sub(f.End).Round(time.Millisecond), into)
		if !g.Drain.IsZero() && g.Exited.Sub(g.Drain) < drain {
			return head + ": its generation was terminated before its drain time was over (the three-generation rule)", detail
		}
		return head + ": its generation was terminated at parent-shutdown time", detail
	case !g.Drain.IsZero() && absDur(g.Drain.Add(drain).Sub(f.End)) <= near:
		return head + ": closed by its generation at the end of the drain time", detail
	case !g.Drain.IsZero() && f.End.After(g.Drain):
		return head + ": while its generation was draining", detail
	}
	return head + ": while its generation was serving", detail
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// causes groups the failures by cause, most frequent first, with the first
// failure of each as an example.
func causes(fs []loadgen.Failure, gens map[int]*genLife, drain time.Duration) []string {
	count := map[string]int{}
	sample := map[string]string{}
	for _, f := range fs {
		c, d := lossCause(f, gens, drain)
		if count[c] == 0 {
			sample[c] = d
		}
		count[c]++
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return count[keys[i]] > count[keys[j]] })
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%d × %s [first: %s]", count[k], k, sample[k]))
	}
	return out
}

// sighupLatencies: for each SIGHUP, the time until a generation started
// after it first answered a request of the load (the "reload latency" of
// the issue: SIGHUP to the new generation answering), and that
// generation's own start-to-answer time (the latency without any hold).
// Coalesced SIGHUPs share a generation; each counts from its own signal.
// started says when a pid was started (false: unknown).
func sighupLatencies(sighups []time.Time, seen []loadgen.GenSeen, started func(pid int) (time.Time, bool)) (total, own []time.Duration) {
	type gen struct{ start, first time.Time }
	var gs []gen
	for _, g := range seen {
		if st, ok := started(g.PID); ok {
			gs = append(gs, gen{st, g.FirstSeen})
		}
	}
	slices.SortFunc(gs, func(a, b gen) int { return a.start.Compare(b.start) })
	for _, h := range sighups {
		h = h.Truncate(time.Millisecond) // the events' resolution
		for _, g := range gs {
			if !g.start.Before(h) {
				total = append(total, g.first.Sub(h))
				own = append(own, g.first.Sub(g.start))
				break
			}
		}
	}
	return total, own
}
