package baseid

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a lock holder: BASEID_HOLD=<dir> acquires a
// dynamic id, prints it, and holds it until stdin closes.
func TestMain(m *testing.M) {
	if dir := os.Getenv("BASEID_HOLD"); dir != "" {
		l, err := AcquireDynamic(dir, &Options{ShmDir: dir})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(l.ID)
		var b [1]byte
		os.Stdin.Read(b[:])
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestExplicitHeldNamesHolder(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir, 5)
	if err != nil {
		t.Fatal(err)
	}
	// Same process, separate open file description: still conflicts.
	_, err = Acquire(dir, 5)
	var held *HeldError
	if !errors.As(err, &held) || held.PID != os.Getpid() || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second Acquire = %v, want HeldError naming pid %d", err, os.Getpid())
	}
	l.Close()
	l.Close() // idempotent
	l2, err := Acquire(dir, 5)
	if err != nil {
		t.Fatalf("Acquire after Close = %v", err)
	}
	l2.Close()
	if _, err := Acquire(dir, Max+1); err == nil {
		t.Fatalf("Acquire(Max+1) succeeded")
	}
}

func TestDynamicSkipsShmAndSockets(t *testing.T) {
	dir := t.TempDir()
	shm := t.TempDir()
	os.WriteFile(filepath.Join(shm, "envoy_shared_memory_0"), nil, 0o600)
	// id 1 bound as an Envoy socket (abstract, zero padded as Envoy does).
	sockPath := fmt.Sprintf("@restarter_baseid_test_%d", os.Getpid())
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	name := sockPath[1:] + "_parent_12"
	if err := syscall.Bind(fd, &syscall.SockaddrUnix{Name: "@" + name}); err != nil {
		t.Fatal(err)
	}
	held, _ := Acquire(dir, 2)
	defer held.Close()
	l, err := AcquireDynamic(dir, &Options{ShmDir: shm, SocketPath: sockPath})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if l.ID != 3 {
		t.Fatalf("got id %d, want 3 (0: shared memory, 1: socket bound, 2: locked)", l.ID)
	}
}

func TestBoundIDsParsesProcNetUnix(t *testing.T) {
	p := filepath.Join(t.TempDir(), "unix")
	os.WriteFile(p, []byte(`Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00000000 0002 01 1 @envoy_domain_socket_parent_30@@@@@@@@
0000000000000000: 00000002 00000000 00000000 0002 01 2 @envoy_domain_socket_udp_child_71
0000000000000000: 00000002 00000000 00000000 0002 01 3 @other_parent_50
0000000000000000: 00000002 00000000 00000000 0002 01 4 /run/x.sock
0000000000000000: 00000002 00000000 00000000 0002 01 5
0000000000000000: 00000002 00000000 00000000 0002 01 6 @envoy_domain_socket_parent_x
`), 0o644)
	ids, err := BoundIDs(p, DefaultSocketPath)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || !ids[3] || !ids[7] {
		t.Fatalf("got %v, want {3, 7}", ids)
	}
}

// Twenty goroutines, each with its own lock fds, get twenty ids.
func TestDynamicConcurrentGoroutines(t *testing.T) {
	dir, shm := t.TempDir(), t.TempDir()
	var wg sync.WaitGroup
	locks := make([]*Lock, 20)
	errs := make([]error, 20)
	for i := range locks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			locks[i], errs[i] = AcquireDynamic(dir, &Options{ShmDir: shm})
		}()
	}
	wg.Wait()
	seen := map[uint32]bool{}
	for i, l := range locks {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if seen[l.ID] {
			t.Fatalf("id %d handed out twice", l.ID)
		}
		seen[l.ID] = true
		defer l.Close()
	}
}

// Twenty processes started at once get twenty ids.
func TestDynamicConcurrentProcesses(t *testing.T) {
	dir := t.TempDir()
	type proc struct {
		cmd *exec.Cmd
		out string
		in  *os.File
	}
	outDir := t.TempDir()
	var ps []proc
	for i := 0; i < 20; i++ {
		r, w, _ := os.Pipe()
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "BASEID_HOLD="+dir, "GORACE=atexit_sleep_ms=0")
		cmd.Stdin = r
		out := filepath.Join(outDir, strconv.Itoa(i))
		f, err := os.Create(out)
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout = f
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		r.Close()
		f.Close()
		ps = append(ps, proc{cmd, out, w})
	}
	defer func() {
		for _, p := range ps {
			p.in.Close()
			p.cmd.Wait()
		}
	}()
	seen := map[string]bool{}
	read := func(p proc) string { b, _ := os.ReadFile(p.out); return string(b) }
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range ps {
		for !strings.HasSuffix(read(p), "\n") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	for i, p := range ps {
		got := strings.TrimSpace(read(p))
		if _, err := strconv.Atoi(got); err != nil || seen[got] {
			t.Fatalf("process %d got %q (duplicate=%v)", i, got, seen[got])
		}
		seen[got] = true
	}
}
