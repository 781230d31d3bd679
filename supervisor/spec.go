package supervisor

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// Vars are the per-generation values given to the proxy.
type Vars struct {
	Epoch               uint32
	BaseID              uint32
	DrainTimeS          int64
	ParentShutdownTimeS int64
}

// Seconds converts a duration to the whole seconds Envoy takes, rounding up.
func Seconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// Expand replaces {{epoch}}, {{base_id}}, {{drain_time_s}} and
// {{parent_shutdown_time_s}} in each argument.
func Expand(args []string, v Vars) []string {
	r := strings.NewReplacer(
		"{{epoch}}", strconv.FormatUint(uint64(v.Epoch), 10),
		"{{base_id}}", strconv.FormatUint(uint64(v.BaseID), 10),
		"{{drain_time_s}}", strconv.FormatInt(v.DrainTimeS, 10),
		"{{parent_shutdown_time_s}}", strconv.FormatInt(v.ParentShutdownTimeS, 10),
	)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = r.Replace(a)
	}
	return out
}

// EnvoyArgs are the flags appended in envoy mode.
func EnvoyArgs(v Vars) []string {
	return []string{
		"--restart-epoch", strconv.FormatUint(uint64(v.Epoch), 10),
		"--base-id", strconv.FormatUint(uint64(v.BaseID), 10),
		"--drain-time-s", strconv.FormatInt(v.DrainTimeS, 10),
		"--parent-shutdown-time-s", strconv.FormatInt(v.ParentShutdownTimeS, 10),
	}
}

// privateEnv is the restarter's own service-manager state, never leaked to
// the proxy (a proxy that inherited NOTIFY_SOCKET could tell systemd it is
// ready on the restarter's behalf).
var privateEnv = []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"}

// Env returns base (usually os.Environ()) without the restarter's private
// variables and any of the generation variables, followed by
// RESTART_EPOCH, BASE_ID, DRAIN_TIME_S, PARENT_SHUTDOWN_TIME_S and extra.
func Env(base []string, v Vars, extra []string) []string {
	drop := map[string]bool{"RESTART_EPOCH": true, "BASE_ID": true, "DRAIN_TIME_S": true, "PARENT_SHUTDOWN_TIME_S": true}
	for _, k := range privateEnv {
		drop[k] = true
	}
	for _, kv := range extra {
		if k, _, ok := strings.Cut(kv, "="); ok {
			drop[k] = true
		}
	}
	out := make([]string, 0, len(base)+4+len(extra))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			out = append(out, kv)
		}
	}
	out = append(out,
		"RESTART_EPOCH="+strconv.FormatUint(uint64(v.Epoch), 10),
		"BASE_ID="+strconv.FormatUint(uint64(v.BaseID), 10),
		"DRAIN_TIME_S="+strconv.FormatInt(v.DrainTimeS, 10),
		"PARENT_SHUTDOWN_TIME_S="+strconv.FormatInt(v.ParentShutdownTimeS, 10),
	)
	return append(out, extra...)
}

func environ() []string { return os.Environ() }
