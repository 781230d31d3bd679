// Command restarter runs generations of Envoy (or any proxy that hot-restarts
// the same way) and is a drop-in, safer replacement for Envoy's
// restarter/hot-restarter.py: SIGHUP starts the next epoch (held while one is
// still starting, coalesced, rolled back if it dies before it is ready),
// SIGUSR1 is forwarded, SIGTERM/SIGINT stop everything with a bounded wait.
//
//	restarter [flags] START_SCRIPT
//	restarter [flags] -- COMMAND [ARG...]
//
// Run `restarter --help` for the flags, signals and exit codes. The
// supervision logic lives in package supervisor; base id locking in baseid.
package main
