package control

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// fakeServer is a control server that claims every reload succeeded at
// epoch 99: what an attacker who could bind the socket path would run.
// It prints "serving" once it listens and runs until SIGTERM.
func fakeServer(path string) int {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM)
	s, err := NewServer(path, HandlerFuncs{
		ReloadFunc: func(context.Context) (ReloadOutcome, error) {
			return ReloadOutcome{OK: true, Epoch: 99, At: time.Now()}, nil
		},
	}, nil)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	fmt.Println("serving")
	<-sigc
	s.Close()
	return 0
}
