package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// fakeProxy is the test binary acting as a proxy generation (the helper
// command "fakeproxy"). It is told what to do through FP_* environment
// variables (inherited through the restarter; each is in fpKnobs):
//
//	FP_DIR                 start.<epoch>.<pid> files (argv and env) and sig.<epoch>.<pid> (one signal per line)
//	FP_FAIL_ONCE_EPOCHS    exit 1 after 100ms the first time this epoch starts
//	FP_CRASH_EPOCHS        exit 3 after FP_CRASH_AFTER
//	FP_IGNORE_TERM_EPOCHS  ignore SIGTERM
//	FP_EXIT0_AFTER         exit 0 after this duration
//	FP_ORPHAN              leave an orphan (sleep 0.5, pid in FP_DIR/orphan) that is a zombie unless reaped
//	FP_PRINT               print "hello from epoch N" on stdout and "warn from epoch N" on stderr
//	FP_ADMIN               serve HTTP on this address (SO_REUSEPORT, so every epoch binds it): /server_info
//	                       says LIVE at its RESTART_EPOCH once FP_DIR/live.<epoch> exists
//	                       (PRE_INITIALIZING before), any other path answers 200 or 503 likewise;
//	                       each request is a line in FP_DIR/hits.<epoch>
//	FP_NOTIFY              send READY=1 to NOTIFY_SOCKET after FP_NOTIFY (a duration), except
//	                       the first start of an epoch in FP_NOTIFY_SKIP_ONCE_EPOCHS
//
// With --hot-restart-version it prints FP_DIR/hot-restart-version (default
// 11.fake) and exits, as Envoy does.
//
// With the arguments --mode validate it is a validator instead (as Envoy and
// the test proxy): it appends its epoch to FP_DIR/validated and its
// arguments (after "fakeproxy", as %q of a []string) to FP_DIR/validated.args,
// one line a run, and exits 1 ("fail: true found") when the file named by
// --config contains "fail: true".
func fakeProxy() int {
	dir := os.Getenv("FP_DIR")
	if slices.Contains(os.Args, "--hot-restart-version") { // FP_DIR/hot-restart-version, else 11.fake
		v, err := os.ReadFile(filepath.Join(dir, "hot-restart-version"))
		if err != nil {
			v = []byte("11.fake")
		}
		fmt.Println(strings.TrimSpace(string(v)))
		return 0
	}
	if i := slices.Index(os.Args, "--mode"); i > 0 && i+1 < len(os.Args) && os.Args[i+1] == "validate" {
		return fakeValidate(dir)
	}
	epoch := os.Getenv("RESTART_EPOCH")
	in := func(key string) bool { return slices.Contains(strings.Split(os.Getenv(key), ","), epoch) }

	if os.Getenv("FP_ORPHAN") == "1" {
		// sh forks a short-lived background child and exits: that child is an orphan.
		// Its pid goes to FP_DIR/orphan.
		cmd := exec.Command("/bin/sh", "-c", "/bin/sleep 0.5 & echo $! > \"$FP_DIR/.orphan\"; mv \"$FP_DIR/.orphan\" \"$FP_DIR/orphan\"")
		_ = cmd.Run()
	}

	sigc := make(chan os.Signal, 16)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGINT)
	pid := strconv.Itoa(os.Getpid())
	info := fmt.Sprintf("args=%q\nRESTART_EPOCH=%s\nBASE_ID=%s\nDRAIN_TIME_S=%s\nPARENT_SHUTDOWN_TIME_S=%s\nNOTIFY_SOCKET=%s\nWATCHDOG_USEC=%s\nWATCHDOG_PID=%s\nppid=%d\n",
		os.Args[2:], epoch, os.Getenv("BASE_ID"), os.Getenv("DRAIN_TIME_S"), os.Getenv("PARENT_SHUTDOWN_TIME_S"), os.Getenv("NOTIFY_SOCKET"), os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getppid())
	if dir != "" {
		tmp := filepath.Join(dir, ".tmp."+pid)
		_ = os.WriteFile(tmp, []byte(info), 0o644)
		_ = os.Rename(tmp, filepath.Join(dir, "start."+epoch+"."+pid))
	}
	if addr := os.Getenv("FP_ADMIN"); addr != "" {
		if err := serveFakeAdmin(addr, dir, epoch); err != nil {
			fmt.Fprintln(os.Stderr, "fakeproxy admin:", err)
			return 9
		}
	}
	if os.Getenv("FP_PRINT") == "1" {
		fmt.Fprintf(os.Stdout, "hello from epoch %s\n", epoch)
		fmt.Fprintf(os.Stderr, "warn from epoch %s\n", epoch)
	}
	skipNotify := false
	if in("FP_NOTIFY_SKIP_ONCE_EPOCHS") {
		marker := filepath.Join(dir, "notify-skipped."+epoch)
		if _, err := os.Stat(marker); err != nil {
			_ = os.WriteFile(marker, nil, 0o644)
			skipNotify = true
		}
	}
	if v := os.Getenv("FP_NOTIFY"); v != "" && !skipNotify {
		d, _ := time.ParseDuration(v)
		time.Sleep(d)
		if err := sdNotifyReady(os.Getenv("NOTIFY_SOCKET")); err != nil {
			fmt.Fprintln(os.Stderr, "fakeproxy notify:", err)
		}
	}
	var timeout <-chan time.Time
	code := 0
	if in("FP_FAIL_ONCE_EPOCHS") {
		marker := filepath.Join(dir, "failed."+epoch)
		if _, err := os.Stat(marker); err != nil {
			_ = os.WriteFile(marker, nil, 0o644)
			timeout, code = time.After(100*time.Millisecond), 1
		}
	}
	if in("FP_CRASH_EPOCHS") {
		d, _ := time.ParseDuration(os.Getenv("FP_CRASH_AFTER"))
		timeout, code = time.After(d), 3
	}
	if v := os.Getenv("FP_EXIT0_AFTER"); v != "" {
		d, _ := time.ParseDuration(v)
		timeout, code = time.After(d), 0
	}
	ignoreTerm := in("FP_IGNORE_TERM_EPOCHS")
	for {
		select {
		case <-timeout:
			return code
		case s := <-sigc:
			if dir != "" {
				f, err := os.OpenFile(filepath.Join(dir, "sig."+epoch+"."+pid), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
				if err == nil {
					fmt.Fprintln(f, s.(syscall.Signal).String())
					f.Close()
				}
			}
			if s == syscall.SIGTERM && !ignoreTerm {
				return 0
			}
		}
	}
}

// fakeProxyFork is a start script that forks the proxy and exits (the
// helper command "fakeproxy-fork"): it starts fakeproxy with its own
// arguments and environment and exits 0 at once, without waiting, so the
// proxy is re-parented to the restarter.
func fakeProxyFork() int {
	cmd := exec.Command(os.Args[0], append([]string{"fakeproxy"}, os.Args[2:]...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "fakeproxy-fork:", err)
		return 9
	}
	return 0
}

func fakeValidate(dir string) int {
	epoch := os.Getenv("RESTART_EPOCH")
	if f, err := os.OpenFile(filepath.Join(dir, "validated"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprintln(f, epoch)
		f.Close()
	}
	if f, err := os.OpenFile(filepath.Join(dir, "validated.args"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		fmt.Fprintf(f, "%q\n", os.Args[2:])
		f.Close()
	}
	if i := slices.Index(os.Args, "--config"); i > 0 && i+1 < len(os.Args) {
		b, err := os.ReadFile(os.Args[i+1])
		if err != nil {
			fmt.Println("cannot read config:", err)
			return 1
		}
		if strings.Contains(string(b), "fail: true") {
			fmt.Printf("config %s: fail: true found (epoch %s)\n", os.Args[i+1], epoch)
			return 1
		}
	}
	fmt.Println("configuration OK")
	return 0
}

// sdNotifyReady sends READY=1 to a notify socket, as sd_notify(3) does.
func sdNotifyReady(path string) error {
	if path == "" {
		return fmt.Errorf("NOTIFY_SOCKET unset")
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte("READY=1\nSTATUS=fake proxy up"))
	return err
}

// serveFakeAdmin serves an Envoy-like admin on addr (see FP_ADMIN) until the
// process exits.
func serveFakeAdmin(addr, dir, epoch string) error {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return err
	}
	live := func() bool {
		_, err := os.Stat(filepath.Join(dir, "live."+epoch))
		return err == nil
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f, err := os.OpenFile(filepath.Join(dir, "hits."+epoch), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(f, r.URL.Path)
			f.Close()
		}
		if r.URL.Path == "/server_info" {
			state := "PRE_INITIALIZING"
			if live() {
				state = "LIVE"
			}
			fmt.Fprintf(w, `{"state":%q,"command_line_options":{"restart_epoch":%s}}`, state, epoch)
			return
		}
		if !live() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	return nil
}
