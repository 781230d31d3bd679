package main

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

// The test binary is also its own helper programs, registered by name:
// `<test binary> NAME ARGS...` runs helperCommands[NAME] instead of the
// tests (Go's os/exec tests do the same). The restarter itself is the role
// RESTARTER_TEST_ROLE=restarter, since it must see its own arguments.
// A test names the command it runs through helperArgs, which marks it
// used; when the whole suite ran, TestMain fails on a command no test ran,
// as os/exec's tests do.
var helperCommands = map[string]func() int{
	"fakeproxy":      fakeProxy,     // a proxy generation (fakeproxy_test.go)
	"fakeproxy-fork": fakeProxyFork, // a start script that forks fakeproxy and exits 0 (fakeproxy_test.go)
}

var helperUsed sync.Map // command name -> true

// helperArgs is the exec form running the helper command name with extra
// arguments, and marks name used. It panics on a name not registered.
func helperArgs(name string, extra ...string) []string {
	if _, ok := helperCommands[name]; !ok {
		panic("unregistered helper command " + name)
	}
	helperUsed.Store(name, true)
	return append([]string{os.Args[0], name}, extra...)
}

// fpKnobs are the FP_* variables that steer the fake proxy, each documented
// in fakeproxy_test.go. Tests set them through startRestarter, which
// refuses a name not listed here (a typo would silently do nothing); when
// the whole suite ran, TestMain fails on a knob no test set (a branch of
// the fake proxy nothing exercises), as os/exec's tests fail on an unused
// helper command.
var fpKnobs = []string{
	"FP_ADMIN", "FP_CRASH_AFTER", "FP_CRASH_EPOCHS", "FP_EXIT0_AFTER", "FP_FAIL_ONCE_EPOCHS",
	"FP_IGNORE_TERM_EPOCHS", "FP_NOTIFY", "FP_NOTIFY_SKIP_ONCE_EPOCHS", "FP_ORPHAN", "FP_PRINT",
}

var fpUsed sync.Map // knob name -> true

// checkFPKnobs fails t on an FP_* variable in env that is not a knob, and
// marks the others used.
func checkFPKnobs(t testing.TB, env []string) {
	t.Helper()
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "FP_") {
			continue
		}
		if !slices.Contains(fpKnobs, k) {
			t.Fatalf("unknown fake-proxy knob %s: add it to fpKnobs (helpers_test.go) and document it in fakeproxy_test.go", k)
		}
		fpUsed.Store(k, true)
	}
}

// fullRun reports whether every test ran (no -run, no -short): a partial
// run proves nothing about the knobs and commands it did not use.
func fullRun() bool {
	return !testing.Short() && flag.Lookup("test.run").Value.String() == ""
}

// unused lists the names no test used, sorted.
func unused(names []string, used *sync.Map) []string {
	var out []string
	for _, k := range names {
		if _, ok := used.Load(k); !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// runHelper runs the helper command named by os.Args[1], if any, and
// reports whether it did (then it has exited).
func runHelper() {
	if len(os.Args) < 2 {
		return
	}
	if f, ok := helperCommands[os.Args[1]]; ok {
		os.Exit(f())
	}
}

// reportUnused turns unused knobs and helper commands, after a full run
// that passed, into a failing exit code.
func reportUnused(code int) int {
	if code != 0 || !fullRun() {
		return code
	}
	var cmds []string
	for name := range helperCommands {
		cmds = append(cmds, name)
	}
	if u := unused(fpKnobs, &fpUsed); len(u) > 0 {
		fmt.Fprintf(os.Stderr, "fake-proxy knobs no test sets: %s (remove them, or test them)\n", strings.Join(u, ", "))
		code = 1
	}
	if u := unused(cmds, &helperUsed); len(u) > 0 {
		fmt.Fprintf(os.Stderr, "helper commands no test runs: %s (remove them, or test them)\n", strings.Join(u, ", "))
		code = 1
	}
	return code
}

// fatalRecorder is a testing.TB whose Fatalf only records.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper()                        {}
func (f *fatalRecorder) Fatalf(format string, a ...any) { f.msg = fmt.Sprintf(format, a...) }

func TestCheckFPKnobsRefusesUnknown(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	checkFPKnobs(rec, []string{"FP_PRINT=1", "OTHER=x"})
	if rec.msg != "" {
		t.Fatalf("known knob refused: %s", rec.msg)
	}
	checkFPKnobs(rec, []string{"FP_CRASH_EPOCH=1"}) // a typo of FP_CRASH_EPOCHS
	if !strings.Contains(rec.msg, "unknown fake-proxy knob FP_CRASH_EPOCH") {
		t.Fatalf("typo not refused: got %q", rec.msg)
	}
}
