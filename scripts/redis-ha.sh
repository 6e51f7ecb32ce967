#!/usr/bin/env bash
# Real Redis high-availability topologies on loopback, for the tests that
# need them (and for trying them by hand). Each call starts its own set in
# DIR and writes DIR/env; `stop DIR` ends it.
#   scripts/redis-ha.sh ensure                 # install redis-server, redis-sentinel, redis-tools
#   scripts/redis-ha.sh sentinel DIR           # master + replica + 3 Sentinels (master name "apmtel")
#   scripts/redis-ha.sh cluster DIR            # 3-master Redis Cluster
#   scripts/redis-ha.sh stop DIR
set -euo pipefail

log() { echo "redis-ha: $*" >&2; }

ensure() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v redis-sentinel >/dev/null || missing+=(redis-sentinel)
  command -v redis-cli >/dev/null || missing+=(redis-tools)
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# cluster_port: a free port whose cluster bus port (+10000) is free too;
# Redis refuses ports above 55535 in cluster mode.
cluster_port() {
  python3 - <<'PY'
import random, socket
for _ in range(200):
    p = random.randint(20000, 55535)
    ok = True
    for q in (p, p + 10000):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", q))
        except OSError:
            ok = False
        finally:
            s.close()
    if ok:
        print(p)
        break
PY
}

wait_for() { # seconds, command...
  local end=$((SECONDS + $1)); shift
  while [ "$SECONDS" -lt "$end" ]; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

server() { # dir port extra-args...
  local dir=$1 port=$2; shift 2
  mkdir -p "$dir/$port"
  redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize yes \
    --dir "$dir/$port" --pidfile "$dir/$port/pid" --logfile "$dir/$port/log" "$@"
  if ! wait_for 20 redis-cli -p "$port" ping; then
    log "redis-server on port $port did not answer:"; tail -20 "$dir/$port/log" >&2; return 1
  fi
  echo "$port" >>"$dir/ports"
}

sentinel() {
  local dir=$1 master replica
  mkdir -p "$dir"; : >"$dir/ports"
  master=$(free_port); server "$dir" "$master"
  replica=$(free_port); server "$dir" "$replica" --replicaof 127.0.0.1 "$master"
  wait_for 30 sh -c "redis-cli -p $replica info replication | grep -q 'master_link_status:up'"
  local addrs=()
  for _ in 1 2 3; do
    local p; p=$(free_port)
    mkdir -p "$dir/$p"
    cat >"$dir/$p/sentinel.conf" <<CONF
port $p
bind 127.0.0.1
daemonize yes
pidfile $dir/$p/pid
logfile $dir/$p/log
dir $dir/$p
sentinel monitor apmtel 127.0.0.1 $master 2
sentinel down-after-milliseconds apmtel 1000
sentinel failover-timeout apmtel 5000
sentinel parallel-syncs apmtel 1
CONF
    redis-sentinel "$dir/$p/sentinel.conf"
    wait_for 20 redis-cli -p "$p" ping
    echo "$p" >>"$dir/ports"
    addrs+=("127.0.0.1:$p")
  done
  # Every Sentinel has found the replica and its peers before tests begin.
  for a in "${addrs[@]}"; do
    wait_for 30 sh -c "redis-cli -p ${a#*:} sentinel master apmtel | grep -A1 -x 'num-other-sentinels' | tail -1 | grep -qx 2"
    wait_for 30 sh -c "redis-cli -p ${a#*:} sentinel master apmtel | grep -A1 -x 'num-slaves' | tail -1 | grep -qx 1"
  done
  cat >"$dir/env" <<ENV
export APMTEL_TEST_SENTINEL_ADDRS=$(IFS=,; echo "${addrs[*]}")
export APMTEL_TEST_SENTINEL_MASTER=apmtel
export APMTEL_TEST_SENTINEL_MASTER_ADDR=127.0.0.1:$master
export APMTEL_TEST_SENTINEL_MASTER_PID=$(cat "$dir/$master/pid")
export APMTEL_TEST_SENTINEL_REPLICA_ADDR=127.0.0.1:$replica
ENV
  log "sentinel ready: $(tr '\n' ' ' <"$dir/env")"
}

cluster() {
  local dir=$1 nodes=()
  mkdir -p "$dir"; : >"$dir/ports"
  for _ in 1 2 3; do
    local p; p=$(cluster_port)
    server "$dir" "$p" --cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" --cluster-node-timeout 2000
    nodes+=("127.0.0.1:$p")
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1
  for n in "${nodes[@]}"; do
    wait_for 30 sh -c "redis-cli -p ${n#*:} cluster info | grep -q 'cluster_state:ok'"
  done
  cat >"$dir/env" <<ENV
export APMTEL_TEST_CLUSTER_ADDRS=$(IFS=,; echo "${nodes[*]}")
ENV
  log "cluster ready: $(tr '\n' ' ' <"$dir/env")"
}

stop() {
  local dir=$1
  [ -f "$dir/ports" ] || return 0
  while read -r p; do
    if [ -f "$dir/$p/pid" ]; then kill "$(cat "$dir/$p/pid")" 2>/dev/null || true; fi
  done <"$dir/ports"
  rm -f "$dir/ports" "$dir/env"
}

case "${1:-}" in
  ensure) ensure ;;
  sentinel) ensure; sentinel "${2:?DIR}" ;;
  cluster) ensure; cluster "${2:?DIR}" ;;
  stop) stop "${2:?DIR}" ;;
  *) echo "usage: $0 ensure | sentinel DIR | cluster DIR | stop DIR" >&2; exit 2 ;;
esac
