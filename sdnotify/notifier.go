package sdnotify

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
)

// Notifier sends state changes to the service manager named by NOTIFY_SOCKET.
// Every method is a no-op returning nil when NOTIFY_SOCKET is unset. It is
// safe for concurrent use.
type Notifier struct {
	log *zap.Logger
}

// NewNotifier returns a Notifier that logs send failures to log (nil: none).
func NewNotifier(log *zap.Logger) *Notifier {
	if log == nil {
		log = zap.NewNop()
	}
	return &Notifier{log: log}
}

// Enabled reports whether NOTIFY_SOCKET is set, i.e. whether anything listens.
func (n *Notifier) Enabled() bool { return os.Getenv("NOTIFY_SOCKET") != "" }

// Ready sends READY=1 with an optional STATUS= line.
func (n *Notifier) Ready(status string) error {
	return n.send(join("READY=1", statusLine(status)))
}

// Reloading sends RELOADING=1 and MONOTONIC_USEC=<CLOCK_MONOTONIC in µs> in one
// datagram, as Type=notify-reload requires. Follow it with Ready or
// ReloadFailed once the reload has an outcome.
func (n *Notifier) Reloading(status string) error {
	usec := strings.TrimSpace(daemon.SdNotifyMonotonicUsec()) // it ends in a newline
	if usec == "" {
		return errors.New("sd_notify RELOADING=1: CLOCK_MONOTONIC unavailable for MONOTONIC_USEC")
	}
	return n.send(join("RELOADING=1", usec, statusLine(status)))
}

// ReloadFailed tells the service manager that a reload failed while the old
// generation still serves: READY=1 (the service is usable), STATUS= saying so
// and ERRNO= (an errno number, e.g. int(unix.EIO); 0 omits it).
func (n *Notifier) ReloadFailed(status string, errno int) error {
	lines := []string{"READY=1", statusLine(status)}
	if errno > 0 {
		lines = append(lines, "ERRNO="+strconv.Itoa(errno))
	}
	return n.send(join(lines...))
}

// Stopping sends STOPPING=1 with an optional STATUS= line.
func (n *Notifier) Stopping(status string) error {
	return n.send(join("STOPPING=1", statusLine(status)))
}

// Status sends a STATUS= line alone (e.g. "epoch 3 serving, pids 120 97").
func (n *Notifier) Status(status string) error {
	return n.send(statusLine(status))
}

func (n *Notifier) send(state string) error {
	if state == "" {
		return nil
	}
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify failed", zap.String("state", state), zap.Error(err))
		return fmt.Errorf("sd_notify %q: %w", state, err)
	}
	return nil
}

// statusLine makes a STATUS= assignment; newlines would start a new
// assignment, so they become spaces.
func statusLine(s string) string {
	if s == "" {
		return ""
	}
	return "STATUS=" + strings.ReplaceAll(s, "\n", " ")
}

func join(lines ...string) string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		if l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// ErrNoWatchdog is returned by StartWatchdog when the service manager did not
// ask for watchdog pings (WATCHDOG_USEC unset, or WATCHDOG_PID names another
// process).
var ErrNoWatchdog = errors.New("systemd watchdog not enabled (WATCHDOG_USEC unset or for another pid)")

// Watchdog sends WATCHDOG=1 periodically; see Notifier.StartWatchdog.
type Watchdog struct {
	interval time.Duration
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

// StartWatchdog reads WATCHDOG_USEC (and WATCHDOG_PID) through go-systemd's
// daemon.SdWatchdogEnabled and, when set, starts a goroutine that every half
// of that interval calls healthy and sends WATCHDOG=1 if it returned true.
// While healthy returns false nothing is sent, so systemd's watchdog fires.
// It returns ErrNoWatchdog when no watchdog is configured.
func (n *Notifier) StartWatchdog(healthy func() bool) (*Watchdog, error) {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	if d <= 0 {
		return nil, ErrNoWatchdog
	}
	w := &Watchdog{interval: d / 2, stop: make(chan struct{}), done: make(chan struct{})}
	go n.watchdog(w, healthy)
	return w, nil
}

// Interval is the time between pings: half of WATCHDOG_USEC.
func (w *Watchdog) Interval() time.Duration { return w.interval }

// Stop ends the pings. It is idempotent and blocks until the goroutine is gone.
func (w *Watchdog) Stop() {
	w.once.Do(func() { close(w.stop) })
	<-w.done
}

func (n *Notifier) watchdog(w *Watchdog, healthy func() bool) {
	defer close(w.done)
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			if !healthy() {
				n.log.Warn("unhealthy: withholding WATCHDOG=1")
				continue
			}
			_ = n.send("WATCHDOG=1")
		}
	}
}
