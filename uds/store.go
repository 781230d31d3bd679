package uds

import (
	"sync"
	"sync/atomic"
	"unsafe"
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
// as deltas since the last ExportTo and are added on import (Child.StatsInto); gauges travel as
// full values and are kept as a parent part that an import replaces and
// ParentTerminated drops (except GaugeRetain). Safe for concurrent use.
type Store struct {
	mu       sync.RWMutex
	counters map[string]*Counter
	gauges   map[string]*Gauge
	// The same stats in creation order: ExportTo walks them in memory order
	// rather than in a map's random order, and an import whose names come
	// in the order this store made them (a parent built from the same
	// config) finds them here without touching the maps.
	counterList []*Counter
	gaugeList   []*Gauge
}

// Counter is a monotonic counter.
type Counter struct {
	v        atomic.Uint64 // own increments plus imported deltas
	exported uint64        // value at the last ExportTo, under Store.mu
	name     string
	idx      int // in Store.counterList
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
	fromImport bool         // created by an import, mode not chosen yet; under Store.mu
	own        atomic.Int64
	parent     atomic.Uint64
	name       string
	idx        int // in Store.gaugeList
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
		c = s.addCounter(&Counter{}, name)
	}
	return c
}

// addCounter and addGauge register a new stat; under s.mu.
func (s *Store) addCounter(c *Counter, name string) *Counter {
	c.name, c.idx = name, len(s.counterList)
	s.counters[name] = c
	s.counterList = append(s.counterList, c)
	return c
}

func (s *Store) addGauge(g *Gauge, name string) *Gauge {
	g.name, g.idx = name, len(s.gaugeList)
	s.gauges[name] = g
	s.gaugeList = append(s.gaugeList, g)
	return g
}

// Gauge returns the gauge called name, creating it with mode. A gauge that
// already exists keeps its mode unless an import created it (then it
// takes mode; a switch to GaugeNeverImport drops the parent part).
func (s *Store) Gauge(name string, mode GaugeImport) *Gauge {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.gauges[name]
	switch {
	case !ok:
		g = s.addGauge(&Gauge{}, name)
		g.mode.Store(int32(mode))
	case g.fromImport:
		g.fromImport = false
		g.mode.Store(int32(mode))
		if mode == GaugeNeverImport {
			g.parent.Store(0)
		}
	}
	return g
}

// ExportTo is the parent side of a stats pull, written straight into the
// reply being encoded (see ParentHandler.StatsTo): each counter's growth
// since the previous export (zero deltas omitted, like Envoy), then every
// gauge that is not GaugeNeverImport at its full value, each in creation
// order.
func (s *Store) ExportTo(e *StatsEncoder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.counterList {
		v := c.v.Load()
		if d := v - c.exported; d > 0 {
			e.Counter(c.name, d)
		}
		c.exported = v
	}
	for _, g := range s.gaugeList {
		if g.Mode() != GaugeNeverImport {
			e.Gauge(g.name, g.Value())
		}
	}
}

// importMaps is the child side for a reply already decoded into maps (one
// with Envoy's dynamic stat-name spans, which importWire leaves to the
// generic decoder): counter deltas are added, each imported gauge's parent
// part is replaced by the parent's value. Unknown stats are created (gauges
// as GaugeAccumulate); GaugeNeverImport gauges are skipped.
func (s *Store) importMaps(counterDeltas, gauges map[string]uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, d := range counterDeltas {
		c, ok := s.counters[name]
		if !ok {
			c = s.addCounter(&Counter{}, name)
		}
		c.v.Add(d)
		// Imported growth is not this process's own: it still goes to our
		// own child at our next Export, as Envoy's latch does.
	}
	for name, v := range gauges {
		g, ok := s.gauges[name]
		if !ok {
			g = s.addGauge(&Gauge{fromImport: true}, name)
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
	for _, g := range s.gaugeList {
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

// importWire is importMaps reading a validated Stats message b (h from
// scanStats) directly: names are looked up with their bytes, new stats are
// allocated in batches with their names packed into shared chunks, and when
// the names come in this store's creation order (as from a parent built
// from the same config) the maps are not consulted at all. A name repeated
// in one message is applied each time (counters add every delta); encoders
// produce each name once, from a map or a store.
func (s *Store) importWire(b []byte, h statsHeader) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.counters) == 0 && h.counters > 0 {
		s.counters = make(map[string]*Counter, h.counters)
	}
	if len(s.gauges) == 0 && h.gauges > 0 {
		s.gauges = make(map[string]*Gauge, h.gauges)
	}
	s.counterList = growCap(s.counterList, h.counters)
	s.gaugeList = growCap(s.gaugeList, h.gauges)
	var (
		names  nameArena
		cslab  []Counter
		gslab  []Gauge
		ci, gi int // where the next name is expected in the lists
		left   = [2]int{h.counters, h.gauges}
		// fresh: the store had none of that kind, so a name not found in
		// order is new and is inserted without a lookup first; a name the
		// message repeats shows as a map that did not grow, is undone, and
		// ends fresh mode (so a hostile message costs one scan, no more).
		fresh = [2]bool{len(s.counters) == 0, len(s.gauges) == 0}
	)
	scanStats(b, func(start, end int, v uint64, gauge bool) {
		name := b[start:end]
		if !gauge {
			left[0]--
			var c *Counter
			if ci < len(s.counterList) && s.counterList[ci].name == string(name) {
				c = s.counterList[ci]
			} else if fresh[0] || s.counters[string(name)] == nil {
				if len(cslab) == 0 {
					cslab = make([]Counter, min(left[0]+1, slabMax))
				}
				n := len(s.counters)
				c = s.addCounter(&cslab[0], names.intern(name))
				cslab = cslab[1:]
				if len(s.counters) == n { // fresh, and the name repeats
					c = s.undoCounter(c)
					fresh[0] = false
				}
			} else {
				c = s.counters[string(name)]
			}
			ci = c.idx + 1
			c.v.Add(v)
			return
		}
		left[1]--
		var g *Gauge
		if gi < len(s.gaugeList) && s.gaugeList[gi].name == string(name) {
			g = s.gaugeList[gi]
		} else if fresh[1] || s.gauges[string(name)] == nil {
			if len(gslab) == 0 {
				gslab = make([]Gauge, min(left[1]+1, slabMax))
			}
			n := len(s.gauges)
			g = s.addGauge(&gslab[0], names.intern(name))
			g.fromImport = true
			gslab = gslab[1:]
			if len(s.gauges) == n {
				g = s.undoGauge(g)
				fresh[1] = false
			}
		} else {
			g = s.gauges[string(name)]
		}
		gi = g.idx + 1
		if g.Mode() != GaugeNeverImport {
			g.parent.Store(v)
		}
	})
}

// undoCounter takes back c, just added by importWire under a name that was
// already there (and that c replaced in the map), and returns the first.
func (s *Store) undoCounter(c *Counter) *Counter {
	s.counterList = s.counterList[:len(s.counterList)-1]
	for _, o := range s.counterList {
		if o.name == c.name {
			s.counters[o.name] = o
			return o
		}
	}
	s.counterList = append(s.counterList, c) // unreachable: the map held the name
	s.counters[c.name] = c
	return c
}

func (s *Store) undoGauge(g *Gauge) *Gauge {
	s.gaugeList = s.gaugeList[:len(s.gaugeList)-1]
	for _, o := range s.gaugeList {
		if o.name == g.name {
			s.gauges[o.name] = o
			return o
		}
	}
	s.gaugeList = append(s.gaugeList, g) // unreachable: the map held the name
	s.gauges[g.name] = g
	return g
}

// slabMax bounds how many stats importWire allocates at once, so that a
// message of mostly known names wastes little.
const slabMax = 4096

func growCap[T any](s []T, more int) []T {
	if cap(s)-len(s) < more {
		n := make([]T, len(s), len(s)+more)
		copy(n, s)
		s = n
	}
	return s
}

// nameArena makes strings of names in shared chunks: one allocation per
// chunk instead of one per name. A chunk's bytes are written once, before
// the string that covers them is made, and never again.
type nameArena struct{ buf []byte }

const arenaChunk = 64 << 10

func (a *nameArena) intern(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > cap(a.buf)-len(a.buf) {
		a.buf = make([]byte, 0, max(arenaChunk, len(b)))
	}
	n := len(a.buf)
	a.buf = append(a.buf, b...)
	return unsafe.String(&a.buf[n], len(b))
}
