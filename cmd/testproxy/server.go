package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hotrestart/restarter/drain"
	"github.com/hotrestart/restarter/uds"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Server states as Envoy's /server_info names them.
const (
	statePreInit  = "PRE_INITIALIZING"
	stateInit     = "INITIALIZING"
	stateLive     = "LIVE"
	stateDraining = "DRAINING"
)

// listener is one listen socket of one worker.
type listener struct {
	url    string // uds.AddressURL of the bound address
	worker uint32
	ln     net.Listener
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

	drain    *drain.Manager
	registry *uds.Listeners // owns dups of our listen sockets for the child

	ctx    context.Context // canceled when run returns
	cancel context.CancelFunc
	wg     sync.WaitGroup // Serve and drain goroutines

	httpSrv       *http.Server
	adminSrv      *http.Server
	errc          chan error   // a Serve goroutine failed
	events        chan string  // from uds.Parent callbacks and /quitquitquit
	parent        *uds.Parent  // serves our child (epoch+1); owned by run
	child         *uds.Child   // talks to our parent (epoch-1); owned by run
	statsFailures int          // consecutive failed stats pulls; owned by run
	childMu       sync.Mutex   // guards child against the ShutdownAdmin callback
	lnMu          sync.Mutex   // guards listeners
	listens       []listener   // our listen sockets
	mu            sync.Mutex   // guards the fields below
	state         string       //
	origTime      time.Time    // original start time of the first epoch
	adminLn       net.Listener //
}

func newServer(cfg Config, fc fileConfig, log *zap.Logger) *server {
	s := &server{
		cfg: cfg, fc: fc, log: log, pid: os.Getpid(), start: time.Now(),
		store:    uds.NewStore(),
		registry: uds.NewListeners(),
		errc:     make(chan error, 16),
		events:   make(chan string, 4),
		state:    statePreInit,
	}
	s.origTime = s.start
	s.requests = s.store.Counter("http.requests")
	s.active = s.store.Gauge("http.downstream_cx_active", uds.GaugeAccumulate)
	s.store.Gauge("server.hot_restart_generation", uds.GaugeRetain).Add(1)
	s.store.Gauge("server.concurrency", uds.GaugeNeverImport).Set(uint64(cfg.Concurrency))
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

func (s *server) setState(st string) {
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
	s.log.Info("state", zap.String("state", st))
}

func (s *server) getState() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

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
				s.log.Info("reopening logs")
				continue
			}
			s.log.Info("signal: shutting down", zap.String("signal", sig.String()))
			return s.shutdown()
		case ev := <-s.events:
			switch ev {
			case "terminate":
				// Parent-shutdown time is the hard end of the drain: like
				// Envoy, a terminated parent cuts what is still in flight.
				s.log.Info("parent: terminate requested by child")
				return s.terminate()
			case "quit":
				s.log.Info("admin: quitquitquit")
				return s.shutdown()
			case "terminate-parent":
				s.log.Info("child took admin: terminating our parent now")
				s.terminateParent()
				flush, pst = nil, nil
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

var errStopped = errors.New("stopped by signal")

// startup runs Envoy's start sequence: at epoch > 0 take admin, listen
// sockets and stats from the parent, then go live and tell the parent to drain.
func (s *server) startup(sigs <-chan os.Signal) error {
	s.setState(stateInit)
	if s.cfg.UseDynamicBaseID {
		return s.startDynamic()
	}
	if s.cfg.RestartEpoch > 0 {
		c, err := uds.DialChild(s.udsConfig())
		if err == nil {
			err = s.takeOver(c)
		}
		switch {
		case err != nil && errors.Is(err, uds.ErrNoParent) && s.cfg.SkipHotRestartOnNoParent:
			s.log.Warn("no parent: starting as if epoch 0 (--skip-hot-restart-on-no-parent)", zap.Error(err))
			s.closeChild()
		case err != nil:
			return err
		}
	}
	if err := s.writeBaseID(); err != nil {
		return err
	}
	return s.finishStartup(sigs)
}

// startDynamic picks a free base id at epoch 0: the first whose parent socket binds.
func (s *server) startDynamic() error {
	var lastErr error
	for i := 0; i < 32; i++ {
		var b [4]byte
		_, _ = cryptoRead(b[:])
		s.cfg.BaseID = (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) % 100000
		// Nothing else runs yet: the Parent's goroutine starts with ListenParent.
		p, err := uds.ListenParent(s.udsConfig(), s.parentHandler())
		if err != nil {
			lastErr = err
			continue
		}
		s.parent = p
		s.log.Info("dynamic base id chosen", zap.Uint32("base_id", s.cfg.BaseID))
		if err := s.writeBaseID(); err != nil {
			return err
		}
		return s.finishStartup(nil)
	}
	return fmt.Errorf("--use-dynamic-base-id: no free base id after 32 tries: %w", lastErr)
}

func (s *server) writeBaseID() error {
	if s.cfg.BaseIDPath == "" {
		return nil
	}
	if err := os.WriteFile(s.cfg.BaseIDPath, []byte(strconv.FormatUint(uint64(s.cfg.BaseID), 10)), 0o644); err != nil {
		return fmt.Errorf("--base-id-path: %w", err)
	}
	return nil
}

// takeOver is the child side of the hot restart, up to (not including) drain.
func (s *server) takeOver(c *uds.Child) error {
	s.childMu.Lock()
	s.child = c
	s.childMu.Unlock()
	ctx, cancel := context.WithTimeout(s.ctx, startTimeout*time.Second)
	defer cancel()
	rep, err := c.ShutdownParentAdmin(ctx)
	if err != nil {
		return fmt.Errorf("shutdown parent admin: %w", err)
	}
	if rep.OriginalStartTimeUnixSeconds > 0 {
		s.mu.Lock()
		s.origTime = time.Unix(int64(rep.OriginalStartTimeUnixSeconds), 0)
		s.mu.Unlock()
	}
	s.log.Info("parent admin shut down", zap.Uint64("original_start_time", rep.OriginalStartTimeUnixSeconds))
	for _, a := range s.cfg.Listen {
		url := listenURL(a)
		for _, w := range s.workers() {
			f, err := c.PassListenSocket(ctx, url, w)
			if err != nil {
				return fmt.Errorf("pass listen socket %s worker %d: %w", url, w, err)
			}
			if f == nil {
				s.log.Info("parent has no socket: binding our own", zap.String("address", url), zap.Uint32("worker", w))
				continue
			}
			ln, err := net.FileListener(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("listen socket %s worker %d from parent: %w", url, w, err)
			}
			s.addListener(listener{url: url, worker: w, ln: ln})
			s.log.Info("listen socket from parent", zap.String("address", url), zap.Uint32("worker", w))
		}
	}
	if !s.cfg.SkipHotRestartParentStats {
		st, err := c.StatsInto(ctx, s.store)
		if err != nil {
			return fmt.Errorf("stats from parent: %w", err)
		}
		s.log.Info("stats from parent", zap.Int("counters", st.Counters), zap.Int("gauges", st.Gauges))
	}
	return nil
}

// finishStartup binds what is still unbound, serves, goes live, drains the parent.
func (s *server) finishStartup(sigs <-chan os.Signal) error {
	if err := s.bindAdmin(); err != nil {
		return err
	}
	for _, a := range s.cfg.Listen {
		for _, w := range s.workers() {
			if s.hasListener(a, w) {
				continue
			}
			ln, err := bindTCP(a, s.cfg.ReusePort)
			if err != nil {
				return fmt.Errorf("--listen %s worker %d: %w", a, w, err)
			}
			// Registered under the configured address, which is what the
			// child asks for (a wildcard bound with "tcp" reports [::]).
			s.addListener(listener{url: listenURL(a), worker: w, ln: ln})
			s.log.Info("listening", zap.String("address", ln.Addr().String()), zap.Uint32("worker", w))
		}
	}
	if s.parent == nil {
		p, err := uds.ListenParent(s.udsConfig(), s.parentHandler())
		if err != nil {
			return fmt.Errorf("hot restart parent socket: %w", err)
		}
		s.parent = p
	}
	if s.cfg.StartDelay > 0 {
		s.log.Info("--start-delay: staying INITIALIZING", zap.Duration("delay", s.cfg.StartDelay))
		t := time.NewTimer(s.cfg.StartDelay)
		defer t.Stop()
		for waiting := true; waiting; {
			select {
			case <-t.C:
				waiting = false
			case sig := <-sigs:
				if sig != syscall.SIGUSR1 {
					return errStopped
				}
				s.log.Info("reopening logs")
			}
		}
	}
	if s.cfg.FailStart {
		return errors.New("--fail-start: failing before going live")
	}
	s.lnMu.Lock()
	for _, l := range s.listens {
		s.serve(s.httpSrv, l.ln)
	}
	s.lnMu.Unlock()
	s.setState(stateLive)
	if s.child != nil {
		ctx, cancel := context.WithTimeout(s.ctx, startTimeout*time.Second)
		defer cancel()
		if err := s.child.DrainParentListeners(ctx); err != nil {
			s.log.Warn("drain parent listeners", zap.Error(err))
		} else {
			s.log.Info("parent told to drain")
		}
	}
	return nil
}

func (s *server) serve(srv *http.Server, ln net.Listener) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := srv.Serve(ln)
		if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
			return
		}
		select {
		case s.errc <- fmt.Errorf("serve %s: %w", ln.Addr(), err):
		default:
		}
	}()
}

func (s *server) bindAdmin() error {
	ln, err := net.Listen("tcp", s.cfg.AdminAddress)
	if err != nil {
		return fmt.Errorf("--admin-address %s: %w", s.cfg.AdminAddress, err)
	}
	if s.cfg.AdminAddressPath != "" {
		if err := os.WriteFile(s.cfg.AdminAddressPath, []byte(ln.Addr().String()), 0o644); err != nil {
			ln.Close()
			return fmt.Errorf("--admin-address-path: %w", err)
		}
	}
	s.mu.Lock()
	s.adminLn = ln
	s.mu.Unlock()
	s.log.Info("admin listening", zap.String("address", ln.Addr().String()))
	s.serve(s.adminSrv, ln)
	return nil
}

func bindTCP(addr string, reusePort bool) (net.Listener, error) {
	lc := net.ListenConfig{}
	if reusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			}); err != nil {
				return err
			}
			return os.NewSyscallError("setsockopt SO_REUSEPORT", serr)
		}
	}
	return lc.Listen(context.Background(), "tcp", addr)
}

// listenURL is the Envoy address URL of a --listen value (checked by parseFlags).
func listenURL(addr string) string {
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return "tcp://" + addr
	}
	return uds.AddressURL(tcp)
}

func (s *server) hasListener(addr string, w uint32) bool {
	url := listenURL(addr)
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	for _, l := range s.listens {
		if l.url == url && l.worker == w {
			return true
		}
	}
	return false
}

// addListener records l and registers a dup of its socket for our child.
func (s *server) addListener(l listener) {
	s.lnMu.Lock()
	defer s.lnMu.Unlock()
	s.listens = append(s.listens, l)
	if tl, ok := l.ln.(*net.TCPListener); ok {
		f, err := tl.File()
		if err != nil {
			s.log.Warn("cannot register listen socket for hot restart", zap.String("address", l.url), zap.Error(err))
			return
		}
		s.registry.Add(l.url, l.worker, f) // the registry owns f
	}
}

// pullStats imports the parent's stats (a flush while the parent lives).
func (s *server) pullStats() {
	if s.child == nil || s.cfg.SkipHotRestartParentStats {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	_, err := s.child.StatsInto(ctx, s.store)
	if err != nil {
		s.statsFailures++
		s.log.Warn("stats from parent", zap.Int("failures", s.statsFailures), zap.Error(err))
		if s.statsFailures >= 2 {
			// A parent that died on its own: keep its counters, drop its
			// gauges, stop asking.
			s.log.Warn("parent unreachable: treating it as gone")
			s.store.ParentTerminated()
			s.closeChild()
		}
		return
	}
	s.statsFailures = 0
}

// terminateParent pulls the parent's last stats and terminates it.
func (s *server) terminateParent() {
	if s.child == nil {
		return
	}
	s.pullStats()
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	if err := s.child.TerminateParent(ctx); err != nil {
		s.log.Warn("terminate parent", zap.Error(err))
	} else {
		s.log.Info("parent terminated")
	}
	s.store.ParentTerminated()
	s.closeChild()
}

func (s *server) closeChild() {
	s.childMu.Lock()
	c := s.child
	s.child = nil
	s.childMu.Unlock()
	if c != nil {
		if err := c.Close(); err != nil {
			s.log.Warn("close hot restart child socket", zap.Error(err))
		}
	}
}

// parentHandler answers our child (epoch+1). Callbacks run on the Parent's
// goroutine; they must not call s.parent.Close.
func (s *server) parentHandler() uds.ParentHandler {
	return uds.ParentHandler{
		Listeners: s.registry,
		ShutdownAdmin: func() uds.ShutdownAdminReply {
			s.log.Info("child asked for admin: closing admin listener")
			s.mu.Lock()
			ln := s.adminLn
			orig := s.origTime
			s.mu.Unlock()
			if ln != nil {
				ln.Close()
			}
			s.childMu.Lock()
			hasParent := s.child != nil
			s.childMu.Unlock()
			if hasParent { // at most three generations: our parent goes now
				s.event("terminate-parent")
			}
			return uds.ShutdownAdminReply{OriginalStartTimeUnixSeconds: uint64(orig.Unix())}
		},
		StatsTo: func(e *uds.StatsEncoder) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			e.SetMemoryAllocated(ms.HeapAlloc)
			e.SetNumConnections(s.active.Value())
			s.store.ExportTo(e)
		},
		DrainListeners: s.drainListeners,
		Terminate:      func() { s.event("terminate") },
	}
}

func (s *server) event(ev string) {
	select {
	case s.events <- ev:
	default:
		s.log.Warn("event dropped", zap.String("event", ev))
	}
}

// drainListeners stops accepting (the child holds the same sockets, so no
// queued connection is lost) and starts the drain of open connections.
func (s *server) drainListeners() {
	if !s.drain.Start() {
		return
	}
	s.setState(stateDraining)
	s.lnMu.Lock()
	for _, l := range s.listens {
		l.ln.Close()
	}
	s.lnMu.Unlock()
	s.log.Info("draining", zap.Duration("drain_time", s.cfg.DrainTime), zap.Stringer("strategy", s.cfg.DrainStrategy))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.drain.ShutdownHTTP(s.ctx, s.httpSrv); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("drain shutdown", zap.Error(err))
		}
	}()
}

// shutdown stops serving gracefully (in-flight requests finish, bounded).
func (s *server) shutdown() int {
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
	s.closeChild()
	_ = s.httpSrv.Close()
	_ = s.adminSrv.Close()
	s.lnMu.Lock()
	for _, l := range s.listens {
		l.ln.Close()
	}
	s.lnMu.Unlock()
	s.registry.Close()
	s.drain.Close()
	s.wg.Wait()
}

func (s *server) connState(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.active.Add(1)
	case http.StateClosed, http.StateHijacked:
		s.active.Add(-1)
	}
}

// dataMux serves the listeners.
func (s *server) dataMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.requests.Inc()
		fmt.Fprintf(w, "epoch %d pid %d\n", s.cfg.RestartEpoch, s.pid)
		if s.fc.Body != "" {
			fmt.Fprintln(w, s.fc.Body)
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		s.requests.Inc()
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 || ms > 600_000 {
			http.Error(w, fmt.Sprintf("ms=%q: give milliseconds 0..600000", r.URL.Query().Get("ms")), http.StatusBadRequest)
			return
		}
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "epoch %d pid %d slept %dms\n", s.cfg.RestartEpoch, s.pid, ms)
	})
	return mux
}

// adminMux serves Envoy's admin endpoints that a restarter and tests use.
func (s *server) adminMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		st := s.getState()
		if st != stateLive {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, st)
	})
	mux.HandleFunc("/server_info", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.MarshalIndent(s.serverInfo(), "", "  ")
		w.Write(append(b, '\n'))
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		snap := s.store.Snapshot()
		names := make([]string, 0, len(snap))
		for n := range snap {
			names = append(names, n)
		}
		sort.Strings(names)
		if r.URL.Query().Get("format") == "json" {
			type stat struct {
				Name  string `json:"name"`
				Value uint64 `json:"value"`
			}
			out := struct {
				Stats []stat `json:"stats"`
			}{Stats: []stat{}}
			for _, n := range names {
				out.Stats = append(out.Stats, stat{n, snap[n]})
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(out)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		for _, n := range names {
			fmt.Fprintf(w, "%s: %d\n", n, snap[n])
		}
	})
	mux.HandleFunc("/hot_restart_version", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, hotRestartVersion)
	})
	mux.HandleFunc("/quitquitquit", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
			return
		}
		fmt.Fprintln(w, "OK")
		s.event("quit")
	})
	return mux
}

type serverInfo struct {
	Version            string         `json:"version"`
	State              string         `json:"state"`
	HotRestartVersion  string         `json:"hot_restart_version"`
	UptimeCurrentEpoch string         `json:"uptime_current_epoch"`
	UptimeAllEpochs    string         `json:"uptime_all_epochs"`
	CommandLineOptions map[string]any `json:"command_line_options"`
}

func (s *server) serverInfo() serverInfo {
	now := time.Now()
	s.mu.Lock()
	orig := s.origTime
	s.mu.Unlock()
	strategy := "Gradual"
	if s.cfg.DrainStrategy == drain.Immediate {
		strategy = "Immediate"
	}
	return serverInfo{
		Version:            "testproxy/" + runtime.Version() + "/RELEASE",
		State:              s.getState(),
		HotRestartVersion:  hotRestartVersion,
		UptimeCurrentEpoch: fmt.Sprintf("%ds", int64(now.Sub(s.start).Seconds())),
		UptimeAllEpochs:    fmt.Sprintf("%ds", int64(now.Sub(orig).Seconds())),
		CommandLineOptions: map[string]any{
			"base_id":                       strconv.FormatUint(uint64(s.cfg.BaseID), 10),
			"use_dynamic_base_id":           s.cfg.UseDynamicBaseID,
			"base_id_path":                  s.cfg.BaseIDPath,
			"concurrency":                   s.cfg.Concurrency,
			"restart_epoch":                 s.cfg.RestartEpoch,
			"drain_time":                    fmt.Sprintf("%ds", int64(s.cfg.DrainTime.Seconds())),
			"parent_shutdown_time":          fmt.Sprintf("%ds", int64(s.cfg.ParentShutdownTime.Seconds())),
			"drain_strategy":                strategy,
			"socket_path":                   s.cfg.SocketPath,
			"socket_mode":                   uint32(s.cfg.SocketMode),
			"mode":                          "Serve",
			"config_path":                   s.cfg.ConfigFile,
			"admin_address_path":            s.cfg.AdminAddressPath,
			"skip_hot_restart_on_no_parent": s.cfg.SkipHotRestartOnNoParent,
			"skip_hot_restart_parent_stats": s.cfg.SkipHotRestartParentStats,
		},
	}
}
