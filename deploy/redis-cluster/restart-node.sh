#!/usr/bin/env bash
# Start a dead node of a deploy/redis-cluster/start.sh cluster again, and optionally fail back:
#
#   deploy/redis-cluster/restart-node.sh --port P [--dir DIR] [--failback]
#                                        [--password-file FILE] [--tls-dir DIR]
#
# Never run start.sh again for one dead node: it wipes every node's directory and makes a new,
# empty cluster. This script starts only node P, from the DIR/P/redis.conf and DIR/P/nodes.conf
# start.sh left (the node remembers its cluster id and peers). A master that died while its
# replica was promoted comes back as a replica of the promoted node and copies its data; the
# script waits (at most 30 s) until the cluster says cluster_state:ok and, for a replica, its link
# to its master is up. --failback then runs CLUSTER FAILOVER on it (a coordinated switch: no write
# is lost) and waits until it is a master again, so the masters are where they were before the
# crash. --password-file and --tls-dir are start.sh's. Prints the node's role at the end.
set -euo pipefail

dir="var/redis-cluster"
port=""
failback=0
password_file=""
tls_dir=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --failback) failback=1; shift ;;
    --password-file) password_file="$2"; shift 2 ;;
    --tls-dir) tls_dir="$(cd "$2" && pwd)"; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "restart-node.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ -n "$port" ]] || { echo "restart-node.sh: --port is needed" >&2; exit 2; }
conf="$dir/$port/redis.conf"
[[ -f "$conf" ]] || { echo "restart-node.sh: $conf not found (was the cluster made with start.sh --dir $dir?)" >&2; exit 1; }

cli=(redis-cli -h 127.0.0.1 -p "$port")
if [[ -n "$password_file" ]]; then
  REDISCLI_AUTH="$(<"$password_file")"
  export REDISCLI_AUTH
fi
if [[ -n "$tls_dir" ]]; then
  cli+=(--tls --cacert "$tls_dir/ca.crt")
fi
if "${cli[@]}" ping >/dev/null 2>&1; then
  echo "restart-node.sh: a node already answers on port $port" >&2
  exit 1
fi

redis-server "$conf"

deadline=$((SECONDS + 30))
wait_for() {  # wait_for DESCRIPTION COMMAND...: poll until COMMAND succeeds or the deadline
  local what="$1"
  shift
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      echo "restart-node.sh: timed out waiting for $what (log: $dir/$port/redis.log)" >&2
      exit 1
    fi
    sleep 0.1
  done
}
role() { "${cli[@]}" info replication | tr -d '\r' | sed -n 's/^role://p'; }
in_sync() {
  "${cli[@]}" cluster info | grep -q '^cluster_state:ok' || return 1
  local replication
  replication="$("${cli[@]}" info replication)"
  if grep -q '^role:slave' <<<"$replication"; then
    grep -q '^master_link_status:up' <<<"$replication" || return 1
  fi
}
is_master() { [[ "$(role)" == "master" ]]; }

wait_for "node $port to answer" "${cli[@]}" ping
wait_for "node $port to rejoin the cluster and sync" in_sync
if ((failback)) && ! is_master; then
  # The masters vote for one replica of a master at most once per 2 x cluster-node-timeout: right
  # after the crash's own failover the first request can expire unvoted. Ask again until the
  # deadline.
  until is_master; do
    if ((SECONDS > deadline)); then
      echo "restart-node.sh: timed out waiting for node $port to become a master again (log: $dir/$port/redis.log)" >&2
      exit 1
    fi
    "${cli[@]}" cluster failover >/dev/null
    for _ in $(seq 50); do is_master && break; sleep 0.1; done
  done
  wait_for "the cluster to settle" in_sync
fi
echo "node $port: $(role)"
