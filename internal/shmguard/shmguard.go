package shmguard

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Package shmguard is testproxy's model of Envoy's hot-restart shared
// memory, and what a restarter may do about its INITIALIZING flag.
//
// It models Envoy's
// /dev/shm/envoy_shared_memory_<base_id*10> (hot_restart_impl.cc,
// attachSharedMemory): epoch 0 removes and recreates the region, later
// epochs attach to it and check its version; every process sets the
// INITIALIZING flag as it starts, and fails with "previous envoy process is
// still initializing" if it was set already; the flag is cleared when the
// process has told its parent to drain (drainParentListeners), i.e. once it
// is live. A process that dies before that leaves the flag set, and every
// later hot restart fails (envoy #33446).
//
// testproxy's region is a file of its own, testproxy_shared_memory_<id> in
// a directory (default /dev/shm), mode 0600, 64 bytes, little-endian:
//
//	0  magic   "TPSHM1\0\0"
//	8  size    uint64, 64
//	16 version [32]byte, the hot restart version, NUL-padded
//	48 flags   uint64, bit 0: INITIALIZING
//	56 pid     uint64, the process that set INITIALIZING
//
// Updates are read-modify-write under flock(LOCK_EX). Unlike Envoy, which
// stores no pid, the holder's pid lets a restarter tell a stuck flag (its
// holder is dead) from a live initialization.

const (
	shmSize         = 64
	shmMagic        = "TPSHM1\x00\x00"
	shmVersionBytes = 32

	// Initializing is the flag bit set while a process starts.
	Initializing = 1
)

// ErrStillInitializing is Envoy's start-up failure when the flag is set.
var ErrStillInitializing = errors.New("previous envoy process is still initializing")

// Path is the guard's file for the base id.
func Path(dir string, baseID uint32) string {
	return filepath.Join(dir, "testproxy_shared_memory_"+strconv.FormatUint(uint64(baseID)*10, 10))
}

// State is the file's content.
type State struct {
	Version string
	Flags   uint64
	PID     uint64 // the process that set Initializing
}

// Decode parses the file's bytes.
func Decode(b []byte) (State, error) {
	if len(b) != shmSize || string(b[:8]) != shmMagic || binary.LittleEndian.Uint64(b[8:]) != shmSize {
		return State{}, fmt.Errorf("not a testproxy shared-memory file (%d bytes)", len(b))
	}
	return State{
		Version: string(bytes.TrimRight(b[16:48], "\x00")),
		Flags:   binary.LittleEndian.Uint64(b[48:]),
		PID:     binary.LittleEndian.Uint64(b[56:]),
	}, nil
}

func (s State) encode() []byte {
	b := make([]byte, shmSize)
	copy(b, shmMagic)
	binary.LittleEndian.PutUint64(b[8:], shmSize)
	copy(b[16:48], s.Version)
	binary.LittleEndian.PutUint64(b[48:], s.Flags)
	binary.LittleEndian.PutUint64(b[56:], s.PID)
	return b
}

// Attach is attachSharedMemory: it creates (epoch 0) or opens the file,
// checks the version, and sets INITIALIZING for this process. An epoch > 0
// that finds no file creates it (Envoy would abort: "cannot open shared
// memory region"), so that a testproxy started at epoch > 0 on a fresh host
// behaves as with --skip-hot-restart-on-no-parent.
func Attach(path, version string, epoch uint32) error {
	if len(version) > shmVersionBytes {
		version = version[:shmVersionBytes]
	}
	if epoch == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("shared memory %s: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("cannot open shared memory region %s: %w", path, err)
	}
	defer f.Close()
	return withFlock(f, func() error {
		b := make([]byte, shmSize+1)
		n, err := f.ReadAt(b, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("shared memory %s: %w", path, err)
		}
		st := State{Version: version}
		if n > 0 {
			if st, err = Decode(b[:n]); err != nil {
				return fmt.Errorf("shared memory %s: %w", path, err)
			}
			if st.Version != version {
				return fmt.Errorf("hot restart version mismatch: shared memory %s holds %q, this binary is %q: "+
					"you must have hot restarted into a not-hot-restart-compatible new version", path, st.Version, version)
			}
			if st.Flags&Initializing != 0 {
				return fmt.Errorf("%w (the flag was set by pid %d%s; shared memory %s)", ErrStillInitializing, st.PID, pidNote(int(st.PID)), path)
			}
		}
		st.Flags |= Initializing
		st.PID = uint64(os.Getpid())
		_, err = f.WriteAt(st.encode(), 0)
		return err
	})
}

// ClearInitializing clears INITIALIZING (Envoy: after drainParentListeners).
func ClearInitializing(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return withFlock(f, func() error {
		b := make([]byte, shmSize)
		if _, err := f.ReadAt(b, 0); err != nil {
			return err
		}
		st, err := Decode(b)
		if err != nil {
			return err
		}
		st.Flags &^= Initializing
		_, err = f.WriteAt(st.encode(), 0)
		return err
	})
}

func withFlock(f *os.File, fn func() error) error {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return os.NewSyscallError("flock", err)
	}
	defer unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return fn()
}

// pidNote says whether pid still runs (a dead holder means a stuck flag).
func pidNote(pid int) string {
	if pid <= 0 {
		return ""
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return ", which is no longer running: the flag is stuck (envoy #33446); only a start at epoch 0 recreates the region"
	}
	return ", which still runs"
}

// ClearIfStuck is what a restarter can do about testproxy's file before a
// reload: when Initializing is set by a process that no longer runs (it
// died during start-up), clear it and report its pid. A live holder is
// left alone (holder > 0, cleared false). A missing file is no error.
func ClearIfStuck(path string) (holder int, cleared bool, err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	err = withFlock(f, func() error {
		b := make([]byte, shmSize)
		if _, err := f.ReadAt(b, 0); err != nil {
			return fmt.Errorf("shared memory %s: %w", path, err)
		}
		st, err := Decode(b)
		if err != nil {
			return fmt.Errorf("shared memory %s: %w", path, err)
		}
		if st.Flags&Initializing == 0 {
			return nil
		}
		holder = int(st.PID)
		if holder > 0 && !errors.Is(syscall.Kill(holder, 0), syscall.ESRCH) {
			return nil // still initializing
		}
		st.Flags &^= Initializing
		_, err = f.WriteAt(st.encode(), 0)
		cleared = err == nil
		return err
	})
	return holder, cleared, err
}

// EnvoyPath is Envoy's shared-memory region for an (unscaled) base id:
// shm_open("/envoy_shared_memory_<base_id*10>"), which glibc keeps in
// /dev/shm (hot_restart_impl.cc, attachSharedMemory).
func EnvoyPath(baseID uint32) string {
	return "/dev/shm/envoy_shared_memory_" + strconv.FormatUint(uint64(baseID)*10, 10)
}

// Envoy's SharedMemory for HOT_RESTART_VERSION 11 on x86-64 with glibc:
// size_ and version_ (uint64 each), two pthread_mutex_t (40 bytes each) and
// the atomic uint64 flags_, 104 bytes in all (hence "11.104", the
// --hot-restart-version, whose second part is this size). Bit 0 of flags_
// is SHMEM_FLAGS_INITIALIZING.
const (
	envoyShmSize     = 104
	envoyShmVersion  = 11
	envoyFlagsOffset = 96
)

// EnvoyInitializing reads Envoy's INITIALIZING flag from path. known is
// false when the region is absent or not the layout above (another
// architecture or version): then nothing can be said. It only reads: the
// region is Envoy's, it holds process-shared mutexes, and it records no pid,
// so a restarter must never write to it.
func EnvoyInitializing(path string) (set, known bool, err error) {
	if runtime.GOARCH != "amd64" {
		return false, false, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, false, nil
	}
	if err != nil {
		return false, false, err
	}
	if len(b) != envoyShmSize || binary.NativeEndian.Uint64(b[0:]) != envoyShmSize || binary.NativeEndian.Uint64(b[8:]) != envoyShmVersion {
		return false, false, nil
	}
	return binary.NativeEndian.Uint64(b[envoyFlagsOffset:])&1 != 0, true, nil
}
