package main

// startup.go: Envoy's start sequence — child sockets, the shared-memory
// guard, taking over from the parent, binding the rest, going live.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/hotrestart/restarter/internal/shmguard"
	"github.com/hotrestart/restarter/uds"
	"go.uber.org/zap"
)

// startup runs Envoy's start sequence: at epoch > 0 take admin, listen
// sockets and stats from the parent, then go live and tell the parent to drain.
func (s *server) startup(sigs <-chan os.Signal) error {
	s.setState(stateInit)
	if s.cfg.UseDynamicBaseID {
		return s.startDynamic()
	}
	// Like Envoy, every epoch binds child_N and udp_child_N (epoch 0 too).
	c, err := uds.DialChild(s.udsConfig())
	if err != nil {
		return fmt.Errorf("hot restart child socket: %w", err)
	}
	s.hrChild = c // closed by cleanup
	c.ServeForwardedUDP(s.deliverForwarded)
	if err := s.attachShm(); err != nil {
		return err
	}
	if s.cfg.RestartEpoch > 0 {
		s.setChild(c)
		if s.cfg.SkipHotRestartOnNoParent {
			// Envoy's probe: one test_connection, the first refusal is final.
			err = c.TestConnection(s.ctx)
		}
		if err == nil {
			err = s.takeOver(c)
		}
		switch {
		case err != nil && errors.Is(err, uds.ErrNoParent) && s.cfg.SkipHotRestartOnNoParent:
			s.log.Warn("no parent: starting as if epoch 0 (--skip-hot-restart-on-no-parent)", zap.Error(err))
			s.closeChild(linkNone)
		case err != nil:
			return err
		}
	}
	if err := s.writeBaseID(); err != nil {
		return err
	}
	return s.finishStartup(sigs)
}

// startDynamic picks a free base id at epoch 0: the first whose parent socket binds.
func (s *server) startDynamic() error {
	var lastErr error
	for i := 0; i < 32; i++ {
		var b [4]byte
		_, _ = cryptoRead(b[:])
		s.cfg.BaseID = (uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])) % 100000
		// Nothing else runs yet: the Parent's goroutine starts with ListenParent.
		p, err := uds.ListenParent(s.udsConfig(), s.parentHandler())
		if err != nil {
			lastErr = err
			continue
		}
		c, err := uds.DialChild(s.udsConfig()) // child_0 and udp_child_0, as Envoy binds them
		if err != nil {
			p.Close()
			lastErr = err
			continue
		}
		s.parent, s.hrChild = p, c
		if err := s.attachShm(); err != nil {
			return err
		}
		s.log.Info("dynamic base id chosen", zap.Uint32("base_id", s.cfg.BaseID))
		if err := s.writeBaseID(); err != nil {
			return err
		}
		return s.finishStartup(nil)
	}
	return fmt.Errorf("--use-dynamic-base-id: no free base id after 32 tries: %w", lastErr)
}

func (s *server) writeBaseID() error {
	if s.cfg.BaseIDPath == "" {
		return nil
	}
	if err := os.WriteFile(s.cfg.BaseIDPath, []byte(strconv.FormatUint(uint64(s.cfg.BaseID), 10)), 0o644); err != nil {
		return fmt.Errorf("--base-id-path: %w", err)
	}
	return nil
}

// takeOver is the child side of the hot restart, up to (not including) drain.
func (s *server) takeOver(c *uds.Child) error {
	ctx, cancel := context.WithTimeout(s.ctx, startTimeout*time.Second)
	defer cancel()
	s.fault("before-admin")
	rep, err := c.ShutdownParentAdmin(ctx)
	if err != nil {
		return fmt.Errorf("shutdown parent admin: %w", err)
	}
	if rep.OriginalStartTimeUnixSeconds > 0 {
		s.origTime = time.Unix(int64(rep.OriginalStartTimeUnixSeconds), 0)
	}
	s.log.Info("parent admin shut down", zap.Uint64("original_start_time", rep.OriginalStartTimeUnixSeconds),
		zap.Bool("enable_reuse_port_default", rep.EnableReusePortDefault))
	s.fault("after-admin")
	for _, a := range s.cfg.Listen {
		url := listenURL(a)
		for _, w := range s.workers() {
			f, err := c.PassListenSocket(ctx, url, w)
			if err != nil {
				return fmt.Errorf("pass listen socket %s worker %d: %w", url, w, err)
			}
			if f == nil {
				s.log.Info("parent has no socket: binding our own", zap.String("address", url), zap.Uint32("worker", w))
				continue
			}
			ln, err := net.FileListener(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("listen socket %s worker %d from parent: %w", url, w, err)
			}
			s.addListener(listener{url: url, worker: w, ln: ln})
			s.log.Info("listen socket from parent", zap.String("address", url), zap.Uint32("worker", w))
		}
	}
	if err := s.takeUDP(ctx, c); err != nil {
		return err
	}
	s.fault("after-listen")
	if !s.cfg.SkipHotRestartParentStats {
		st, err := c.StatsInto(ctx, s.store)
		if err != nil {
			return fmt.Errorf("stats from parent: %w", err)
		}
		s.srvStats.fromParent(st)
		s.log.Info("stats from parent", zap.Int("counters", st.Counters), zap.Int("gauges", st.Gauges))
	}
	s.fault("after-stats")
	return nil
}

// finishStartup binds what is still unbound, serves, goes live, drains the parent.
func (s *server) finishStartup(sigs <-chan os.Signal) error {
	if err := s.bindRest(); err != nil {
		return err
	}
	if err := s.startDelay(sigs); err != nil {
		return err
	}
	if s.cfg.FailStart {
		return errors.New("--fail-start: failing before going live")
	}
	s.goLive()
	return nil
}

// bindRest binds the admin, the listeners the parent did not pass, and our
// parent socket (which serves our own child).
func (s *server) bindRest() error {
	if err := s.bindAdmin(); err != nil {
		return err
	}
	for _, a := range s.cfg.Listen {
		for _, w := range s.workers() {
			if s.lns.has(listenURL(a), w) {
				continue
			}
			ln, err := bindTCP(a, s.cfg.ReusePort)
			if err != nil {
				return fmt.Errorf("--listen %s worker %d: %w", a, w, err)
			}
			// Registered under the configured address, which is what the
			// child asks for (a wildcard bound with "tcp" reports [::]).
			s.addListener(listener{url: listenURL(a), worker: w, ln: ln})
			s.log.Info("listening", zap.String("address", ln.Addr().String()), zap.Uint32("worker", w))
		}
	}
	if err := s.bindUDP(); err != nil {
		return err
	}
	if s.parent == nil {
		p, err := uds.ListenParent(s.udsConfig(), s.parentHandler())
		if err != nil {
			return fmt.Errorf("hot restart parent socket: %w", err)
		}
		s.parent = p
	}
	return nil
}

// startDelay stays INITIALIZING for --start-delay; a stop request ends it
// with errStopped.
func (s *server) startDelay(sigs <-chan os.Signal) error {
	if s.cfg.StartDelay <= 0 {
		return nil
	}
	s.log.Info("--start-delay: staying INITIALIZING", zap.Duration("delay", s.cfg.StartDelay))
	t := time.NewTimer(s.cfg.StartDelay)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return nil
		case sig := <-sigs:
			if sig != syscall.SIGUSR1 {
				s.log.Info("signal during startup", zap.String("signal", sig.String()))
				return errStopped
			}
			s.reopenLogs()
		case ev := <-s.events:
			switch ev {
			case evQuit, evTerminate:
				s.log.Info("stop requested during startup", zap.Stringer("event", ev))
				return errStopped
			case evChildTookAdmin:
				s.terminateParent() // a no-op without a parent
			}
		}
	}
}

// goLive serves, tells the parent to drain, and clears the shared-memory
// INITIALIZING flag (Envoy: drainParentListeners, at every epoch).
func (s *server) goLive() {
	for _, ln := range s.lns.dataListeners() {
		s.serve(s.httpSrv, ln)
	}
	s.setState(stateLive)
	if s.cfg.SdNotify {
		s.notifyReady()
	}
	if s.child == nil {
		s.startUDPReaders()
	} else {
		ctx, cancel := context.WithTimeout(s.ctx, startTimeout*time.Second)
		defer cancel()
		if err := s.child.DrainParentListeners(ctx); err != nil {
			s.log.Warn("drain parent listeners", zap.Error(err))
		} else {
			s.log.Info("parent told to drain")
		}
		s.fault("after-drain")
	}
	if s.cfg.SharedMemory {
		if err := shmguard.ClearInitializing(shmguard.Path(s.cfg.ShmDir, s.cfg.BaseID)); err != nil {
			s.log.Warn("shared memory: clear initializing", zap.Error(err))
		}
	}
}

// attachShm is Envoy's attachSharedMemory (see package shmguard) when
// --shared-memory is on.
func (s *server) attachShm() error {
	if !s.cfg.SharedMemory {
		return nil
	}
	return shmguard.Attach(shmguard.Path(s.cfg.ShmDir, s.cfg.BaseID), s.cfg.Version, s.cfg.RestartEpoch)
}

func (s *server) bindAdmin() error {
	ln, err := net.Listen("tcp", s.cfg.AdminAddress)
	if err != nil {
		return fmt.Errorf("--admin-address %s: %w", s.cfg.AdminAddress, err)
	}
	if s.cfg.AdminAddressPath != "" {
		if err := os.WriteFile(s.cfg.AdminAddressPath, []byte(ln.Addr().String()), 0o644); err != nil {
			ln.Close()
			return fmt.Errorf("--admin-address-path: %w", err)
		}
	}
	s.lns.setAdmin(ln)
	s.log.Info("admin listening", zap.String("address", ln.Addr().String()))
	s.serve(s.adminSrv, ln)
	return nil
}
