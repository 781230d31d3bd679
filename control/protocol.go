package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// MaxRequestSize bounds one request line, newline included.
const MaxRequestSize = 64 << 10

// maxResponseSize bounds one response line read by the client.
const maxResponseSize = 4 << 20

// Generation states, as the restarter reports them.
const (
	StateStarting = "starting"
	StateReady    = "ready"
	StateDraining = "draining"
	StateStopping = "stopping"
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
	NextEpoch   uint32         `json:"next_epoch"`
	Stopping    bool           `json:"stopping"`        // shutdown has begun
	Reloading   bool           `json:"reloading"`       // a reload is validating or starting
	Pending     bool           `json:"reload_pending"`  // another reload waits for it
	Fatal       string         `json:"fatal,omitempty"` // why the restarter is exiting 1
	Generations []Generation   `json:"generations"`
	LastReload  *ReloadOutcome `json:"last_reload,omitempty"` // nil before the first reload
	ReloadHeld  *ReloadHeld    `json:"reload_held,omitempty"` // a reload held by --reload-pacing, nil if none
	Reloads     ReloadCounts   `json:"reloads"`
}

// ReloadCounts counts reloads since the restarter started; they only grow.
type ReloadCounts struct {
	Requested uint64 `json:"requested"` // SIGHUP, `restarter reload`, --watch; merged ones included
	Started   uint64 `json:"started"`   // begun (validation or start), recoveries included
	Succeeded uint64 `json:"succeeded"`
	Failed    uint64 `json:"failed"`
	Held      uint64 `json:"held"`     // held by --reload-pacing
	Released  uint64 `json:"released"` // held, then let go when the generation waited for exited
	Forced    uint64 `json:"forced"`   // held, then started at --max-reload-delay
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
	Exited     *time.Time `json:"exited,omitempty"`      // when it exited
	StartPID   int        `json:"start_pid,omitempty"`   // the started process, when PID is a process it forked
	DrainUntil *time.Time `json:"drain_until,omitempty"` // end of its drain time (kept once exited: before it, the drain was cut)
	TermAt     *time.Time `json:"term_at,omitempty"`     // backstop: SIGTERM then if still alive
	KillAt     *time.Time `json:"kill_at,omitempty"`     // SIGKILL then if still alive
	Health     string     `json:"health,omitempty"`      // liveness checks when serving; when starting, why not ready yet
}

// ReloadOutcome is how a reload ended.
type ReloadOutcome struct {
	OK     bool   `json:"ok"`
	Epoch  uint32 `json:"epoch"`            // the epoch that was started (or failed)
	Reason string `json:"reason,omitempty"` // why it failed; empty when OK
	// Failure is the kind of failure, for scripts: validation_failed,
	// start_failed, not_ready or aborted.
	Failure string    `json:"failure,omitempty"`
	At      time.Time `json:"at"` // when the outcome was known
	// Serving says, for a failed reload, what serves now ("epoch 3 keeps
	// serving", "nothing serves: ..."); ServingEpoch is that epoch.
	Serving      string  `json:"serving,omitempty"`
	ServingEpoch *uint32 `json:"serving_epoch,omitempty"`
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
	// Retry marks a refusal that did nothing and may be retried at once
	// (the server is busy with other clients).
	Retry bool `json:"retry,omitempty"`
}

// RemoteError is an error the server reported for a request.
type RemoteError struct {
	Op    string
	Msg   string
	Retry bool // the server did nothing and asks to be asked again (busy)
}

func (e *RemoteError) Error() string { return fmt.Sprintf("restarter refused %s: %s", e.Op, e.Msg) }

// decodeRequest parses one request line (without its newline) strictly:
// one JSON object whose only key is exactly "op" (encoding/json matches
// keys case-insensitively, so {"OP":"stop"} would pass a struct decode)
// with a string value naming a command, nothing after it.
func decodeRequest(line []byte) (request, error) {
	const want = `(want a JSON object like {"op":"status"})`
	var r request
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return r, fmt.Errorf("empty request %s", want)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return r, fmt.Errorf("bad request: not a JSON object %s", want)
	}
	seen := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return r, fmt.Errorf("bad request: %w %s", err, want)
		}
		key, _ := tok.(string)
		if key != "op" {
			return r, fmt.Errorf("bad request: unknown field %q (the only field is \"op\", in lower case)", key)
		}
		if seen {
			return r, errors.New(`bad request: field "op" given twice`)
		}
		seen = true
		tok, err = dec.Token()
		if err != nil {
			return r, fmt.Errorf("bad request: %w %s", err, want)
		}
		op, ok := tok.(string)
		if !ok {
			return r, fmt.Errorf(`bad request: "op" must be a string %s`, want)
		}
		r.Op = op
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return request{}, fmt.Errorf("bad request: malformed JSON object %s", want)
	}
	if _, err := dec.Token(); err != io.EOF {
		return request{}, errors.New("bad request: trailing data after the JSON object")
	}
	if !seen {
		return r, fmt.Errorf(`bad request: no "op" field %s`, want)
	}
	if _, ok := lookup(r.Op); !ok {
		return r, fmt.Errorf("unknown op %q (want %s)", r.Op, commandNames())
	}
	return r, nil
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
