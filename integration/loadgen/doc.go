// Package loadgen is an open-loop HTTP load generator that sorts every failed
// request by its cause: connection refused, connection reset, timeout, non-2xx,
// or other. It exists to prove that a hot restart loses nothing, so it never
// hides a failure behind a retry of its own.
//
// Open loop means requests are issued on a fixed schedule (Rate per second),
// whether or not earlier ones have finished, so a stall in the server shows
// up as latency and timeouts instead of silently lowering the offered load
// (the "coordinated omission" of closed-loop tools).
//
//	res, err := loadgen.Run(ctx, loadgen.Config{URL: "http://127.0.0.1:10000/", Rate: 500, Duration: 10 * time.Second})
//	if res.Failed() > 0 { ... }
//
// The kernel's own view of lost connections (TcpExt ListenOverflows and
// ListenDrops in /proc/net/netstat) is read with ReadListenStats.
package loadgen
