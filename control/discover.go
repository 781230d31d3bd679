package control

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// socketSuffix ends every control socket's file name.
const socketSuffix = ".ctl"

// staleGrace protects a socket that was bound an instant ago but is not yet
// listening from being taken for a stale one.
const staleGrace = 5 * time.Second

// ErrNoInstance is returned by Find when no restarter answers in the dir.
var ErrNoInstance = errors.New("no running restarter found")

// InstanceName is the name an instance is addressed by: name when set (from
// --name), else "base-<baseID>".
func InstanceName(name string, baseID uint32) string {
	if name != "" {
		return name
	}
	return "base-" + strconv.FormatUint(uint64(baseID), 10)
}

// ValidName checks an instance name: it becomes a file name in the
// runtime dir.
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("instance name is empty")
	case len(name) > 64:
		return fmt.Errorf("instance name %q is longer than 64 bytes", name)
	case strings.HasPrefix(name, "."), strings.ContainsAny(name, "/\x00 \t\n"):
		return fmt.Errorf("instance name %q must not start with '.' or contain '/', NUL or whitespace", name)
	case strings.HasPrefix(name, "base-"):
		return fmt.Errorf("instance name %q: the prefix base- is reserved for unnamed instances, named by their base id", name)
	}
	return nil
}

// SocketPath is the control socket of instance in runtimeDir.
func SocketPath(runtimeDir, instance string) string {
	return filepath.Join(runtimeDir, instance+socketSuffix)
}

// DefaultRuntimeDirRule says in words what DefaultRuntimeDir picks, for
// help texts.
const DefaultRuntimeDirRule = "$XDG_RUNTIME_DIR/restarter, else /run/restarter as root, else /tmp/restarter-<uid>"

// DefaultRuntimeDir is the restarter's default runtime dir: see
// DefaultRuntimeDirRule.
func DefaultRuntimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "restarter")
	}
	return fallbackRuntimeDir()
}

func fallbackRuntimeDir() string {
	if os.Geteuid() == 0 {
		return "/run/restarter"
	}
	return "/tmp/restarter-" + strconv.Itoa(os.Geteuid())
}

// DefaultRuntimeDirs is every runtime dir a restarter of this user may have
// picked by default, the one DefaultRuntimeDir picks now first: a daemon
// started by a service manager often has no XDG_RUNTIME_DIR while the
// shell that controls it has one, or the other way round.
func DefaultRuntimeDirs() []string {
	dirs := []string{DefaultRuntimeDir()}
	for _, d := range []string{filepath.Join("/run/user", strconv.Itoa(os.Geteuid()), "restarter"), fallbackRuntimeDir()} {
		if d != dirs[0] && (len(dirs) < 2 || d != dirs[1]) {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// List returns the names of the instances whose control sockets in
// runtimeDir answer (or refuse us by permission), sorted. Stale sockets,
// where nothing listens any more, are removed.
func List(runtimeDir string) ([]string, error) {
	entries, err := os.ReadDir(runtimeDir)
	if err != nil {
		return nil, fmt.Errorf("runtime dir %s: %w (pass the restarter's --runtime-dir)", runtimeDir, err)
	}
	var names []string
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), socketSuffix)
		if !ok || e.Type()&fs.ModeSocket == 0 {
			continue
		}
		if live(filepath.Join(runtimeDir, e.Name())) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// live probes a socket; a refused connection on an old socket file means a
// dead restarter, and the file is removed.
func live(path string) bool {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return true
	}
	if errors.Is(err, unix.ECONNREFUSED) {
		if fi, serr := os.Lstat(path); serr == nil && time.Since(fi.ModTime()) > staleGrace {
			os.Remove(path)
		}
		return false
	}
	// EACCES and the like: someone is there; Dial will report the reason.
	return !errors.Is(err, fs.ErrNotExist)
}

// Find returns the control socket to talk to. With a selector (an instance
// name: the --name, or "base-<id>") it is that instance's socket, which must
// answer. Without one there must be exactly one live instance in runtimeDir.
func Find(runtimeDir, selector string) (string, error) {
	return FindIn([]string{runtimeDir}, selector)
}

// FindIn is Find over several runtime dirs (DefaultRuntimeDirs): the
// instance may live in any of them; dirs that do not exist are skipped
// unless none exists.
func FindIn(dirs []string, selector string) (string, error) {
	type found struct{ dir, name string }
	var all []found
	var firstErr error
	searched := 0
	for _, dir := range dirs {
		names, err := List(dir)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		searched++
		for _, n := range names {
			all = append(all, found{dir, n})
		}
	}
	if searched == 0 && firstErr != nil {
		if len(dirs) > 1 {
			return "", fmt.Errorf("%w: none of the runtime dirs %s exists (pass the restarter's --runtime-dir)", ErrNoInstance, strings.Join(dirs, ", "))
		}
		return "", firstErr
	}
	where := strings.Join(dirs, ", ")
	var names []string
	for _, f := range all {
		names = append(names, f.name)
		if selector != "" && f.name == selector {
			return SocketPath(f.dir, f.name), nil
		}
	}
	if selector != "" {
		return "", fmt.Errorf("%w named %q in %s%s", ErrNoInstance, selector, where, running(names))
	}
	switch len(all) {
	case 0:
		return "", fmt.Errorf("%w in %s (is it running? pass its --runtime-dir)", ErrNoInstance, where)
	case 1:
		return SocketPath(all[0].dir, all[0].name), nil
	}
	var list []string
	oneDir := true
	for _, f := range all {
		list = append(list, f.name+" in "+f.dir)
		oneDir = oneDir && f.dir == all[0].dir
	}
	if oneDir {
		return "", fmt.Errorf("%d restarters run in %s (%s): pick one with --name NAME or --base-id N",
			len(all), all[0].dir, strings.Join(names, ", "))
	}
	return "", fmt.Errorf("%d restarters run (%s): pick one with --name NAME or --base-id N",
		len(all), strings.Join(list, ", "))
}

func running(names []string) string {
	if len(names) == 0 {
		return " (none is running there)"
	}
	return " (running: " + strings.Join(names, ", ") + ")"
}
