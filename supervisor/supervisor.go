package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Config configures a Supervisor. Durations of zero take the defaults shown.
type Config struct {
	// Argv is the command of every generation; Argv[0] must be a path.
	// Placeholders ({{epoch}} ...) are expanded per generation.
	Argv []string
	// Envoy appends --restart-epoch, --base-id, --drain-time-s and
	// --parent-shutdown-time-s to Argv.
	Envoy  bool
	BaseID uint32
	Dir    string // working directory of the generations ("" = ours)

	DrainTime          time.Duration // default 600s when both are zero
	ParentShutdownTime time.Duration // default 900s when both are zero
	ShutdownGrace      time.Duration // backstop = parent shutdown + grace (zero is zero; the CLI's default is 10s)
	TermWait           time.Duration // default 30s; SIGTERM to SIGKILL
	ReadyTimeout       time.Duration // default 5m; not ready by then = failed start
	// LiveInterval is how often the serving generation is checked after it
	// became ready (default 5s); LiveFailures checks in a row that fail
	// make it hung (default 3): see checkLive.
	LiveInterval time.Duration
	LiveFailures int
	// RecordPath, when set, is a file where the supervisor keeps the process
	// groups of its live generations, so that the next supervisor of the
	// same instance can end what a SIGKILLed one left behind (see
	// endLeftovers). "" keeps no record.
	RecordPath string

	// Readiness decides when a generation is ready (default After{5s}).
	Readiness Readiness
	// Validate, when set, runs before each reload (not before epoch 0); an
	// error aborts that reload and the old generation keeps serving.
	Validate func(ctx context.Context, epoch uint32) error
	// GenerationEnv adds environment variables for one generation (for
	// example a NOTIFY_SOCKET of the restarter's own).
	GenerationEnv func(epoch uint32) []string
	// OnEvent is called on the state-machine goroutine for every change, in
	// order. It must not block for long and must not call Reload (Status,
	// RequestReload and Signal are safe).
	OnEvent func(Event)
	// Starter starts processes (default: a ThreadStarter the supervisor owns).
	Starter Starter
	Logger  *zap.Logger // default zap.NewNop()
}

func (c *Config) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.DrainTime == 0 && c.ParentShutdownTime == 0 {
		c.DrainTime, c.ParentShutdownTime = 600*time.Second, 900*time.Second
	}
	def(&c.TermWait, 30*time.Second)
	def(&c.ReadyTimeout, 5*time.Minute)
	def(&c.LiveInterval, 5*time.Second)
	if c.LiveFailures <= 0 {
		c.LiveFailures = 3
	}
	if c.Readiness == nil {
		c.Readiness = After{D: 5 * time.Second}
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Supervisor runs the generations. Create it with New and call Run once.
type Supervisor struct {
	cfg        Config
	log        *zap.Logger
	starter    Starter
	ownStarter *ThreadStarter
	reaper     *reaper

	reqc     chan request
	exitc    chan exitMsg
	readyc   chan readyMsg
	recheckc chan readyMsg
	validc   chan validMsg
	livec    chan liveMsg
	running  chan struct{} // closed when Run starts
	loopDone chan struct{} // closed when the state machine has stopped
	runOnce  sync.Once

	mu   sync.RWMutex
	snap Status

	// Owned by the state-machine goroutine.
	gens      []*gen
	nextEpoch uint32
	everReady bool
	inflight  *reloadOp
	pending   *reloadOp
	last      *ReloadResult
	stopping  bool
	stopAt    time.Time // SIGKILL what is left at this time
	unclean   bool
	fatal     string
	liveAt    time.Time // next liveness check of the serving generation
	liveBusy  bool      // a liveness check is running
	runErr    error     // what Run returned, once loopDone is closed
	wg        sync.WaitGroup
	cancelAll context.CancelFunc
	baseCtx   context.Context
}

type gen struct {
	epoch     uint32
	pid       int
	pidfd     int // names pid even after reuse; -1: none (see kill)
	startPID  int
	pgid      int    // its process group (startPID), 0 if it has none of its own
	pgStart   uint64 // start time of the group leader (/proc/<pid>/stat)
	listened  bool   // was seen holding a listening socket while serving
	probeLost bool   // its readiness probe no longer reaches it (a failed successor took the address)
	liveFails int
	health    string
	drainAt   time.Time // drain time ends
	state     State
	started   time.Time
	ready     time.Time
	cancel    context.CancelFunc // stops the readiness check
	op        *reloadOp
	failed    string    // why it is being killed before ready
	termAt    time.Time // backstop: SIGTERM at this time
	killAt    time.Time // SIGKILL at this time
	termed    bool
	adoptedAt time.Time
}

type reloadOp struct {
	initial    bool
	recovery   bool // started because the serving generation stopped serving after a failed reload
	validating bool
	waiters    []chan ReloadResult
	g          *gen
	res        ReloadResult // a failed outcome waiting for confirmRollback
	confirmAt  time.Time    // when to confirm it (zero: not waiting)
}

type reqKind int

const (
	reqReload reqKind = iota
	reqSignal
	reqStop
	reqPing
)

type request struct {
	kind  reqKind
	sig   syscall.Signal
	reply chan ReloadResult // reload: nil for fire-and-forget
	done  chan error        // signal/stop
}

type exitMsg struct{ pid, status int }
type readyMsg struct {
	g   *gen
	err error
}
type validMsg struct {
	op  *reloadOp
	err error
}
type liveMsg struct {
	g         *gen
	stopped   bool
	listening bool
	known     bool // listening could be read
	probed    bool
	err       error
}

// New checks cfg and returns a Supervisor ready to Run.
func New(cfg Config) (*Supervisor, error) {
	cfg.defaults()
	if len(cfg.Argv) == 0 || cfg.Argv[0] == "" {
		return nil, errors.New("supervisor: no command")
	}
	if cfg.ParentShutdownTime <= cfg.DrainTime {
		return nil, fmt.Errorf("parent shutdown time (%s) must be longer than drain time (%s)", cfg.ParentShutdownTime, cfg.DrainTime)
	}
	s := &Supervisor{
		cfg:      cfg,
		log:      cfg.Logger,
		reqc:     make(chan request),
		exitc:    make(chan exitMsg),
		readyc:   make(chan readyMsg),
		recheckc: make(chan readyMsg),
		validc:   make(chan validMsg),
		livec:    make(chan liveMsg),
		running:  make(chan struct{}),
		loopDone: make(chan struct{}),
	}
	s.reaper = newReaper(func(pid, st int) {
		s.log.Debug("reaped orphan", zap.Int("pid", pid), zap.Int("exit_status", st))
	})
	s.snap = Status{PID: os.Getpid(), BaseID: cfg.BaseID, Generations: []Generation{}}
	return s, nil
}

// Run starts epoch 0 and supervises until every generation is gone. It
// returns nil for a clean exit (exit code 0) and *ExitError otherwise.
// Cancelling ctx is the same as Stop. Run may be called once; it returns only
// after all its goroutines (reaper, starter thread, readiness checks) ended.
func (s *Supervisor) Run(ctx context.Context) (err error) {
	first := false
	s.runOnce.Do(func() { first = true })
	if !first {
		return errors.New("supervisor: Run called twice")
	}
	if err := setSubreaper(); err != nil {
		s.log.Warn("not a child subreaper; orphans of the proxy will not be reaped", zap.Error(err))
	}
	reaperStop := make(chan struct{})
	reaperDone := make(chan struct{})
	go func() { defer close(reaperDone); s.reaper.run(reaperStop) }()
	s.starter = s.cfg.Starter
	if s.starter == nil {
		s.ownStarter = NewThreadStarter()
		s.starter = s.ownStarter
	}
	s.baseCtx, s.cancelAll = context.WithCancel(context.Background())
	close(s.running)

	err = s.loop(ctx)

	s.runErr = err
	s.removeRecord()
	close(s.loopDone)
	s.cancelAll()
	s.wg.Wait()
	close(reaperStop)
	<-reaperDone
	if s.ownStarter != nil {
		s.ownStarter.Close() // after the children are gone: see ThreadStarter
	}
	return err
}

func (s *Supervisor) loop(ctx context.Context) error {
	s.endLeftovers()
	s.startReload(&reloadOp{initial: true})
	ctxDone := ctx.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// Nothing left to supervise: rule 4 (all exited 0), or a stop or a
		// fatal failure has finished. A reload never leaves the list empty
		// while it runs (it starts synchronously).
		if len(s.gens) == 0 {
			return s.result()
		}
		var timerC <-chan time.Time
		if d, ok := s.nextDeadline(); ok {
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
			timer.Reset(time.Until(d))
			timerC = timer.C
		}
		select {
		case <-ctxDone:
			ctxDone = nil
			s.beginStop("context cancelled")
		case r := <-s.reqc:
			s.handleRequest(r)
		case e := <-s.exitc:
			s.handleExit(e)
		case r := <-s.readyc:
			s.handleReady(r)
		case r := <-s.recheckc:
			s.handleRecheck(r)
		case v := <-s.validc:
			s.handleValidated(v)
		case l := <-s.livec:
			s.handleLive(l)
		case <-timerC:
			s.handleDeadlines()
		}
	}
}

func (s *Supervisor) result() error {
	s.failOps("restarter exiting")
	switch {
	case s.fatal != "":
		return &ExitError{Code: 1, Reason: s.fatal}
	case s.unclean:
		return &ExitError{Code: 1, Reason: "generations had to be killed after --term-wait"}
	}
	return nil
}

func (s *Supervisor) nextDeadline() (time.Time, bool) {
	var d time.Time
	set := func(t time.Time) {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	if s.stopping {
		set(s.stopAt)
	} else {
		if !s.liveBusy && s.serving() != nil {
			set(s.liveAt)
		}
		if s.inflight != nil {
			set(s.inflight.confirmAt)
		}
	}
	for _, g := range s.gens {
		if !g.termed {
			set(g.termAt)
		}
		set(g.killAt)
	}
	return d, !d.IsZero()
}

// send delivers a message to the state machine unless it has stopped.
func send[T any](s *Supervisor, c chan T, v T) {
	select {
	case c <- v:
	case <-s.loopDone:
	}
}

func (s *Supervisor) request(r request) error {
	select {
	case <-s.running:
	default:
		return errors.New("supervisor: not running")
	}
	select {
	case s.reqc <- r:
		return nil
	case <-s.loopDone:
		return ErrStopped
	}
}

// Reload asks for a reload and waits for its outcome: OK once the new
// generation is ready, or failed with the reason (validation failed, the new
// generation died or was not ready in time, shutdown). Requests made while a
// reload is in progress coalesce into one pending reload that runs after it;
// they all get that pending reload's result.
func (s *Supervisor) Reload(ctx context.Context) (ReloadResult, error) {
	reply := make(chan ReloadResult, 1)
	if err := s.request(request{kind: reqReload, reply: reply}); err != nil {
		return ReloadResult{}, err
	}
	select {
	case r := <-reply:
		return r, nil
	case <-ctx.Done():
		return ReloadResult{}, ctx.Err()
	case <-s.loopDone:
		select {
		case r := <-reply:
			return r, nil
		default:
		}
		return ReloadResult{}, ErrStopped
	}
}

// RequestReload asks for a reload without waiting (what SIGHUP does).
func (s *Supervisor) RequestReload() error {
	return s.request(request{kind: reqReload})
}

// Signal sends sig to every live generation (SIGUSR1: reopen logs).
func (s *Supervisor) Signal(sig syscall.Signal) error {
	done := make(chan error, 1)
	if err := s.request(request{kind: reqSignal, sig: sig, done: done}); err != nil {
		return err
	}
	return <-done
}

// Stop begins shutdown: SIGTERM to every generation, SIGKILL after
// TermWait. It does not wait; Run returns when the last one is gone. It is
// idempotent.
func (s *Supervisor) Stop() {
	_ = s.request(request{kind: reqStop})
}

// Ping round-trips through the state-machine goroutine: nil means it is
// alive and answering (a systemd watchdog's health check). It returns ctx's
// error when the loop does not answer in time (or Run has not started by
// then), and ErrStopped once it has stopped.
func (s *Supervisor) Ping(ctx context.Context) error {
	select {
	case <-s.running:
	case <-ctx.Done():
		return ctx.Err()
	}
	done := make(chan error, 1)
	select {
	case s.reqc <- request{kind: reqPing, done: done}:
	case <-s.loopDone:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Done is closed once the state machine has stopped.
func (s *Supervisor) Done() <-chan struct{} { return s.loopDone }

// Result is what Run returns (nil or *ExitError), once Done is closed; nil
// before. It lets a caller that did not call Run (the control socket's stop)
// tell the verdict.
func (s *Supervisor) Result() error {
	select {
	case <-s.loopDone:
		return s.runErr
	default:
		return nil
	}
}

// Status returns a snapshot. It is safe to call from any goroutine,
// including from OnEvent.
func (s *Supervisor) Status() Status {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st := s.snap
	st.Generations = append([]Generation(nil), s.snap.Generations...)
	if s.snap.LastReload != nil {
		lr := *s.snap.LastReload
		st.LastReload = &lr
	}
	return st
}

func (s *Supervisor) handleRequest(r request) {
	switch r.kind {
	case reqReload:
		if s.stopping {
			if r.reply != nil {
				r.reply <- ReloadResult{Epoch: s.nextEpoch, Reason: "restarter is stopping", At: time.Now()}
			}
			return
		}
		if s.inflight != nil {
			if s.pending == nil {
				s.pending = &reloadOp{}
				s.log.Info("reload held until the current generation is ready or has failed",
					zap.Uint32("epoch", s.nextEpoch))
			}
			if r.reply != nil {
				s.pending.waiters = append(s.pending.waiters, r.reply)
			}
			s.publish()
			return
		}
		op := &reloadOp{}
		if r.reply != nil {
			op.waiters = append(op.waiters, r.reply)
		}
		s.startReload(op)
	case reqSignal:
		var errs []error
		for _, g := range s.gens {
			if err := s.signal(g, r.sig); err != nil && err != syscall.ESRCH {
				errs = append(errs, fmt.Errorf("kill %d: %w", g.pid, err))
			}
			s.log.Info("forwarded signal", zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid),
				zap.String("state", string(g.state)), zap.String("signal", r.sig.String()))
		}
		r.done <- errors.Join(errs...)
	case reqStop:
		s.beginStop("stop requested")
	case reqPing:
		r.done <- nil
	}
}

func (s *Supervisor) startReload(op *reloadOp) {
	s.inflight = op
	if !op.initial {
		s.log.Info("reload", zap.Uint32("epoch", s.nextEpoch))
		s.emit(Event{Kind: EventReloading})
	}
	if s.cfg.Validate != nil && !op.initial && !op.recovery {
		op.validating = true
		epoch := s.nextEpoch
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			err := s.cfg.Validate(s.baseCtx, epoch)
			send(s, s.validc, validMsg{op, err})
		}()
		s.publish()
		return
	}
	s.launch(op)
}

func (s *Supervisor) handleValidated(v validMsg) {
	if v.op != s.inflight {
		return
	}
	v.op.validating = false
	if s.stopping {
		s.finishReload(v.op, false, "restarter is stopping")
		return
	}
	if v.err != nil {
		s.log.Error("reload aborted: validation failed; the old generation keeps serving",
			zap.Uint32("epoch", s.nextEpoch), zap.Error(v.err))
		s.finishReload(v.op, false, "validation failed: "+v.err.Error())
		return
	}
	s.launch(v.op)
}

func (s *Supervisor) vars(epoch uint32) Vars {
	return Vars{Epoch: epoch, BaseID: s.cfg.BaseID, DrainTimeS: Seconds(s.cfg.DrainTime), ParentShutdownTimeS: Seconds(s.cfg.ParentShutdownTime)}
}

func (s *Supervisor) launch(op *reloadOp) {
	epoch := s.nextEpoch
	v := s.vars(epoch)
	argv := Expand(s.cfg.Argv, v)
	if s.cfg.Envoy {
		argv = append(argv, EnvoyArgs(v)...)
	}
	var extra []string
	if s.cfg.GenerationEnv != nil {
		extra = s.cfg.GenerationEnv(epoch)
	}
	p, err := s.startGeneration(ProcSpec{Path: argv[0], Args: argv, Env: Env(environ(), v, extra), Dir: s.cfg.Dir, Setpgid: true})
	pid := p.PID
	if err != nil {
		s.log.Error("start failed", zap.Uint32("epoch", epoch), zap.Error(err))
		if s.serving() == nil {
			s.fatal = fmt.Sprintf("epoch %d: %v", epoch, err)
			s.beginStop(s.fatal)
		}
		s.finishReload(op, false, err.Error())
		return
	}
	g := &gen{epoch: epoch, pid: pid, pidfd: p.PidFD, startPID: pid, pgid: pid, state: StateStarting, started: time.Now(), op: op}
	if st, ok := readProcStat(pid); ok {
		g.pgStart = st.start
	}
	op.g = g
	s.gens = append(s.gens, g)
	s.writeRecord()
	rctx, cancel := context.WithTimeout(s.baseCtx, s.cfg.ReadyTimeout)
	g.cancel = cancel
	probe := Probe{Epoch: epoch, PID: pid, BaseID: s.cfg.BaseID, Command: s.Command}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.cfg.Readiness.Ready(rctx, probe)
		send(s, s.readyc, readyMsg{g, err})
	}()
	s.stateEvent(g, false, "started", zap.Strings("argv", argv))
}

// startGeneration starts spec with the reaper held (so its exit status is
// never confused with a recycled pid's, see reaper.StartWatched) and returns
// the process with a pidfd: from the Starter when it is a PidfdStarter,
// else from pidfd_open right after the start, before our reaper can have
// reaped it (we are its only reaper, so its pid cannot be reused yet).
func (s *Supervisor) startGeneration(spec ProcSpec) (Proc, error) {
	p := Proc{PidFD: -1}
	_, err := s.reaper.StartWatched(func() (int, error) {
		var err error
		if ps, ok := s.starter.(PidfdStarter); ok {
			p, err = ps.StartProc(spec)
		} else if p.PID, err = s.starter.Start(spec); err == nil {
			p.PidFD = pidfdOpen(p.PID)
		}
		return p.PID, err
	}, func(st int) { send(s, s.exitc, exitMsg{p.PID, st}) })
	return p, err
}

// watch tracks pid, a process re-parented to us that was seen alive at seen.
func (s *Supervisor) watch(pid int, seen time.Time) {
	deliver := func(st int) { send(s, s.exitc, exitMsg{pid, st}) }
	if st, done := s.reaper.WatchSeen(pid, seen, deliver); done {
		// Already reaped: deliver from another goroutine, since this one
		// is the state machine that receives it.
		s.wg.Add(1)
		go func() { defer s.wg.Done(); deliver(st) }()
	}
}

// serving is the newest ready generation.
func (s *Supervisor) serving() *gen {
	var best *gen
	for _, g := range s.gens {
		if g.state == StateReady && (best == nil || g.epoch > best.epoch) {
			best = g
		}
	}
	return best
}

func (s *Supervisor) live(g *gen) bool {
	for _, o := range s.gens {
		if o == g {
			return true
		}
	}
	return false
}

func (s *Supervisor) findDescendant(g *gen) int {
	want := "RESTART_EPOCH=" + strconv.FormatUint(uint64(g.epoch), 10)
	for _, pid := range orphanChildren() {
		if pid == g.startPID || s.reaper.Watched(pid) {
			continue
		}
		if environHas(pid, want) {
			return pid
		}
	}
	return 0
}

func (s *Supervisor) remove(g *gen) {
	if g.cancel != nil {
		g.cancel()
	}
	s.closePidfd(g)
	for i, o := range s.gens {
		if o == g {
			s.gens = append(s.gens[:i], s.gens[i+1:]...)
			break
		}
	}
	s.writeRecord()
}

func (s *Supervisor) failOps(reason string) {
	for _, op := range []*reloadOp{s.inflight, s.pending} {
		if op == nil {
			continue
		}
		for _, w := range op.waiters {
			w <- ReloadResult{Epoch: s.nextEpoch, Reason: reason, At: time.Now()}
		}
		op.waiters = nil
	}
	s.pending = nil
}

func (s *Supervisor) emit(ev Event) {
	ev.Time = time.Now()
	ev.Status = s.publish()
	if s.cfg.OnEvent != nil {
		s.cfg.OnEvent(ev)
	}
}

func (s *Supervisor) emitGen(g *gen, first bool, exitedAt time.Time, status *int) {
	gs := s.genSnap(g, exitedAt, status)
	s.emit(Event{Kind: EventState, Generation: &gs, First: first})
}

func (s *Supervisor) stateEvent(g *gen, first bool, msg string, extra ...zap.Field) {
	fields := append([]zap.Field{zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.String("state", string(g.state))}, extra...)
	s.log.Info(msg, fields...)
	s.emitGen(g, first, time.Time{}, nil)
}
