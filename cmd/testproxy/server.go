package main

// server.go: the process — its state, the run loop that owns it, and the
// ways it ends (graceful shutdown, terminate, cleanup).

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hotrestart/restarter/drain"
	"github.com/hotrestart/restarter/uds"
	"go.uber.org/zap"
)

// serverState is the server's state; String is the name Envoy's
// /server_info gives it.
type serverState uint32

const (
	statePreInit serverState = iota
	stateInit
	stateLive
	stateDraining
)

func (st serverState) String() string {
	switch st {
	case statePreInit:
		return "PRE_INITIALIZING"
	case stateInit:
		return "INITIALIZING"
	case stateLive:
		return "LIVE"
	case stateDraining:
		return "DRAINING"
	}
	return "state(" + strconv.Itoa(int(st)) + ")"
}

type server struct {
	cfg   Config
	fc    fileConfig
	log   *zap.Logger
	pid   int
	start time.Time

	store    *uds.Store
	requests *uds.Counter
	active   *uds.Gauge
	srvStats *serverStats // Envoy's server.* gauges fed by the parent's stats reply

	drain    *drain.Manager
	registry *uds.Listeners // owns dups of our listen sockets for the child
	udp      *udpState      // --udp-listen sockets

	ctx    context.Context // canceled when run returns
	cancel context.CancelFunc
	wg     sync.WaitGroup // Serve and drain goroutines

	httpSrv       *http.Server
	adminSrv      *http.Server
	errc          chan error    // a Serve goroutine failed
	events        chan event    // from uds.Parent callbacks and /quitquitquit
	parent        *uds.Parent   // serves our child (epoch+1); owned by run
	child         *uds.Child    // talks to our parent (epoch-1) while it lives; owned by run (startup runs on its goroutine)
	hrChild       *uds.Child    // our child_N and udp_child_N sockets, bound for life like Envoy's
	statsFailures int           // consecutive failed stats pulls; owned by run
	lns           listenSockets // our data and admin listen sockets
	state         atomic.Uint32 // a serverState: written by run and the drains, read by admin
	link          atomic.Uint32 // a parentLink: written with child, read by admin
	logReopens    atomic.Uint64 // SIGUSR1s handled
	// origTime is the original start time of the first epoch. takeOver
	// sets it before admin or our parent socket serves, so it is read-only
	// by the time anyone else reads it.
	origTime time.Time
}

func newServer(cfg Config, fc fileConfig, log *zap.Logger) *server {
	s := &server{
		cfg: cfg, fc: fc, log: log, pid: os.Getpid(), start: time.Now(),
		store:    uds.NewStore(),
		registry: uds.NewListeners(),
		errc:     make(chan error, 16),
		events:   make(chan event, 4),
	}
	s.state.Store(uint32(statePreInit))
	s.origTime = s.start
	s.requests = s.store.Counter("http.requests")
	s.active = s.store.Gauge("http.downstream_cx_active", uds.GaugeAccumulate)
	s.store.Gauge("server.hot_restart_generation", uds.GaugeRetain).Add(1)
	s.store.Gauge("server.concurrency", uds.GaugeNeverImport).Set(uint64(cfg.Concurrency))
	s.srvStats = newServerStats(s.store)
	s.udp = newUDPState(s.store)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	m, err := drain.New(drain.Config{DrainTime: cfg.DrainTime, Strategy: cfg.DrainStrategy})
	if err != nil { // parseFlags already checked both values
		panic(err)
	}
	s.drain = m
	s.httpSrv = &http.Server{
		Handler:           m.HTTPHandler(s.dataMux()),
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         s.connState,
		ErrorLog:          zap.NewStdLog(log),
	}
	m.TrackHTTP(s.httpSrv) // the drain closes idle keep-alive connections without racing a request
	s.adminSrv = &http.Server{Handler: s.adminMux(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(log)}
	return s
}

func (s *server) setState(st serverState) {
	s.state.Store(uint32(st))
	s.log.Info("state", zap.Stringer("state", st))
}

func (s *server) getState() serverState { return serverState(s.state.Load()) }

func (s *server) udsConfig() uds.Config {
	return uds.Config{
		SocketPath: s.cfg.SocketPath,
		SocketMode: s.cfg.SocketMode,
		BaseID:     s.cfg.BaseID,
		Epoch:      s.cfg.RestartEpoch,
		Logger:     s.log.Named("uds"),
		Timeout:    startTimeout * time.Second,
		RetryDelay: s.cfg.RetryDelay,
	}
}

func (s *server) workers() []uint32 {
	if !s.cfg.ReusePort {
		return []uint32{0}
	}
	w := make([]uint32, s.cfg.Concurrency)
	for i := range w {
		w[i] = uint32(i)
	}
	return w
}

// run is the process: start up, serve, and shut down. It returns the exit code.
func (s *server) run() int {
	defer s.cleanup()
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	s.log.Info("starting", zap.Strings("args", s.cfg.argv), zap.Uint32("base_id", s.cfg.BaseID))

	if err := s.startup(sigs); err != nil {
		if errors.Is(err, errStopped) {
			s.log.Info("stopped during startup")
			s.terminateParentOnShutdown()
			return exitOK
		}
		s.log.Error("startup", zap.Error(err))
		return exitFailure
	}

	var flush <-chan time.Time
	var pst <-chan time.Time
	if s.child != nil {
		t := time.NewTicker(s.cfg.StatsFlushInterval)
		defer t.Stop()
		flush = t.C
		timer := time.NewTimer(s.cfg.ParentShutdownTime)
		defer timer.Stop()
		pst = timer.C
	}
	drainDone := s.drain.Done()
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGUSR1 {
				s.reopenLogs()
				continue
			}
			s.log.Info("signal: shutting down", zap.String("signal", sig.String()))
			if s.cfg.TermImmediate {
				return s.terminate()
			}
			return s.shutdown()
		case ev := <-s.events:
			switch ev {
			case evTerminate:
				// Parent-shutdown time is the hard end of the drain: like
				// Envoy, a terminated parent cuts what is still in flight.
				s.log.Info("parent: terminate requested by child")
				return s.terminate()
			case evQuit:
				s.log.Info("admin: quitquitquit")
				return s.shutdown()
			case evChildTookAdmin:
				if s.child != nil {
					s.log.Info("child took admin: terminating our parent now")
					s.terminateParent()
					flush, pst = nil, nil
				}
			}
		case <-flush:
			s.pullStats()
		case <-pst:
			s.log.Info("parent shutdown time reached", zap.Duration("parent_shutdown_time", s.cfg.ParentShutdownTime))
			s.terminateParent()
			flush, pst = nil, nil
		case <-drainDone:
			s.log.Info("drain time over", zap.Duration("drain_time", s.cfg.DrainTime))
			drainDone = nil
		case err := <-s.errc:
			s.log.Error("serve", zap.Error(err))
			s.shutdown()
			return exitFailure
		}
	}
}

// event is a request into the run loop from another goroutine (the
// hot-restart Parent's callbacks, the admin handlers): typed, as in
// tableflip's upgrader run loop, never a string.
type event int

const (
	evTerminate      event = iota // our child asked us to terminate
	evQuit                        // POST /quitquitquit
	evChildTookAdmin              // our child took admin: end our own parent, if any, now (three generations at most)
)

func (e event) String() string {
	switch e {
	case evTerminate:
		return "terminate"
	case evQuit:
		return "quit"
	case evChildTookAdmin:
		return "child-took-admin"
	}
	return "event(" + strconv.Itoa(int(e)) + ")"
}

var errStopped = errors.New("stopped by signal")

// reopenLogs is SIGUSR1, on which Envoy reopens its access logs. testproxy
// writes none: it counts the signal (/server_info's testproxy.log_reopens)
// and logs it.
func (s *server) reopenLogs() {
	s.logReopens.Add(1)
	s.log.Info("reopening logs")
}

// shutdown stops serving gracefully (in-flight requests finish, bounded).
func (s *server) shutdown() int {
	s.terminateParentOnShutdown()
	s.setState(stateDraining)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.httpSrv.Shutdown(ctx); err != nil {
		s.log.Warn("http shutdown", zap.Error(err))
	}
	if err := s.adminSrv.Shutdown(ctx); err != nil {
		s.log.Warn("admin shutdown", zap.Error(err))
	}
	s.log.Info("shut down")
	return exitOK
}

// terminate stops serving at once, cutting in-flight requests: what the
// child's terminate request (sent at parent-shutdown time) means.
func (s *server) terminate() int {
	s.terminateParentOnShutdown()
	s.setState(stateDraining)
	for _, srv := range []*http.Server{s.httpSrv, s.adminSrv} {
		if err := srv.Close(); err != nil {
			s.log.Warn("close", zap.Error(err))
		}
	}
	s.log.Info("terminated")
	return exitOK
}

// cleanup releases everything run may have acquired; it runs on every exit path.
func (s *server) cleanup() {
	s.cancel()
	if s.parent != nil {
		if err := s.parent.Close(); err != nil {
			s.log.Warn("close hot restart parent socket", zap.Error(err))
		}
	}
	s.child = nil // the same sockets as hrChild, closed below
	if s.hrChild != nil {
		if err := s.hrChild.Close(); err != nil {
			s.log.Warn("close hot restart child sockets", zap.Error(err))
		}
	}
	s.closeUDP()
	_ = s.httpSrv.Close()
	_ = s.adminSrv.Close()
	s.lns.closeData()
	s.registry.Close()
	s.drain.Close()
	s.wg.Wait()
}
