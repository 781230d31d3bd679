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

// ValidName checks a --name: it becomes a file name in the runtime dir.
func ValidName(name string) error {
	switch {
	case name == "":
		return errors.New("--name is empty")
	case len(name) > 64:
		return fmt.Errorf("--name %q is longer than 64 bytes", name)
	case strings.HasPrefix(name, "."), strings.ContainsAny(name, "/\x00 \t\n"):
		return fmt.Errorf("--name %q must not start with '.' or contain '/', NUL or whitespace", name)
	case strings.HasPrefix(name, "base-"):
		return fmt.Errorf("--name %q: the prefix base- is reserved for unnamed instances (use --base-id)", name)
	}
	return nil
}

// SocketPath is the control socket of instance in runtimeDir.
func SocketPath(runtimeDir, instance string) string {
	return filepath.Join(runtimeDir, instance+socketSuffix)
}

// DefaultRuntimeDir is $XDG_RUNTIME_DIR/restarter, else /run/restarter as
// root, else /tmp/restarter-<uid>: the restarter's own default.
func DefaultRuntimeDir() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "restarter")
	}
	if os.Geteuid() == 0 {
		return "/run/restarter"
	}
	return fmt.Sprintf("/tmp/restarter-%d", os.Geteuid())
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
	names, err := List(runtimeDir)
	if err != nil {
		return "", err
	}
	if selector != "" {
		for _, n := range names {
			if n == selector {
				return SocketPath(runtimeDir, n), nil
			}
		}
		return "", fmt.Errorf("%w named %q in %s%s", ErrNoInstance, selector, runtimeDir, running(names))
	}
	switch len(names) {
	case 0:
		return "", fmt.Errorf("%w in %s (is it running? pass its --runtime-dir)", ErrNoInstance, runtimeDir)
	case 1:
		return SocketPath(runtimeDir, names[0]), nil
	}
	return "", fmt.Errorf("%d restarters run in %s (%s): pick one with --name NAME or --base-id N",
		len(names), runtimeDir, strings.Join(names, ", "))
}

func running(names []string) string {
	if len(names) == 0 {
		return " (none is running there)"
	}
	return " (running: " + strings.Join(names, ", ") + ")"
}
