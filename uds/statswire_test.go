//go:build linux

package uds

import (
	"errors"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"
)

func TestStatsWireMatchesProto(t *testing.T) {
	cases := []Stats{
		{CounterDeltas: map[string]uint64{}, Gauges: map[string]uint64{}},
		{MemoryAllocated: 1 << 40, NumConnections: 3, CounterDeltas: map[string]uint64{"a": 1, "b.c": 0, "": 7}, Gauges: map[string]uint64{"g": 1<<64 - 1}},
		manyStats(1000),
	}
	for i, st := range cases {
		// Ours -> proto.Unmarshal.
		wire := appendStatsMessage(nil, st)
		raw, ok, err := NewDecoder(0).Feed(wire[:min(len(wire), MaxDatagram)])
		if len(wire) <= MaxDatagram && (err != nil || !ok) {
			t.Fatalf("case %d: frame: %v %v", i, ok, err)
		}
		raw = wire[headerLen:]
		var m pbMsg
		if err := proto.Unmarshal(raw, &m); err != nil {
			t.Fatalf("case %d: proto.Unmarshal of our bytes: %v", i, err)
		}
		ps := m.GetReply().GetStats()
		if ps == nil || ps.MemoryAllocated != st.MemoryAllocated || ps.NumConnections != st.NumConnections ||
			len(ps.CounterDeltas) != len(st.CounterDeltas) || len(ps.Gauges) != len(st.Gauges) {
			t.Fatalf("case %d: proto decoded %v", i, ps)
		}
		for k, v := range st.CounterDeltas {
			if ps.CounterDeltas[k] != v {
				t.Errorf("case %d: counter %q = %d, want %d", i, k, ps.CounterDeltas[k], v)
			}
		}
		// proto.Marshal -> ours.
		pb, err := proto.Marshal(&pbMsg{Requestreply: &pbMsg_Reply{Reply: &pbReply{Reply: &pbReply_Stats{Stats: statsPB(st)}}}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeStatsMessage(pb)
		if err != nil {
			t.Fatalf("case %d: decode proto's bytes: %v", i, err)
		}
		if got.MemoryAllocated != st.MemoryAllocated || !reflect.DeepEqual(got.CounterDeltas, st.CounterDeltas) || !reflect.DeepEqual(got.Gauges, st.Gauges) {
			t.Errorf("case %d: decoded %+v", i, got)
		}
	}
	// Other messages are left to the generic decoder.
	for _, m := range seedRequests() {
		b, _ := proto.Marshal(m)
		if _, err := decodeStatsMessage(b); !errors.Is(err, errNotStats) {
			t.Errorf("%v: err %v, want errNotStats", m, err)
		}
	}
}

// FuzzStatsDecode: our stats decoder accepts what proto accepts as a stats
// reply, agrees with it, and never panics.
func FuzzStatsDecode(f *testing.F) {
	for _, st := range []Stats{
		{CounterDeltas: map[string]uint64{"a": 1}, Gauges: map[string]uint64{"g": 2}, MemoryAllocated: 3},
		{CounterDeltas: map[string]uint64{"a": 1, "": 2}, Gauges: map[string]uint64{"a": 2, "h\u00e9": 1 << 63}, NumConnections: 9},
	} {
		f.Add(appendStatsMessage(nil, st)[headerLen:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := decodeStatsMessage(b)
		if err != nil {
			return
		}
		var m pbMsg
		if perr := proto.Unmarshal(b, &m); perr != nil {
			t.Fatalf("we accepted what proto rejects: %v", perr)
		}
		ps := m.GetReply().GetStats()
		if ps == nil {
			t.Fatalf("we decoded stats from %v", &m)
		}
		if !reflect.DeepEqual(got.CounterDeltas, nonNil(ps.CounterDeltas)) || !reflect.DeepEqual(got.Gauges, nonNil(ps.Gauges)) || got.MemoryAllocated != ps.MemoryAllocated {
			t.Fatalf("disagree with proto: %+v vs %v", got, ps)
		}
		// The streaming import agrees with Import of the decoded maps (when
		// no name repeats: then it adds every delta, by design).
		body, _ := statsBody(b)
		h, err := scanStats(body, nil)
		if err != nil {
			t.Fatalf("decoded but scan fails: %v", err)
		}
		if h.counters == len(got.CounterDeltas) && h.gauges == len(got.Gauges) {
			a, w := NewStore(), NewStore()
			a.Counter("a").Inc()
			w.Counter("a").Inc()
			a.Import(got)
			w.importWire(body, h)
			if !reflect.DeepEqual(a.Snapshot(), w.Snapshot()) {
				t.Fatalf("importWire %v, Import %v", w.Snapshot(), a.Snapshot())
			}
		}
	})
}

func nonNil(m map[string]uint64) map[string]uint64 {
	if m == nil {
		return map[string]uint64{}
	}
	return m
}
