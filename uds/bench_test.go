//go:build linux

package uds

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/hotrestart/restarter/fdpass"
	"google.golang.org/protobuf/proto"
)

// rawPair returns two bound abstract datagram sockets (the kind the protocol
// uses) and their addresses, for baselines.
func rawPair(b *testing.B) (a, c *net.UnixConn, aAddr, cAddr *net.UnixAddr) {
	b.Helper()
	path := testPath()
	aAddr, _ = sockAddr(path + "_raw_a")
	cAddr, _ = sockAddr(path + "_raw_c")
	var err error
	if a, err = net.ListenUnixgram("unixgram", aAddr); err != nil {
		b.Fatal(err)
	}
	if c, err = net.ListenUnixgram("unixgram", cAddr); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close(); c.Close() })
	return a, c, aAddr, cAddr
}

// floorFDRoundTrip times n raw round trips: a small request datagram, a reply
// datagram carrying one fd, which the requester closes.
func floorFDRoundTrip(b *testing.B, n int, f *os.File) time.Duration {
	a, c, aAddr, cAddr := rawPair(b)
	req := frame(make([]byte, 30))
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, MaxDatagram)
		fd := rawFD(f)
		for i := 0; i < n; i++ {
			if _, _, err := c.ReadFromUnix(buf); err != nil {
				done <- err
				return
			}
			if err := fdpass.SendTo(c, aAddr, frame([]byte{0x12, 0x02, 0x0a, 0x00}), fd); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	buf := make([]byte, MaxDatagram)
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := a.WriteToUnix(req, cAddr); err != nil {
			b.Fatal(err)
		}
		_, fds, err := fdpass.Recv(a, buf, 1)
		if err != nil || len(fds) != 1 {
			b.Fatal(fds, err)
		}
		fdpass.CloseAll(fds)
	}
	d := time.Since(start)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return d
}

// BenchmarkPassListenSockets hands over N listening sockets (one request
// each, as Envoy does per address and worker) and compares with the floor:
// a raw datagram round trip carrying one fd on the same kind of socket.
func BenchmarkPassListenSockets(b *testing.B) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	f, _ := ln.File()
	defer f.Close()
	url := AddressURL(ln.Addr())
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("sockets=%d", n), func(b *testing.B) {
			_, c, _ := startPair(b, ParentHandler{
				PassListenSocket: func(ListenSocket) (*os.File, bool) { return f, true },
			})
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for k := 0; k < n; k++ {
					g, err := c.PassListenSocket(ctx, url, uint32(k))
					if err != nil || g == nil {
						b.Fatal(g, err)
					}
					g.Close()
				}
			}
			ours := b.Elapsed()
			b.StopTimer()
			floor := floorFDRoundTrip(b, n*b.N, f)
			per := float64(ours.Nanoseconds()) / float64(n*b.N)
			floorPer := float64(floor.Nanoseconds()) / float64(n*b.N)
			b.ReportMetric(per, "ns/socket")
			b.ReportMetric(floorPer, "floor-ns/socket")
			b.ReportMetric(per/floorPer, "x-floor")
		})
	}
}

func manyStats(n int) Stats {
	st := Stats{CounterDeltas: make(map[string]uint64, n/2), Gauges: make(map[string]uint64, n/2)}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("cluster.service_%07d.upstream_rq_total", i)
		if i%2 == 0 {
			st.CounterDeltas[name] = uint64(i)
		} else {
			st.Gauges[name] = uint64(i)
		}
	}
	return st
}

// floorBytes times moving total bytes in MaxDatagram datagrams between two
// bound datagram sockets, the receiver copying them into one buffer.
func floorBytes(b *testing.B, total int) time.Duration {
	a, c, _, cAddr := rawPair(b)
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, MaxDatagram)
		all := make([]byte, 0, total)
		for len(all) < total {
			n, _, err := c.ReadFromUnix(buf)
			if err != nil {
				done <- err
				return
			}
			all = append(all, buf[:n]...)
		}
		done <- nil
	}()
	chunk := make([]byte, MaxDatagram)
	start := time.Now()
	for sent := 0; sent < total; sent += MaxDatagram {
		if _, err := a.WriteToUnix(chunk[:min(MaxDatagram, total-sent)], cAddr); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkStatsHandoff pulls N stats through Parent and Child and compares
// with raw datagram transfer of the same number of bytes.
func BenchmarkStatsHandoff(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("stats=%d", n), func(b *testing.B) {
			st := manyStats(n)
			wire := 8 + proto.Size(&pbMsg{Requestreply: &pbMsg_Reply{Reply: &pbReply{Reply: &pbReply_Stats{Stats: statsPB(st)}}}})
			_, c, _ := startPair(b, ParentHandler{StatsTo: statsTo(func() Stats { return st })})
			ctx := context.Background()
			runtime.GC() // the setup's garbage is not the handoff's
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				got, err := c.Stats(ctx)
				if err != nil || len(got.CounterDeltas)+len(got.Gauges) != n {
					b.Fatal(len(got.CounterDeltas), err)
				}
			}
			ours := b.Elapsed()
			b.StopTimer()
			var floor time.Duration
			for i := 0; i < b.N; i++ {
				floor += floorBytes(b, wire)
			}
			b.SetBytes(int64(wire))
			b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N)/1e6, "ms/handoff")
			b.ReportMetric(float64(floor.Nanoseconds())/float64(b.N)/1e6, "floor-ms")
			b.ReportMetric(float64(ours)/float64(floor), "x-floor")
		})
	}
}

// BenchmarkStatsCodec separates the CPU cost of building and reading the
// stats maps from the transfer: encode and decode of N stats in memory.
func BenchmarkStatsCodec(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		st := manyStats(n)
		wire := appendStatsMessage(nil, st)
		b.Run(fmt.Sprintf("encode/stats=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			buf := make([]byte, 0, len(wire))
			for i := 0; i < b.N; i++ {
				buf = appendStatsMessage(buf, st)
			}
		})
		b.Run(fmt.Sprintf("decode/stats=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			for i := 0; i < b.N; i++ {
				if _, err := decodeStatsMessage(wire[headerLen:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStatsHandoffStore is the handoff a server does: the parent's
// Store encodes straight into the reply (ParentHandler.StatsTo with
// Store.ExportTo) and the child reads it straight into its Store
// (Child.StatsInto), N stats (half counters, each with a delta, half
// gauges, the names of BenchmarkStatsHandoff), compared with raw datagram
// transfer of the same bytes in the same run. child=empty imports into a
// new store (every stat created); child=same into a store that already has
// the names, made in the same order (a child started from the same config).
func BenchmarkStatsHandoffStore(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		for _, mode := range []string{"empty", "same"} {
			b.Run(fmt.Sprintf("stats=%d/child=%s", n, mode), func(b *testing.B) {
				names := make([]string, n)
				ps := NewStore()
				var counters []*Counter
				for i := range names {
					names[i] = fmt.Sprintf("cluster.service_%07d.upstream_rq_total", i)
					if i%2 == 0 {
						counters = append(counters, ps.Counter(names[i]))
					} else {
						ps.Gauge(names[i], GaugeAccumulate).Set(uint64(i))
					}
				}
				grow := func() {
					for i, c := range counters {
						c.Add(uint64(2*i + 1))
					}
				}
				newChild := func() *Store {
					s := NewStore()
					if mode == "same" {
						for i, name := range names {
							if i%2 == 0 {
								s.Counter(name)
							} else {
								s.Gauge(name, GaugeAccumulate)
							}
						}
					}
					return s
				}
				var e StatsEncoder
				e.reset(nil, 0)
				grow()
				ps.ExportTo(&e)
				wire := len(e.finish())
				_, c, _ := startPair(b, ParentHandler{StatsTo: ps.ExportTo})
				ctx := context.Background()
				cs := newChild()
				var ours time.Duration
				runtime.GC() // the setup's garbage is not the handoff's
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					grow()
					if mode == "empty" {
						cs = newChild()
					}
					b.StartTimer()
					start := time.Now()
					got, err := c.StatsInto(ctx, cs)
					ours += time.Since(start)
					if err != nil || got.Counters+got.Gauges != n {
						b.Fatal(got, err)
					}
				}
				b.StopTimer()
				var floor time.Duration
				for i := 0; i < b.N; i++ {
					floor += floorBytes(b, wire)
				}
				b.SetBytes(int64(wire))
				b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N)/1e6, "ms/handoff")
				b.ReportMetric(float64(floor.Nanoseconds())/float64(b.N)/1e6, "floor-ms")
				b.ReportMetric(float64(ours)/float64(floor), "x-floor")
			})
		}
	}
}
