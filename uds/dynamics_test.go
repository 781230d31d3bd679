//go:build linux

package uds

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/hotrestart/restarter/uds/hotrestartpb"
)

// TestStatsIntoWithDynamics: a real Envoy parent sends dynamic stat-name
// spans (field 5) with its stats; StatsInto imports such a reply through the
// generic decoder, with the same semantics.
func TestStatsIntoWithDynamics(t *testing.T) {
	path := testPath()
	pa, _ := sockAddr(SocketName(path, RoleParent, 0, 0))
	ca, _ := sockAddr(SocketName(path, RoleChild, 0, 1))
	fake, err := net.ListenUnixgram("unixgram", pa)
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	c, err := DialChild(testConfig(t, path, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	go func() {
		buf := make([]byte, MaxDatagram)
		fake.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := fake.Read(buf); err != nil {
			return
		}
		reply := &pbMsg{Requestreply: &pbMsg_Reply{Reply: &pbReply{Reply: &pbReply_Stats{Stats: &hotrestartpb.HotRestartMessage_Reply_Stats{
			MemoryAllocated: 7,
			CounterDeltas:   map[string]uint64{"cluster.a.upstream_rq": 4},
			Gauges:          map[string]uint64{"cluster.a.active": 2},
			Dynamics: map[string]*hotrestartpb.HotRestartMessage_Reply_RepeatedSpan{
				"cluster.a.upstream_rq": {Spans: []*hotrestartpb.HotRestartMessage_Reply_Span{{First: 1, Last: 1}}},
			},
		}}}}}
		wire, _ := appendMessage(nil, reply)
		fake.WriteToUnix(wire, ca)
	}()
	s := NewStore()
	imp, err := c.StatsInto(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if imp.MemoryAllocated != 7 || imp.Counters != 1 || imp.Gauges != 1 {
		t.Errorf("StatsImport = %+v, want memory 7, 1 counter, 1 gauge", imp)
	}
	if snap := s.Snapshot(); snap["cluster.a.upstream_rq"] != 4 || snap["cluster.a.active"] != 2 {
		t.Errorf("imported %v, want upstream_rq 4 and active 2", snap)
	}
}
