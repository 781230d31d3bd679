package control

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Request operations: the names of the commands in the table below.
const (
	OpStatus = "status"
	OpReload = "reload"
	OpStop   = "stop"
)

// command is one control command. The commands table is the only list of
// them: the server dispatches with it, decodeRequest, IsCommand and RunCLI
// look names up in it, and the help text is printed from it. Adding a
// command is a row here, a Handler method and a test.
type command struct {
	name    string
	args    string        // flags shown in the usage line, e.g. "[--json]"
	help    string        // what it does, for the usage text
	timeout time.Duration // the CLI's default --timeout
	json    bool          // accepts --json
	// serve runs the request on the server.
	serve func(ctx context.Context, h Handler) response
	// run is the CLI: it sends the request through c and prints the
	// result; an error means exit 1 and is printed after "restarter NAME: ".
	run func(ctx context.Context, c *Client, o cliOptions, stdout io.Writer) error
}

var commands = []command{
	{
		name: OpStatus, args: "[--json]", timeout: 10 * time.Second, json: true,
		help: "each generation's epoch, pid, state, start and ready time, and the last reload's outcome",
		serve: func(ctx context.Context, h Handler) response {
			st, err := h.Status(ctx)
			if err != nil {
				return response{Error: err.Error()}
			}
			return response{OK: true, Status: &st}
		},
		run: runStatus,
	},
	{
		name: OpReload, timeout: 15 * time.Minute, // covers --ready-timeout (5m default) plus validation
		help: "reload and wait: exit 0 once the new generation is ready, 1 with the reason if it failed (the old generation keeps serving)",
		serve: func(ctx context.Context, h Handler) response {
			out, err := h.Reload(ctx)
			if err != nil {
				return response{Error: err.Error()}
			}
			return response{OK: true, Reload: &out}
		},
		run: func(ctx context.Context, c *Client, _ cliOptions, stdout io.Writer) error {
			out, err := c.Reload(ctx)
			if err != nil {
				return err
			}
			if !out.OK {
				serving := out.Serving
				if serving == "" { // a restarter that does not say
					serving = "the previous generation keeps serving"
				}
				return fmt.Errorf("epoch %d failed: %s; %s", out.Epoch, out.Reason, serving)
			}
			fmt.Fprintf(stdout, "reloaded: epoch %d is ready\n", out.Epoch)
			return nil
		},
	},
	{
		name: OpStop, timeout: 2 * time.Minute, // covers --term-wait (30s default)
		help: "stop the restarter and its generations, and wait until it is gone",
		serve: func(ctx context.Context, h Handler) response {
			if err := h.Stop(ctx); err != nil {
				return response{Error: err.Error()}
			}
			return response{OK: true}
		},
		run: func(ctx context.Context, c *Client, _ cliOptions, stdout io.Writer) error {
			if err := c.Stop(ctx); err != nil {
				return err
			}
			if err := c.WaitGone(ctx); err != nil {
				return err
			}
			// The restarter's own verdict: a stop during a failure (a
			// generation that died, a hung one) ends with exit 1, not "stopped".
			if rec, err := ReadExitRecord(ExitRecordPath(c.path)); err == nil && rec.PID == c.pid && rec.Code != 0 {
				return fmt.Errorf("the restarter (pid %d) exited %d: %s", rec.PID, rec.Code, rec.Reason)
			}
			fmt.Fprintln(stdout, "stopped")
			return nil
		},
	},
}

// lookup returns the command called name.
func lookup(name string) (*command, bool) {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i], true
		}
	}
	return nil, false
}

// commandNames is "status, reload or stop".
func commandNames() string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// IsCommand reports whether arg (the first command-line argument) names a
// control command RunCLI handles.
func IsCommand(arg string) bool {
	_, ok := lookup(arg)
	return ok
}

// CommandHelp is the list of control commands as the help text shows it,
// each line starting with indent.
func CommandHelp(indent string) string {
	var b strings.Builder
	for _, c := range commands {
		head := "restarter " + c.name
		if c.args != "" {
			head += " " + c.args
		}
		fmt.Fprintf(&b, "%s%-26s %s\n", indent, head, wrap(c.help, 50, indent+strings.Repeat(" ", 27)))
	}
	return b.String()
}

// wrap breaks s into lines of at most width bytes, continuing with indent.
func wrap(s string, width int, indent string) string {
	var b strings.Builder
	n := 0
	for i, w := range strings.Fields(s) {
		if i > 0 && n+1+len(w) > width {
			b.WriteString("\n" + indent)
			n = 0
		} else if i > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

func runStatus(ctx context.Context, c *Client, o cliOptions, stdout io.Writer) error {
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	WriteStatus(stdout, st)
	return nil
}
