package supervisor

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// orphanChildren lists live processes whose parent is this process, read from
// /proc/<pid>/stat. After a start script forks and exits, the kernel has
// re-parented its children to us (we are a subreaper) before we reap it.
func orphanChildren() []int {
	self := os.Getpid()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, state, ok := readStat(pid); ok && ppid == self && state != 'Z' {
			out = append(out, pid)
		}
	}
	return out
}

// readStat returns ppid and state from /proc/<pid>/stat. The command name may
// contain spaces and parentheses, so parse after the last ')'.
func readStat(pid int) (ppid int, state byte, ok bool) {
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
	if err != nil {
		return 0, 0, false
	}
	return ppid, f[0][0], true
}

// environHas reports whether pid's environment contains kv. An environment
// that cannot be read (the process is gone, or belongs to another uid) does
// not match: adopting a process we cannot identify is worse than losing
// track of a forked proxy.
func environHas(pid int, kv string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for _, e := range bytes.Split(b, []byte{0}) {
		if string(e) == kv {
			return true
		}
	}
	return false
}
