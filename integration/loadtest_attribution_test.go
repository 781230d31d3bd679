package integration

import (
	"strings"
	"testing"
	"time"

	"github.com/hotrestart/restarter/integration/loadgen"
)

// The loss attribution of the load tests, on made-up lives: each failure
// gets the cause its generation's events imply.
func TestLossCause(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	gens := map[int]*genLife{
		100: {Epoch: 3, PID: 100, Started: at(0), Ready: at(20), Drain: at(1000), Exited: at(1200)}, // cut 200ms into a 1s drain
		101: {Epoch: 4, PID: 101, Started: at(980), Ready: at(1000), Drain: at(3000), Exited: at(5000)},
	}
	for _, tc := range []struct {
		name string
		f    loadgen.Failure
		want string
	}{
		{"cut by the three-generation rule", loadgen.Failure{Start: at(1190), End: at(1201), Class: "reset", Reused: true, ConnPID: 100},
			"reset on a kept-alive connection: its generation was terminated before its drain time was over"},
		{"idle close at drain end", loadgen.Failure{Start: at(3990), End: at(4001), Class: "other", Reused: true, ConnPID: 101},
			"other on a kept-alive connection: closed by its generation at the end of the drain time"},
		{"terminated at parent shutdown", loadgen.Failure{Start: at(4990), End: at(4999), Class: "reset", Reused: true, ConnPID: 101},
			"its generation was terminated at parent-shutdown time"},
		{"fresh connection, by time", loadgen.Failure{Start: at(1150), End: at(1210), Class: "reset"},
			"reset on a fresh connection (generation guessed by time: the nearest state change): its generation was terminated before"},
		{"nothing near", loadgen.Failure{Start: at(2400), End: at(2500), Class: "timeout"},
			"timeout on a fresh connection: no generation changed state within 100ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, detail := lossCause(tc.f, gens, time.Second)
			if !strings.Contains(got, tc.want) {
				t.Errorf("got cause %q (%s), want it to contain %q", got, detail, tc.want)
			}
		})
	}
}

func TestSighupLatencies(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	starts := map[int]time.Time{1: ms(0), 2: ms(105), 3: ms(2000)}
	seen := []loadgen.GenSeen{{PID: 1, FirstSeen: ms(30)}, {PID: 2, FirstSeen: ms(130)}, {PID: 3, FirstSeen: ms(2025)}}
	// SIGHUP at 100 starts pid 2 at once; SIGHUPs at 500 and 900 were
	// held and coalesced into pid 3.
	total, own := sighupLatencies([]time.Time{ms(100), ms(500), ms(900)}, seen, func(pid int) (time.Time, bool) {
		st, ok := starts[pid]
		return st, ok
	})
	want := []time.Duration{30 * time.Millisecond, 1525 * time.Millisecond, 1125 * time.Millisecond}
	wantOwn := []time.Duration{25 * time.Millisecond, 25 * time.Millisecond, 25 * time.Millisecond}
	for i := range want {
		if i >= len(total) || total[i] != want[i] || own[i] != wantOwn[i] {
			t.Fatalf("got %v / %v, want %v / %v", total, own, want, wantOwn)
		}
	}
}
