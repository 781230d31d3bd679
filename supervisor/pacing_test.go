package supervisor

import (
	"strings"
	"testing"
	"time"
)

func TestDecidePacing(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	const bound = 3 * time.Second
	ready := func(e uint32) pacingGen { return pacingGen{epoch: e, pid: 100 + int(e), state: StateReady} }
	draining := func(e uint32) pacingGen { return pacingGen{epoch: e, pid: 100 + int(e), state: StateDraining} }
	for _, tc := range []struct {
		name       string
		p          Pacing
		gens       []pacingGen
		next       uint32
		since, now time.Time
		wantHold   bool
		wantForced bool
		wantRule   string
		wantWait   uint32
	}{
		{name: "one serving generation", p: PacingProtectDrain, gens: []pacingGen{ready(3)}, next: 4, now: t0},
		{name: "draining one would be cut", p: PacingProtectDrain, gens: []pacingGen{draining(3), ready(4)}, next: 5, now: t0,
			wantHold: true, wantRule: "protect-drain", wantWait: 3},
		{name: "still held before the bound", p: PacingProtectDrain, gens: []pacingGen{draining(3), ready(4)}, next: 5,
			since: t0, now: t0.Add(bound - time.Millisecond), wantHold: true, wantRule: "protect-drain", wantWait: 3},
		{name: "bound reached: forced", p: PacingProtectDrain, gens: []pacingGen{draining(3), ready(4)}, next: 5,
			since: t0, now: t0.Add(bound), wantForced: true},
		{name: "three live: the socket slot rule first", p: PacingProtectDrain, gens: []pacingGen{draining(4), draining(5), ready(6)}, next: 7, now: t0,
			wantHold: true, wantRule: "socket-slot", wantWait: 4},
		{name: "envoy policy starts at once", p: PacingEnvoy, gens: []pacingGen{draining(3), ready(4)}, next: 5, now: t0},
		{name: "none never holds", p: PacingNone, gens: []pacingGen{draining(3), draining(4), ready(5)}, next: 6, now: t0},
		{name: "socket slot taken: envoy policy waits", p: PacingEnvoy, gens: []pacingGen{draining(3), draining(4), ready(5)}, next: 6, now: t0,
			wantHold: true, wantRule: "socket-slot", wantWait: 3},
		{name: "socket slot has no bound", p: PacingProtectDrain, gens: []pacingGen{draining(3), draining(4), ready(5)}, next: 6,
			since: t0, now: t0.Add(time.Hour), wantHold: true, wantRule: "socket-slot", wantWait: 3},
		{name: "nothing ready: a rollback target is not protected", p: PacingProtectDrain,
			gens: []pacingGen{draining(3), {epoch: 4, pid: 104, state: StateStarting}}, next: 4, now: t0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := decidePacing(tc.p, tc.gens, tc.next, tc.since, tc.now, bound)
			if d.hold != tc.wantHold || d.forced != tc.wantForced {
				t.Fatalf("got hold=%v forced=%v, want hold=%v forced=%v (%+v)", d.hold, d.forced, tc.wantHold, tc.wantForced, d)
			}
			if !d.hold {
				return
			}
			if d.held.Rule != tc.wantRule || d.held.Epoch != tc.wantWait {
				t.Errorf("got rule %q waiting for %d, want %q waiting for %d", d.held.Rule, d.held.Epoch, tc.wantRule, tc.wantWait)
			}
			if !strings.Contains(d.held.Reason, "epoch") {
				t.Errorf("reason %q does not name the epoch", d.held.Reason)
			}
			wantSince := tc.since
			if wantSince.IsZero() {
				wantSince = tc.now
			}
			if !d.held.Since.Equal(wantSince) {
				t.Errorf("got since %v, want %v", d.held.Since, wantSince)
			}
			if tc.wantRule == "protect-drain" && !d.held.Until.Equal(wantSince.Add(bound)) {
				t.Errorf("got until %v, want %v", d.held.Until, wantSince.Add(bound))
			}
		})
	}
}

func TestParsePacing(t *testing.T) {
	for _, s := range []string{"protect-drain", "envoy", "none"} {
		if p, err := ParsePacing(s); err != nil || string(p) != s {
			t.Errorf("ParsePacing(%q) = %q, %v; want %q, nil", s, p, err, s)
		}
	}
	for _, s := range []string{"", "Envoy", "protect", "auto"} {
		if _, err := ParsePacing(s); err == nil || !strings.Contains(err.Error(), "protect-drain, envoy or none") {
			t.Errorf("ParsePacing(%q): got %v, want an error naming the choices", s, err)
		}
	}
}

func TestNewRejectsBadPacing(t *testing.T) {
	for _, cfg := range []Config{
		{Argv: []string{"/bin/true"}, Pacing: "sometimes"},
		{Argv: []string{"/bin/true"}, MaxReloadDelay: -time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v): got nil error, want one", cfg)
		}
	}
}
