package supervisor

import (
	"errors"
	"time"
)

// State is a generation's lifecycle state.
type State string

// Generation states.
const (
	StateStarting State = "starting" // started, not yet ready
	StateReady    State = "ready"    // serving (the newest ready generation)
	StateDraining State = "draining" // a newer generation is ready; waiting for this one to leave
	StateStopping State = "stopping" // the restarter is stopping; waiting for this one to leave
	StateExited   State = "exited"   // gone (only seen in events, never in Status)
)

// Generation is a snapshot of one generation.
type Generation struct {
	Epoch     uint32     `json:"epoch"`
	PID       int        `json:"pid"`                 // the tracked process (the proxy, even behind a forking start script)
	StartPID  int        `json:"start_pid,omitempty"` // the directly started process, when different from PID
	State     State      `json:"state"`
	StartedAt time.Time  `json:"started_at"`
	ReadyAt   *time.Time `json:"ready_at,omitempty"`
	ExitedAt  *time.Time `json:"exited_at,omitempty"`
	// ExitStatus is the exit code, or 128+signal for a signalled exit.
	ExitStatus *int `json:"exit_status,omitempty"`
	// DrainUntil is when a draining generation's drain time ends (Envoy's
	// --drain-time-s after its successor became ready); an exited one keeps
	// it, so an exit before it shows a cut drain.
	DrainUntil *time.Time `json:"drain_until,omitempty"`
	// TermAt is the backstop: SIGTERM at this time if still alive
	// (parent shutdown time plus grace after its successor became ready).
	TermAt *time.Time `json:"term_at,omitempty"`
	// KillAt is when SIGKILL follows a SIGTERM already sent.
	KillAt *time.Time `json:"kill_at,omitempty"`
	// Health is the serving generation's liveness: "ok", "failing n/m: why",
	// or "unprobed: why" when only its process state can be watched; for a
	// starting one that has failed its readiness checks for a second, why
	// it is not ready yet ("not ready after n checks over d: why").
	Health string `json:"health,omitempty"`
}

// Failure says why a reload failed, for a program to branch on; Reason
// says it to people.
type Failure string

// Failures.
const (
	FailureValidation Failure = "validation_failed" // the validator rejected the new config
	FailureStart      Failure = "start_failed"      // it could not start, or exited before it was ready
	FailureNotReady   Failure = "not_ready"         // not ready within the ready timeout (or the checks failed for good)
	FailureAborted    Failure = "aborted"           // the supervisor began to stop
)

// ReloadResult is the outcome of one reload (or of the first start).
type ReloadResult struct {
	Epoch   uint32    `json:"epoch"`
	OK      bool      `json:"ok"`
	Failure Failure   `json:"failure,omitempty"` // set when not OK
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
	// Serving says, for a failed reload, what serves now, in words the
	// CLI prints ("epoch 3 keeps serving", "nothing serves: ...").
	Serving string `json:"serving,omitempty"`
	// ServingEpoch is the epoch that serves after a failed reload; nil
	// when nothing does.
	ServingEpoch *uint32 `json:"serving_epoch,omitempty"`
}

// Status is a snapshot of the supervisor.
type Status struct {
	PID       int    `json:"pid"`
	BaseID    uint32 `json:"base_id"`
	NextEpoch uint32 `json:"next_epoch"`
	Stopping  bool   `json:"stopping"`
	Reloading bool   `json:"reloading"`
	Pending   bool   `json:"reload_pending"`
	// Fatal is why the restarter is exiting 1, once it knows.
	Fatal       string        `json:"fatal,omitempty"`
	Held        *HeldReload   `json:"reload_held,omitempty"` // a pending reload held by pacing, and why (pacing.go)
	Generations []Generation  `json:"generations"`
	LastReload  *ReloadResult `json:"last_reload,omitempty"`
	Reloads     ReloadCounts  `json:"reloads"`
}

// ReloadCounts counts reloads since the supervisor started (the first
// start is not a reload). They only grow, so a caller can wait for "one
// more" without reading the log.
type ReloadCounts struct {
	// Requested: reload requests taken (Reload, RequestReload), including
	// those merged into one already pending; none while stopping.
	Requested uint64 `json:"requested"`
	// Started: reloads begun (validation or start), recoveries included.
	Started   uint64 `json:"started"`
	Succeeded uint64 `json:"succeeded"`
	Failed    uint64 `json:"failed"`
	// Held: reloads held by pacing; each ends Released (the generation
	// waited for exited) or Forced (MaxReloadDelay reached), unless the
	// supervisor stops first.
	Held     uint64 `json:"held"`
	Released uint64 `json:"released"`
	Forced   uint64 `json:"forced"`
}

// EventKind says what an Event reports.
type EventKind string

// Event kinds.
const (
	// EventState: a generation changed state (Generation is set).
	EventState EventKind = "state"
	// EventReloading: a reload began (validation, then start).
	EventReloading EventKind = "reloading"
	// EventReloaded: a reload finished (Reload is set, OK or failed).
	EventReloaded EventKind = "reloaded"
	// EventStopping: shutdown began.
	EventStopping EventKind = "stopping"
	// EventReloadHeld: pacing holds a reload (Held is set; pacing.go).
	EventReloadHeld EventKind = "reload-held"
)

// Event reports a change. Status is the snapshot just after the change.
// Events are delivered in order from the state-machine goroutine.
type Event struct {
	Kind       EventKind     `json:"kind"`
	Time       time.Time     `json:"time"`
	Generation *Generation   `json:"generation,omitempty"`
	Reload     *ReloadResult `json:"reload,omitempty"`
	// First is true on the EventState that makes the very first generation ready
	// (systemd READY=1 at start-up).
	First  bool        `json:"first,omitempty"`
	Held   *HeldReload `json:"held,omitempty"` // EventReloadHeld
	Status Status      `json:"status"`
}

// ExitError is returned by Run when the restarter should exit non-zero.
type ExitError struct {
	Code   int
	Reason string
}

func (e *ExitError) Error() string { return e.Reason }

// ErrStopped is returned by Reload and Command once the supervisor is shutting down.
var ErrStopped = errors.New("supervisor stopped")
