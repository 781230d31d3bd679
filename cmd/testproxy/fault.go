package main

import (
	"net"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// faultPoints are the points of the hot-restart handoff --fault-at names, in
// order: before the child asks for the admin, after the parent closed it,
// after the listen sockets passed, after the stats, after drain_listeners.
var faultPoints = []string{"before-admin", "after-admin", "after-listen", "after-stats", "after-drain"}

// notifyReady sends READY=1 to $NOTIFY_SOCKET (--sd-notify).
func (s *server) notifyReady() {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		s.log.Warn("--sd-notify: no NOTIFY_SOCKET")
		return
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err == nil {
		_, err = c.Write([]byte("READY=1"))
		c.Close()
	}
	if err != nil {
		s.log.Warn("--sd-notify", zap.Error(err))
	}
}

// fault is the --fault-at hook: at that point of the handoff (child side),
// SIGKILL or SIGSTOP this very process.
func (s *server) fault(point string) {
	if s.cfg.FaultAt != point || s.cfg.RestartEpoch == 0 {
		return
	}
	if s.cfg.FaultOnce != "" {
		f, err := os.OpenFile(s.cfg.FaultOnce, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil { // there already (or unwritable): this start goes through
			return
		}
		f.Close()
	}
	sig := syscall.SIGKILL
	if s.cfg.Fault == "hang" {
		sig = syscall.SIGSTOP
	}
	s.log.Warn("--fault-at: injecting the fault", zap.String("point", point), zap.String("fault", s.cfg.Fault))
	_ = syscall.Kill(os.Getpid(), sig)
	// The signal stops or ends every thread, but not always before this
	// one goes on a little: go no further with the handoff, ever.
	for {
		time.Sleep(time.Hour)
	}
}
