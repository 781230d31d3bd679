package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// The shared-memory guard (--shared-memory) models Envoy's
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
// --shm-dir (default /dev/shm), mode 0600, 64 bytes, little-endian:
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
	shmFlagInit     = 1
	shmVersionBytes = 32
)

// errStillInitializing is Envoy's start-up failure when the flag is set.
var errStillInitializing = errors.New("previous envoy process is still initializing")

// shmPath is the guard's file for the base id.
func shmPath(dir string, baseID uint32) string {
	return filepath.Join(dir, "testproxy_shared_memory_"+strconv.FormatUint(uint64(baseID)*10, 10))
}

type shmState struct {
	version string
	flags   uint64
	pid     uint64
}

func decodeShm(b []byte) (shmState, error) {
	if len(b) != shmSize || string(b[:8]) != shmMagic || binary.LittleEndian.Uint64(b[8:]) != shmSize {
		return shmState{}, fmt.Errorf("not a testproxy shared-memory file (%d bytes)", len(b))
	}
	return shmState{
		version: string(bytes.TrimRight(b[16:48], "\x00")),
		flags:   binary.LittleEndian.Uint64(b[48:]),
		pid:     binary.LittleEndian.Uint64(b[56:]),
	}, nil
}

func (s shmState) encode() []byte {
	b := make([]byte, shmSize)
	copy(b, shmMagic)
	binary.LittleEndian.PutUint64(b[8:], shmSize)
	copy(b[16:48], s.version)
	binary.LittleEndian.PutUint64(b[48:], s.flags)
	binary.LittleEndian.PutUint64(b[56:], s.pid)
	return b
}

// attachShm is attachSharedMemory: it creates (epoch 0) or opens the file,
// checks the version, and sets INITIALIZING for this process. An epoch > 0
// that finds no file creates it (Envoy would abort: "cannot open shared
// memory region"), so that a testproxy started at epoch > 0 on a fresh host
// behaves as with --skip-hot-restart-on-no-parent.
func attachShm(path, version string, epoch uint32) error {
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
		st := shmState{version: version}
		if n > 0 {
			if st, err = decodeShm(b[:n]); err != nil {
				return fmt.Errorf("shared memory %s: %w", path, err)
			}
			if st.version != version {
				return fmt.Errorf("hot restart version mismatch: shared memory %s holds %q, this binary is %q: "+
					"you must have hot restarted into a not-hot-restart-compatible new version", path, st.version, version)
			}
			if st.flags&shmFlagInit != 0 {
				return fmt.Errorf("%w (the flag was set by pid %d%s; shared memory %s)", errStillInitializing, st.pid, pidNote(int(st.pid)), path)
			}
		}
		st.flags |= shmFlagInit
		st.pid = uint64(os.Getpid())
		_, err = f.WriteAt(st.encode(), 0)
		return err
	})
}

// clearShmInit clears INITIALIZING (Envoy: after drainParentListeners).
func clearShmInit(path string) error {
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
		st, err := decodeShm(b)
		if err != nil {
			return err
		}
		st.flags &^= shmFlagInit
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
