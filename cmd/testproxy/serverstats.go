package main

import (
	"runtime"
	"sync/atomic"

	"github.com/hotrestart/restarter/uds"
)

// serverStats are Envoy's server gauges that fold in the parent's
// memory_allocated and num_connections from its stats reply (server.cc,
// updateServerStats): memory_allocated is ours plus the parent's,
// parent_connections the parent's, total_connections ours plus the
// parent's. They are NeverImport here: the parent's values arrive in the
// reply's own fields, and importing the gauges as well would count the
// parent twice.
type serverStats struct {
	memory, parentConns, totalConns *uds.Gauge
	own                             atomic.Int64 // our own open downstream connections
	parentMem, parentConn           atomic.Uint64
}

func newServerStats(st *uds.Store) *serverStats {
	return &serverStats{
		memory:      st.Gauge("server.memory_allocated", uds.GaugeNeverImport),
		parentConns: st.Gauge("server.parent_connections", uds.GaugeNeverImport),
		totalConns:  st.Gauge("server.total_connections", uds.GaugeNeverImport),
	}
}

// connections reports our own open connections, as Envoy's numConnections:
// the downstream gauge also holds the parent's part.
func (s *serverStats) connections() uint64 { return uint64(max(s.own.Load(), 0)) }

// fromParent records the parent's figures of a stats reply (zero: the
// parent is gone) and updates the gauges.
func (s *serverStats) fromParent(st uds.StatsImport) {
	s.parentMem.Store(st.MemoryAllocated)
	s.parentConn.Store(st.NumConnections)
	s.update()
}

// update recomputes the gauges from our own figures and the parent's last.
func (s *serverStats) update() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	pc := s.parentConn.Load()
	s.memory.Set(ms.HeapAlloc + s.parentMem.Load())
	s.parentConns.Set(pc)
	s.totalConns.Set(s.connections() + pc)
}
