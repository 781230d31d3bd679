package main

// hotrestart.go: the hot-restart conversations — answering our child
// (parent side) and pulling from or terminating our parent (child side).

import (
	"context"
	"runtime"
	"strconv"
	"time"

	"github.com/hotrestart/restarter/uds"
	"go.uber.org/zap"
)

// parentHandler answers our child (epoch+1). Callbacks run on the Parent's
// goroutine; they must not call s.parent.Close.
func (s *server) parentHandler() uds.ParentHandler {
	return uds.ParentHandler{
		Listeners: s.registry,
		ShutdownAdmin: func() uds.ShutdownAdminReply {
			s.log.Info("child asked for admin: closing admin listener")
			s.lns.closeAdmin()
			// At most three generations: the run goroutine, which owns
			// s.child, terminates our parent if we still have one. The
			// reply does not wait for that.
			s.event(evChildTookAdmin)
			// Envoy's server answers its enable_reuse_port_default, which is
			// true unless the runtime turns it off; a child takes it over.
			return uds.ShutdownAdminReply{OriginalStartTimeUnixSeconds: uint64(s.origTime.Unix()), EnableReusePortDefault: true}
		},
		StatsTo: func(e *uds.StatsEncoder) {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			e.SetMemoryAllocated(ms.HeapAlloc)
			e.SetNumConnections(s.srvStats.connections())
			s.store.ExportTo(e)
		},
		DrainListeners: s.drainListeners,
		Terminate:      func() { s.event(evTerminate) },
	}
}

func (s *server) event(ev event) {
	select {
	case s.events <- ev:
	default:
		s.log.Warn("event dropped", zap.Stringer("event", ev))
	}
}

// pullStats imports the parent's stats (a flush while the parent lives).
func (s *server) pullStats() {
	if s.child == nil || s.cfg.SkipHotRestartParentStats {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	st, err := s.child.StatsInto(ctx, s.store)
	if err == nil {
		s.srvStats.fromParent(st)
	}
	if err != nil {
		s.statsFailures++
		s.log.Warn("stats from parent", zap.Int("failures", s.statsFailures), zap.Error(err))
		if s.statsFailures >= 2 {
			// A parent that died on its own: keep its counters, drop its
			// gauges, stop asking.
			s.log.Warn("parent unreachable: treating it as gone")
			s.store.ParentTerminated()
			s.srvStats.fromParent(uds.StatsImport{})
			s.closeChild(linkGone)
			s.startUDPReaders()
		}
		return
	}
	s.statsFailures = 0
}

// terminateParent pulls the parent's last stats and terminates it.
func (s *server) terminateParent() {
	if s.child == nil {
		return
	}
	s.pullStats()
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	if err := s.child.TerminateParent(ctx); err != nil {
		s.log.Warn("terminate parent", zap.Error(err))
	} else {
		s.log.Info("parent terminated")
	}
	s.store.ParentTerminated()
	s.srvStats.fromParent(uds.StatsImport{})
	s.closeChild(linkTerminated)
	s.startUDPReaders()
}

// parentLink is what became of our hot-restart parent, as /server_info's
// testproxy-only "hot_restart_parent" reports it.
type parentLink uint32

const (
	linkNone       parentLink = iota // epoch 0, or started as if epoch 0 (--skip-hot-restart-on-no-parent)
	linkConnected                    // we talk to it (stats pulls, drain, terminate)
	linkTerminated                   // we sent it terminate: parent-shutdown time, our child took admin, or our shutdown
	linkGone                         // it stopped answering stats pulls: it ended on its own
)

func (l parentLink) String() string {
	switch l {
	case linkNone:
		return "none"
	case linkConnected:
		return "connected"
	case linkTerminated:
		return "terminated"
	case linkGone:
		return "gone"
	}
	return "link(" + strconv.Itoa(int(l)) + ")"
}

// setChild starts talking to our parent through c.
func (s *server) setChild(c *uds.Child) {
	s.child = c
	s.link.Store(uint32(linkConnected))
}

// closeChild forgets the parent (Envoy's parent_terminated_): no request
// goes to it any more; why is what became of it. The child sockets stay
// bound until cleanup.
func (s *server) closeChild(why parentLink) {
	s.child = nil
	s.link.Store(uint32(why))
}

func (s *server) parentLink() parentLink { return parentLink(s.link.Load()) }

// terminateParentOnShutdown is the first step of Envoy's
// InstanceImpl::shutdown() (SIGTERM, SIGINT, /quitquitquit, and the SIGTERM
// a terminate request raises): a generation that still has a hot-restart
// parent tells it to terminate, whether or not this one ever went live. A
// parent that is gone costs at most one short bounded wait.
func (s *server) terminateParentOnShutdown() {
	c := s.child
	if c == nil {
		return
	}
	s.log.Info("shutting down: terminating our hot-restart parent (as Envoy's shutdown does)")
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	defer cancel()
	if err := c.TerminateParent(ctx); err != nil {
		s.log.Warn("terminate parent on shutdown", zap.Error(err))
	}
	s.closeChild(linkTerminated)
}
