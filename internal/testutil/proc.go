package testutil

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotrestart/restarter/internal/osutil"
)

// Alive reports whether pid is a live process (not a zombie).
func Alive(pid int) bool {
	_, state, ok := ProcStat(pid)
	return ok && state != 'Z'
}

// ProcStat returns pid's parent and state from /proc/<pid>/stat (the command
// name may hold spaces and parentheses: fields are read after the last ')').
func ProcStat(pid int) (ppid int, state byte, ok bool) {
	if pid <= 0 {
		return 0, 0, false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return 0, 0, false
	}
	ppid, err = strconv.Atoi(f[1])
	return ppid, f[0][0], err == nil
}

// CountFDs is the number of open file descriptors of pid (0: this process),
// from /proc/<pid>/fd, leaving out those whose link (as readlink shows it,
// "anon_inode:[pidfd]", "socket:[123]") starts with one of except.
func CountFDs(t testing.TB, pid int, except ...string) int {
	t.Helper()
	dir := "/proc/self/fd"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid) + "/fd"
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("count fds: %v", err)
	}
	n := len(ents)
	if pid == 0 {
		n-- // the directory ReadDir had open
	}
	for _, e := range ents {
		if len(except) == 0 {
			break
		}
		link, _ := os.Readlink(dir + "/" + e.Name())
		for _, x := range except {
			if link != "" && strings.HasPrefix(link, x) {
				n--
				break
			}
		}
	}
	return n
}

// ExitCode is a finished process's exit code as the restarter reports
// one: the code, or 128+signal for a signalled exit; -1 when it never ran
// (ps nil, as cmd.ProcessState after a failed Start).
func ExitCode(ps *os.ProcessState) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

var markerSeq atomic.Int64

// SleepMarker is a `sleep` argument that no other process has: seconds
// 1000 with a fraction made of this test binary's pid and a counter. Give
// it to sleep in a command, then find what is left with PIDsWithArg.
func SleepMarker() string {
	return fmt.Sprintf("1000.%d%03d", os.Getpid(), markerSeq.Add(1))
}

// PIDsWithArg lists the live processes that have arg among their
// arguments (a zombie has none, so it is not listed).
func PIDsWithArg(arg string) []int {
	var out []int
	for _, pid := range osutil.PIDs() {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil {
			continue
		}
		for _, a := range bytes.Split(b, []byte{0}) {
			if string(a) == arg {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// ServerInfo is what tests read from an Envoy-like admin's /server_info.
type ServerInfo struct {
	State string `json:"state"`
	Opts  struct {
		RestartEpoch uint32 `json:"restart_epoch"`
		BaseID       string `json:"base_id"`
		DrainTime    string `json:"drain_time"`
	} `json:"command_line_options"`
}

var adminClient = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// GetServerInfo reads admin's /server_info (admin: host:port or an http://
// base URL) on a new connection, as a readiness probe does.
func GetServerInfo(admin string) (ServerInfo, error) {
	var si ServerInfo
	if !strings.Contains(admin, "://") {
		admin = "http://" + admin
	}
	resp, err := adminClient.Get(strings.TrimRight(admin, "/") + "/server_info")
	if err != nil {
		return si, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return si, fmt.Errorf("server_info: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&si); err != nil {
		return si, fmt.Errorf("server_info: %w", err)
	}
	return si, nil
}
