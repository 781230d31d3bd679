//go:build linux

package uds

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
)

// envoyPeer binds a socket the way Envoy does (sizeof(sockaddr_un) as the
// length, so the abstract name is NUL-padded to 108 bytes), sends a framed
// stats request to the parent and prints the hex of the reply datagram. It
// also reports whether the exact-length name, which Go's net package would
// use, reaches the parent.
const envoyPeer = `
import socket, sys
def pad(name):
    b = b"\0" + name[1:].encode()
    return b + b"\0" * (108 - len(b))
child, parent, req = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(pad(child))
s.settimeout(10)
try:
    s.sendto(req, b"\0" + parent[1:].encode())
    print("exact-length name reached the parent")
except (ConnectionRefusedError, FileNotFoundError):
    print("exact-length name refused")
s.sendto(req, pad(parent))
print("reply", s.recv(4096).hex())
`

// TestEnvoyPaddedAbstractAddress proves that our Parent binds and answers on
// Envoy's zero-padded abstract addresses.
func TestEnvoyPaddedAbstractAddress(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: cannot bind a socket the way Envoy does")
	}
	path := testPath()
	p, err := ListenParent(testConfig(t, path, 0), ParentHandler{
		StatsTo: statsTo(func() Stats { return Stats{MemoryAllocated: 99} }),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	req := frame([]byte{0x0a, 0x02, 0x1a, 0x00}) // request { stats {} }
	out, err := exec.Command(py, "-c", envoyPeer,
		SocketName(path, RoleChild, 0, 1), SocketName(path, RoleParent, 0, 0), hex.EncodeToString(req)).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "exact-length name refused") {
		t.Errorf("the unpadded name reached our parent; padding is not what we think:\n%s", out)
	}
	i := strings.Index(string(out), "reply ")
	if i < 0 {
		t.Fatalf("no reply:\n%s", out)
	}
	raw, err := hex.DecodeString(strings.TrimSpace(string(out[i+6:])))
	if err != nil {
		t.Fatal(err)
	}
	msg, ok, err := NewDecoder(0).Feed(raw)
	if err != nil || !ok {
		t.Fatalf("reply frame: %v %v", ok, err)
	}
	// reply { stats { memory_allocated: 99 } }
	if !bytes.Equal(msg, []byte{0x12, 0x04, 0x1a, 0x02, 0x08, 99}) {
		t.Errorf("reply %x", msg)
	}
}

// TestChildTalksToPaddedParent: our Child reaches a parent bound the Envoy way.
func TestChildTalksToPaddedParent(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 not found: cannot bind a socket the way Envoy does")
	}
	path := testPath()
	const parentPy = `
import socket, sys
def pad(name):
    b = b"\0" + name[1:].encode()
    return b + b"\0" * (108 - len(b))
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(pad(sys.argv[1]))
print("ready", flush=True)
s.settimeout(10)
d = s.recv(4096)
# reply { shutdown_admin { original_start_time_unix_seconds: 5 } }
s.sendto(bytes.fromhex("0000000000000006120412020805"), pad(sys.argv[2]))
print("got", d.hex(), flush=True)
`
	cmd := exec.Command(py, "-c", parentPy, SocketName(path, RoleParent, 0, 0), SocketName(path, RoleChild, 0, 1))
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("python parent not ready: %q %v", line, err)
	}
	c, err := DialChild(testConfig(t, path, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sa, err := c.ShutdownParentAdmin(context.Background())
	if err != nil || sa.OriginalStartTimeUnixSeconds != 5 {
		t.Fatalf("ShutdownParentAdmin = %+v, %v", sa, err)
	}
}
