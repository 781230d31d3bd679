package main

// admin.go: the HTTP handlers — the data listeners' and Envoy's admin
// endpoints.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/hotrestart/restarter/drain"
)

// dataMux serves the listeners.
func (s *server) dataMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.requests.Inc()
		fmt.Fprintf(w, "epoch %d pid %d\n", s.cfg.RestartEpoch, s.pid)
		if s.fc.Body != "" {
			fmt.Fprintln(w, s.fc.Body)
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		s.requests.Inc()
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 || ms > 600_000 {
			http.Error(w, fmt.Sprintf("ms=%q: give milliseconds 0..600000", r.URL.Query().Get("ms")), http.StatusBadRequest)
			return
		}
		t := time.NewTimer(time.Duration(ms) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		fmt.Fprintf(w, "epoch %d pid %d slept %dms\n", s.cfg.RestartEpoch, s.pid, ms)
	})
	return mux
}

// adminMux serves Envoy's admin endpoints that a restarter and tests use.
func (s *server) adminMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ready", func(w http.ResponseWriter, r *http.Request) {
		st := s.getState()
		// ?epoch=N (a test aid, not Envoy's): ready only as epoch N, so that
		// a --ready-url on the admin address the generations pass along
		// can tell them apart.
		e := r.URL.Query().Get("epoch")
		if st != stateLive || (e != "" && e != strconv.FormatUint(uint64(s.cfg.RestartEpoch), 10)) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, st)
	})
	mux.HandleFunc("/server_info", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.MarshalIndent(s.serverInfo(), "", "  ")
		w.Write(append(b, '\n'))
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		s.srvStats.update()
		snap := s.store.Snapshot()
		names := make([]string, 0, len(snap))
		for n := range snap {
			names = append(names, n)
		}
		sort.Strings(names)
		if r.URL.Query().Get("format") == "json" {
			type stat struct {
				Name  string `json:"name"`
				Value uint64 `json:"value"`
			}
			out := struct {
				Stats []stat `json:"stats"`
			}{Stats: []stat{}}
			for _, n := range names {
				out.Stats = append(out.Stats, stat{n, snap[n]})
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(out)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		for _, n := range names {
			fmt.Fprintf(w, "%s: %d\n", n, snap[n])
		}
	})
	mux.HandleFunc("/drain_listeners", s.adminDrainListeners)
	mux.HandleFunc("/hot_restart_version", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, s.cfg.Version)
	})
	mux.HandleFunc("/quitquitquit", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "use POST", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Length", "3") // whole with the flush below
		fmt.Fprintln(w, "OK")
		// The answer goes out before the shutdown: during start-up the
		// process exits at once, before the server would write it.
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		s.event(evQuit)
	})
	return mux
}

type serverInfo struct {
	Version            string         `json:"version"`
	State              string         `json:"state"`
	HotRestartVersion  string         `json:"hot_restart_version"`
	UptimeCurrentEpoch string         `json:"uptime_current_epoch"`
	UptimeAllEpochs    string         `json:"uptime_all_epochs"`
	CommandLineOptions map[string]any `json:"command_line_options"`
	Testproxy          testproxyInfo  `json:"testproxy"`
}

// testproxyInfo is /server_info's "testproxy" object, which Envoy's does
// not have: states of this process that Envoy shows only in its log, for
// tests to wait on.
type testproxyInfo struct {
	// HotRestartParent is what became of our hot-restart parent: "none"
	// (epoch 0, or started as if epoch 0), "connected", "terminated" (we sent
	// it terminate) or "gone" (it stopped answering our stats pulls).
	HotRestartParent string `json:"hot_restart_parent"`
	// LogReopens counts the SIGUSR1s handled (Envoy reopens its access logs).
	LogReopens uint64 `json:"log_reopens"`
}

func (s *server) serverInfo() serverInfo {
	now := time.Now()
	strategy := "Gradual"
	if s.cfg.DrainStrategy == drain.Immediate {
		strategy = "Immediate"
	}
	return serverInfo{
		Version:            "testproxy/" + runtime.Version() + "/RELEASE",
		State:              s.getState().String(),
		HotRestartVersion:  s.cfg.Version,
		UptimeCurrentEpoch: fmt.Sprintf("%ds", int64(now.Sub(s.start).Seconds())),
		UptimeAllEpochs:    fmt.Sprintf("%ds", int64(now.Sub(s.origTime).Seconds())),
		CommandLineOptions: map[string]any{
			"base_id":                       strconv.FormatUint(uint64(s.cfg.BaseID), 10),
			"use_dynamic_base_id":           s.cfg.UseDynamicBaseID,
			"base_id_path":                  s.cfg.BaseIDPath,
			"concurrency":                   s.cfg.Concurrency,
			"restart_epoch":                 s.cfg.RestartEpoch,
			"drain_time":                    fmt.Sprintf("%ds", int64(s.cfg.DrainTime.Seconds())),
			"parent_shutdown_time":          fmt.Sprintf("%ds", int64(s.cfg.ParentShutdownTime.Seconds())),
			"drain_strategy":                strategy,
			"socket_path":                   s.cfg.SocketPath,
			"socket_mode":                   uint32(s.cfg.SocketMode),
			"mode":                          "Serve",
			"config_path":                   s.cfg.ConfigFile,
			"admin_address_path":            s.cfg.AdminAddressPath,
			"skip_hot_restart_on_no_parent": s.cfg.SkipHotRestartOnNoParent,
			"skip_hot_restart_parent_stats": s.cfg.SkipHotRestartParentStats,
		},
		Testproxy: testproxyInfo{HotRestartParent: s.parentLink().String(), LogReopens: s.logReopens.Load()},
	}
}
