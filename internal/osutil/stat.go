package osutil

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Stat is the part of /proc/<pid>/stat (proc(5)) the restarter reads.
type Stat struct {
	State byte // field 3: R, S, D, Z, T, ...
	PPID  int  // field 4
}

// ParseStat parses the contents of a /proc/<pid>/stat file. The command name
// (field 2) is in parentheses and may itself hold spaces and parentheses, so
// the fields are read after the last ')'.
func ParseStat(b []byte) (Stat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, errors.New("stat: no ')' after the command name")
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 2 {
		return Stat{}, fmt.Errorf("stat: %d fields after the command name, want at least 2", len(f))
	}
	if len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("stat: state %q is not one letter", f[0])
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil || ppid < 0 {
		return Stat{}, fmt.Errorf("stat: ppid %q is not a pid", f[1])
	}
	return Stat{State: f[0][0], PPID: ppid}, nil
}
