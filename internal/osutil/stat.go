package osutil

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Stat is the part of /proc/<pid>/stat (proc(5)) the restarter reads.
type Stat struct {
	State     byte   // field 3: R, S, D, Z, T, t, ...
	PPID      int    // field 4
	Pgrp      int    // field 5, 0 when the line stops before it
	StartTime uint64 // field 22, clock ticks after boot (with the pid it names one process); 0 when absent
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
	st := Stat{State: f[0][0], PPID: ppid}
	if len(f) > 2 {
		if st.Pgrp, err = strconv.Atoi(string(f[2])); err != nil {
			return Stat{}, fmt.Errorf("stat: pgrp %q is not a number", f[2])
		}
	}
	if len(f) > 19 {
		if st.StartTime, err = strconv.ParseUint(string(f[19]), 10, 64); err != nil {
			return Stat{}, fmt.Errorf("stat: starttime %q is not a number", f[19])
		}
	}
	return st, nil
}
