//go:build linux

package uds

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/hotrestart/restarter/internal/testutil"
)

func TestMain(m *testing.M) {
	if os.Getenv("UDS_TEST_HELPER") != "" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

var sockSeq atomic.Int64

// testPath returns a socket path no other test (or test process) uses.
func testPath() string {
	return fmt.Sprintf("@udstest_%d_%d", os.Getpid(), sockSeq.Add(1))
}

func testConfig(t testing.TB, path string, epoch uint32) Config {
	var log *zap.Logger
	if tt, ok := t.(*testing.T); ok {
		log = zaptest.NewLogger(tt, zaptest.Level(zap.WarnLevel))
	}
	return Config{
		SocketPath:     path,
		Epoch:          epoch,
		Logger:         log,
		Timeout:        10 * time.Second,
		ConnectRetries: 3,
		RetryDelay:     10 * time.Millisecond,
	}
}

func countFDs(t testing.TB) int {
	t.Helper()
	return testutil.CountFDs(t, 0)
}

// tcpListener returns a loopback listener and its file (a dup).
func tcpListener(t testing.TB) (*net.TCPListener, *os.File) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, f
}

func startPair(t testing.TB, h ParentHandler) (*Parent, *Child, string) {
	t.Helper()
	path := testPath()
	p, err := ListenParent(testConfig(t, path, 4), h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	c, err := DialChild(testConfig(t, path, 5))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return p, c, path
}

func TestRoundTrip(t *testing.T) {
	ln, f := tcpListener(t)
	reg := NewListeners()
	defer reg.Close()
	url := AddressURL(ln.Addr())
	reg.Add(url, 0, f)
	var drained, terminated atomic.Int32
	_, c, _ := startPair(t, ParentHandler{
		Listeners: reg,
		ShutdownAdmin: func() ShutdownAdminReply {
			return ShutdownAdminReply{OriginalStartTimeUnixSeconds: 1234, EnableReusePortDefault: true}
		},
		StatsTo: statsTo(func() Stats {
			return Stats{MemoryAllocated: 5, CounterDeltas: map[string]uint64{"c": 3}, Gauges: map[string]uint64{"g": 9}}
		}),
		DrainListeners: func() { drained.Add(1) },
		Terminate:      func() { terminated.Add(1) },
	})
	ctx := context.Background()

	sa, err := c.ShutdownParentAdmin(ctx)
	if err != nil || sa.OriginalStartTimeUnixSeconds != 1234 || !sa.EnableReusePortDefault {
		t.Fatalf("ShutdownParentAdmin = %+v, %v", sa, err)
	}
	got, err := c.PassListenSocket(ctx, url, 0)
	if err != nil || got == nil {
		t.Fatalf("PassListenSocket(%s) = %v, %v", url, got, err)
	}
	// The passed socket is the same listener: a connection to it is accepted there.
	gl, err := net.FileListener(got)
	got.Close()
	if err != nil {
		t.Fatal(err)
	}
	defer gl.Close()
	if gl.Addr().String() != ln.Addr().String() {
		t.Errorf("passed listener on %s, want %s", gl.Addr(), ln.Addr())
	}
	none, err := c.PassListenSocket(ctx, url, 1)
	if err != nil || none != nil {
		t.Errorf("unknown worker: %v, %v; want nil, nil (fd -1)", none, err)
	}
	none, err = c.PassListenSocket(ctx, "tcp://127.0.0.1:1", 0)
	if err != nil || none != nil {
		t.Errorf("unknown address: %v, %v; want nil, nil", none, err)
	}
	st, err := c.Stats(ctx)
	if err != nil || st.MemoryAllocated != 5 || st.CounterDeltas["c"] != 3 || st.Gauges["g"] != 9 {
		t.Fatalf("Stats = %+v, %v", st, err)
	}
	if err := c.DrainParentListeners(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.TerminateParent(ctx); err != nil {
		t.Fatal(err)
	}
	// Requests are served in order: a reply after drain and terminate proves
	// they were handled.
	if _, err := c.Stats(ctx); err != nil {
		t.Fatal(err)
	}
	if drained.Load() != 1 || terminated.Load() != 1 {
		t.Errorf("drain called %d times, terminate %d, want 1 and 1", drained.Load(), terminated.Load())
	}
}

func TestFilesystemSocketsAndMode(t *testing.T) {
	setUmask(t, 0o022)
	dir := t.TempDir()
	path := dir + "/hr"
	cfg := testConfig(t, path, 0)
	cfg.SocketMode = 0o640
	p, err := ListenParent(cfg, ParentHandler{})
	if err != nil {
		t.Fatal(err)
	}
	name := SocketName(path, RoleParent, 0, 0)
	fi, err := os.Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("%s mode %v, want socket 0640", name, fi.Mode())
	}
	c, err := DialChild(testConfig(t, path, 1))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(SocketName(path, RoleChild, 0, 1)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("child socket default mode: %v %v, want 0600", fi.Mode(), err)
	}
	if _, err := c.ShutdownParentAdmin(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Close()
	p.Close()
	if _, err := os.Stat(name); !os.IsNotExist(err) {
		t.Errorf("parent socket file left after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestNoParent(t *testing.T) {
	c, err := DialChild(testConfig(t, testPath(), 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Stats(context.Background())
	if !errors.Is(err, ErrNoParent) {
		t.Fatalf("err = %v, want ErrNoParent", err)
	}
}

// TestDeadParentBounded: a parent that takes the request and never answers
// (Envoy's child would hang forever) costs the child only its deadline.
func TestDeadParentBounded(t *testing.T) {
	path := testPath()
	block := make(chan struct{})
	p, err := ListenParent(testConfig(t, path, 0), ParentHandler{StatsTo: statsTo(func() Stats { <-block; return Stats{} })})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer close(block)
	c, err := DialChild(testConfig(t, path, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Stats(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	// Without a context deadline, Config.Timeout bounds the wait.
	cfg := testConfig(t, path, 1)
	cfg.Timeout = 200 * time.Millisecond
	c.Close()
	if c, err = DialChild(cfg); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Stats(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Config.Timeout: err = %v, want DeadlineExceeded", err)
	}
	// Cancellation also ends a wait.
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel2() }()
	if _, err := c.ShutdownParentAdmin(ctx2); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
}

func TestUnknownRequestAnswered(t *testing.T) {
	path := testPath()
	p, err := ListenParent(testConfig(t, path, 0), ParentHandler{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// A request with no known field set, and a reply sent to the parent.
	for _, payload := range [][]byte{{0x0a, 0x00}, {0x12, 0x00}} {
		raw := rawSend(t, path, 1, payload, true)
		if string(raw) != string([]byte{0x18, 0x01}) {
			t.Errorf("%x: reply %x, want didnt_recognize_your_last_message (1801)", payload, raw)
		}
	}
}

// rawSend binds the child socket of epoch as a plain net socket, sends payload
// framed to the parent and, if wantReply, returns the reply's protobuf bytes.
func rawSend(t *testing.T, path string, epoch uint32, payload []byte, wantReply bool) []byte {
	t.Helper()
	ca, _ := sockAddr(SocketName(path, RoleChild, 0, epoch))
	pa, _ := sockAddr(SocketName(path, RoleParent, 0, epoch-1))
	conn, err := net.ListenUnixgram("unixgram", ca)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.WriteToUnix(frame(payload), pa); err != nil {
		t.Fatal(err)
	}
	if !wantReply {
		return nil
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, MaxDatagram)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return buf[8:n]
}

// TestGarbageDoesNotHarmParent throws malformed datagrams at a live Parent,
// from a foreign socket and from the child's own address, then checks that
// it still serves a good request and leaked no fd.
func TestGarbageDoesNotHarmParent(t *testing.T) {
	ln, f := tcpListener(t)
	reg := NewListeners()
	defer reg.Close()
	reg.Add(AddressURL(ln.Addr()), 0, f)
	path := testPath()
	p, err := ListenParent(testConfig(t, path, 0), ParentHandler{Listeners: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	before := countFDs(t)
	pa, _ := sockAddr(SocketName(path, RoleParent, 0, 0))
	ca, _ := sockAddr(SocketName(path, RoleChild, 0, 1))
	big := make([]byte, MaxDatagram)
	big[0] = 0x7f // claims an absurd length
	trunc := frame(make([]byte, 9000))[:MaxDatagram]
	garbage := [][]byte{
		{}, {1}, {1, 2, 3, 4, 5, 6, 7},
		big,
		frame([]byte{0xff, 0xff, 0xff}), // not a protobuf
		frame([]byte("\x12\x00")),       // a reply, not a request
		trunc,                           // truncated message
		frame(nil),                      // empty message: no request
	}
	for _, from := range []*net.UnixAddr{nil, ca} {
		var conn *net.UnixConn
		if from == nil {
			conn, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "@" + path[1:] + "_foreign", Net: "unixgram"})
		} else {
			conn, err = net.ListenUnixgram("unixgram", from)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range garbage {
			if _, err := conn.WriteToUnix(g, pa); err != nil {
				t.Fatal(err)
			}
		}
		// A datagram with an fd attached where none is expected.
		r, w, _ := os.Pipe()
		if _, _, err := conn.WriteMsgUnix(frame([]byte{0x0a, 0x02, 0x12, 0x00}), unixRights(int(w.Fd())), pa); err != nil {
			t.Fatal(err)
		}
		r.Close()
		w.Close()
		if from != nil {
			// Wait until the parent has worked through everything: its
			// answer to a good request comes after the answers to the
			// garbage, which the child must not see.
			if _, err := conn.WriteToUnix(frame([]byte{0x0a, 0x02, 0x1a, 0x00}), pa); err != nil {
				t.Fatal(err)
			}
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			buf := make([]byte, MaxDatagram)
			for {
				n, err := conn.Read(buf)
				if err != nil {
					t.Fatalf("no answer to a good request after garbage: %v", err)
				}
				if n >= 10 && buf[8] == 0x12 && buf[10] == 0x1a { // reply { stats {} }
					break
				}
			}
		}
		conn.Close()
	}
	c, err := DialChild(testConfig(t, path, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got, err := c.PassListenSocket(context.Background(), AddressURL(ln.Addr()), 0)
	if err != nil || got == nil {
		t.Fatalf("parent no longer serves: %v %v", got, err)
	}
	got.Close()
	c.Close()
	if after := countFDs(t); after != before {
		t.Errorf("open fds: %d before the garbage, %d after", before, after)
	}
}

func TestFDLeak10000Handoffs(t *testing.T) {
	ln, f := tcpListener(t)
	reg := NewListeners()
	defer reg.Close()
	url := AddressURL(ln.Addr())
	reg.Add(url, 0, f)
	_, c, _ := startPair(t, ParentHandler{Listeners: reg})
	ctx := context.Background()
	// Warm up (lazy runtime fds such as the poller exist before we count).
	if g, err := c.PassListenSocket(ctx, url, 0); err != nil || g == nil {
		t.Fatal(g, err)
	} else {
		g.Close()
	}
	before := countFDs(t)
	n := 10000
	if testing.Short() {
		n = 1000
	}
	for i := 0; i < n; i++ {
		g, err := c.PassListenSocket(ctx, url, 0)
		if err != nil || g == nil {
			t.Fatalf("handoff %d: %v %v", i, g, err)
		}
		g.Close()
	}
	if after := countFDs(t); after != before {
		t.Errorf("open fds: %d before %d handoffs, %d after", before, n, after)
	}
}

// TestCrossProcess runs the child in another process (this test binary
// re-executed) against a Parent here.
func TestCrossProcess(t *testing.T) {
	ln, f := tcpListener(t)
	reg := NewListeners()
	defer reg.Close()
	url := AddressURL(ln.Addr())
	reg.Add(url, 0, f)
	path := testPath()
	p, err := ListenParent(testConfig(t, path, 0), ParentHandler{
		Listeners: reg,
		StatsTo:   statsTo(func() Stats { return Stats{CounterDeltas: map[string]uint64{"requests": 77}} }),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	out, err := helper(t, nil, path, url).CombinedOutput()
	if err != nil {
		t.Fatalf("child process: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "listener "+ln.Addr().String()) || !strings.Contains(string(out), "requests=77") {
		t.Errorf("child output:\n%s", out)
	}
}

// TestWrongPeerRefused runs the child as nobody: the Parent must neither
// answer it nor run a callback.
func TestWrongPeerRefused(t *testing.T) {
	setpriv, bin := nobodyBinary(t)
	var called atomic.Int32
	path := testPath()
	p, err := ListenParent(testConfig(t, path, 0), ParentHandler{
		ShutdownAdmin: func() ShutdownAdminReply { called.Add(1); return ShutdownAdminReply{} },
		Terminate:     func() { called.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cmd := exec.Command(setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), "UDS_TEST_HELPER=nobody", "UDS_PATH="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("nobody child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "refused as expected") {
		t.Errorf("nobody child output:\n%s", out)
	}
	// A good request after the refused ones is answered, and proves the
	// refused ones (sent earlier) ran no callback.
	c, err := DialChild(testConfig(t, path, 1))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Stats(context.Background()); err != nil {
		t.Fatal(err)
	}
	if called.Load() != 0 {
		t.Errorf("a refused peer ran %d callbacks", called.Load())
	}
}

func helper(t *testing.T, env []string, path, url string) *exec.Cmd {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), "UDS_TEST_HELPER=child", "UDS_PATH="+path, "UDS_URL="+url)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// helperMain is the re-executed test binary acting as a child.
func helperMain() int {
	path := os.Getenv("UDS_PATH")
	cfg := Config{SocketPath: path, Epoch: 1, Timeout: 10 * time.Second, RetryDelay: 10 * time.Millisecond, ConnectRetries: 3}
	switch os.Getenv("UDS_TEST_HELPER") {
	case "child":
		c, err := DialChild(cfg)
		if err != nil {
			fmt.Println("dial:", err)
			return 1
		}
		defer c.Close()
		ctx := context.Background()
		f, err := c.PassListenSocket(ctx, os.Getenv("UDS_URL"), 0)
		if err != nil || f == nil {
			fmt.Println("pass:", f, err)
			return 1
		}
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			fmt.Println("filelistener:", err)
			return 1
		}
		fmt.Println("listener", ln.Addr())
		ln.Close()
		st, err := c.Stats(ctx)
		if err != nil {
			fmt.Println("stats:", err)
			return 1
		}
		fmt.Println("requests=" + strconv.FormatUint(st.CounterDeltas["requests"], 10))
		return 0
	case "nobody":
		cfg.Epoch = 1
		c, err := DialChild(cfg)
		if err != nil {
			fmt.Println("dial:", err)
			return 1
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if _, err := c.ShutdownParentAdmin(ctx); !errors.Is(err, context.DeadlineExceeded) {
			fmt.Println("expected no answer, got:", err)
			return 1
		}
		c.TerminateParent(context.Background())
		fmt.Println("refused as expected")
		return 0
	case "flood":
		return floodMain(path)
	}
	return 2
}
