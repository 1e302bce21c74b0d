#!/usr/bin/env bash
# Start a local Redis Cluster for development and tests: 3 masters and 3 replicas on 127.0.0.1.
#
#   deploy/redis-cluster/start.sh [--dir DIR] [--ports P1,P2,P3,P4,P5,P6] [--node-timeout MS]
#                                 [--password-file FILE] [--tls-dir DIR]
#
# Defaults: --dir ./var/redis-cluster, --ports 7000,...,7005, --node-timeout 2000 (a dead master's
# replica is promoted in about 4 s). Each node gets DIR/<port>/redis.conf, its pidfile and log;
# the cluster bus uses port + 10000. The script waits (at most 30 s) until every node reports
# cluster_state:ok, every replica's link to its master is up and the cluster shows 3 masters with
# slots and 3 replicas, then prints the address list for `liveclass serve --redis-cluster`.
# --password-file: AUTH on every node (requirepass, and masterauth for replicas), plus an ACL
# user `liveclass` with the same password; give liveclass the password with
# LIVECLASS_REDIS_PASSWORD. --tls-dir: TLS only (no plain port) for clients, replication and the
# cluster bus, from DIR/ca.crt, DIR/redis.crt and DIR/redis.key (client certificates are not
# required); the addresses printed are rediss://.
# Stop it with deploy/redis-cluster/stop.sh --dir DIR. Needs redis-server and redis-cli (7.0).
set -euo pipefail

dir="var/redis-cluster"
ports="7000,7001,7002,7003,7004,7005"
node_timeout=2000
password_file=""
tls_dir=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --ports) ports="$2"; shift 2 ;;
    --node-timeout) node_timeout="$2"; shift 2 ;;
    --password-file) password_file="$2"; shift 2 ;;
    --tls-dir) tls_dir="$(cd "$2" && pwd)"; shift 2 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "start.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
IFS=, read -r -a port_list <<<"$ports"
[[ ${#port_list[@]} -eq 6 ]] || { echo "start.sh: --ports needs 6 ports" >&2; exit 2; }
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || {
  echo "start.sh: redis-server and redis-cli are needed (apt-get install redis-server redis-tools)" >&2
  exit 1
}

# redis-cli reads the password from REDISCLI_AUTH (never from argv, which ps shows).
cli=(redis-cli)
if [[ -n "$password_file" ]]; then
  REDISCLI_AUTH="$(<"$password_file")"
  export REDISCLI_AUTH
  if [[ -z "$REDISCLI_AUTH" || "$REDISCLI_AUTH" == *[\"\\]* || "$REDISCLI_AUTH" == *$'\n'* ]]; then
    echo "start.sh: the password must be one line, not empty, without \" or \\" >&2
    exit 2
  fi
fi
if [[ -n "$tls_dir" ]]; then
  cli+=(--tls --cacert "$tls_dir/ca.crt")
fi

mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
for port in "${port_list[@]}"; do
  node="$dir/$port"
  rm -rf "$node" && mkdir -p "$node"
  if [[ -n "$tls_dir" ]]; then
    listen="port 0
tls-port $port
tls-cert-file $tls_dir/redis.crt
tls-key-file $tls_dir/redis.key
tls-ca-cert-file $tls_dir/ca.crt
tls-auth-clients no
tls-replication yes
tls-cluster yes"
  else
    listen="port $port"
  fi
  auth=""
  if [[ -n "$password_file" ]]; then
    auth="requirepass \"$REDISCLI_AUTH\"
masterauth \"$REDISCLI_AUTH\"
user liveclass on \">$REDISCLI_AUTH\" ~* &* +@all"
  fi
  (umask 077 && cat >"$node/redis.conf" <<CONF
$listen
$auth
bind 127.0.0.1
protected-mode yes
cluster-enabled yes
cluster-config-file $node/nodes.conf
cluster-node-timeout $node_timeout
cluster-require-full-coverage no
save ""
appendonly no
repl-diskless-sync-delay 0
dir $node
pidfile $node/redis.pid
logfile $node/redis.log
daemonize yes
CONF
  )
  redis-server "$node/redis.conf"
done

deadline=$((SECONDS + 30))
wait_for() {  # wait_for DESCRIPTION COMMAND...: poll until COMMAND succeeds or the deadline
  local what="$1"
  shift
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      echo "start.sh: timed out waiting for $what (logs in $dir/*/redis.log)" >&2
      exit 1
    fi
    sleep 0.1
  done
}
for port in "${port_list[@]}"; do
  wait_for "redis on port $port" "${cli[@]}" -h 127.0.0.1 -p "$port" ping
done

addresses=()
for port in "${port_list[@]}"; do addresses+=("127.0.0.1:$port"); done
"${cli[@]}" --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 || {
  echo "start.sh: cluster create failed:" >&2
  cat "$dir/create.log" >&2
  exit 1
}

cluster_ready() {
  local port info nodes replication
  for port in "${port_list[@]}"; do
    info="$("${cli[@]}" -h 127.0.0.1 -p "$port" cluster info)" || return 1
    grep -q '^cluster_state:ok' <<<"$info" || return 1
    # (captured, not piped into grep -q: with pipefail an early grep exit fails the pipeline)
    replication="$("${cli[@]}" -h 127.0.0.1 -p "$port" info replication)" || return 1
    if grep -q '^role:slave' <<<"$replication"; then
      grep -q '^master_link_status:up' <<<"$replication" || return 1
    fi
  done
  nodes="$("${cli[@]}" -h 127.0.0.1 -p "${port_list[0]}" cluster nodes)" || return 1
  # CLUSTER NODES: id addr flags master-id ping pong epoch link-state slots...
  [[ "$(awk '$3 ~ /master/ && $8 == "connected" && NF >= 9' <<<"$nodes" | wc -l)" -eq 3 ]] || return 1
  [[ "$(awk '$3 ~ /slave/ && length($4) == 40 && $8 == "connected"' <<<"$nodes" | wc -l)" -eq 3 ]] \
    || return 1
}
wait_for "the cluster to be ready" cluster_ready

scheme="redis://"
[[ -z "$tls_dir" ]] || scheme="rediss://"
seeds="$(IFS=,; echo "${addresses[*]/#/$scheme}")"
echo "$seeds"
