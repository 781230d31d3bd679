//go:build linux

package uds_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/hotrestart/restarter/uds"
)

// Example hands a listening socket and a counter from one generation
// (epoch 0) to the next (epoch 1) inside one process.
func Example() {
	path := fmt.Sprintf("@uds_example_%d", os.Getpid())

	// Generation 0: a listener, a registry, a stats store, a Parent.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	defer ln.Close()
	lf, _ := ln.(*net.TCPListener).File()
	reg := uds.NewListeners()
	defer reg.Close()
	url := uds.AddressURL(ln.Addr())
	reg.Add(url, 0, lf)
	stats := uds.NewStore()
	stats.Counter("http.requests").Add(41)
	p, err := uds.ListenParent(uds.Config{SocketPath: path, Epoch: 0}, uds.ParentHandler{
		Listeners: reg,
		StatsTo:   stats.ExportTo,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	// Generation 1: take the socket and the stats.
	c, err := uds.DialChild(uds.Config{SocketPath: path, Epoch: 1, Timeout: 5 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	ctx := context.Background()
	f, err := c.PassListenSocket(ctx, url, 0)
	if err != nil || f == nil {
		fmt.Println("no socket:", err)
		return
	}
	ln2, _ := net.FileListener(f)
	f.Close()
	defer ln2.Close()
	mine := uds.NewStore()
	if _, err := c.StatsInto(ctx, mine); err != nil {
		fmt.Println("stats:", err)
		return
	}
	mine.Counter("http.requests").Inc()

	fmt.Println("same address:", ln2.Addr().String() == ln.Addr().String())
	fmt.Println("http.requests:", mine.Counter("http.requests").Value())
	// Output:
	// same address: true
	// http.requests: 42
}
