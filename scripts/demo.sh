#!/usr/bin/env bash
# The built-in demo: the restarter runs the test proxy (an Envoy-shaped
# server built on this repo's hot-restart libraries), traffic flows, and
# three hot restarts happen under it. Nothing outside loopback is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
#
# Environment: PORT (data listener, default 10000), ADMIN (admin listener,
# default 9901): when the default is taken the demo picks a free port and
# says so; a port you set yourself must be free. DEMO_LOG=1 prints the
# restarter's and the proxy's log here instead of into a file. BIN: where
# the binaries are (default bin, as `make build` puts them).
BIN=${BIN:-bin}
RPID=
RUN=$(mktemp -d /tmp/restarter-demo.XXXXXX)
trap '[ -z "$RPID" ] || { kill $RPID 2>/dev/null || true; wait $RPID 2>/dev/null || true; }; rm -rf "$RUN"' EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

# A port is taken when something accepts a connection on it.
taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# pick VAR DEFAULT [NOT]: the port in $VAR (must be free), else DEFAULT,
# else a free one other than NOT.
pick() {
  local var=$1 def=$2 not=${3:-} p
  if [ -n "${!var:-}" ]; then
    taken "${!var}" && die "port ${!var} ($var) is taken: choose another, e.g. $var=$((${!var} + 1)) make demo"
    echo "${!var}"; return
  fi
  if [ "$def" != "$not" ] && ! taken "$def"; then echo "$def"; return; fi
  for p in $(seq 20000 7 20700); do
    [ "$p" != "$not" ] || continue
    taken "$p" || { echo "demo: port $def is taken; using $p for $var (set $var= to choose)" >&2; echo "$p"; return; }
  done
  die "no free port found for $var: set $var=PORT"
}
PORT=$(pick PORT 10000)
ADMIN=$(pick ADMIN 9901 "$PORT")
[ "$PORT" != "$ADMIN" ] || die "PORT and ADMIN are both $PORT: give them different values"

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
for _ in $(seq 100); do
  ready && break
  kill -0 "$RPID" 2>/dev/null || { wait "$RPID" || true; RPID=; cat "$LOG" >&2; die "the restarter exited during start-up (its log is above)"; }
  sleep 0.1
done
ready || { cat "$LOG" >&2; die "the proxy did not come up within 10 s (its log is above)"; }
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
