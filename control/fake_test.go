package control

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/testutil"
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

// nobodyBinary is a copy of the test binary that nobody can run.
func nobodyBinary(t *testing.T) string {
	t.Helper()
	testutil.AsNobody(t, "true") // skips unless we can act as nobody
	return testutil.NobodyCanRun(t, os.Args[0])
}

func asNobody(t *testing.T, bin string, env []string, args ...string) *exec.Cmd {
	cmd := testutil.AsNobody(t, bin, args...)
	cmd.Env = env
	return cmd
}
