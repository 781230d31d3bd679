//go:build unix

package osutil

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// DirError says why a directory cannot be trusted to hold sockets and locks.
type DirError struct {
	Path   string      // the offending path: the directory or one of its parents
	Mode   fs.FileMode // its mode
	UID    uint32      // its owner
	Reason string      // what is wrong and how to fix it
}

func (e *DirError) Error() string {
	return fmt.Sprintf("%s (mode %#o, owner uid %d): %s", e.Path, e.Mode.Perm()|e.Mode&(fs.ModeSticky), e.UID, e.Reason)
}

// maxLinks bounds the symbolic links followed while checking one path.
const maxLinks = 40

// EnsurePrivateDir creates dir (mode 0700, and 0700 for any missing parent)
// unless it exists, then checks it with CheckPrivateDir.
func EnsurePrivateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return CheckPrivateDir(dir)
}

// CheckPrivateDir reports whether dir can be trusted to hold this process's
// sockets and locks, as OpenSSH's StrictModes judges a home directory: dir
// must be a directory owned by the effective uid and not writable by group
// or others; every directory above it (and every symbolic link on the way)
// must be owned by the effective uid or root and not writable by group or
// others, except a root-owned sticky directory such as /tmp, where others
// may create entries but not remove or rename ours. The error is a
// *DirError naming the path, its mode and owner, and the fix.
func CheckPrivateDir(dir string) error {
	return CheckPrivateDirOf(dir, uint32(os.Geteuid()))
}

// CheckPrivateDirOf is CheckPrivateDir for the user uid instead of this
// process: whether dir is private to uid (and root).
func CheckPrivateDirOf(dir string, uid uint32) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	return checkPath(abs, uid, 0)
}

// checkPath walks abs from the root down, following symbolic links, and
// checks every component; links counts the links already followed.
func checkPath(abs string, euid uint32, links int) error {
	cur := "/"
	if err := checkParent(cur, euid); err != nil {
		return err
	}
	elems := strings.Split(strings.Trim(abs, "/"), "/")
	for i, e := range elems {
		if e == "" {
			continue
		}
		next := filepath.Join(cur, e)
		fi, uid, err := lstatOwner(next)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if uid != 0 && uid != euid {
				return &DirError{Path: next, Mode: fi.Mode(), UID: uid,
					Reason: fmt.Sprintf("a symbolic link owned by another user (neither uid %d nor root) can be pointed elsewhere; use a path without it", euid)}
			}
			if links >= maxLinks {
				return fmt.Errorf("%s: too many levels of symbolic links", next)
			}
			target, err := os.Readlink(next)
			if err != nil {
				return fmt.Errorf("%s: %w", next, err)
			}
			if !filepath.IsAbs(target) {
				target = filepath.Join(cur, target)
			}
			rest := filepath.Join(append([]string{target}, elems[i+1:]...)...)
			return checkPath(filepath.Clean(rest), euid, links+1)
		}
		if !fi.IsDir() {
			return &DirError{Path: next, Mode: fi.Mode(), UID: uid, Reason: "not a directory"}
		}
		if i == len(elems)-1 {
			return checkFinal(next, fi, uid, euid)
		}
		if err := checkParent(next, euid); err != nil {
			return err
		}
		cur = next
	}
	// abs is "/": it is nobody's private directory.
	fi, uid, err := lstatOwner("/")
	if err != nil {
		return err
	}
	return checkFinal("/", fi, uid, euid)
}

// lstatOwner is os.Lstat with the owner's uid.
func lstatOwner(path string) (fs.FileInfo, uint32, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil, 0, fmt.Errorf("%s: no owner information", path)
	}
	return fi, st.Uid, nil
}

func checkParent(path string, euid uint32) error {
	fi, uid, err := lstatOwner(path)
	if err != nil {
		return err
	}
	if uid != 0 && uid != euid {
		return &DirError{Path: path, Mode: fi.Mode(), UID: uid,
			Reason: fmt.Sprintf("a parent directory owned by another user (neither uid %d nor root) lets that user replace what is below it; use a directory under one owned by you or root", euid)}
	}
	if fi.Mode().Perm()&0o022 != 0 && !(fi.Mode()&fs.ModeSticky != 0 && uid == 0) {
		return &DirError{Path: path, Mode: fi.Mode(), UID: uid,
			Reason: fmt.Sprintf("a parent directory writable by group or others lets them replace what is below it; run \"chmod go-w %s\" (or make it sticky and root-owned, as /tmp is) or use another directory", path)}
	}
	return nil
}

func checkFinal(path string, fi fs.FileInfo, uid, euid uint32) error {
	if uid != euid {
		return &DirError{Path: path, Mode: fi.Mode(), UID: uid,
			Reason: fmt.Sprintf("owned by another user, not by uid %d; run \"chown %d %s\" or use another directory", euid, euid, path)}
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return &DirError{Path: path, Mode: fi.Mode(), UID: uid,
			Reason: fmt.Sprintf("writable by group or others, who could replace its sockets and locks; run \"chmod 700 %s\" or use another directory", path)}
	}
	return nil
}
