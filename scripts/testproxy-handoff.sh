#!/usr/bin/env bash
# Two testproxy generations by hand, without the restarter: epoch 0 serves,
# epoch 1 takes its sockets and stats over while curl keeps asking, epoch 0
# drains and exits. Loopback only; a unique base id and abstract socket.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-bin}
PORT=${PORT:-10000}
ADMIN=${ADMIN:-9901}
go build -o "$BIN/" ./cmd/testproxy
ARGS=(--base-id $(( $$ % 100000 )) --socket-path "@testproxy_handoff_$$" --listen "127.0.0.1:$PORT"
      --admin-address "127.0.0.1:$ADMIN" --drain-time-s 2 --parent-shutdown-time-s 4 --stats-flush-interval 1s)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
live() { curl -fsS "http://127.0.0.1:$ADMIN/server_info" 2>/dev/null | grep -q "\"restart_epoch\": $1" &&
         curl -fsS "http://127.0.0.1:$ADMIN/ready" >/dev/null 2>&1; }

"$BIN/testproxy" --restart-epoch 0 "${ARGS[@]}" & pids+=($!); P0=$!
for _ in $(seq 100); do live 0 && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$PORT/"

( n=0; f=0; end=$((SECONDS+6)); while [ $SECONDS -lt $end ]; do
    n=$((n+1)); curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" || f=$((f+1)); sleep 0.01; done
  echo "traffic: $n requests, $f failed" ) & T=$!

sleep 1
"$BIN/testproxy" --restart-epoch 1 "${ARGS[@]}" & pids+=($!)
for _ in $(seq 100); do live 1 && break; sleep 0.1; done
curl -fsS "http://127.0.0.1:$PORT/"
wait $T
wait $P0 && echo "epoch 0 exited 0"
curl -fsS "http://127.0.0.1:$ADMIN/stats" | grep -E '^(http\.requests|server\.hot_restart_generation)'
