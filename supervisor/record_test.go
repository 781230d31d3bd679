package supervisor

import (
	"os"
	"path/filepath"
	"testing"
)

func TestReadRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gens")
	os.WriteFile(path, []byte(recordHeader+"123 456 7\n\n# note\n99 0 8\n"), 0o600)
	got, err := readRecord(path)
	if err != nil || len(got) != 2 || got[0] != (recordedGroup{123, 456, 7}) || got[1] != (recordedGroup{99, 0, 8}) {
		t.Fatalf("readRecord = %+v, %v", got, err)
	}
	for _, bad := range []string{"1 2 3\n", "x y z\n", "-5 1 1\n"} {
		os.WriteFile(path, []byte(bad), 0o600)
		if _, err := readRecord(path); err == nil {
			t.Errorf("readRecord(%q): no error; want one naming the bad line (a pgid of 0 or 1 would signal everything)", bad)
		}
	}
}

// FuzzReadRecord: any record file is parsed without panic, and never yields
// a process group that would signal more than a group (pgid <= 1).
func FuzzReadRecord(f *testing.F) {
	f.Add([]byte(recordHeader + "123 456 7\n"))
	f.Add([]byte("1 2 3\n"))
	f.Add([]byte("0x10 1 1\n\x00\n"))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "gens")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		groups, _ := readRecord(path)
		for _, g := range groups {
			if g.pgid <= 1 {
				t.Fatalf("group %+v from %q", g, b)
			}
		}
	})
}
