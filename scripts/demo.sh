#!/usr/bin/env bash
# The built-in demo: the restarter runs the test proxy (an Envoy-shaped
# server built on this repo's hot-restart libraries), traffic flows, and
# three hot restarts happen under it. Nothing outside loopback is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
PORT=${PORT:-10000}
ADMIN=${ADMIN:-9901}
RUN=$(mktemp -d /tmp/restarter-demo.XXXXXX)
trap 'kill $RPID 2>/dev/null || true; wait $RPID 2>/dev/null || true; rm -rf "$RUN"' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

LOG="$RUN/restarter.log"
echo "body: hello from the demo" >"$RUN/proxy.conf"
say "starting: restarter --envoy ... -- testproxy (epoch 0); logs in $LOG (DEMO_LOG=1 to see them here)"
if [ -n "${DEMO_LOG:-}" ]; then LOG=/dev/stderr; fi
"$BIN/restarter" --envoy --runtime-dir "$RUN" --pid-file "$RUN/restarter.pid" \
  --drain-time 2s --parent-shutdown-time 4s --shutdown-grace 2s --term-wait 5s \
  --ready-envoy-admin "127.0.0.1:$ADMIN" --ready-timeout 20s --name demo \
  -- "$BIN/testproxy" --listen "127.0.0.1:$PORT" --admin-address "127.0.0.1:$ADMIN" \
     --socket-path "@restarter_demo_$$" --config "$RUN/proxy.conf" 2>>"$LOG" &
RPID=$!

ready() { curl -fsS "http://127.0.0.1:$ADMIN/server_info" 2>/dev/null | grep -q '"LIVE"'; }
for _ in $(seq 100); do ready && break; sleep 0.1; done
ready || { echo "the proxy did not come up"; cat "$LOG"; exit 1; }
curl -fsS "http://127.0.0.1:$PORT/"; echo

# Steady traffic in the background while we reload: any failure is printed.
( fails=0; n=0; end=$((SECONDS+8))
  while [ $SECONDS -lt $end ]; do
    n=$((n+1)); curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" || fails=$((fails+1)); sleep 0.01
  done; echo "traffic: $n requests, $fails failed" ) &
TPID=$!

sleep 1
say "reload 1: kill -HUP $RPID (what runit, s6 and systemd send)"
kill -HUP "$RPID"
for _ in $(seq 100); do
  "$BIN/restarter" status --runtime-dir "$RUN" | grep -q '^last reload: ok, epoch 1' && break
  sleep 0.1
done
"$BIN/restarter" status --runtime-dir "$RUN"

sleep 1
say "reload 2: restarter reload (waits, and says whether it worked)"
"$BIN/restarter" reload --runtime-dir "$RUN" && echo "reload: exit 0"
curl -fsS "http://127.0.0.1:$PORT/"; echo

sleep 1
say "reload 3 with a broken config: refused, the running generation keeps serving"
echo "fail: true" >"$RUN/proxy.conf"
"$BIN/restarter" reload --runtime-dir "$RUN" || echo "reload: exit $? (as it should)"
curl -fsS "http://127.0.0.1:$PORT/"; echo
echo "body: hello again" >"$RUN/proxy.conf"
"$BIN/restarter" status --runtime-dir "$RUN"
wait $TPID
say "request counter carried across generations (stats handoff)"
curl -fsS "http://127.0.0.1:$ADMIN/stats" | grep -E '^(http\.requests|server\.hot_restart_generation)' || true

say "stopping: kill -TERM $RPID"
kill -TERM "$RPID"
wait "$RPID" && echo "restarter exited 0"
say "what the restarter logged"
grep -E 'INFO|WARN|ERROR' "$LOG" | grep -vE 'control: request' | cut -c1-160 || true
