package main

import (
	"fmt"
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

// fakeProxy is the test binary acting as a proxy generation. It is told what
// to do through FP_* environment variables (inherited through the restarter):
//
//	FP_DIR                 start.<epoch>.<pid> files (argv and env) and sig.<epoch>.<pid> (one signal per line)
//	FP_FAIL_ONCE_EPOCHS    exit 1 after 100ms the first time this epoch starts
//	FP_CRASH_EPOCHS        exit 3 after FP_CRASH_AFTER
//	FP_IGNORE_TERM_EPOCHS  ignore SIGTERM
//	FP_EXIT0_AFTER         exit 0 after this duration
//	FP_FORK                start a copy of itself (which does the rest) and exit 0 at once
//	FP_ORPHAN              leave an orphan (sleep 0.5, pid in FP_DIR/orphan) that is a zombie unless reaped
//	FP_PRINT               print "hello from epoch N" on stdout and "warn from epoch N" on stderr
func fakeProxy() int {
	dir := os.Getenv("FP_DIR")
	epoch := os.Getenv("RESTART_EPOCH")
	in := func(key string) bool { return slices.Contains(strings.Split(os.Getenv(key), ","), epoch) }

	if os.Getenv("FP_FORK") == "1" {
		cmd := exec.Command(os.Args[0], os.Args[1:]...)
		cmd.Env = append(os.Environ(), "FP_FORK=0")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "fakeproxy fork:", err)
			return 9
		}
		return 0 // exit without waiting: the grandchild is re-parented to the restarter
	}
	if os.Getenv("FP_ORPHAN") == "1" {
		// sh forks a short-lived background child and exits: that child is an orphan.
		// Its pid goes to FP_DIR/orphan.
		cmd := exec.Command("/bin/sh", "-c", "/bin/sleep 0.5 & echo $! > \"$FP_DIR/.orphan\"; mv \"$FP_DIR/.orphan\" \"$FP_DIR/orphan\"")
		_ = cmd.Run()
	}

	sigc := make(chan os.Signal, 16)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGHUP, syscall.SIGINT)
	pid := strconv.Itoa(os.Getpid())
	info := fmt.Sprintf("args=%q\nRESTART_EPOCH=%s\nBASE_ID=%s\nDRAIN_TIME_S=%s\nPARENT_SHUTDOWN_TIME_S=%s\nNOTIFY_SOCKET=%s\nppid=%d\n",
		os.Args[2:], epoch, os.Getenv("BASE_ID"), os.Getenv("DRAIN_TIME_S"), os.Getenv("PARENT_SHUTDOWN_TIME_S"), os.Getenv("NOTIFY_SOCKET"), os.Getppid())
	if dir != "" {
		tmp := filepath.Join(dir, ".tmp."+pid)
		_ = os.WriteFile(tmp, []byte(info), 0o644)
		_ = os.Rename(tmp, filepath.Join(dir, "start."+epoch+"."+pid))
	}
	if os.Getenv("FP_PRINT") == "1" {
		fmt.Fprintf(os.Stdout, "hello from epoch %s\n", epoch)
		fmt.Fprintf(os.Stderr, "warn from epoch %s\n", epoch)
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
