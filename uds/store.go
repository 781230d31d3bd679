package uds

import (
	"sync"
	"sync/atomic"
)

// GaugeImport says what a child does with a parent's value of a gauge.
type GaugeImport int

const (
	// GaugeAccumulate adds the parent's value as a parent part, dropped
	// when the parent terminates.
	GaugeAccumulate GaugeImport = iota
	// GaugeNeverImport ignores the parent's value (and never exports it).
	GaugeNeverImport
	// GaugeRetain is GaugeAccumulate whose parent part is kept when the
	// parent terminates (server.hot_restart_generation).
	GaugeRetain
)

// Store is a stats store with Envoy's hot-restart semantics: counters travel
// as deltas since the last Export and are added on Import; gauges travel as
// full values and are kept as a parent part that Import replaces and
// ParentTerminated drops (except GaugeRetain). Safe for concurrent use.
type Store struct {
	mu       sync.RWMutex
	counters map[string]*Counter
	gauges   map[string]*Gauge
}

// Counter is a monotonic counter.
type Counter struct {
	v        atomic.Uint64 // own increments plus imported deltas
	exported uint64        // value at the last Export, under Store.mu
}

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Value is the counter's own count plus everything imported from parents.
func (c *Counter) Value() uint64 { return c.v.Load() }

// Gauge is a value that goes up and down, plus a parent part.
type Gauge struct {
	mode       atomic.Int32 // GaugeImport
	fromImport bool         // created by Import, mode not chosen yet; under Store.mu
	own        atomic.Int64
	parent     atomic.Uint64
}

// Set sets the gauge's own part to v.
func (g *Gauge) Set(v uint64) { g.own.Store(int64(v)) }

// Add adds d (possibly negative) to the gauge's own part.
func (g *Gauge) Add(d int64) { g.own.Add(d) }

// Value is the own part plus the parent part, never below zero.
func (g *Gauge) Value() uint64 {
	v := g.own.Load() + int64(g.parent.Load())
	if v < 0 {
		return 0
	}
	return uint64(v)
}

// Mode returns the gauge's import mode.
func (g *Gauge) Mode() GaugeImport { return GaugeImport(g.mode.Load()) }

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{counters: make(map[string]*Counter), gauges: make(map[string]*Gauge)}
}

// Counter returns the counter called name, creating it.
func (s *Store) Counter(name string) *Counter {
	s.mu.RLock()
	c, ok := s.counters[name]
	s.mu.RUnlock()
	if ok {
		return c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok = s.counters[name]; !ok {
		c = &Counter{}
		s.counters[name] = c
	}
	return c
}

// Gauge returns the gauge called name, creating it with mode. A gauge that
// already exists keeps its mode unless it was created by Import (then it
// takes mode; a switch to GaugeNeverImport drops the parent part).
func (s *Store) Gauge(name string, mode GaugeImport) *Gauge {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.gauges[name]
	switch {
	case !ok:
		g = &Gauge{}
		g.mode.Store(int32(mode))
		s.gauges[name] = g
	case g.fromImport:
		g.fromImport = false
		g.mode.Store(int32(mode))
		if mode == GaugeNeverImport {
			g.parent.Store(0)
		}
	}
	return g
}

// Export is the parent side of a stats pull: each counter's growth since the
// previous Export (zero deltas omitted, like Envoy), and every gauge that is
// not GaugeNeverImport at its full value.
func (s *Store) Export(memAllocated, numConns uint64) Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		MemoryAllocated: memAllocated,
		NumConnections:  numConns,
		CounterDeltas:   make(map[string]uint64),
		Gauges:          make(map[string]uint64, len(s.gauges)),
	}
	for name, c := range s.counters {
		v := c.v.Load()
		if d := v - c.exported; d > 0 {
			st.CounterDeltas[name] = d
		}
		c.exported = v
	}
	for name, g := range s.gauges {
		if g.Mode() != GaugeNeverImport {
			st.Gauges[name] = g.Value()
		}
	}
	return st
}

// Import is the child side: counter deltas are added, each imported gauge's
// parent part is replaced by the parent's value. Unknown stats are created
// (gauges as GaugeAccumulate); GaugeNeverImport gauges are skipped.
func (s *Store) Import(st Stats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, d := range st.CounterDeltas {
		c, ok := s.counters[name]
		if !ok {
			c = &Counter{}
			s.counters[name] = c
		}
		c.v.Add(d)
		// Imported growth is not this process's own: it still goes to our
		// own child at our next Export, as Envoy's latch does.
	}
	for name, v := range st.Gauges {
		g, ok := s.gauges[name]
		if !ok {
			g = &Gauge{fromImport: true}
			s.gauges[name] = g
		}
		if g.Mode() == GaugeNeverImport {
			continue
		}
		g.parent.Store(v)
	}
}

// ParentTerminated drops the parent part of every gauge except GaugeRetain
// gauges, whose parent part becomes their own.
func (s *Store) ParentTerminated() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, g := range s.gauges {
		p := g.parent.Swap(0)
		if g.Mode() == GaugeRetain {
			g.own.Add(int64(p))
		}
	}
}

// Snapshot returns every stat's current value by name, for /stats.
func (s *Store) Snapshot() map[string]uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make(map[string]uint64, len(s.counters)+len(s.gauges))
	for name, c := range s.counters {
		out[name] = c.Value()
	}
	for name, g := range s.gauges {
		out[name] = g.Value()
	}
	return out
}
