package osutil

import (
	"os"
	"testing"
)

var statCases = []struct {
	name string
	in   string
	want Stat
	ok   bool
}{
	{"plain", "42 (envoy) S 1 42 42 0 -1", Stat{State: 'S', PPID: 1, Pgrp: 42}, true},
	{"full", "9 (sh) R 2 9 9 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 12345 2 3 4", Stat{State: 'R', PPID: 2, Pgrp: 9, StartTime: 12345}, true},
	{"bad pgrp", "9 (sh) R 2 x", Stat{}, false},
	{"bad starttime", "9 (sh) R 2 9 9 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 -5", Stat{}, false},
	{"spaces and parens in comm", "7 (a) b) (c) Z 99 7 7", Stat{State: 'Z', PPID: 99, Pgrp: 7}, true},
	{"empty comm", "7 () R 0", Stat{State: 'R', PPID: 0}, true},
	{"no paren", "7 envoy S 1", Stat{}, false},
	{"too few fields", "7 (x) S", Stat{}, false},
	{"long state", "7 (x) SS 1", Stat{}, false},
	{"bad ppid", "7 (x) S one", Stat{}, false},
	{"negative ppid", "7 (x) S -4", Stat{}, false},
	{"empty", "", Stat{}, false},
}

func TestParseStat(t *testing.T) {
	for _, tc := range statCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tc.in))
			if (err == nil) != tc.ok {
				t.Fatalf("got err %v, want ok %v", err, tc.ok)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestReadStatSelf(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if st.PPID != os.Getppid() {
		t.Errorf("got ppid %d, want %d", st.PPID, os.Getppid())
	}
	if !ProcessRunning(os.Getpid()) {
		t.Error("ProcessRunning(self) = false")
	}
}

func FuzzParseStat(f *testing.F) {
	for _, tc := range statCases {
		f.Add([]byte(tc.in))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStat(b)
		if err != nil && st != (Stat{}) {
			t.Fatalf("error %v with a non-zero result %+v", err, st)
		}
		if err == nil && st.PPID < 0 {
			t.Fatalf("negative ppid %d accepted", st.PPID)
		}
	})
}
