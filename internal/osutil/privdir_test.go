//go:build linux

package osutil

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const nobody = 65534

func mkdir(t *testing.T, path string, mode os.FileMode, uid int) string {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // Chmod is not narrowed by the umask
		t.Fatal(err)
	}
	if uid >= 0 {
		if err := os.Lchown(path, uid, -1); err != nil {
			t.Skipf("chown needs root: %v", err)
		}
	}
	return path
}

func TestCheckPrivateDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the cases chown to another user: run as root")
	}
	base := t.TempDir()
	good := mkdir(t, filepath.Join(base, "good"), 0o700, -1)
	readable := mkdir(t, filepath.Join(base, "readable"), 0o755, -1)
	open := mkdir(t, filepath.Join(base, "open"), 0o777, -1)
	groupw := mkdir(t, filepath.Join(base, "groupw"), 0o770, -1)
	theirs := mkdir(t, filepath.Join(base, "theirs"), 0o700, nobody)
	openParent := mkdir(t, filepath.Join(base, "openparent"), 0o777, -1)
	underOpen := mkdir(t, filepath.Join(openParent, "d"), 0o700, -1)
	sticky := mkdir(t, filepath.Join(base, "sticky"), 0o777|os.ModeSticky, -1)
	underSticky := mkdir(t, filepath.Join(sticky, "d"), 0o700, -1)
	stickyTheirs := mkdir(t, filepath.Join(base, "stickytheirs"), 0o777|os.ModeSticky, nobody)
	underStickyTheirs := mkdir(t, filepath.Join(stickyTheirs, "d"), 0o700, -1)
	theirParent := mkdir(t, filepath.Join(base, "theirparent"), 0o755, nobody)
	underTheirs := mkdir(t, filepath.Join(theirParent, "d"), 0o700, -1)
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	linkGood := filepath.Join(base, "link-good")
	linkOpen := filepath.Join(base, "link-open")
	linkTheirs := filepath.Join(base, "link-theirs")
	for _, l := range []struct{ link, target string }{{linkGood, good}, {linkOpen, open}, {linkTheirs, good}} {
		if err := os.Symlink(l.target, l.link); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Lchown(linkTheirs, nobody, -1); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, dir string
		bad, want string // the path named and a part of the fix; "" = accepted
	}{
		{"0700", good, "", ""},
		{"0755", readable, "", ""},
		{"relative link to good", linkGood, "", ""},
		{"sticky root parent", underSticky, "", ""},
		{"0777", open, open, "chmod 700"},
		{"0770", groupw, groupw, "chmod 700"},
		{"owned by nobody", theirs, theirs, "owned by another user"},
		{"0777 parent", underOpen, openParent, "chmod go-w"},
		{"sticky parent of nobody", underStickyTheirs, stickyTheirs, "owned by another user"},
		{"parent of nobody", underTheirs, theirParent, "owned by another user"},
		{"file", file, file, "not a directory"},
		{"link to 0777", linkOpen, open, "chmod 700"},
		{"link owned by nobody", linkTheirs, linkTheirs, "symbolic link"},
		{"missing", filepath.Join(base, "missing"), "", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPrivateDir(tc.dir)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("got nil, want an error naming %s", tc.bad)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to contain %q", err, tc.want)
			}
			var de *DirError
			if tc.bad != "" && (!errors.As(err, &de) || de.Path != tc.bad) {
				t.Errorf("got %#v, want a *DirError for %s", err, tc.bad)
			}
		})
	}
}

func TestEnsurePrivateDirCreates0700(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := EnsurePrivateDir(dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, filepath.Dir(dir)} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got&0o077 != 0 {
			t.Errorf("%s: got mode %#o, want no group/other bits", p, got)
		}
	}
}
