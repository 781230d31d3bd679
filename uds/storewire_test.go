//go:build linux

package uds

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"
)

// storeState is everything observable about a store: values, modes, and
// what its next Export would send.
func storeState(s *Store) (map[string]uint64, map[string]GaugeImport, Stats) {
	modes := map[string]GaugeImport{}
	s.mu.RLock()
	for n, g := range s.gauges {
		modes[n] = g.Mode()
	}
	s.mu.RUnlock()
	return s.Snapshot(), modes, s.Export(0, 0)
}

// parentStore has counters with and without growth and gauges of every mode.
func parentStore(n int) *Store {
	s := NewStore()
	for i := 0; i < n; i++ {
		s.Counter(fmt.Sprintf("c.%05d", i)).Add(uint64(i % 3)) // some zero deltas
		mode := []GaugeImport{GaugeAccumulate, GaugeNeverImport, GaugeRetain}[i%3]
		s.Gauge(fmt.Sprintf("g.%05d", i), mode).Set(uint64(i))
	}
	return s
}

// childStores returns fresh child stores in several starting states: empty,
// the same names in the same order, the same names reversed with other modes,
// and a few of the names plus others.
func childStores(n int) map[string]*Store {
	same, rev, some := NewStore(), NewStore(), NewStore()
	for i := 0; i < n; i++ {
		same.Counter(fmt.Sprintf("c.%05d", i)).Add(1)
		same.Gauge(fmt.Sprintf("g.%05d", i), []GaugeImport{GaugeAccumulate, GaugeNeverImport, GaugeRetain}[i%3]).Set(5)
		j := n - 1 - i
		rev.Counter(fmt.Sprintf("c.%05d", j)).Add(2)
		rev.Gauge(fmt.Sprintf("g.%05d", j), []GaugeImport{GaugeNeverImport, GaugeRetain, GaugeAccumulate}[j%3]).Set(7)
		if i%4 == 0 {
			some.Counter(fmt.Sprintf("c.%05d", i))
			some.Counter(fmt.Sprintf("x.%05d", i)).Inc()
			some.Gauge(fmt.Sprintf("g.%05d", i), GaugeRetain)
		}
	}
	return map[string]*Store{"empty": NewStore(), "same": same, "reversed": rev, "some": some}
}

// TestStoreExportToImportWire: the streaming path (ExportTo, importWire)
// leaves a child store exactly as the map path (Export, Import) does, from
// every starting state, and survives ParentTerminated the same way.
func TestStoreExportToImportWire(t *testing.T) {
	const n = 3000
	viaMap, viaWire := childStores(n), childStores(n)
	p1, p2 := parentStore(n), parentStore(n)
	st := p1.Export(11, 12)
	var e StatsEncoder
	e.reset(nil, 0)
	e.SetMemoryAllocated(11)
	e.SetNumConnections(12)
	p2.ExportTo(&e)
	wire := e.finish()

	// The wire form is what proto reads as the same Stats.
	var m pbMsg
	if err := proto.Unmarshal(wire[headerLen:], &m); err != nil {
		t.Fatal(err)
	}
	ps := m.GetReply().GetStats()
	if ps.GetMemoryAllocated() != 11 || ps.GetNumConnections() != 12 || !reflect.DeepEqual(ps.GetCounterDeltas(), st.CounterDeltas) || !reflect.DeepEqual(ps.GetGauges(), st.Gauges) {
		t.Fatalf("ExportTo's bytes decode to %v, Export gave %+v", ps, st)
	}
	// Both parents now have nothing new to export.
	if a, b := p1.Export(0, 0), p2.Export(0, 0); len(a.CounterDeltas) != 0 || len(b.CounterDeltas) != 0 {
		t.Fatalf("deltas left after export: %v %v", a.CounterDeltas, b.CounterDeltas)
	}

	body, err := statsBody(wire[headerLen:])
	if err != nil {
		t.Fatal(err)
	}
	h, err := scanStats(body, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name := range viaMap {
		for round := 0; round < 2; round++ { // a second pull finds every name
			viaMap[name].Import(st)
			viaWire[name].importWire(body, h)
		}
		for _, s := range []*Store{viaMap[name], viaWire[name]} {
			s.Counter("c.00001").Inc()
			s.Gauge("g.00004", GaugeNeverImport) // created by import: takes the mode
		}
		a1, a2, a3 := storeState(viaMap[name])
		b1, b2, b3 := storeState(viaWire[name])
		if !reflect.DeepEqual(a1, b1) || !reflect.DeepEqual(a2, b2) || !reflect.DeepEqual(a3, b3) {
			t.Errorf("%s: the stores differ:\nmap:  %v\nwire: %v", name, a1, b1)
		}
		viaMap[name].ParentTerminated()
		viaWire[name].ParentTerminated()
		if a, b := viaMap[name].Snapshot(), viaWire[name].Snapshot(); !reflect.DeepEqual(a, b) {
			t.Errorf("%s: after ParentTerminated the stores differ", name)
		}
	}
}

// TestStatsIntoOverTheWire: ParentHandler.StatsTo with Store.ExportTo, and
// Child.StatsInto, against the map-based Stats path, and a map-based parent
// read with StatsInto.
func TestStatsIntoOverTheWire(t *testing.T) {
	ctx := context.Background()
	ps := parentStore(2000)
	_, c, _ := startPair(t, ParentHandler{StatsTo: func(e *StatsEncoder) {
		e.SetMemoryAllocated(7)
		ps.ExportTo(e)
	}})
	ref := parentStore(2000).Export(7, 0)
	cs := NewStore()
	cs.Counter("c.00002").Add(100)
	got, err := c.StatsInto(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	if got != (StatsImport{MemoryAllocated: 7, Counters: len(ref.CounterDeltas), Gauges: len(ref.Gauges)}) {
		t.Errorf("StatsInto = %+v, want %d counters, %d gauges", got, len(ref.CounterDeltas), len(ref.Gauges))
	}
	want := NewStore()
	want.Counter("c.00002").Add(100)
	want.Import(ref)
	if a, b := cs.Snapshot(), want.Snapshot(); !reflect.DeepEqual(a, b) {
		t.Errorf("StatsInto store differs from Import's")
	}
	// A second pull: counters had no growth, gauges still travel.
	ps.Counter("c.00002").Add(5)
	got, err = c.StatsInto(ctx, cs)
	if err != nil || got.Counters != 1 || got.Gauges != len(ref.Gauges) {
		t.Fatalf("second StatsInto = %+v, %v", got, err)
	}
	if v := cs.Snapshot()["c.00002"]; v != 100+2+5 {
		t.Errorf("c.00002 = %d, want 107", v)
	}
	// The map-based Stats reads a StatsTo parent too.
	ps.Counter("c.00003").Add(1)
	st, err := c.Stats(ctx)
	if err != nil || st.MemoryAllocated != 7 || !reflect.DeepEqual(st.CounterDeltas, map[string]uint64{"c.00003": 1}) || len(st.Gauges) != len(ref.Gauges) {
		t.Errorf("Stats from a StatsTo parent = %+v, %v", st.CounterDeltas, err)
	}

	// StatsInto from a map-based parent.
	_, c2, _ := startPair(t, ParentHandler{StatsTo: statsTo(func() Stats { return ref })})
	cs2 := NewStore()
	if _, err := c2.StatsInto(ctx, cs2); err != nil {
		t.Fatal(err)
	}
	if a, b := cs2.Snapshot(), func() map[string]uint64 { s := NewStore(); s.Import(ref); return s.Snapshot() }(); !reflect.DeepEqual(a, b) {
		t.Errorf("StatsInto from a map-based parent differs from Import")
	}
}

// TestImportWireRepeatedNames: a message that repeats names (no encoder
// does; a hostile one might) leaves the store consistent, whether it
// started empty (insert without lookup) or not: one stat per name, map and
// creation order agree, every delta added, the last gauge value kept.
func TestImportWireRepeatedNames(t *testing.T) {
	var e StatsEncoder
	e.reset(nil, 0)
	for i := 0; i < 3; i++ {
		e.Counter("a", 1)
		e.Counter("b", 10)
		e.Gauge("g", uint64(i))
		e.Gauge("h", 5)
	}
	wire := e.finish()
	body, err := statsBody(wire[headerLen:])
	if err != nil {
		t.Fatal(err)
	}
	h, err := scanStats(body, nil)
	if err != nil {
		t.Fatal(err)
	}
	pre := NewStore()
	pre.Counter("b").Add(100)
	pre.Gauge("h", GaugeAccumulate)
	for name, s := range map[string]*Store{"empty": NewStore(), "known": pre} {
		s.importWire(body, h)
		if len(s.counters) != len(s.counterList) || len(s.gauges) != len(s.gaugeList) {
			t.Fatalf("%s: maps %d/%d, lists %d/%d", name, len(s.counters), len(s.gauges), len(s.counterList), len(s.gaugeList))
		}
		for i, c := range s.counterList {
			if s.counters[c.name] != c || c.idx != i {
				t.Errorf("%s: counter %q out of step", name, c.name)
			}
		}
		for i, g := range s.gaugeList {
			if s.gauges[g.name] != g || g.idx != i {
				t.Errorf("%s: gauge %q out of step", name, g.name)
			}
		}
		want := map[string]uint64{"a": 3, "b": 30, "g": 2, "h": 5}
		if name == "known" {
			want["b"] = 130
		}
		if got := s.Snapshot(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}
