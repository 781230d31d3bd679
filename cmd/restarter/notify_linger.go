package main

import (
	"time"

	"github.com/hotrestart/restarter/sdnotify"
)

// notifyLinger is how long a generation's --ready=notify socket stays after
// READY=1: `systemd-notify --ready` sends BARRIER=1 right after READY=1 and
// waits for the receiver to close the fd it passed; with the socket already
// gone it prints "Failed to invoke barrier". The listener keeps reading (and
// closing passed fds) until then.
const notifyLinger = 2 * time.Second

func (n *notifyReady) lingerThenRelease(epoch uint32, l *sdnotify.Listener) {
	time.AfterFunc(notifyLinger, func() { n.release(epoch, l) })
}
