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
}

// ReloadResult is the outcome of one reload (or of the first start).
type ReloadResult struct {
	Epoch  uint32    `json:"epoch"`
	OK     bool      `json:"ok"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// Status is a snapshot of the supervisor.
type Status struct {
	PID         int           `json:"pid"`
	BaseID      uint32        `json:"base_id"`
	NextEpoch   uint32        `json:"next_epoch"`
	Stopping    bool          `json:"stopping"`
	Reloading   bool          `json:"reloading"`
	Pending     bool          `json:"reload_pending"`
	Held        *HeldReload   `json:"reload_held,omitempty"` // a pending reload held by pacing, and why (pacing.go)
	Generations []Generation  `json:"generations"`
	LastReload  *ReloadResult `json:"last_reload,omitempty"`
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
