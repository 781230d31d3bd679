package control

import (
	"os"
	"path/filepath"
	"testing"
)

func TestExitRecordRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := ExitRecordPath(SocketPath(dir, "edge"))
	if want := filepath.Join(dir, "edge.exit"); path != want {
		t.Fatalf("ExitRecordPath: got %s, want %s", path, want)
	}
	in := ExitRecord{PID: 42, Code: 1, Reason: "serving epoch 3 exited with status 139"}
	if err := WriteExitRecord(path, in); err != nil {
		t.Fatal(err)
	}
	if out, err := ReadExitRecord(path); err != nil || out != in {
		t.Fatalf("ReadExitRecord = %+v, %v; want %+v", out, err, in)
	}
	os.WriteFile(path, []byte("{"), 0o600)
	if _, err := ReadExitRecord(path); err == nil {
		t.Fatal("a truncated record read without error")
	}
}

// FuzzReadExitRecord: any file is read without panic.
func FuzzReadExitRecord(f *testing.F) {
	f.Add([]byte(`{"pid":42,"code":1,"reason":"x"}`))
	f.Add([]byte(`{"pid":"42"}`))
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "x.exit")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _ = ReadExitRecord(path)
	})
}
