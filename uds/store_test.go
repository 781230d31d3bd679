//go:build linux

package uds

import (
	"context"
	"reflect"
	"testing"
)

func TestStoreHandoff(t *testing.T) {
	type step struct {
		do   func(parent, child *Store)
		want map[string]uint64 // child's snapshot after the step
	}
	cases := []struct {
		name  string
		setup func(parent, child *Store)
		steps []step
	}{
		{
			name: "counters travel as deltas and are added",
			setup: func(p, c *Store) {
				p.Counter("req").Add(10)
				c.Counter("req").Add(1)
			},
			steps: []step{
				{func(p, c *Store) { c.Import(p.Export(0, 0)) }, map[string]uint64{"req": 11}},
				{func(p, c *Store) { c.Import(p.Export(0, 0)) }, map[string]uint64{"req": 11}}, // no new delta
				{func(p, c *Store) { p.Counter("req").Add(5); c.Import(p.Export(0, 0)) }, map[string]uint64{"req": 16}},
				{func(p, c *Store) { c.ParentTerminated() }, map[string]uint64{"req": 16}}, // counters stay
			},
		},
		{
			name: "gauge parent part replaced on import, dropped at termination",
			setup: func(p, c *Store) {
				p.Gauge("conns", GaugeAccumulate).Set(7)
				c.Gauge("conns", GaugeAccumulate).Set(2)
			},
			steps: []step{
				{func(p, c *Store) { c.Import(p.Export(0, 0)) }, map[string]uint64{"conns": 9}},
				{func(p, c *Store) { p.Gauge("conns", GaugeAccumulate).Set(3); c.Import(p.Export(0, 0)) }, map[string]uint64{"conns": 5}},
				{func(p, c *Store) { c.ParentTerminated() }, map[string]uint64{"conns": 2}},
			},
		},
		{
			name: "retained gauge keeps the parent part",
			setup: func(p, c *Store) {
				p.Gauge("server.hot_restart_generation", GaugeRetain).Add(1)
				c.Gauge("server.hot_restart_generation", GaugeRetain).Add(1)
			},
			steps: []step{
				{func(p, c *Store) { c.Import(p.Export(0, 0)) }, map[string]uint64{"server.hot_restart_generation": 2}},
				{func(p, c *Store) { c.Import(p.Export(0, 0)) }, map[string]uint64{"server.hot_restart_generation": 2}},
				{func(p, c *Store) { c.ParentTerminated() }, map[string]uint64{"server.hot_restart_generation": 2}},
			},
		},
		{
			name: "never-import gauge is neither exported nor imported",
			setup: func(p, c *Store) {
				p.Gauge("uptime", GaugeNeverImport).Set(100)
				p.Gauge("x", GaugeAccumulate).Set(4)
				c.Gauge("x", GaugeNeverImport).Set(1)
			},
			steps: []step{
				{func(p, c *Store) { c.Import(p.Export(0, 0)) }, map[string]uint64{"x": 1}},
			},
		},
		{
			name:  "unknown stats are created by import",
			setup: func(p, c *Store) { p.Counter("a").Inc(); p.Gauge("g", GaugeAccumulate).Set(6) },
			steps: []step{
				{func(p, c *Store) { c.Import(p.Export(0, 0)) }, map[string]uint64{"a": 1, "g": 6}},
				{func(p, c *Store) { c.ParentTerminated() }, map[string]uint64{"a": 1, "g": 0}},
			},
		},
		{
			name:  "imported counters flow on to the grandchild",
			setup: func(p, c *Store) { p.Counter("req").Add(3) },
			steps: []step{
				{func(p, c *Store) {
					c.Import(p.Export(0, 0))
					c.Counter("req").Inc()
					g := NewStore()
					g.Import(c.Export(0, 0))
					if v := g.Counter("req").Value(); v != 4 {
						t.Errorf("grandchild req = %d, want 4", v)
					}
				}, map[string]uint64{"req": 4}},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, c := NewStore(), NewStore()
			tc.setup(p, c)
			for i, s := range tc.steps {
				s.do(p, c)
				if got := c.Snapshot(); !reflect.DeepEqual(got, s.want) {
					t.Errorf("step %d: child snapshot %v, want %v", i, got, s.want)
				}
			}
		})
	}
}

func TestStoreExportOmitsZeroDeltas(t *testing.T) {
	s := NewStore()
	s.Counter("a").Add(2)
	s.Counter("b")
	st := s.Export(1, 2)
	if !reflect.DeepEqual(st.CounterDeltas, map[string]uint64{"a": 2}) || st.MemoryAllocated != 1 || st.NumConnections != 2 {
		t.Errorf("Export = %+v", st)
	}
}

// TestStoreOverTheWire: a Store's export travels through Parent and Child.
func TestStoreOverTheWire(t *testing.T) {
	ps, cs := NewStore(), NewStore()
	ps.Counter("http.rq").Add(41)
	ps.Gauge("server.hot_restart_generation", GaugeRetain).Add(1)
	_, c, _ := startPair(t, ParentHandler{StatsTo: statsTo(func() Stats { return ps.Export(0, 0) })})
	st, err := c.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cs.Import(st)
	cs.Counter("http.rq").Inc()
	if v := cs.Snapshot()["http.rq"]; v != 42 {
		t.Errorf("http.rq = %d, want 42", v)
	}
}
