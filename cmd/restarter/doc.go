// Command restarter runs generations of Envoy (or any proxy that hot-restarts
// the same way) and is a drop-in, safer replacement for Envoy's
// restarter/hot-restarter.py: SIGHUP starts the next epoch (held while one is
// still starting, coalesced, validated first, rolled back if it dies before it
// is ready), SIGUSR1 is forwarded, SIGTERM/SIGINT stop everything with a
// bounded wait.
//
//	restarter [flags] START_SCRIPT
//	restarter [flags] -- COMMAND [ARG...]
//	restarter status [--json] | reload | stop [--name N | --base-id N] [--runtime-dir D]
//
// Around the supervisor (package supervisor) it serves the control socket
// (package control), tells systemd about readiness, reloads and shutdown and
// pings its watchdog (package sdnotify), gives each generation a notify
// socket of its own for --ready=notify, runs --validate-cmd (by default in
// Envoy mode: COMMAND --mode validate) before each reload, and reloads on
// --watch changes (package watch). Run `restarter --help` for the flags,
// signals and exit codes. Base id locking lives in baseid.
package main
