package watch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testDebounce = 100 * time.Millisecond

func newWatcher(t *testing.T, paths ...string) *Watcher {
	t.Helper()
	w, err := New(paths, testDebounce, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func wantEvent(t *testing.T, w *Watcher, what string) {
	t.Helper()
	select {
	case _, ok := <-w.Events():
		if !ok {
			t.Fatalf("%s: Events closed", what)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: no event", what)
	}
}

// wantQuiet asserts no event within several debounce periods. It can only
// fail on a real extra event, never because the machine is slow.
func wantQuiet(t *testing.T, w *Watcher, what string) {
	t.Helper()
	select {
	case <-w.Events():
		t.Fatalf("%s: got an event, want none", what)
	case <-time.After(5 * testDebounce):
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPlainWrite(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "envoy.yaml")
	write(t, f, "a: 1\n")
	w := newWatcher(t, f)
	write(t, f, "a: 22\n")
	wantEvent(t, w, "write")
	// A change to a neighbour of the watched file is not a change.
	write(t, filepath.Join(dir, "other.txt"), "x")
	wantQuiet(t, w, "write to another file in the same directory")
}

func TestRenameOver(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "envoy.yaml")
	write(t, f, "a: 1\n")
	w := newWatcher(t, f)
	tmp := filepath.Join(dir, ".envoy.yaml.tmp")
	write(t, tmp, "a: 1\n") // same content and size: identity is the new inode
	if err := os.Rename(tmp, f); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, w, "rename over")
	// And again, to be sure the watch survived the first rename.
	write(t, tmp, "a: 3\n")
	if err := os.Rename(tmp, f); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, w, "second rename over")
}

// configMap lays out a directory the way the kubelet does: a timestamped
// directory with the data, a "..data" symlink to it, and one symlink per key
// to "..data/<key>". update swaps ..data atomically to a new directory.
type configMap struct {
	t   *testing.T
	dir string
	n   int
}

func newConfigMap(t *testing.T, content string) *configMap {
	c := &configMap{t: t, dir: t.TempDir()}
	c.update(content)
	if err := os.Symlink("..data/envoy.yaml", filepath.Join(c.dir, "envoy.yaml")); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *configMap) update(content string) {
	c.t.Helper()
	c.n++
	ts := fmt.Sprintf("..2026_11_21_23_00_%02d.%d", c.n, 1000+c.n)
	if err := os.Mkdir(filepath.Join(c.dir, ts), 0o755); err != nil {
		c.t.Fatal(err)
	}
	write(c.t, filepath.Join(c.dir, ts, "envoy.yaml"), content)
	old, _ := os.Readlink(filepath.Join(c.dir, "..data"))
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		c.t.Fatal(err)
	}
	if old != "" {
		if err := os.RemoveAll(filepath.Join(c.dir, old)); err != nil {
			c.t.Fatal(err)
		}
	}
}

func TestConfigMapSymlinkSwap(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		cm := newConfigMap(t, "a: 1\n")
		w := newWatcher(t, filepath.Join(cm.dir, "envoy.yaml"))
		cm.update("a: 2\n")
		wantEvent(t, w, "..data swap")
		cm.update("a: 3\n")
		wantEvent(t, w, "second ..data swap")
	})
	t.Run("directory", func(t *testing.T) {
		cm := newConfigMap(t, "a: 1\n")
		w := newWatcher(t, cm.dir)
		cm.update("a: 2\n")
		wantEvent(t, w, "..data swap in a watched directory")
	})
}

func TestBurstIsOneEvent(t *testing.T) {
	f := filepath.Join(t.TempDir(), "envoy.yaml")
	write(t, f, "start")
	w, err := New([]string{f}, 500*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < 50; i++ {
		write(t, f, strings.Repeat("x", i+1))
	}
	wantEvent(t, w, "burst of 50 writes")
	select {
	case <-w.Events():
		t.Fatal("got a second event for one burst, want one")
	case <-time.After(2 * time.Second):
	}
}

func TestMissingPath(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.yaml")
	_, err := New([]string{missing}, 0, nil)
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("got %v, want an error naming %s", err, missing)
	}
	if _, err := New(nil, 0, nil); err == nil {
		t.Fatal("no paths: got nil, want an error")
	}
	if _, err := New([]string{t.TempDir()}, -time.Second, nil); err == nil {
		t.Fatal("negative debounce: got nil, want an error")
	}
}

func TestDeletedFileIsAChange(t *testing.T) {
	f := filepath.Join(t.TempDir(), "envoy.yaml")
	write(t, f, "a")
	w := newWatcher(t, f)
	os.Remove(f)
	wantEvent(t, w, "delete")
	write(t, f, "b")
	wantEvent(t, w, "recreate")
}

func TestCloseIdempotent(t *testing.T) {
	f := filepath.Join(t.TempDir(), "envoy.yaml")
	write(t, f, "a")
	w, err := New([]string{f}, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.debounce != DefaultDebounce {
		t.Fatalf("debounce: got %v, want %v", w.debounce, DefaultDebounce)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, ok := <-w.Events(); ok {
		t.Fatal("Events not closed after Close")
	}
	// goleak in TestMain checks the goroutines are gone.
}
