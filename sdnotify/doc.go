// Package sdnotify speaks systemd's sd_notify(3) protocol in both directions.
//
// Notifier tells the service manager about the restarter (READY=1,
// RELOADING=1 with MONOTONIC_USEC as Type=notify-reload requires, STOPPING=1,
// STATUS=, ERRNO=, and WATCHDOG=1 at half of WATCHDOG_USEC). It is built on
// github.com/coreos/go-systemd/v22/daemon and does nothing when NOTIFY_SOCKET is
// unset. StripEnv removes NOTIFY_SOCKET and WATCHDOG_* from a child's
// environment so the proxy never talks to systemd behind the restarter's back.
//
// Listener is the other side, for --ready=notify: a unixgram socket of the
// restarter's own (mode 0600, SO_PASSCRED) whose path a generation receives as
// NOTIFY_SOCKET. A READY=1 counts only when the kernel-reported sender pid
// (SCM_CREDENTIALS) belongs to the generation's process tree.
//
//	n := sdnotify.NewNotifier(log)
//	n.Ready("epoch 0 serving, pid 1234")
//	wd, _ := n.StartWatchdog(func() bool { return healthy })
//	defer wd.Stop()
//
//	l, _ := sdnotify.ListenTree(filepath.Join(runDir, "base-0.3.notify"), log)
//	defer l.Close()
//	env = append(sdnotify.StripEnv(env), "NOTIFY_SOCKET="+l.Path())
//	pid := start(env)
//	l.SetRoot(pid)
//	<-l.Ready()
package sdnotify
