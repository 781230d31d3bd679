package integration

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// demoCmd runs scripts/demo.sh with the freshly built binaries.
func demoCmd(t *testing.T, env ...string) *exec.Cmd {
	t.Helper()
	b := buildBinaries(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "demo.sh"))
	cmd.Env = append(append(os.Environ(), "BIN="+b.Dir), env...)
	return cmd
}

// TestDemoPortTaken: a port given with PORT= that is taken is named, with
// what to do, before anything starts.
func TestDemoPortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	out, err := demoCmd(t, "PORT="+itoa(port)).CombinedOutput()
	if err == nil {
		t.Fatalf("demo succeeded with PORT taken:\n%s", out)
	}
	if want := "port " + itoa(port) + " (PORT) is taken: choose another"; !strings.Contains(string(out), want) {
		t.Fatalf("demo output lacks %q:\n%s", want, out)
	}
}

// TestDemo: `make demo`'s script runs to the end (3 reloads under traffic,
// none failed, a clean stop), whatever holds Envoy's default ports: when
// 9901 or 10000 is taken it picks free ones.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the demo takes about 12 s")
	}
	// Take Envoy's default ports if they are free (if not, someone else
	// holds them: the same situation), so the fallback is what runs.
	var held []string
	for _, a := range []string{"127.0.0.1:9901", "127.0.0.1:10000"} {
		if ln, err := net.Listen("tcp", a); err == nil {
			defer ln.Close()
			held = append(held, a)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					c.Close()
				}
			}()
		}
	}
	cmd := demoCmd(t)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("demo still running after 90 s:\n%s", out)
	}
	s := string(out)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, s)
	}
	for _, a := range held {
		port := a[strings.LastIndexByte(a, ':')+1:]
		if !strings.Contains(s, "port "+port+" is taken; using") {
			t.Errorf("demo did not say that port %s is taken:\n%s", port, s)
		}
	}
	for _, want := range []string{"restarter exited 0", "reload: exit 0", "(as it should)", " 0 failed"} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q:\n%s", want, s)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
