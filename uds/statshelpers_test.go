//go:build linux

package uds

import (
	"context"

	"github.com/hotrestart/restarter/uds/hotrestartpb"
	"google.golang.org/protobuf/proto"
)

// The tests speak of stats replies as maps. These helpers turn maps into
// the one production path (StatsEncoder, Store.ExportTo, Child.StatsInto,
// scanStats) and back, so that every table test exercises it.

// Stats is a stats reply as maps.
type Stats struct {
	MemoryAllocated uint64
	NumConnections  uint64
	CounterDeltas   map[string]uint64
	Gauges          map[string]uint64
}

// add writes st's fields and entries to e.
func (e *StatsEncoder) add(st Stats) {
	e.mem, e.conns = st.MemoryAllocated, st.NumConnections
	for k, v := range st.CounterDeltas {
		e.Counter(k, v)
	}
	for k, v := range st.Gauges {
		e.Gauge(k, v)
	}
}

// statsTo is a ParentHandler.StatsTo that answers f's maps.
func statsTo(f func() Stats) func(*StatsEncoder) {
	return func(e *StatsEncoder) { e.add(f()) }
}

// appendStatsMessage is the framed wire form of st, in buf's storage.
func appendStatsMessage(buf []byte, st Stats) []byte {
	var e StatsEncoder
	e.reset(buf, 0)
	e.add(st)
	return e.finish()
}

// decodeStatsMessage decodes a HotRestartMessage that is exactly a stats
// reply with scanStats, the child's decoder. errNotStats means it is
// something else.
func decodeStatsMessage(raw []byte) (Stats, error) {
	b, err := statsBody(raw)
	if err != nil {
		return Stats{}, err
	}
	h, err := scanStats(b, nil)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{MemoryAllocated: h.mem, NumConnections: h.conns, CounterDeltas: map[string]uint64{}, Gauges: map[string]uint64{}}
	scanStats(b, func(start, end int, v uint64, gauge bool) {
		if gauge {
			st.Gauges[string(b[start:end])] = v
		} else {
			st.CounterDeltas[string(b[start:end])] = v
		}
	})
	return st, nil
}

func statsPB(st Stats) *hotrestartpb.HotRestartMessage_Reply_Stats {
	return &hotrestartpb.HotRestartMessage_Reply_Stats{
		MemoryAllocated: st.MemoryAllocated, NumConnections: st.NumConnections,
		CounterDeltas: st.CounterDeltas, Gauges: st.Gauges,
	}
}

// Export is the parent side of a pull as maps: Store.ExportTo, encoded and
// decoded again with proto.
func (s *Store) Export(mem, conns uint64) Stats {
	var e StatsEncoder
	e.reset(nil, 0)
	e.mem, e.conns = mem, conns
	s.ExportTo(&e)
	wire := e.finish()
	var m pbMsg
	if err := proto.Unmarshal(wire[headerLen:], &m); err != nil {
		panic(err)
	}
	r := m.GetReply().GetStats()
	st := Stats{MemoryAllocated: r.GetMemoryAllocated(), NumConnections: r.GetNumConnections(),
		CounterDeltas: r.GetCounterDeltas(), Gauges: r.GetGauges()}
	if st.CounterDeltas == nil {
		st.CounterDeltas = map[string]uint64{}
	}
	if st.Gauges == nil {
		st.Gauges = map[string]uint64{}
	}
	return st
}

// Import is the child side for maps.
func (s *Store) Import(st Stats) { s.importMaps(st.CounterDeltas, st.Gauges) }

// Stats pulls the parent's stats with StatsInto into a fresh store and
// returns them as maps (counter deltas, gauges' parent parts).
func (c *Child) Stats(ctx context.Context) (Stats, error) {
	s := NewStore()
	imp, err := c.StatsInto(ctx, s)
	if err != nil {
		return Stats{}, err
	}
	st := Stats{MemoryAllocated: imp.MemoryAllocated, NumConnections: imp.NumConnections,
		CounterDeltas: map[string]uint64{}, Gauges: map[string]uint64{}}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for n, ctr := range s.counters {
		st.CounterDeltas[n] = ctr.Value()
	}
	for n, g := range s.gauges {
		st.Gauges[n] = g.parent.Load()
	}
	return st, nil
}
