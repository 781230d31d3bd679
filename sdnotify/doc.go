// Package sdnotify speaks systemd's sd_notify(3) protocol in both directions.
//
// Notifier tells the service manager about the restarter (READY=1,
// RELOADING=1 with MONOTONIC_USEC as Type=notify-reload requires, STOPPING=1,
// STATUS=, ERRNO=, and WATCHDOG=1 at half of WATCHDOG_USEC). It is built on
// github.com/coreos/go-systemd/v22/daemon and does nothing when NOTIFY_SOCKET is
// unset. Keeping NOTIFY_SOCKET and WATCHDOG_* from the proxy is the job of
// supervisor.Env, which builds every generation's environment.
//
// Listener is the other side, for --ready=notify: a unixgram socket of the
// restarter's own (mode 0600, SO_PASSCRED) whose path a generation receives as
// NOTIFY_SOCKET. A READY=1 counts only when the kernel-reported sender pid
// (SCM_CREDENTIALS) belongs to the generation's process tree.
//
// The restarter's flow: per supervisor event,
//
//	n := sdnotify.NewNotifier(log)
//	n.Ready(status)                       // epoch 0 ready, or a reload succeeded
//	n.Reloading(status)                   // SIGHUP: a reload began
//	n.ReloadFailed(status, int(unix.EIO)) // the old generation still serves
//	n.Stopping(status)
//	wd, err := n.StartWatchdog(func() bool { return sup.Ping(ctx) == nil })
//
// and per generation with --ready=notify: the socket exists before the
// process, whose pid is known only once it started.
//
//	l, err := sdnotify.ListenTree(filepath.Join(runDir, "base-0.3.notify"), log)
//	extraEnv := []string{"NOTIFY_SOCKET=" + l.Path()} // given to supervisor.Env
//	// ... the generation starts with pid ...
//	l.SetRoot(pid)
//	select {
//	case <-l.Ready():
//	case <-ctx.Done(): // not ready in time
//	}
//	l.Close()
package sdnotify
