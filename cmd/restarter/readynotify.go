package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/hotrestart/restarter/sdnotify"
	"github.com/hotrestart/restarter/supervisor"
	"go.uber.org/zap"
)

// notifyReady is --ready=notify: each generation gets a NOTIFY_SOCKET of
// the restarter's own (GenerationEnv), and is ready once a process of its
// tree sends READY=1 there (Ready). The socket is closed and removed when
// Ready returns; Close removes any left by a generation that never started.
type notifyReady struct {
	dir, instance string
	log           *zap.Logger

	mu sync.Mutex
	ls map[uint32]notifyEntry
}

type notifyEntry struct {
	l   *sdnotify.Listener
	err error
}

func newNotifyReady(dir, instance string, log *zap.Logger) *notifyReady {
	return &notifyReady{dir: dir, instance: instance, log: log, ls: map[uint32]notifyEntry{}}
}

func (n *notifyReady) path(epoch uint32) string {
	return filepath.Join(n.dir, n.instance+"."+strconv.FormatUint(uint64(epoch), 10)+".notify")
}

// Env creates epoch's socket and returns its NOTIFY_SOCKET. A socket left
// by an earlier start of the same epoch number (a start that failed before
// Ready ran) is closed first.
func (n *notifyReady) Env(epoch uint32) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if old, ok := n.ls[epoch]; ok && old.l != nil {
		old.l.Close()
	}
	l, err := sdnotify.ListenTree(n.path(epoch), n.log)
	n.ls[epoch] = notifyEntry{l, err}
	if err != nil {
		n.log.Error("--ready=notify: cannot create the generation's notify socket", zap.Uint32("epoch", epoch), zap.Error(err))
		return nil
	}
	return []string{"NOTIFY_SOCKET=" + l.Path()}
}

// Ready implements supervisor.Readiness.
func (n *notifyReady) Ready(ctx context.Context, p supervisor.Probe) error {
	n.mu.Lock()
	e, ok := n.ls[p.Epoch]
	n.mu.Unlock()
	switch {
	case !ok:
		return fmt.Errorf("--ready=notify: no notify socket for epoch %d", p.Epoch)
	case e.err != nil:
		return fmt.Errorf("--ready=notify: %w", e.err)
	}
	e.l.SetRoot(p.PID)
	select {
	case <-e.l.Ready():
		n.lingerThenRelease(p.Epoch, e.l)
		return nil
	case <-ctx.Done():
		n.release(p.Epoch, e.l)
		return fmt.Errorf("no READY=1 from pid %d or its descendants on %s: %w", p.PID, e.l.Path(), ctx.Err())
	}
}

func (n *notifyReady) release(epoch uint32, l *sdnotify.Listener) {
	l.Close()
	n.mu.Lock()
	if n.ls[epoch].l == l {
		delete(n.ls, epoch)
	}
	n.mu.Unlock()
}

// Close closes every socket still open. Call it after the supervisor's Run
// returned (no Ready is running any more).
func (n *notifyReady) Close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for epoch, e := range n.ls {
		if e.l != nil {
			e.l.Close()
		}
		delete(n.ls, epoch)
	}
}
