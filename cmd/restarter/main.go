package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hotrestart/restarter/baseid"
	"github.com/hotrestart/restarter/control"
	"github.com/hotrestart/restarter/internal/osutil"
	"github.com/hotrestart/restarter/sdnotify"
	"github.com/hotrestart/restarter/supervisor"
	"github.com/hotrestart/restarter/watch"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// maxSocketPath is the longest path a Unix socket can be bound at
// (sizeof(sun_path) - 1, unix(7)).
const maxSocketPath = 107

// Exit codes.
const (
	exitOK       = 0
	exitAbnormal = 1
	exitUsage    = 2
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	if len(args) > 0 && control.IsCommand(args[0]) {
		return control.RunCLI(args, os.Stdout, os.Stderr)
	}
	cfg, err := parseFlags(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "restarter: %v\nTry 'restarter --help'.\n", err)
		return exitUsage
	}
	if cfg.Help {
		fmt.Fprint(os.Stdout, cfg.usage)
		return exitOK
	}
	if cfg.Version {
		fmt.Fprintln(os.Stdout, "restarter", version())
		return exitOK
	}
	limitMemory()
	log := newLogger(cfg.LogFormat, cfg.LogLevel, os.Stderr)
	defer log.Sync() //nolint:errcheck // stderr

	// Signals first, so a SIGTERM during setup is not lost. The buffer holds
	// one of each kind we handle; SIGHUPs coalesce in the supervisor anyway.
	sigc := make(chan os.Signal, 8)
	signal.Notify(sigc, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigc)

	cleanup, code := setup(&cfg, log)
	cleanup = sync.OnceFunc(cleanup)
	defer cleanup()
	if code != exitOK {
		return code
	}

	return serve(cfg, log, sigc, cleanup)
}

// serve runs the supervisor with the control socket, systemd notification,
// --ready=notify, --validate-cmd and --watch around it, and returns the
// exit code. Everything it starts is stopped and waited for before it returns.
// release (the pid file and base id lock) runs before the control socket
// closes: `restarter stop` returns when the socket stops answering, and by
// then the instance must be fully gone, so a service manager may start the
// next one at once.
func serve(cfg Config, log *zap.Logger, sigc <-chan os.Signal, release func()) int {
	instance := control.InstanceName(cfg.Name, cfg.BaseID)
	ctlPath := control.SocketPath(cfg.RuntimeDir, instance)
	if err := checkSocketPaths(cfg, instance, ctlPath); err != nil {
		log.Error("runtime dir too long for a Unix socket", zap.Error(err))
		fmt.Fprintf(os.Stderr, "restarter: %v\n", err)
		return exitUsage
	}
	w, err := newWatcher(cfg, log)
	if err != nil {
		return exitUsage
	}
	if w != nil {
		defer w.Close()
	}

	startupWarnings(cfg, log)
	n := sdnotify.NewNotifier(log)
	hist := &history{}
	met := newMetricsHook(cfg)
	sup, closeHooks, err := newSupervisor(cfg, instance, log, n, hist, met)
	defer closeHooks() // after Run returned: every generation is gone
	if err != nil {
		log.Error("bad configuration", zap.Error(err))
		return exitUsage
	}
	ctl, err := control.NewServer(ctlPath, controlHandler(sup, instance, hist), log)
	if err != nil {
		log.Error("control socket", zap.Error(err))
		fmt.Fprintf(os.Stderr, "restarter: %v\n", err)
		return exitUsage
	}
	defer ctl.Close()
	stopMetrics, err := met.serve(sup, log)
	if err != nil {
		log.Error("metrics", zap.Error(err))
		fmt.Fprintf(os.Stderr, "restarter: --metrics-address %s: %v\n", cfg.MetricsAddress, err)
		return exitUsage
	}
	defer stopMetrics()
	defer release() // runs before ctl.Close
	log.Info("control socket", zap.String("path", ctlPath), zap.String("name", instance))
	return runUntilExit(cfg, sup, w, n, ctlPath, sigc, log)
}

// newWatcher watches cfg.Watch (nil without --watch). Its error is already
// reported.
func newWatcher(cfg Config, log *zap.Logger) (*watch.Watcher, error) {
	if len(cfg.Watch) == 0 {
		return nil, nil
	}
	w, err := watch.New(cfg.Watch, cfg.WatchDebounce, log)
	if err != nil {
		log.Error("watch", zap.Error(err))
		fmt.Fprintf(os.Stderr, "restarter: --watch: %v\n", err)
		return nil, err
	}
	return w, nil
}

// newSupervisor wires the supervisor's hooks: readiness by notify, the
// validator's checks, the stderr tail, and the event observers (history,
// systemd, metrics, wedge detection). closeHooks, to run after Run has
// returned, is non-nil even when New fails.
func newSupervisor(cfg Config, instance string, log *zap.Logger, n *sdnotify.Notifier, hist *history, met *metricsHook) (sup *supervisor.Supervisor, closeHooks func(), err error) {
	sc := supervisorConfig(cfg, log)
	sc.RecordPath = filepath.Join(cfg.RuntimeDir, instance+".generations")
	var nr *notifyReady
	if cfg.ReadyNotify {
		nr = newNotifyReady(cfg.RuntimeDir, instance, log)
		sc.Readiness = nr
		sc.GenerationEnv = nr.Env
	}
	status := func() supervisor.Status { return sup.Status() }
	sc.Validate = withHotRestartVersionCheck(cfg, sc.Validate, status, log)
	sc.Validate = withStuckInitCheck(sc.Validate, status, log)
	tail := newStderrTail(os.Stderr, log)
	closeHooks = func() {
		tail.Close()
		if nr != nil {
			nr.Close()
		}
	}
	sc.Starter = tail
	sc.OnEvent = func(ev supervisor.Event) {
		hist.observe(ev)
		notifySystemd(n, ev)
		met.observe(ev)
		tail.observe(ev)
	}
	sc.OnEvent = wedgeHook(sc.OnEvent, func() *supervisor.Supervisor { return sup }, log)
	sup, err = supervisor.New(sc)
	return sup, closeHooks, err
}

// runUntilExit runs the supervisor, its watchdog and the --watch reloads
// until a signal or the supervisor ends it, and leaves the exit record.
func runUntilExit(cfg Config, sup *supervisor.Supervisor, w *watch.Watcher, n *sdnotify.Notifier, ctlPath string, sigc <-chan os.Signal, log *zap.Logger) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- sup.Run(ctx) }()
	defer startWatchdog(n, sup, log)()
	if w != nil {
		defer reloadOnChange(w, sup, cfg.Watch, log)() // waits after w.Close (defers run last-in first-out)
		defer w.Close()
	}
	exitRecord := control.ExitRecordPath(ctlPath)
	os.Remove(exitRecord) // a previous instance's; we hold the base id lock
	gs := newGracefulStop(cfg, log, func(s string) { _ = n.Stopping(s) })
	err := signalLoop(sup, gs, sigc, runErr, log)
	code := exitCode(err, log)
	// Before the control socket closes (deferred by serve): `restarter stop`
	// reads the record once the socket is gone.
	rec := control.ExitRecord{PID: os.Getpid(), Code: code}
	if err != nil {
		rec.Reason = err.Error()
	}
	if werr := control.WriteExitRecord(exitRecord, rec); werr != nil {
		log.Warn("exit record", zap.Error(werr))
	}
	return code
}

// checkSocketPaths refuses a runtime dir in which the control socket (and
// with --ready=notify the longest per-generation notify socket) would not
// fit a Unix socket address.
func checkSocketPaths(cfg Config, instance, ctlPath string) error {
	longest := ctlPath
	if cfg.ReadyNotify {
		longest = filepath.Join(cfg.RuntimeDir, instance+".4294967295.notify")
	}
	if len(longest) > maxSocketPath {
		return fmt.Errorf("socket path %s is longer than %d bytes: use a shorter --runtime-dir or --name", longest, maxSocketPath)
	}
	return nil
}

// startWatchdog pings systemd's watchdog while the supervisor's loop
// answers; the returned func stops it.
func startWatchdog(n *sdnotify.Notifier, sup *supervisor.Supervisor, log *zap.Logger) (stop func()) {
	wd, err := n.StartWatchdog(func() bool {
		pctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return sup.Ping(pctx) == nil
	})
	switch {
	case err == nil:
		log.Info("systemd watchdog", zap.Duration("interval", wd.Interval()))
		return wd.Stop
	case !errors.Is(err, sdnotify.ErrNoWatchdog):
		log.Warn("systemd watchdog", zap.Error(err))
	}
	return func() {}
}

// reloadOnChange requests a reload for every --watch event until w is
// closed; the returned func waits for its goroutine (call it after Close).
func reloadOnChange(w *watch.Watcher, sup *supervisor.Supervisor, paths []string, log *zap.Logger) (wait func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range w.Events() {
			log.Info("watched path changed: reload requested", zap.Strings("watch", paths))
			_ = sup.RequestReload()
		}
	}()
	return wg.Wait
}

// signalLoop turns signals into supervisor requests until Run returns, and
// returns Run's error.
func signalLoop(sup *supervisor.Supervisor, gs *gracefulStop, sigc <-chan os.Signal, runErr <-chan error, log *zap.Logger) error {
	for {
		select {
		case err := <-runErr:
			return err
		case sig := <-sigc:
			switch sig {
			case syscall.SIGHUP:
				if gs.draining() {
					log.Warn("SIGHUP ignored: a graceful stop is draining")
					continue
				}
				log.Info("SIGHUP: reload requested")
				_ = sup.RequestReload()
			case syscall.SIGUSR1:
				_ = sup.Signal(syscall.SIGUSR1)
			case syscall.SIGTERM, syscall.SIGINT:
				log.Info("stop requested", zap.String("signal", sig.String()))
				gs.stop(sup)
			}
		}
	}
}

func exitCode(err error, log *zap.Logger) int {
	if err == nil {
		log.Info("exiting", zap.Int("code", exitOK))
		return exitOK
	}
	var ee *supervisor.ExitError
	if errors.As(err, &ee) {
		log.Error("exiting", zap.Int("code", ee.Code), zap.String("reason", ee.Reason))
		return ee.Code
	}
	log.Error("exiting", zap.Int("code", exitAbnormal), zap.Error(err))
	return exitAbnormal
}

// setup prepares the runtime dir, the base id lock, --base-id-path and
// --pid-file. cleanup undoes what was done and is always safe to call.
func setup(cfg *Config, log *zap.Logger) (cleanup func(), code int) {
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	if err := osutil.EnsurePrivateDir(cfg.RuntimeDir); err != nil {
		log.Error("runtime dir", zap.String("dir", cfg.RuntimeDir), zap.Error(err))
		fmt.Fprintf(os.Stderr, "restarter: refusing --runtime-dir %s: %v\n", cfg.RuntimeDir, err)
		return cleanup, exitUsage
	}
	var lock *baseid.Lock
	var err error
	if cfg.DynamicBaseID {
		lock, err = baseid.AcquireDynamic(cfg.RuntimeDir, &baseid.Options{SocketPath: cfg.SocketPath})
	} else {
		lock, err = baseid.Acquire(cfg.RuntimeDir, cfg.BaseID)
	}
	if err != nil {
		log.Error("base id", zap.Error(err))
		hint := ""
		var held *baseid.HeldError
		if errors.As(err, &held) {
			hint = "; pick another --base-id or use --use-dynamic-base-id"
		}
		fmt.Fprintf(os.Stderr, "restarter: %v%s\n", err, hint)
		return cleanup, exitUsage
	}
	undo = append(undo, func() { lock.Close() })
	cfg.BaseID = lock.ID
	log.Info("base id", zap.Uint32("base_id", lock.ID), zap.Bool("dynamic", cfg.DynamicBaseID), zap.String("lock", lock.Path))
	if cfg.BaseIDPath != "" {
		if err := osutil.WriteFileAtomic(cfg.BaseIDPath, []byte(strconv.FormatUint(uint64(lock.ID), 10)+"\n"), 0o644); err != nil {
			log.Error("--base-id-path", zap.Error(err))
			return cleanup, exitUsage
		}
	}
	if cfg.PidFile != "" {
		pid := strconv.Itoa(os.Getpid())
		if err := osutil.WriteFileAtomic(cfg.PidFile, []byte(pid+"\n"), 0o644); err != nil {
			log.Error("--pid-file", zap.Error(err))
			return cleanup, exitUsage
		}
		undo = append(undo, func() { removeIfOurs(cfg.PidFile, pid) })
	}
	return cleanup, exitOK
}

func supervisorConfig(cfg Config, log *zap.Logger) supervisor.Config {
	sc := supervisor.Config{
		Argv:               cfg.Argv,
		Envoy:              cfg.Envoy,
		BaseID:             cfg.BaseID,
		DrainTime:          cfg.DrainTime,
		ParentShutdownTime: cfg.ParentShutdownTime,
		ShutdownGrace:      cfg.ShutdownGrace,
		TermWait:           cfg.TermWait,
		ReadyTimeout:       cfg.ReadyTimeout,
		LiveInterval:       cfg.LiveInterval,
		LiveFailures:       cfg.LiveFailures,
		Pacing:             cfg.reloadPacing(),
		MaxReloadDelay:     cfg.MaxReloadDelay,
		Logger:             log,
	}
	switch {
	case cfg.ReadyURL != "":
		sc.Readiness = supervisor.HTTP{URL: cfg.ReadyURL, Interval: cfg.ReadyInterval}
	case cfg.ReadyCmd != "":
		sc.Readiness = supervisor.CommandReady{Argv: []string{"/bin/sh", "-c", cfg.ReadyCmd}, Interval: cfg.ReadyInterval}
	case cfg.ReadyEnvoyAdmin != "":
		sc.Readiness = supervisor.EnvoyAdmin{Addr: cfg.ReadyEnvoyAdmin, Interval: cfg.ReadyInterval}
	default:
		sc.Readiness = supervisor.After{D: cfg.ReadyAfter}
	}
	if cfg.Validator != nil {
		sc.Validate = validator{argv: cfg.Validator, timeout: cfg.ValidateTimeout, log: log}.Validate
	}
	return sc
}

func newLogger(format string, level zapcore.Level, w io.Writer) *zap.Logger {
	ec := zap.NewProductionEncoderConfig()
	ec.TimeKey = "time"
	ec.EncodeTime = zapcore.ISO8601TimeEncoder
	ec.EncodeDuration = zapcore.StringDurationEncoder // "7.7ms", not a bare 0.0077
	var enc zapcore.Encoder
	if format == "json" {
		enc = zapcore.NewJSONEncoder(ec)
	} else {
		ec.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(ec)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core).With(zap.Int("restarter_pid", os.Getpid()))
}

// removeIfOurs removes the pid file unless another process has replaced it.
func removeIfOurs(path, pid string) {
	b, err := os.ReadFile(path)
	if err == nil && string(b) == pid+"\n" {
		os.Remove(path)
	}
}
