package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"
)

// Exit codes of RunCLI.
const (
	ExitOK     = 0 // done; for reload: the new generation is ready
	ExitFailed = 1 // the reload failed (old generation still serves), or the restarter could not be reached
	ExitUsage  = 2 // bad command line
)

// Default timeouts per command when --timeout is not given.
var defaultTimeouts = map[string]time.Duration{
	OpStatus: 10 * time.Second,
	OpReload: 15 * time.Minute, // covers --ready-timeout (5m default) plus validation
	OpStop:   2 * time.Minute,  // covers --term-wait (30s default)
}

// RunCLI implements `restarter status [--json]`, `restarter reload` and
// `restarter stop`; args start with the command name. It returns the exit
// code (ExitOK, ExitFailed, ExitUsage).
func RunCLI(args []string, stdout, stderr io.Writer) int {
	usage := func() {
		fmt.Fprint(stderr, `usage: restarter status [--json] | reload | stop [flags]

  status   each generation's epoch, pid, state, start and ready time, and the
           last reload's outcome
  reload   reload and wait: exit 0 once the new generation is ready, 1 with the
           reason if it failed (the old generation keeps serving)
  stop     stop the restarter and its generations, and wait until it is gone

With one restarter in the runtime dir no selector is needed; with several,
pick one with --name or --base-id.

flags:
`)
	}
	if len(args) == 0 {
		usage()
		return ExitUsage
	}
	cmd := args[0]
	if cmd != OpStatus && cmd != OpReload && cmd != OpStop {
		fmt.Fprintf(stderr, "restarter: unknown command %q (want status, reload or stop)\n", cmd)
		return ExitUsage
	}
	fs := pflag.NewFlagSet("restarter "+cmd, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	runtimeDir := fs.String("runtime-dir", DefaultRuntimeDir(), "the restarter's runtime dir")
	name := fs.String("name", "", "the instance's --name")
	baseID := fs.Int64("base-id", -1, "the instance's --base-id (when it has no --name)")
	timeout := fs.Duration("timeout", 0, "give up after this long (default: status 10s, reload 15m, stop 2m)")
	asJSON := fs.Bool("json", false, "status: print the JSON snapshot")
	fs.Usage = func() { usage(); fs.PrintDefaults() }
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "restarter %s: unexpected argument %q\n", cmd, fs.Arg(0))
		return ExitUsage
	}
	if *asJSON && cmd != OpStatus {
		fmt.Fprintf(stderr, "restarter %s: --json only applies to status\n", cmd)
		return ExitUsage
	}
	if *timeout < 0 {
		fmt.Fprintf(stderr, "restarter %s: --timeout %v is negative\n", cmd, *timeout)
		return ExitUsage
	}
	selector := ""
	switch {
	case *name != "" && *baseID >= 0:
		fmt.Fprintf(stderr, "restarter %s: give --name or --base-id, not both\n", cmd)
		return ExitUsage
	case *name != "":
		selector = *name
	case fs.Changed("base-id"):
		if *baseID < 0 || *baseID > 1<<32-1 {
			fmt.Fprintf(stderr, "restarter %s: --base-id %d out of range (0..4294967295)\n", cmd, *baseID)
			return ExitUsage
		}
		selector = InstanceName("", uint32(*baseID))
	}
	d := *timeout
	if d == 0 {
		d = defaultTimeouts[cmd]
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()

	path, err := Find(*runtimeDir, selector)
	if err != nil {
		fmt.Fprintf(stderr, "restarter %s: %v\n", cmd, err)
		return ExitFailed
	}
	c, err := Dial(path)
	if err != nil {
		fmt.Fprintf(stderr, "restarter %s: %v\n", cmd, err)
		return ExitFailed
	}
	defer c.Close()

	switch cmd {
	case OpStatus:
		st, err := c.Status(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "restarter status: %v\n", err)
			return ExitFailed
		}
		if *asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(st); err != nil {
				fmt.Fprintf(stderr, "restarter status: %v\n", err)
				return ExitFailed
			}
			return ExitOK
		}
		WriteStatus(stdout, st)
		return ExitOK
	case OpReload:
		out, err := c.Reload(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "restarter reload: %v\n", err)
			return ExitFailed
		}
		if !out.OK {
			fmt.Fprintf(stderr, "restarter reload: epoch %d failed: %s; the previous generation keeps serving\n", out.Epoch, out.Reason)
			return ExitFailed
		}
		fmt.Fprintf(stdout, "reloaded: epoch %d is ready\n", out.Epoch)
		return ExitOK
	default: // OpStop
		if err := c.Stop(ctx); err != nil {
			fmt.Fprintf(stderr, "restarter stop: %v\n", err)
			return ExitFailed
		}
		if err := c.WaitGone(ctx); err != nil {
			fmt.Fprintf(stderr, "restarter stop: %v\n", err)
			return ExitFailed
		}
		fmt.Fprintln(stdout, "stopped")
		return ExitOK
	}
}

// WriteStatus prints st as the human table of `restarter status`.
func WriteStatus(w io.Writer, st Status) {
	fmt.Fprintf(w, "restarter %s: pid %d, base id %d\n", st.Name, st.PID, st.BaseID)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "EPOCH\tPID\tSTATE\tSTARTED\tREADY\tEXIT")
	for _, g := range st.Generations {
		ready, exit := "-", "-"
		if g.Ready != nil {
			ready = fmtTime(*g.Ready)
		}
		if g.ExitStatus != nil {
			exit = strconv.Itoa(*g.ExitStatus)
		}
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\n", g.Epoch, g.PID, g.State, fmtTime(g.Started), ready, exit)
	}
	tw.Flush()
	switch r := st.LastReload; {
	case r == nil:
		fmt.Fprintln(w, "last reload: none")
	case r.OK:
		fmt.Fprintf(w, "last reload: ok, epoch %d ready at %s\n", r.Epoch, fmtTime(r.At))
	default:
		fmt.Fprintf(w, "last reload: FAILED at %s, epoch %d: %s\n", fmtTime(r.At), r.Epoch, r.Reason)
	}
	if h := st.ReloadHeld; h != nil {
		fmt.Fprintf(w, "reload held since %s (%s): %s\n", fmtTime(h.Since), h.Rule, h.Reason)
	}
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// IsCommand reports whether arg (the first command-line argument) names a
// control command RunCLI handles: status, reload or stop.
func IsCommand(arg string) bool {
	return arg == OpStatus || arg == OpReload || arg == OpStop
}
