// Package metrics exports a supervisor's state as Prometheus metrics and
// answers a health check, on one HTTP listener:
//
//	/metrics  the series below, plus the Go and process collectors
//	/healthz  200 "ok" while the supervisor's state machine answers (the
//	          same check as the systemd watchdog), 503 with the error otherwise
//
// Series (every one present from the start, at zero):
//
//	restarter_config_last_reload_successful           gauge: 1 after the first generation became ready or a reload succeeded, 0 after a failed reload
//	restarter_config_last_reload_success_timestamp_seconds  gauge: Unix time of that success
//	restarter_reloads_total{result}                   counter: reloads by outcome (see Result*)
//	restarter_reload_duration_seconds                 histogram: reload request to outcome
//	restarter_generations{state}                      gauge: live generations by state (starting, ready, draining)
//	restarter_epoch                                   gauge: the serving generation's epoch
//	restarter_generation_exits_total{kind}            counter: generation exits (see Exit*)
//
// The names follow Prometheus' own (prometheus_config_last_reload_successful)
// and those of Alertmanager, Caddy and ingress-nginx. Feed a Metrics from
// supervisor.Config.OnEvent with Observe.
package metrics
