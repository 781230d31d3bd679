package control

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// processRunning reports whether pid is a live process. A zombie (exited,
// not yet reaped by its parent) counts as gone: it holds no socket, lock or
// file any more.
func processRunning(pid int) bool {
	if err := unix.Kill(pid, 0); err == unix.ESRCH {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may itself
	// contain spaces and parentheses: look after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
