// Package supervisor runs generations of a hot-restarting proxy (Envoy, or
// anything that restarts the same way) the way Envoy's restarter/hot-restarter.py
// does, without its hazards: reloads never start over an unready generation and
// coalesce, a generation that fails to start is rolled back while the old one
// keeps serving, old generations that outlive parent-shutdown time are
// terminated, and the process is a child subreaper that reaps every orphan.
//
// One goroutine owns the generation state machine (starting, ready, draining,
// stopping, exited). Other goroutines talk to it through Reload,
// RequestReload, Signal, Stop, Ping (a liveness round trip for a watchdog)
// and Status, which send it typed requests (api.go); state changes are
// reported to Config.OnEvent, which is where systemd notifications
// (READY=1, RELOADING=1, STOPPING=1, STATUS=) belong.
//
// Files by role: supervisor.go (the loop), api.go (requests), start.go
// (reloads and starts), generation.go (ready, not ready, exits), rollback.go
// (the end of a reload: what serves after a failed one), liveness.go
// (checks of the serving generation), signal_linux.go (signals, stop,
// deadlines), record_linux.go (the generation record), status.go (snapshots
// and events), evidence_linux.go and sockets_linux.go (/proc evidence).
//
// Failure handling: a rollback never kills the generation rolled back to
// because a probe says so, only on evidence from its own process tree (it
// stopped listening); a generation that is not ready gets SIGKILL with its
// process group, never SIGTERM (Envoy's SIGTERM terminates its hot-restart
// parent); generations are tracked by pidfd; the serving generation is
// checked every LiveInterval and a hung one ends the supervisor with exit 1.
//
// Reload pacing (pacing.go): Envoy keeps at most three generations, so the
// start of epoch N+2 makes N+1 terminate epoch N at once, mid-drain (envoy
// #15099). With Config.Pacing PacingProtectDrain (the default) such a reload
// is held, coalesced with any others, until N has exited or for at most
// Config.MaxReloadDelay; Status.Held and an EventReloadHeld say why. Every
// policy but PacingNone also holds epoch N+3 while epoch N lives, since it
// would bind N's hot-restart socket names (they repeat every epoch%3).
//
// Reaping: the supervisor calls PR_SET_CHILD_SUBREAPER and one goroutine reaps
// every child of the process with wait4(-1, WNOHANG) on SIGCHLD, routing the
// exit statuses of known pids. Nothing else in the process may wait for
// children: do not use os/exec's Cmd.Wait/Run/Output while a Supervisor runs;
// use Supervisor.Command instead, which starts through the same starter and
// gets its status from the reaper.
//
// Parent-death signal: Linux sends PR_SET_PDEATHSIG when the *thread* that
// forked the child exits, not the process. The default Starter therefore forks
// every child from one goroutine locked to its OS thread for the Supervisor's
// whole life, so a SIGKILLed restarter takes its proxies (SIGTERM) with it.
//
//	s, err := supervisor.New(supervisor.Config{Argv: []string{"/usr/bin/envoy", "-c", "envoy.yaml"}, Envoy: true, Logger: log})
//	go func() { for sig := range sigc { if sig == syscall.SIGHUP { s.RequestReload() } } }()
//	err = s.Run(ctx) // nil: clean exit; *ExitError: exit with its Code
package supervisor
