package control

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// MaxRequestSize bounds one request line, newline included.
const MaxRequestSize = 64 << 10

// maxResponseSize bounds one response line read by the client.
const maxResponseSize = 4 << 20

// Request operations.
const (
	OpStatus = "status"
	OpReload = "reload"
	OpStop   = "stop"
)

// Generation states, as the restarter reports them.
const (
	StateStarting = "starting"
	StateReady    = "ready"
	StateDraining = "draining"
	StateExited   = "exited"
)

// Handler is what the server asks to do the work. Each method is called from
// the connection's goroutine; ctx is cancelled when the Server closes.
type Handler interface {
	// Status returns a snapshot of the instance.
	Status(ctx context.Context) (Status, error)
	// Reload starts a reload (or joins the pending one) and blocks until the
	// new generation is ready or has failed. An error means the reload was
	// not attempted (e.g. the instance is stopping); a failed reload is an
	// outcome with OK false and a Reason.
	Reload(ctx context.Context) (ReloadOutcome, error)
	// Stop begins an orderly shutdown and returns once it has begun. It
	// must not call Server.Close itself: Close waits for this call.
	Stop(ctx context.Context) error
}

// Status is the snapshot `restarter status` prints. The restarter fills it.
type Status struct {
	Name        string         `json:"name"`    // instance name (--name or base-<id>)
	PID         int            `json:"pid"`     // the restarter's own pid
	BaseID      uint32         `json:"base_id"` // the base id passed to every generation
	Generations []Generation   `json:"generations"`
	LastReload  *ReloadOutcome `json:"last_reload,omitempty"` // nil before the first reload
	ReloadHeld  *ReloadHeld    `json:"reload_held,omitempty"` // a reload held by --reload-pacing, nil if none
}

// ReloadHeld is a reload the restarter holds back so as not to cut a
// draining generation (or reuse the socket names of one still alive).
type ReloadHeld struct {
	Since      time.Time `json:"since"`
	Until      time.Time `json:"until,omitzero"` // when it goes ahead anyway; zero: only that exit releases it
	WaitingFor uint32    `json:"waiting_for"`    // the epoch whose exit releases it
	Rule       string    `json:"rule"`           // protect-drain or socket-slot
	Reason     string    `json:"reason"`
}

// Generation is one generation of the proxy.
type Generation struct {
	Epoch      uint32     `json:"epoch"`
	PID        int        `json:"pid"`
	State      string     `json:"state"` // StateStarting, StateReady, StateDraining or StateExited
	Started    time.Time  `json:"started"`
	Ready      *time.Time `json:"ready,omitempty"`       // nil until ready
	ExitStatus *int       `json:"exit_status,omitempty"` // set once exited; 128+n for signal n
}

// ReloadOutcome is how a reload ended.
type ReloadOutcome struct {
	OK     bool      `json:"ok"`
	Epoch  uint32    `json:"epoch"`            // the epoch that was started (or failed)
	Reason string    `json:"reason,omitempty"` // why it failed; empty when OK
	At     time.Time `json:"at"`               // when the outcome was known
}

// request is one line from a client.
type request struct {
	Op string `json:"op"`
}

// response is one line to a client.
type response struct {
	OK     bool           `json:"ok"`
	Error  string         `json:"error,omitempty"`
	Status *Status        `json:"status,omitempty"`
	Reload *ReloadOutcome `json:"reload,omitempty"`
}

// RemoteError is an error the server reported for a request.
type RemoteError struct {
	Op  string
	Msg string
}

func (e *RemoteError) Error() string { return fmt.Sprintf("restarter refused %s: %s", e.Op, e.Msg) }

// decodeRequest parses one request line (without its newline).
func decodeRequest(line []byte) (request, error) {
	var r request
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return r, fmt.Errorf("empty request (want a JSON object like {\"op\":\"status\"})")
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("bad request: %w (want a JSON object like {\"op\":\"status\"})", err)
	}
	if dec.More() {
		return r, fmt.Errorf("bad request: trailing data after the JSON object")
	}
	switch r.Op {
	case OpStatus, OpReload, OpStop:
		return r, nil
	}
	return r, fmt.Errorf("unknown op %q (want status, reload or stop)", r.Op)
}

// HandlerFuncs adapts three functions to a Handler; a nil func answers with
// an error saying the operation is not supported.
type HandlerFuncs struct {
	StatusFunc func(ctx context.Context) (Status, error)
	ReloadFunc func(ctx context.Context) (ReloadOutcome, error)
	StopFunc   func(ctx context.Context) error
}

var errUnsupported = fmt.Errorf("not supported by this restarter")

// Status calls StatusFunc.
func (f HandlerFuncs) Status(ctx context.Context) (Status, error) {
	if f.StatusFunc == nil {
		return Status{}, errUnsupported
	}
	return f.StatusFunc(ctx)
}

// Reload calls ReloadFunc.
func (f HandlerFuncs) Reload(ctx context.Context) (ReloadOutcome, error) {
	if f.ReloadFunc == nil {
		return ReloadOutcome{}, errUnsupported
	}
	return f.ReloadFunc(ctx)
}

// Stop calls StopFunc.
func (f HandlerFuncs) Stop(ctx context.Context) error {
	if f.StopFunc == nil {
		return errUnsupported
	}
	return f.StopFunc(ctx)
}
