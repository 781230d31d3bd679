package uds

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// TestSquattedAbstractNameNamesTheSquatter: abstract names have no
// permissions, so another uid can bind a hot-restart name first; the bind
// error then names who holds it (uid and pid), not just EADDRINUSE.
func TestSquattedAbstractNameNamesTheSquatter(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the squatter as nobody (setpriv)")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv not installed (util-linux)")
	}
	py, err := filepath.EvalSymlinks("/usr/bin/python3")
	if err != nil {
		t.Skip("no /usr/bin/python3 for the squatter")
	}
	name := "@uds_squat_test_" + strconv.Itoa(os.Getpid())
	script := `import socket,sys,time
n=b"\0"+sys.argv[1].encode(); n+=b"\0"*(108-len(n))
s=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM); s.bind(n)
print("bound",flush=True); time.sleep(600)`
	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", py, "-c", script, name[1:])
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	buf := make([]byte, 6)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "bound\n" {
		t.Fatalf("squatter: %q, %v", buf, err)
	}
	conn, _, err := bind(name, 0o600)
	if err == nil {
		conn.Close()
		t.Fatal("bind of a squatted name: got nil, want EADDRINUSE")
	}
	want := "pid " + strconv.Itoa(cmd.Process.Pid)
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("got %v, want EADDRINUSE naming %s and uid 65534", err, want)
	}
}
