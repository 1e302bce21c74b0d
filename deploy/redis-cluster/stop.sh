#!/usr/bin/env bash
# Stop the nodes a deploy/redis-cluster/start.sh started:
#
#   deploy/redis-cluster/stop.sh [--dir DIR]
#
# Sends SIGTERM to each node in DIR/*/redis.pid, waits (at most 10 s) until its port refuses
# connections, then SIGKILLs what is left. `kill -0` is no liveness check (it succeeds on a
# zombie), so the port is what is polled.
set -euo pipefail

dir="var/redis-cluster"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) echo "stop.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -d "$dir" ]] || exit 0

declare -A pids=()
for pidfile in "$dir"/*/redis.pid; do
  [[ -f "$pidfile" ]] || continue
  port="$(basename "$(dirname "$pidfile")")"
  pids[$port]="$(cat "$pidfile")"
  kill -TERM "${pids[$port]}" 2>/dev/null || true
done

deadline=$((SECONDS + 10))
for port in "${!pids[@]}"; do
  # A TCP connect, not redis-cli ping: the node may want a password or TLS.
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    if ((SECONDS > deadline)); then
      kill -KILL "${pids[$port]}" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  rm -f "$dir/$port/redis.pid"
done
