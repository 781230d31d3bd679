package uds

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// The stats reply is the one message that gets big (one map entry per stat,
// a million of them on a large server). Generic protobuf code spends most of
// its time on reflection over the two maps, so this file encodes and decodes
// exactly that message with protowire. The bytes are the same protobuf
// (TestStatsWireMatchesProto checks both directions against proto.Marshal
// and proto.Unmarshal): HotRestartMessage{reply(2): Reply{stats(3): Stats{
// memory_allocated(1), num_connections(2), counter_deltas(3), gauges(4)}}}.

// prefixRoom is the most the frame header, the two enclosing message
// headers (tag and varint length for reply and for stats) and the two
// scalar fields of Stats can take. Entries are written after it; the rest
// is filled in, right before them, at the end.
const prefixRoom = headerLen + 4*(1+binary.MaxVarintLen64)

// StatsEncoder writes a stats reply (Envoy's HotRestartMessage.Reply.Stats)
// directly in wire form, one stat at a time, with no maps in between. A
// Parent hands one to ParentHandler.StatsTo; Store.ExportTo fills it.
type StatsEncoder struct {
	b          []byte
	mem, conns uint64
}

// reset starts a message in buf's storage, growing it to about est bytes.
func (e *StatsEncoder) reset(buf []byte, est int) {
	if cap(buf) < prefixRoom+est {
		buf = make([]byte, 0, prefixRoom+est)
	}
	*e = StatsEncoder{b: buf[:prefixRoom]}
}

// SetMemoryAllocated sets the memory_allocated field.
func (e *StatsEncoder) SetMemoryAllocated(v uint64) { e.mem = v }

// SetNumConnections sets the num_connections field.
func (e *StatsEncoder) SetNumConnections(v uint64) { e.conns = v }

// Counter adds a counter_deltas entry: delta is the counter's growth since
// the previous pull. Each name should appear once per message.
func (e *StatsEncoder) Counter(name string, delta uint64) { e.entry(3, name, delta) }

// Gauge adds a gauges entry. Each name should appear once per message.
func (e *StatsEncoder) Gauge(name string, value uint64) { e.entry(4, name, value) }

func (e *StatsEncoder) entry(field protowire.Number, k string, v uint64) {
	b := protowire.AppendTag(e.b, field, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(1+protowire.SizeBytes(len(k))+1+protowire.SizeVarint(v)))
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendString(b, k)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	e.b = protowire.AppendVarint(b, v)
}

// finish returns the framed message: memory_allocated and num_connections
// (when not zero) first, then the entries, as proto.Marshal orders them.
func (e *StatsEncoder) finish() []byte {
	var f [2 * (1 + binary.MaxVarintLen64)]byte
	fields := f[:0]
	if e.mem != 0 {
		fields = protowire.AppendTag(fields, 1, protowire.VarintType)
		fields = protowire.AppendVarint(fields, e.mem)
	}
	if e.conns != 0 {
		fields = protowire.AppendTag(fields, 2, protowire.VarintType)
		fields = protowire.AppendVarint(fields, e.conns)
	}
	b := e.b
	start := prefixRoom - len(fields)
	copy(b[start:], fields)
	stats := len(b) - start
	reply := 1 + protowire.SizeBytes(stats)
	top := 1 + protowire.SizeBytes(reply)
	off := start - (headerLen + top - stats)
	h := binary.BigEndian.AppendUint64(b[off:off], uint64(top))
	h = protowire.AppendTag(h, 2, protowire.BytesType)
	h = protowire.AppendVarint(h, uint64(reply))
	h = protowire.AppendTag(h, 3, protowire.BytesType)
	protowire.AppendVarint(h, uint64(stats))
	return b[off:]
}

var errNotStats = errors.New("not a plain stats reply")

// only returns the single field number of b's top level, with its bytes, or
// errNotStats when b holds anything else (then the generic decoder decides).
func only(b []byte, want protowire.Number) ([]byte, error) {
	var out []byte
	found := false
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if num != want || typ != protowire.BytesType {
			return nil, errNotStats
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		if found {
			return nil, errNotStats // repeated oneof: leave merging to proto
		}
		out, found = v, true
		b = b[n:]
	}
	if !found {
		return nil, errNotStats
	}
	return out, nil
}

// statsBody returns the Stats message of a HotRestartMessage that is exactly
// a stats reply. errNotStats means it is something else.
func statsBody(raw []byte) ([]byte, error) {
	reply, err := only(raw, 2)
	if err != nil {
		return nil, err
	}
	return only(reply, 3)
}

// statsHeader is what scanStats learns besides the entries.
type statsHeader struct {
	mem, conns       uint64
	counters, gauges int // entries of each map, duplicates included
}

// scanStats walks the Stats message b. With fn nil it validates everything
// (as proto.Unmarshal would: tags, lengths, UTF-8 names) and counts the
// entries; with fn set it also calls fn for every entry in wire order, with
// the name as offsets into b. errNotStats means the message uses dynamics,
// which the generic decoder handles. Callers validate with fn nil first so
// that fn never sees part of a message that turns out to be bad.
func scanStats(b []byte, fn func(start, end int, v uint64, gauge bool)) (statsHeader, error) {
	var h statsHeader
	all := len(b)
	for len(b) > 0 {
		num, typ, n := consumeTag(b)
		if n < 0 {
			return h, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return h, protowire.ParseError(n)
			}
			b = b[n:]
			if num == 1 {
				h.mem = v
			} else {
				h.conns = v
			}
		case (num == 3 || num == 4) && typ == protowire.BytesType:
			e, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return h, protowire.ParseError(n)
			}
			at := all - len(b) + (n - len(e)) // offset of e in the message
			b = b[n:]
			ks, ke, v, err := decodeMapEntry(e, fn == nil)
			if err != nil {
				return h, err
			}
			if num == 3 {
				h.counters++
			} else {
				h.gauges++
			}
			if fn != nil {
				fn(at+ks, at+ke, v, num == 4)
			}
		case num == 5:
			// dynamics (Envoy's dynamic stat-name spans): rare, nested;
			// leave it to the generic decoder.
			return h, errNotStats
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return h, protowire.ParseError(n)
			}
			b = b[n:]
		}
	}
	return h, nil
}

// decodeMapEntry returns the key of a map<string, uint64> entry as offsets
// into e, and its value. check validates the key as UTF-8.
func decodeMapEntry(e []byte, check bool) (start, end int, val uint64, err error) {
	// The shape every encoder writes: key (shorter than 128 bytes), then
	// value, ending the entry exactly.
	if len(e) >= 4 && e[0] == 0x0a && e[1] < 0x80 {
		if ke := 2 + int(e[1]); ke < len(e) && e[ke] == 0x10 {
			if v, n := protowire.ConsumeVarint(e[ke+1:]); n > 0 && ke+1+n == len(e) {
				if check && !utf8.Valid(e[2:ke]) {
					return 0, 0, 0, fmt.Errorf("stat name is not valid UTF-8: %q", e[2:ke])
				}
				return 2, ke, v, nil
			}
		}
	}
	orig, all := e, len(e)
	for len(e) > 0 {
		num, typ, n := consumeTag(e)
		if n < 0 {
			return 0, 0, 0, protowire.ParseError(n)
		}
		e = e[n:]
		switch {
		case num == 1 && typ == protowire.BytesType:
			k, n := protowire.ConsumeBytes(e)
			if n < 0 {
				return 0, 0, 0, protowire.ParseError(n)
			}
			start = all - len(e) + (n - len(k))
			end = start + len(k)
			e = e[n:]
		case num == 2 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(e)
			if n < 0 {
				return 0, 0, 0, protowire.ParseError(n)
			}
			val, e = v, e[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, e)
			if n < 0 {
				return 0, 0, 0, protowire.ParseError(n)
			}
			e = e[n:]
		}
	}
	if check && !utf8.Valid(orig[start:end]) {
		return 0, 0, 0, fmt.Errorf("stat name is not valid UTF-8: %q", orig[start:end])
	}
	return start, end, val, nil
}

// consumeTag is protowire.ConsumeTag that also rejects field numbers beyond
// the valid range, as proto.Unmarshal does.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int) {
	num, typ, n := protowire.ConsumeTag(b)
	if n >= 0 && !num.IsValid() {
		return 0, 0, -1
	}
	return num, typ, n
}
