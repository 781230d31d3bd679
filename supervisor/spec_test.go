package supervisor

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestExpandAndEnvoyArgs(t *testing.T) {
	v := Vars{Epoch: 3, BaseID: 9, DrainTimeS: 5, ParentShutdownTimeS: 8}
	got := Expand([]string{"-c", "x-{{epoch}}-{{base_id}}", "{{drain_time_s}}/{{parent_shutdown_time_s}}", "{{other}}"}, v)
	want := []string{"-c", "x-3-9", "5/8", "{{other}}"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if got := EnvoyArgs(v); strings.Join(got, " ") != "--restart-epoch 3 --base-id 9 --drain-time-s 5 --parent-shutdown-time-s 8" {
		t.Fatalf("EnvoyArgs = %q", got)
	}
	if s := Seconds(1500 * time.Millisecond); s != 2 {
		t.Fatalf("Seconds(1.5s) = %d, want 2 (rounded up)", s)
	}
}

func TestEnvDropsPrivate(t *testing.T) {
	got := Env([]string{"PATH=/bin", "NOTIFY_SOCKET=/run/x", "RESTART_EPOCH=7", "WATCHDOG_USEC=1", "X=1"}, Vars{Epoch: 2, BaseID: 1}, []string{"X=2"})
	want := []string{"PATH=/bin", "RESTART_EPOCH=2", "BASE_ID=1", "DRAIN_TIME_S=0", "PARENT_SHUTDOWN_TIME_S=0", "X=2"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}
