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
	// Pacing and MaxReloadDelay: see pacing.go (default protect-drain,
	// bounded by parent shutdown time + shutdown grace).
	Pacing         Pacing
	MaxReloadDelay time.Duration

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
	c.pacingDefaults()
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
	wg        sync.WaitGroup
	cancelAll context.CancelFunc
	baseCtx   context.Context
	pace      pacer
}

type gen struct {
	epoch     uint32
	pid       int
	startPID  int
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

// New checks cfg and returns a Supervisor ready to Run.
func New(cfg Config) (*Supervisor, error) {
	cfg.defaults()
	if len(cfg.Argv) == 0 || cfg.Argv[0] == "" {
		return nil, errors.New("supervisor: no command")
	}
	if cfg.ParentShutdownTime <= cfg.DrainTime {
		return nil, fmt.Errorf("parent shutdown time (%s) must be longer than drain time (%s)", cfg.ParentShutdownTime, cfg.DrainTime)
	}
	if err := cfg.checkPacing(); err != nil {
		return nil, err
	}
	s := &Supervisor{
		cfg:      cfg,
		log:      cfg.Logger,
		reqc:     make(chan request),
		exitc:    make(chan exitMsg),
		readyc:   make(chan readyMsg),
		recheckc: make(chan readyMsg),
		validc:   make(chan validMsg),
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
		case <-timerC:
			s.handleDeadlines()
		}
		s.releaseHeld()
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
	}
	set(s.pacingDeadline())
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
			if err := syscall.Kill(g.pid, r.sig); err != nil && err != syscall.ESRCH {
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
	if s.holdReload(op) {
		return
	}
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
	pid, err := s.starter.Start(ProcSpec{Path: argv[0], Args: argv, Env: Env(environ(), v, extra), Dir: s.cfg.Dir})
	if err != nil {
		s.log.Error("start failed", zap.Uint32("epoch", epoch), zap.Error(err))
		if s.serving() == nil {
			s.fatal = fmt.Sprintf("epoch %d: %v", epoch, err)
			s.beginStop(s.fatal)
		}
		s.finishReload(op, false, err.Error())
		return
	}
	g := &gen{epoch: epoch, pid: pid, startPID: pid, state: StateStarting, started: time.Now(), op: op}
	op.g = g
	s.gens = append(s.gens, g)
	s.watch(pid)
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

func (s *Supervisor) watch(pid int) {
	deliver := func(st int) { send(s, s.exitc, exitMsg{pid, st}) }
	if st, done := s.reaper.Watch(pid, deliver); done {
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

func (s *Supervisor) handleReady(r readyMsg) {
	g := r.g
	if !s.live(g) || g.state != StateStarting || g.failed != "" {
		return
	}
	if s.stopping {
		return
	}
	if r.err != nil {
		reason := fmt.Sprintf("epoch %d not ready within %s: %v", g.epoch, s.cfg.ReadyTimeout, r.err)
		g.failed = reason
		if s.serving() == nil {
			s.fatal = reason
			s.beginStop(reason)
			return
		}
		s.log.Error("new generation not ready; killing it, the old generation keeps serving",
			zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.String("state", string(g.state)), zap.Error(r.err))
		s.kill(g, syscall.SIGTERM)
		g.termed = true
		g.killAt = time.Now().Add(s.cfg.TermWait)
		return // the reload finishes when it is gone
	}
	now := time.Now()
	g.state = StateReady
	g.ready = now
	g.cancel()
	first := !s.everReady
	s.everReady = true
	s.nextEpoch = g.epoch + 1
	for _, o := range s.gens {
		if o != g && (o.state == StateReady || o.state == StateStarting && o.epoch < g.epoch) {
			o.state = StateDraining
			o.termAt = now.Add(s.cfg.ParentShutdownTime + s.cfg.ShutdownGrace)
			s.stateEvent(o, false, "draining")
		}
	}
	s.stateEvent(g, first, "ready")
	if g.op != nil && g.op == s.inflight {
		s.finishReload(g.op, true, "")
	}
}

func (s *Supervisor) live(g *gen) bool {
	for _, o := range s.gens {
		if o == g {
			return true
		}
	}
	return false
}

func (s *Supervisor) handleExit(e exitMsg) {
	var g *gen
	for _, o := range s.gens {
		if o.pid == e.pid {
			g = o
		}
	}
	if g == nil {
		return
	}
	// A start script that forked the proxy and exited 0: track the proxy.
	// Only while it starts or serves: a draining generation exiting 0 is
	// the normal end of a hot restart, not a script handing over.
	if e.status == 0 && g.pid == g.startPID && !s.stopping && g.failed == "" && g.state != StateDraining {
		if child := s.findDescendant(g); child > 0 {
			g.pid = child
			g.adoptedAt = time.Now()
			s.log.Info("start script exited; tracking the process it left behind",
				zap.Uint32("epoch", g.epoch), zap.Int("pid", child), zap.Int("start_pid", g.startPID), zap.String("state", string(g.state)))
			s.watch(child)
			s.publish()
			return
		}
	}
	s.remove(g)
	wasState := g.state
	g.state = StateExited
	now := time.Now()
	fields := []zap.Field{zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.String("state", string(StateExited)),
		zap.Int("exit_status", e.status), zap.String("was", string(wasState))}
	s.emitGen(g, false, now, &e.status)
	switch {
	case s.stopping:
		s.log.Info("generation exited", fields...)
	case g.failed != "":
		s.log.Warn("failed generation is gone", fields...)
		s.finishReload(g.op, false, g.failed)
	case wasState == StateStarting:
		reason := fmt.Sprintf("epoch %d exited with status %d before it was ready", g.epoch, e.status)
		if s.serving() != nil {
			s.log.Error("new generation died before it was ready; the old generation keeps serving (rollback)", fields...)
		} else if e.status != 0 {
			s.log.Error("generation died before it was ready and nothing else serves; stopping", fields...)
			s.fatal = reason
			s.beginKill(reason)
		} else {
			s.log.Info("generation exited 0 before it was ready", fields...)
		}
		if g.op != nil && g.op == s.inflight {
			s.finishReload(g.op, false, reason)
		}
	case wasState == StateReady && e.status != 0:
		reason := fmt.Sprintf("serving epoch %d exited with status %d", g.epoch, e.status)
		s.log.Error("serving generation died; killing all and exiting 1", fields...)
		s.fatal = reason
		s.beginKill(reason)
	case e.status != 0:
		s.log.Warn("draining generation exited abnormally", fields...)
	default:
		s.log.Info("generation exited", fields...)
	}
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
	for i, o := range s.gens {
		if o == g {
			s.gens = append(s.gens[:i], s.gens[i+1:]...)
			return
		}
	}
}

func (s *Supervisor) finishReload(op *reloadOp, ok bool, reason string) {
	if op == nil {
		return
	}
	epoch := s.nextEpoch
	if op.g != nil {
		epoch = op.g.epoch
	}
	res := ReloadResult{Epoch: epoch, OK: ok, Reason: reason, At: time.Now()}
	if s.inflight == op {
		s.inflight = nil
	}
	if !op.initial {
		s.last = &res
		if ok {
			s.log.Info("reload done", zap.Uint32("epoch", epoch))
		} else {
			s.log.Warn("reload failed", zap.Uint32("epoch", epoch), zap.String("reason", reason))
		}
		s.emit(Event{Kind: EventReloaded, Reload: &res})
	}
	// Answer after the snapshot is updated, so a caller's Status() agrees.
	for _, w := range op.waiters {
		w <- res
	}
	op.waiters = nil
	if op.recovery && !ok && !s.stopping {
		reason := fmt.Sprintf("the old generation stopped serving after a failed reload, and restarting epoch %d failed too: %s", epoch, reason)
		s.log.Error("recovery failed; killing all and exiting 1", zap.Uint32("epoch", epoch), zap.String("reason", reason))
		s.fatal = reason
		s.beginKill(reason)
		return
	}
	if s.pending != nil && s.inflight == nil && !s.stopping {
		p := s.pending
		s.pending = nil
		s.startReload(p)
		return
	}
	if !ok && op.g != nil && !op.recovery && !s.stopping {
		s.recheckServing()
	}
}

// recheckServing asks the readiness check again whether the generation the
// restarter rolled back to still serves. A new generation can die after
// Envoy's handoff passed the point of no return: it already took the admin
// listener and told the old generation to drain (close its listeners), so
// "the old one keeps serving" would be a lie. Only checks that can be asked
// again (Rechecker) are; the answer arrives as handleRecheck.
func (s *Supervisor) recheckServing() {
	g := s.serving()
	rc, ok := s.cfg.Readiness.(Rechecker)
	if g == nil || !ok {
		return
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, min(s.cfg.ReadyTimeout, recheckTimeout))
	probe := Probe{Epoch: g.epoch, PID: g.pid, BaseID: s.cfg.BaseID, Command: s.Command}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		err := rc.Recheck(ctx, probe)
		send(s, s.recheckc, readyMsg{g, err})
	}()
}

// recheckTimeout bounds how long a serving generation may take to answer
// its readiness check again after a rollback.
const recheckTimeout = time.Second

// handleRecheck acts on recheckServing's answer: when the generation rolled
// back to no longer serves, the same epoch is started again at once (it
// takes over from the draining generation, binding fresh sockets where the
// dead one took them); if that fails too, the restarter exits 1 (rule 5).
func (s *Supervisor) handleRecheck(r readyMsg) {
	g := r.g
	if s.stopping || !s.live(g) || g != s.serving() {
		return
	}
	if r.err == nil {
		s.log.Info("rolled back: the old generation still serves", zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid))
		return
	}
	s.log.Error("rolled back, but the old generation no longer serves (the failed one died after taking over); starting the next epoch again now",
		zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.Uint32("next_epoch", s.nextEpoch), zap.Error(r.err))
	if s.inflight == nil && s.pending == nil {
		s.startReload(&reloadOp{recovery: true})
	}
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

func (s *Supervisor) kill(g *gen, sig syscall.Signal) {
	if err := syscall.Kill(g.pid, sig); err != nil && err != syscall.ESRCH {
		s.log.Warn("kill", zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.String("signal", sig.String()), zap.Error(err))
	}
}

// beginStop: SIGTERM everything, SIGKILL after TermWait.
func (s *Supervisor) beginStop(reason string) {
	if s.stopping {
		return
	}
	s.stopping = true
	s.stopAt = time.Now().Add(s.cfg.TermWait)
	s.cancelAll()
	s.failOps("restarter is stopping")
	s.log.Info("stopping", zap.String("reason", reason), zap.Int("generations", len(s.gens)))
	s.emit(Event{Kind: EventStopping})
	for _, g := range s.gens {
		s.kill(g, syscall.SIGTERM)
	}
}

// beginKill: an unrecoverable failure; SIGKILL everything (the Python
// restarter's behaviour, so the service manager restarts from epoch 0).
func (s *Supervisor) beginKill(reason string) {
	s.beginStop(reason)
	for _, g := range s.gens {
		s.kill(g, syscall.SIGKILL)
	}
}

func (s *Supervisor) handleDeadlines() {
	now := time.Now()
	if s.stopping && !s.stopAt.IsZero() && !now.Before(s.stopAt) {
		for _, g := range s.gens {
			s.log.Warn("still alive after --term-wait; sending SIGKILL",
				zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.String("state", string(g.state)))
			s.kill(g, syscall.SIGKILL)
			s.unclean = true
		}
		s.stopAt = time.Time{}
	}
	for _, g := range s.gens {
		if !g.termed && !g.termAt.IsZero() && !now.Before(g.termAt) {
			g.termed = true
			g.killAt = now.Add(s.cfg.TermWait)
			s.log.Warn("old generation outlived parent-shutdown time plus grace; sending SIGTERM",
				zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.String("state", string(g.state)))
			s.kill(g, syscall.SIGTERM)
		}
		if !g.killAt.IsZero() && !now.Before(g.killAt) {
			g.killAt = time.Time{}
			s.log.Warn("still alive after --term-wait; sending SIGKILL",
				zap.Uint32("epoch", g.epoch), zap.Int("pid", g.pid), zap.String("state", string(g.state)))
			s.kill(g, syscall.SIGKILL)
		}
	}
}

func (s *Supervisor) genSnap(g *gen, exitedAt time.Time, status *int) Generation {
	out := Generation{Epoch: g.epoch, PID: g.pid, State: g.state, StartedAt: g.started}
	if g.startPID != g.pid {
		out.StartPID = g.startPID
	}
	if !g.ready.IsZero() {
		t := g.ready
		out.ReadyAt = &t
	}
	if status != nil {
		t, st := exitedAt, *status
		out.ExitedAt, out.ExitStatus = &t, &st
	}
	return out
}

func (s *Supervisor) publish() Status {
	st := Status{PID: os.Getpid(), BaseID: s.cfg.BaseID, NextEpoch: s.nextEpoch, Stopping: s.stopping,
		Reloading: s.inflight != nil && !s.inflight.initial, Pending: s.pending != nil, Generations: make([]Generation, 0, len(s.gens))}
	for _, g := range s.gens {
		st.Generations = append(st.Generations, s.genSnap(g, time.Time{}, nil))
	}
	if s.last != nil {
		lr := *s.last
		st.LastReload = &lr
	}
	st.Held = s.heldSnap()
	s.mu.Lock()
	s.snap = st
	s.mu.Unlock()
	return st
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
