package main

import (
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/hotrestart/restarter/supervisor"
	"go.uber.org/zap"
)

// testHooksEnv turns on test-only fault hooks. It is internal: not a flag,
// not in --help, not for production. With it set to 1:
//
//	SIGUSR2  wedges the supervisor's state-machine goroutine for good (the
//	         next event it emits blocks forever; a reload is requested to
//	         make one), so that a watchdog test sees a restarter whose
//	         process and signal handling are alive but whose state machine
//	         no longer answers Ping.
//
// Without it, SIGUSR2 keeps Go's default action (the process exits).
const testHooksEnv = "RESTARTER_INTERNAL_TEST_HOOKS"

// wedgeHook wraps onEvent with the SIGUSR2 wedge when testHooksEnv is 1,
// and returns onEvent unchanged otherwise. sup is called after SIGUSR2 to
// request the reload whose event wedges the loop.
func wedgeHook(onEvent func(supervisor.Event), sup func() *supervisor.Supervisor, log *zap.Logger) func(supervisor.Event) {
	if os.Getenv(testHooksEnv) != "1" {
		return onEvent
	}
	var wedged atomic.Bool
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR2)
	go func() {
		<-c
		log.Warn("test hook: SIGUSR2 wedges the state machine", zap.String("env", testHooksEnv))
		wedged.Store(true)
		_ = sup().RequestReload()
	}()
	return func(ev supervisor.Event) {
		if wedged.Load() {
			select {}
		}
		onEvent(ev)
	}
}
