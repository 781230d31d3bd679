package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hotrestart/restarter/baseid"
	"github.com/spf13/pflag"
)

// Exit codes of RunCLI.
const (
	ExitOK     = 0 // done; for reload: the new generation is ready
	ExitFailed = 1 // the reload failed (old generation still serves), or the restarter could not be reached
	ExitUsage  = 2 // bad command line
)

// cliOptions is a parsed control command line.
type cliOptions struct {
	runtimeDirs []string // where to look, in order; one when --runtime-dir is given
	selector    string   // instance name, "" for the only one
	timeout     time.Duration
	json        bool
}

// RunCLI implements the control commands (`restarter status [--json]`,
// `restarter reload`, `restarter stop`; see the commands table); args start
// with the command name. It returns the exit code (ExitOK, ExitFailed,
// ExitUsage).
func RunCLI(args []string, stdout, stderr io.Writer) int {
	cmd, o, err := parseCLI(args, stderr)
	if errors.Is(err, pflag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "restarter: %v\nTry 'restarter %s --help'.\n", err, helpTarget(args))
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if err := execute(ctx, cmd, o, stdout); err != nil {
		fmt.Fprintf(stderr, "restarter %s: %v\n", cmd.name, err)
		return ExitFailed
	}
	return ExitOK
}

func helpTarget(args []string) string {
	if len(args) > 0 && IsCommand(args[0]) {
		return args[0]
	}
	return "status"
}

func cliUsage(w io.Writer) {
	var line []string
	for _, c := range commands {
		line = append(line, strings.TrimSpace(c.name+" "+c.args))
	}
	fmt.Fprintf(w, "usage: restarter %s [flags]\n\n%s\n", strings.Join(line, " | "), CommandHelp("  "))
	fmt.Fprint(w, `With one restarter running no selector is needed; with several, pick one
with --name or --base-id. Without --runtime-dir every default location is
searched: $XDG_RUNTIME_DIR/restarter, /run/user/<uid>/restarter,
/run/restarter (as root) and /tmp/restarter-<uid>.

flags:
`)
}

// parseCLI parses a control command line. Errors are usage errors; a
// request for help (printed to stderr) is pflag.ErrHelp.
func parseCLI(args []string, stderr io.Writer) (*command, cliOptions, error) {
	var o cliOptions
	if len(args) == 0 {
		cliUsage(stderr)
		return nil, o, fmt.Errorf("missing command (want %s)", commandNames())
	}
	cmd, ok := lookup(args[0])
	if !ok {
		return nil, o, fmt.Errorf("unknown command %q (want %s)", args[0], commandNames())
	}
	fs := pflag.NewFlagSet("restarter "+cmd.name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	runtimeDir := fs.String("runtime-dir", "", "the restarter's --runtime-dir (default: search every default location)")
	name := fs.String("name", "", "the instance's --name")
	id := fs.Int64("base-id", -1, "the instance's --base-id (when it has no --name)")
	fs.DurationVar(&o.timeout, "timeout", 0, "give up after this long (default: "+defaultTimeouts()+")")
	if cmd.json {
		fs.BoolVar(&o.json, "json", false, "print the JSON snapshot")
	}
	fs.Usage = func() { cliUsage(stderr); fs.PrintDefaults() }
	fs.SortFlags = false
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, o, err
		}
		return nil, o, fmt.Errorf("%s: %w", cmd.name, err)
	}
	switch {
	case fs.NArg() > 0:
		return nil, o, fmt.Errorf("%s: unexpected argument %q", cmd.name, fs.Arg(0))
	case o.timeout < 0:
		return nil, o, fmt.Errorf("%s: --timeout %v is negative", cmd.name, o.timeout)
	case *name != "" && fs.Changed("base-id"):
		return nil, o, fmt.Errorf("%s: give --name or --base-id, not both", cmd.name)
	case *name != "":
		o.selector = *name
	case fs.Changed("base-id"):
		if *id < 0 || *id > baseid.Max {
			return nil, o, fmt.Errorf("%s: --base-id %d out of range: use 0..%d", cmd.name, *id, baseid.Max)
		}
		o.selector = InstanceName("", uint32(*id))
	}
	if o.timeout == 0 {
		o.timeout = cmd.timeout
	}
	o.runtimeDirs = DefaultRuntimeDirs()
	if *runtimeDir != "" {
		o.runtimeDirs = []string{*runtimeDir}
	}
	return cmd, o, nil
}

func defaultTimeouts() string {
	parts := make([]string, len(commands))
	for i, c := range commands {
		d := c.timeout.String() // 10s, 2m0s, 15m0s
		if strings.HasSuffix(d, "m0s") {
			d = strings.TrimSuffix(d, "0s")
		}
		parts[i] = c.name + " " + d
	}
	return strings.Join(parts, ", ")
}

// execute finds the instance, connects and runs cmd, asking again while
// the server answers that it is busy (it did nothing then) until ctx ends.
func execute(ctx context.Context, cmd *command, o cliOptions, stdout io.Writer) error {
	path, err := FindIn(o.runtimeDirs, o.selector)
	if err != nil {
		return err
	}
	backoff := 20 * time.Millisecond
	var busy error // the last "busy, retry" answer
	for {
		err := func() error {
			c, err := DialContext(ctx, path)
			if err != nil {
				return err
			}
			defer c.Close()
			return cmd.run(ctx, c, o, stdout)
		}()
		var re *RemoteError
		switch {
		case errors.As(err, &re) && re.Retry:
			busy = err
		case err != nil && busy != nil && ctx.Err() != nil:
			return fmt.Errorf("%w (still busy after --timeout %s)", busy, o.timeout)
		default:
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (still busy after --timeout %s)", busy, o.timeout)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// WriteStatus prints st as the human table of `restarter status`.
func WriteStatus(w io.Writer, st Status) {
	fmt.Fprintf(w, "restarter %s: pid %d, base id %d\n", st.Name, st.PID, st.BaseID)
	switch {
	case st.Fatal != "":
		fmt.Fprintf(w, "exiting 1: %s\n", st.Fatal)
	case st.Stopping:
		fmt.Fprintln(w, "stopping")
	case st.Reloading:
		fmt.Fprintf(w, "reloading to epoch %d\n", st.NextEpoch)
	}
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
	for _, g := range st.Generations {
		if g.State == StateStarting && g.Health != "" {
			fmt.Fprintf(w, "epoch %d: %s\n", g.Epoch, g.Health)
		}
	}
	switch r := st.LastReload; {
	case r == nil:
		fmt.Fprintln(w, "last reload: none")
	case r.OK:
		fmt.Fprintf(w, "last reload: ok, epoch %d ready at %s\n", r.Epoch, fmtTime(r.At))
	default:
		fmt.Fprintf(w, "last reload: FAILED at %s, epoch %d: %s\n", fmtTime(r.At), r.Epoch, r.Reason)
	}
	if c := st.Reloads; c.Requested > 0 {
		fmt.Fprintf(w, "reloads: %d requested, %d succeeded, %d failed, %d held by pacing\n", c.Requested, c.Succeeded, c.Failed, c.Held)
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
