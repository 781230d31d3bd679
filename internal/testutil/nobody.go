package testutil

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// NobodyUID is the uid the security tests act as: another local user.
const NobodyUID = 65534

// AsNobody returns a command that runs name with args as nobody:nogroup
// with no supplementary groups (setpriv, util-linux). It skips the test
// unless this process is root and setpriv is installed.
func AsNobody(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to act as another uid (setpriv)")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv not installed (util-linux)")
	}
	return exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", name}, args...)...)
}

// NobodyCanRun copies the executable at path into a fresh directory that
// nobody can reach (0755 up to /tmp) and returns the copy's path: test
// binaries live in 0700 build directories.
func NobodyCanRun(t testing.TB, path string) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// SquatAbstract binds the abstract Unix datagram name (without '@'), padded
// with NULs to the whole sun_path as Envoy addresses it, in a process run
// as nobody, and returns that process's pid once the name is bound. The
// squatter ends in Cleanup. It skips where python3 or setpriv is missing.
func SquatAbstract(t testing.TB, name string) int {
	t.Helper()
	py, err := filepath.EvalSymlinks("/usr/bin/python3") // nobody cannot run a shim under /root
	if err != nil {
		t.Skip("no /usr/bin/python3 for the squatter")
	}
	const script = `import socket,sys,time
n=b"\0"+sys.argv[1].encode(); n+=b"\0"*(108-len(n))
s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM); s.bind(n)
print("bound",flush=True); time.sleep(600)`
	cmd := AsNobody(t, py, "-c", script, name)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "bound\n" {
		t.Fatalf("squatter of @%s: got %q, %v", name, buf, err)
	}
	return cmd.Process.Pid
}
