//go:build unix

package baseid

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// HeldError reports a base id whose lock another process holds.
type HeldError struct {
	ID   uint32
	PID  int // 0 when the holder's pid could not be read
	Path string
}

func (e *HeldError) Error() string {
	holder := "another process (pid unknown)"
	if e.PID > 0 {
		holder = "pid " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("base id %d is already held by %s (lock %s)", e.ID, holder, e.Path)
}

// Lock is a held base id. Close releases it.
type Lock struct {
	ID   uint32
	Path string
	f    *os.File
}

// Close releases the lock. It is idempotent.
func (l *Lock) Close() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	_ = f.Truncate(0)
	return f.Close() // closing the last fd drops the flock
}

func lockPath(dir string, id uint32) string {
	return filepath.Join(dir, "base-id-"+strconv.FormatUint(uint64(id), 10)+".lock")
}

// tryLock opens and flocks the id's lock file. It returns (nil, *HeldError)
// when another open file description holds it.
func tryLock(dir string, id uint32) (*Lock, error) {
	p := lockPath(dir, id)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open base id lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &HeldError{ID: id, PID: readHolder(p), Path: p}
		}
		return nil, fmt.Errorf("flock %s: %w", p, os.NewSyscallError("flock", err))
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("write base id lock %s: %w", p, err)
		}
	}
	return &Lock{ID: id, Path: p, f: f}, nil
}

// readHolder reads the pid the holder wrote; the holder writes it just after
// locking, so a short retry covers that window.
func readHolder(p string) int {
	for i := 0; i < 20; i++ {
		b, err := os.ReadFile(p)
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				return pid
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return 0
}

// Acquire locks an explicit base id in dir. It fails with *HeldError when
// another restarter holds it. It does not check Envoy's own shared memory:
// an explicit id is the operator's choice (the previous instance's proxy may
// legitimately still be draining).
func Acquire(dir string, id uint32) (*Lock, error) {
	if id > Max {
		return nil, fmt.Errorf("base id %d out of range 0..%d", id, Max)
	}
	return tryLock(dir, id)
}

// Options tune AcquireDynamic.
type Options struct {
	// SocketPath is the proxy's --socket-path (default DefaultSocketPath).
	SocketPath string
	// ShmDir is where Envoy's shared memory lives (default /dev/shm).
	ShmDir string
	// ProcNetUnix is the socket table to read (default /proc/net/unix).
	ProcNetUnix string
	// Start and Limit bound the search (default 0 and 1000 ids).
	Start, Limit uint32
}

// AcquireDynamic locks the lowest free base id: one that no other restarter
// holds, for which no Envoy shared memory exists and no Envoy hot-restart
// domain socket is bound.
func AcquireDynamic(dir string, o *Options) (*Lock, error) {
	var opt Options
	if o != nil {
		opt = *o
	}
	if opt.SocketPath == "" {
		opt.SocketPath = DefaultSocketPath
	}
	if opt.ShmDir == "" {
		opt.ShmDir = "/dev/shm"
	}
	if opt.ProcNetUnix == "" {
		opt.ProcNetUnix = "/proc/net/unix"
	}
	if opt.Limit == 0 {
		opt.Limit = 1000
	}
	bound, err := BoundIDs(opt.ProcNetUnix, opt.SocketPath)
	if err != nil {
		return nil, err
	}
	for id := opt.Start; id < opt.Start+opt.Limit && id <= Max; id++ {
		if bound[id] || shmExists(opt.ShmDir, id) {
			continue
		}
		l, err := tryLock(dir, id)
		var held *HeldError
		if errors.As(err, &held) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// Re-check after locking: a proxy may have appeared meanwhile.
		if shmExists(opt.ShmDir, id) {
			l.Close()
			continue
		}
		return l, nil
	}
	return nil, fmt.Errorf("no free base id in %d..%d (runtime dir %s)", opt.Start, opt.Start+opt.Limit-1, dir)
}

func shmExists(shmDir string, id uint32) bool {
	_, err := os.Lstat(filepath.Join(shmDir, "envoy_shared_memory_"+strconv.FormatUint(uint64(id)*10, 10)))
	return err == nil
}

// BoundIDs reads a /proc/net/unix table and returns the base ids for which a
// socket named <socketPath>_[udp_]{parent,child}_<n> is bound (id = n/10).
// Abstract names appear with a leading '@' and the zero padding Envoy uses
// shows as trailing '@'s, which are ignored.
func BoundIDs(procNetUnix, socketPath string) (map[uint32]bool, error) {
	f, err := os.Open(procNetUnix)
	if err != nil {
		return nil, fmt.Errorf("read socket table: %w", err)
	}
	defer f.Close()
	ids := map[uint32]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 8 {
			continue
		}
		name := strings.TrimRight(fields[len(fields)-1], "@")
		if id, ok := parseSocketName(name, socketPath); ok {
			ids[id] = true
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read socket table: %w", err)
	}
	return ids, nil
}

func parseSocketName(name, socketPath string) (uint32, bool) {
	rest, ok := strings.CutPrefix(name, socketPath+"_")
	if !ok {
		return 0, false
	}
	rest = strings.TrimPrefix(rest, "udp_")
	for _, role := range []string{"parent_", "child_"} {
		if num, ok := strings.CutPrefix(rest, role); ok {
			n, err := strconv.ParseUint(num, 10, 32)
			if err != nil {
				return 0, false
			}
			return uint32(n / 10), true
		}
	}
	return 0, false
}
