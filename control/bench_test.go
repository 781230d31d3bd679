package control

import (
	"bufio"
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkStatusRoundTrip measures one status request through the control
// socket (peer check, JSON both ways) against a baseline measured in the same
// run: a bare newline echo over a Unix socket. ratio is control/baseline.
func BenchmarkStatusRoundTrip(b *testing.B) {
	dir := b.TempDir()
	base := echoBaseline(b, filepath.Join(dir, "echo.sock"), b.N)
	s, err := NewServer(SocketPath(dir, "bench"), newFakeHandler(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c, err := Dial(s.Path())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Status(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	per := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(base, "baseline-ns/op")
	b.ReportMetric(per/base, "ratio")
}

// echoBaseline returns ns per request/response over a bare Unix socket.
func echoBaseline(b *testing.B, path string, n int) float64 {
	ln, err := net.Listen("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadBytes('\n')
			if err != nil {
				return
			}
			c.Write(line)
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		b.Fatal(err)
	}
	r := bufio.NewReader(c)
	msg := []byte(`{"op":"status"}` + "\n")
	start := time.Now()
	for i := 0; i < n; i++ {
		c.Write(msg)
		if _, err := r.ReadBytes('\n'); err != nil {
			b.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	c.Close()
	<-done
	return float64(elapsed.Nanoseconds()) / float64(n)
}
