package watch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"
)

// DefaultDebounce is the quiet period used when New is given zero.
const DefaultDebounce = time.Second

// Watcher watches files and directories; see New.
type Watcher struct {
	fsw      *fsnotify.Watcher
	targets  []*target
	debounce time.Duration
	log      *zap.Logger
	events   chan struct{}
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	dirs     map[string]bool // directories currently added to fsw
}

type target struct {
	path  string // as given, made absolute
	isDir bool
	id    identity
}

// identity is what a file's change is judged by.
type identity struct {
	resolved string
	dev, ino uint64
	size     int64
	mtime    int64
	missing  bool
}

// New starts watching paths (files or directories; each must exist) and
// sends one value on Events after each burst of changes followed by
// debounce of quiet (0 means DefaultDebounce).
func New(paths []string, debounce time.Duration, log *zap.Logger) (*Watcher, error) {
	if len(paths) == 0 {
		return nil, errors.New("watch: no paths given")
	}
	if debounce < 0 {
		return nil, fmt.Errorf("watch: debounce %v is negative", debounce)
	}
	if debounce == 0 {
		debounce = DefaultDebounce
	}
	if log == nil {
		log = zap.NewNop()
	}
	w := &Watcher{debounce: debounce, log: log, events: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), dirs: map[string]bool{}}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", p, err)
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w (a watched path must exist when watching starts)", p, err)
		}
		w.targets = append(w.targets, &target{path: abs, isDir: fi.IsDir(), id: identify(abs)})
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	w.fsw = fsw
	if err := w.syncDirs(true); err != nil {
		fsw.Close()
		return nil, err
	}
	go w.run()
	return w, nil
}

// Events delivers one value per debounced burst of changes. It is closed by
// Close. The channel holds one pending value: bursts the reader has not yet
// picked up coalesce.
func (w *Watcher) Events() <-chan struct{} { return w.events }

// Close stops watching and closes Events. It is idempotent and blocks until
// the watching goroutine is gone.
func (w *Watcher) Close() error {
	var err error
	w.once.Do(func() {
		close(w.stop)
		<-w.done
		err = w.fsw.Close()
		close(w.events)
	})
	<-w.done
	return err
}

// dirsFor lists the directories whose events can signal a change of t: the
// path's parent (renames over it, symlink swaps next to it), the directory of
// its resolved target, and for directories the directory itself and its
// resolved form.
func (t *target) dirsFor() []string {
	var ds []string
	add := func(p string) {
		if p != "" {
			ds = append(ds, p)
		}
	}
	resolved, err := filepath.EvalSymlinks(t.path)
	if t.isDir {
		add(t.path)
		if err == nil {
			add(resolved)
		}
		return ds
	}
	add(filepath.Dir(t.path))
	if err == nil {
		add(filepath.Dir(resolved))
	}
	return ds
}

// syncDirs makes the set of watched directories match the targets' current
// symlink resolution, adding new ones and dropping stale ones.
// With strict (at start) a directory that cannot be watched is an error;
// later it is logged and retried at the next check.
func (w *Watcher) syncDirs(strict bool) error {
	want := map[string]bool{}
	for _, t := range w.targets {
		for _, d := range t.dirsFor() {
			want[d] = true
		}
	}
	for d := range want {
		if w.dirs[d] {
			continue
		}
		if err := w.fsw.Add(d); err != nil {
			if strict {
				return fmt.Errorf("watch %s: %w", d, err)
			}
			w.log.Warn("watch: cannot watch directory", zap.String("dir", d), zap.Error(err))
			continue
		}
		w.dirs[d] = true
	}
	for d := range w.dirs {
		if !want[d] {
			_ = w.fsw.Remove(d) // may already be gone with the directory
			delete(w.dirs, d)
		}
	}
	return nil
}

func (w *Watcher) run() {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	dirty := false    // some event since the last check
	dirEvent := false // an event inside a watched directory target
	for {
		select {
		case <-w.stop:
			timer.Stop()
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if w.touchesDirTarget(ev.Name) {
				dirEvent = true
			}
			dirty = true
			timer.Reset(w.debounce)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			// Overflow: events were lost; check everything after the quiet period.
			w.log.Warn("watch: fsnotify error", zap.Error(err))
			dirty, dirEvent = true, true
			timer.Reset(w.debounce)
		case <-timer.C:
			if !dirty {
				continue
			}
			changed := w.check() || dirEvent
			dirty, dirEvent = false, false
			if err := w.syncDirs(false); err != nil {
				w.log.Warn("watch: resync", zap.Error(err))
			}
			if changed {
				select {
				case w.events <- struct{}{}:
				default: // one already pending
				}
			}
		}
	}
}

// touchesDirTarget reports whether an event path lies inside (or is) a
// watched directory target.
func (w *Watcher) touchesDirTarget(name string) bool {
	for _, t := range w.targets {
		if !t.isDir {
			continue
		}
		for _, d := range t.dirsFor() {
			if name == d || filepath.Dir(name) == d {
				return true
			}
		}
	}
	return false
}

// check re-identifies every file target and reports whether any changed.
func (w *Watcher) check() bool {
	changed := false
	for _, t := range w.targets {
		if t.isDir {
			continue
		}
		id := identify(t.path)
		if id != t.id {
			w.log.Info("watch: file changed", zap.String("path", t.path), zap.String("resolved", id.resolved), zap.Bool("missing", id.missing))
			t.id = id
			changed = true
		}
	}
	return changed
}

func identify(path string) identity {
	resolved, err := filepath.EvalSymlinks(path)
	if err != nil {
		return identity{missing: true}
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return identity{resolved: resolved, missing: true}
	}
	id := identity{resolved: resolved, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.dev, id.ino = uint64(st.Dev), st.Ino
	}
	return id
}
