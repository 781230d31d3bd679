package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
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
	// Pacing and MaxReloadDelay: see pacing.go (default protect-drain,
	// bounded by parent shutdown time + shutdown grace).
	Pacing         Pacing
	MaxReloadDelay time.Duration

	// Readiness decides when a generation is ready (default After{5s}).
	Readiness Readiness
	// Validate, when set, runs before each reload (not before epoch 0); an
	// error aborts that reload and the old generation keeps serving. It gets
	// the next generation's Probe (PID 0): its values and the command runner.
	Validate func(ctx context.Context, next Probe) error
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
	checkc   chan readyMsg // a starting generation's failing readiness check (Probe.Report)
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
	counts    ReloadCounts
	stopping  bool
	stopAt    time.Time // SIGKILL what is left at this time
	unclean   bool
	fatal     string
	liveAt    time.Time // next liveness check of the serving generation
	liveBusy  bool      // a liveness check is running
	wg        sync.WaitGroup
	cancelAll context.CancelFunc
	baseCtx   context.Context
	pace      pacer
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
	stopFails int // liveness checks in a row that found it stopped while starting
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
	starting  *gen // the generation being started, if any
	startStop bool // it is stopped
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
		checkc:   make(chan readyMsg),
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
			r.apply(s)
		case e := <-s.exitc:
			s.handleExit(e)
		case r := <-s.readyc:
			s.handleReady(r)
		case r := <-s.recheckc:
			s.handleRecheck(r)
		case r := <-s.checkc:
			if r.g.state == StateStarting { // health says why it is not ready yet
				r.g.health = r.err.Error()
				s.publish()
			}
		case v := <-s.validc:
			s.handleValidated(v)
		case l := <-s.livec:
			s.handleLive(l)
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
		return &ExitError{Code: 1, Reason: fmt.Sprintf("generations had to be SIGKILLed: still alive %v after SIGTERM", s.cfg.TermWait)}
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
			w <- ReloadResult{Epoch: s.nextEpoch, Failure: FailureAborted, Reason: reason, At: time.Now()}
		}
		op.waiters = nil
	}
	s.pending = nil
}
