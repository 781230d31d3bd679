package main

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotrestart/restarter/uds"
)

// floodScript sends N framed stats requests to the abstract socket given as
// argv[1], padded to the whole sun_path as Envoy (and uds) address it.
const floodScript = `
import socket, struct, sys
name = sys.argv[1].encode()
addr = b"\0" + name[1:] + b"\0" * (108 - len(name))
msg = struct.pack(">Q", 4) + bytes([0x0a, 0x02, 0x1a, 0x00])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for i in range(int(sys.argv[2])):
    s.sendto(msg, addr)
print("sent", sys.argv[2])
`

// TestRefusedFloodDoesNotFloodTheLog: another uid (nobody) floods a serving
// testproxy's hot-restart socket. Every datagram is refused; the log gets a
// bounded number of lines about it (issue 11: 72,921 datagrams once made
// 16.6 MB of log); the generation keeps serving and still hot-restarts.
func TestRefusedFloodDoesNotFloodTheLog(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to send as nobody (setpriv)")
	}
	setpriv, err1 := exec.LookPath("setpriv")
	python, err2 := exec.LookPath("/usr/bin/python3") // not a per-user shim: nobody runs it
	if err1 != nil || err2 != nil {
		t.Skip("needs setpriv and /usr/bin/python3")
	}
	in := newInstance(t)
	common := []string{"--drain-time-s", "1", "--parent-shutdown-time-s", "2"}
	p0 := in.start(t, 0, common...)
	p0.waitLive(t, 0)
	id, _ := strconv.ParseUint(in.baseID, 10, 32)
	const n = 20000
	out, err := exec.Command(setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", python, "-c", floodScript,
		uds.SocketName(in.socket, uds.RoleParent, uint32(id), 0), strconv.Itoa(n)).CombinedOutput()
	if err != nil {
		t.Fatalf("flood as nobody: %v\n%s", err, out)
	}
	if code, body, err := get("http://" + in.listen() + "/"); err != nil || code != 200 || !strings.HasPrefix(body, "epoch 0 ") {
		t.Fatalf("epoch 0 after the flood: %d %q %v", code, body, err)
	}
	// A hot restart after the flood: its requests are read after every
	// flooded datagram, so the refusals have all been logged (or counted).
	p1 := in.start(t, 1, common...)
	p1.waitLive(t, 1)
	if code := p0.waitExit(t, 20*time.Second); code != 0 {
		t.Errorf("epoch 0 exit %d, want 0", code)
	}
	lines := strings.Count(p0.log.String(), "\n")
	refused := strings.Count(p0.log.String(), "refused a hot-restart datagram")
	t.Logf("%d datagrams from nobody: epoch 0 wrote %d log lines in all, %d about refusals", n, lines, refused)
	if refused == 0 || refused > 5 {
		t.Errorf("%d log lines about refused datagrams, want 1..5 (the first, then summaries)", refused)
	}
	// Every refusal is accounted for: logged, or counted in a summary.
	total := refused
	for _, m := range regexp.MustCompile(`"suppressed_since_last": (\d+)`).FindAllStringSubmatch(p0.log.String(), -1) {
		k, _ := strconv.Atoi(m[1])
		total += k
	}
	if total != n {
		t.Errorf("epoch 0's log accounts for %d refused datagrams, want %d", total, n)
	}
}
