#!/bin/sh
# Start script for the Python form, as with Envoy's hot-restarter.py:
#
#   restarter [flags] /etc/envoy/start_envoy.sh
#
# The restarter runs this script with no arguments once per generation, with
# RESTART_EPOCH (and BASE_ID, DRAIN_TIME_S, PARENT_SHUTDOWN_TIME_S) in its
# environment. The script must `exec` Envoy so that the restarter's child *is*
# Envoy: signals (SIGTERM, SIGUSR1) then reach Envoy, and its exit status is
# the generation's. The restarter reaps and tracks a script that forks and
# exits too, but exec is simpler and cheaper.
set -eu

: "${RESTART_EPOCH:?RESTART_EPOCH is not set: run this script through restarter}"
: "${BASE_ID:=0}"
: "${DRAIN_TIME_S:=600}"
: "${PARENT_SHUTDOWN_TIME_S:=900}"

exec /usr/local/bin/envoy \
  --config-path /etc/envoy/envoy.yaml \
  --restart-epoch "$RESTART_EPOCH" \
  --base-id "$BASE_ID" \
  --drain-time-s "$DRAIN_TIME_S" \
  --parent-shutdown-time-s "$PARENT_SHUTDOWN_TIME_S" \
  --log-level info
