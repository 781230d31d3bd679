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
	statKey                // in Store.counterList
}

// statKey is what Counter and Gauge share: their name and their place in
// the Store's creation-order list.
type statKey struct {
	name string
	idx  int
}

func (k *statKey) key() *statKey { return k }

// stat is *Counter or *Gauge, for the code both kinds share.
type stat[T any] interface {
	*T
	key() *statKey
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
	statKey    // in Store.gaugeList
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
	return addStat(&s.counterList, s.counters, c, name)
}

func (s *Store) addGauge(g *Gauge, name string) *Gauge {
	return addStat(&s.gaugeList, s.gauges, g, name)
}

func addStat[T any, P stat[T]](list *[]P, m map[string]P, p P, name string) P {
	k := p.key()
	k.name, k.idx = name, len(*list)
	m[name] = p
	*list = append(*list, p)
	return p
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
	var names nameArena
	counters := importer[Counter, *Counter]{list: &s.counterList, m: s.counters, left: h.counters, names: &names, fresh: len(s.counters) == 0}
	gauges := importer[Gauge, *Gauge]{list: &s.gaugeList, m: s.gauges, left: h.gauges, names: &names, fresh: len(s.gauges) == 0}
	scanStats(b, func(start, end int, v uint64, gauge bool) {
		if !gauge {
			c, _ := counters.find(b[start:end])
			c.v.Add(v)
			return
		}
		g, created := gauges.find(b[start:end])
		if created {
			g.fromImport = true
		}
		if g.Mode() != GaugeNeverImport {
			g.parent.Store(v)
		}
	})
}

// importer finds or creates, for importWire, the stats of one kind in the
// order a message names them.
type importer[T any, P stat[T]] struct {
	list  *[]P
	m     map[string]P
	next  int // where the next name is expected in *list
	left  int // entries of this kind still to come
	slab  []T // stats allocated ahead, in batches
	names *nameArena
	// fresh: the store had none of this kind, so a name not found in order
	// is new and is inserted without a lookup first; a name the message
	// repeats shows as a map that did not grow, is undone, and ends fresh
	// mode (so a hostile message costs one scan, no more).
	fresh bool
}

// find returns the stat called name and whether it was created.
func (im *importer[T, P]) find(name []byte) (p P, created bool) {
	im.left--
	list := *im.list
	switch {
	case im.next < len(list) && list[im.next].key().name == string(name):
		p = list[im.next]
	case im.fresh || im.m[string(name)] == nil:
		if len(im.slab) == 0 {
			im.slab = make([]T, min(im.left+1, slabMax))
		}
		n := len(im.m)
		p = addStat(im.list, im.m, P(&im.slab[0]), im.names.intern(name))
		im.slab = im.slab[1:]
		created = true
		if len(im.m) == n { // fresh, and the name repeats
			p, created = undoStat(im.list, im.m, p), false
			im.fresh = false
		}
	default:
		p = im.m[string(name)]
	}
	im.next = p.key().idx + 1
	return p, created
}

// undoStat takes back p, just added under a name that was already there
// (and that p replaced in the map), and returns the first.
func undoStat[T any, P stat[T]](list *[]P, m map[string]P, p P) P {
	*list = (*list)[:len(*list)-1]
	name := p.key().name
	for _, o := range *list {
		if o.key().name == name {
			m[name] = o
			return o
		}
	}
	*list = append(*list, p) // unreachable: the map held the name
	m[name] = p
	return p
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
