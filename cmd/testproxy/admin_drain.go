package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/zap"
)

// adminDrainListeners is Envoy's admin POST /drain_listeners. Without
// "graceful" the listeners stop accepting at once and open connections
// drain (as on a hot restart). With "graceful" the drain comes first:
// responses carry "Connection: close" by --drain-strategy, the state is
// DRAINING (/ready answers 503), the listeners still accept for the drain
// time, and only then close. "inboundonly" is accepted: every testproxy
// listener is inbound.
func (s *server) adminDrainListeners(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "use POST", http.StatusMethodNotAllowed)
		return
	}
	_, graceful := r.URL.Query()["graceful"]
	if !graceful {
		s.log.Info("admin: drain_listeners")
		s.drainListeners()
		fmt.Fprintln(w, "OK")
		return
	}
	if !s.drain.Start() {
		fmt.Fprintln(w, "OK") // already draining
		return
	}
	s.log.Info("admin: drain_listeners?graceful: draining before closing the listeners",
		zap.Duration("drain_time", s.cfg.DrainTime), zap.Stringer("strategy", s.cfg.DrainStrategy))
	s.setState(stateDraining)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-s.drain.Done():
		case <-s.ctx.Done():
			return
		}
		s.lns.closeData()
		// And the dups kept for a hot-restart child: a stop drain hands the
		// sockets to nobody, and a socket still listening would queue
		// connections that no one accepts until the exit resets them.
		s.registry.Close()
		s.log.Info("graceful drain over: listeners closed")
		if err := s.httpSrv.Shutdown(s.ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("drain shutdown", zap.Error(err))
		}
	}()
	fmt.Fprintln(w, "OK")
}
