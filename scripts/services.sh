#!/usr/bin/env bash
# Installs (when missing) and starts the services apmtel's tests and demo
# need, on free loopback ports: a real redis-server, a one-node OpenSearch
# behind esproxy (which adds the X-Elastic-Product header go-elasticsearch v8
# insists on) and a one-node Elasticsearch 8.19 built from Maven Central's jars
# (tools/elasticsearch; it sends the product header itself, no proxy). Usage:
#   scripts/services.sh start   # prints nothing but progress; writes $STATE/env
#   scripts/services.sh start-elasticsearch   # only the Elasticsearch node
#   APMTEL_SERVICES_ELASTICSEARCH=0 scripts/services.sh start   # without it (benchmarks, demo)
#   scripts/services.sh stop
#   scripts/services.sh env     # the environment for tests: APMTEL_TEST_*
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${APMTEL_STATE_DIR:-$ROOT/.run}
CACHE=${APMTEL_CACHE_DIR:-$HOME/.cache/apmtel}
OS_LIB=$CACHE/opensearch-2.19.1/lib
# 2 GiB: with 1 GiB the indexing buffer (10 % of the heap) flushes so often
# that bulk loading runs ~20 % slower (docs/benchmarks.md).
OS_HEAP=${APMTEL_OPENSEARCH_HEAP:-2g}
ES_VERSION=8.19.21
ES_DIR=$CACHE/elasticsearch-$ES_VERSION
ES_HEAP=${APMTEL_ELASTICSEARCH_HEAP:-768m}
WITH_ES=${APMTEL_SERVICES_ELASTICSEARCH:-1}

log() { echo "services: $*" >&2; }

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_for() { # name, seconds, command...
  local name=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  while [ "$SECONDS" -lt "$end" ]; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  log "$name did not become ready within ${secs}s"
  return 1
}

ensure_redis() {
  if command -v redis-server >/dev/null 2>&1; then return; fi
  log "installing redis-server (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
}

ensure_opensearch() {
  if [ -f "$OS_LIB/.complete" ]; then return; fi
  command -v java >/dev/null || { log "java is required for OpenSearch"; exit 1; }
  command -v mvn >/dev/null || { log "installing maven"; apt-get update -qq >/dev/null; apt-get install -y -qq maven >/dev/null; }
  log "fetching OpenSearch 2.19.1 from Maven Central into $OS_LIB"
  mkdir -p "$OS_LIB"
  mvn -q -B -f "$ROOT/tools/opensearch/pom.xml" dependency:copy-dependencies -DoutputDirectory="$OS_LIB" >&2
  touch "$OS_LIB/.complete"
}

ensure_elasticsearch() {
  # The launcher and the test-only plugin are compiled per content, so an
  # edit to tools/elasticsearch/*.java is picked up on the next start.
  local sum
  sum=$(cat "$ROOT"/tools/elasticsearch/*.java | sha256sum | cut -c1-12)
  if [ -f "$ES_DIR/lib/.complete" ] && [ -f "$ES_DIR/classes-$sum/.complete" ]; then
    ES_CLASSES=$ES_DIR/classes-$sum; return
  fi
  command -v javac >/dev/null || { log "javac (Java 17) is required for Elasticsearch"; exit 1; }
  command -v mvn >/dev/null || { log "installing maven"; apt-get update -qq >/dev/null; apt-get install -y -qq maven >/dev/null; }
  if [ ! -f "$ES_DIR/lib/.complete" ]; then
    log "fetching Elasticsearch $ES_VERSION from Maven Central into $ES_DIR/lib"
    mkdir -p "$ES_DIR/lib"
    mvn -q -B -f "$ROOT/tools/elasticsearch/pom.xml" dependency:copy-dependencies -DoutputDirectory="$ES_DIR/lib" >&2
    touch "$ES_DIR/lib/.complete"
  fi
  ES_CLASSES=$ES_DIR/classes-$sum
  rm -rf "$ES_CLASSES" && mkdir -p "$ES_CLASSES"
  javac -nowarn -cp "$ES_DIR/lib/*" -d "$ES_CLASSES" "$ROOT"/tools/elasticsearch/*.java 2>&1 | grep -v '^Note:' >&2 || true
  [ -f "$ES_CLASSES/org/elasticsearch/node/Launch.class" ] || { log "compiling tools/elasticsearch failed"; exit 1; }
  touch "$ES_CLASSES/.complete"
}

# launch_elasticsearch starts the node in the background; wait_elasticsearch
# waits for it and appends its URL to $STATE/env (so both engines can start
# at the same time).
launch_elasticsearch() {
  ensure_elasticsearch
  ESPORT=$(free_port)
  rm -rf "$STATE/elasticsearch"
  mkdir -p "$STATE/elasticsearch"
  log "starting Elasticsearch $ES_VERSION on 127.0.0.1:$ESPORT"
  nohup java -Xms"$ES_HEAP" -Xmx"$ES_HEAP" -cp "$ES_CLASSES:$ES_DIR/lib/*" org.elasticsearch.node.Launch \
    "$STATE/elasticsearch" "$ESPORT" >"$STATE/elasticsearch.log" 2>&1 &
  echo $! >"$STATE/elasticsearch.pid"
}

wait_elasticsearch() {
  if ! wait_for elasticsearch 120 curl -sf "http://127.0.0.1:$ESPORT/_cluster/health?wait_for_status=yellow&timeout=1s"; then
    tail -30 "$STATE/elasticsearch.log" >&2
    exit 1
  fi
  echo "export APMTEL_TEST_ELASTICSEARCH_URL=http://127.0.0.1:$ESPORT" >>"$STATE/env"
}

start_elasticsearch_only() {
  mkdir -p "$STATE"
  if [ -f "$STATE/env" ] && status >/dev/null 2>&1; then log "already running"; return; fi
  stop >/dev/null 2>&1 || true
  : >"$STATE/env"
  launch_elasticsearch
  wait_elasticsearch
  log "ready: $(tr '\n' ' ' <"$STATE/env")"
}

start() {
  mkdir -p "$STATE"
  if [ -f "$STATE/env" ] && status >/dev/null 2>&1 && grep -q APMTEL_TEST_REDIS_ADDR "$STATE/env" &&
    { [ "$WITH_ES" = 0 ] || grep -q APMTEL_TEST_ELASTICSEARCH_URL "$STATE/env"; }; then
    log "already running"; return
  fi
  stop >/dev/null 2>&1 || true
  ensure_redis
  ensure_opensearch
  if [ "$WITH_ES" != 0 ]; then ensure_elasticsearch; fi
  (cd "$ROOT" && go build -o "$STATE/esproxy" ./tools/esproxy)

  local rport osport
  rport=$(free_port)
  redis-server --bind 127.0.0.1 --port "$rport" --save '' --appendonly no --databases 64 \
    --daemonize yes --pidfile "$STATE/redis.pid" --dir "$STATE" --logfile "$STATE/redis.log"
  wait_for redis 20 redis-cli -p "$rport" ping

  osport=$(free_port)
  rm -rf "$STATE/opensearch"
  mkdir -p "$STATE/opensearch"
  log "starting OpenSearch on 127.0.0.1:$osport"
  nohup java -Xms"$OS_HEAP" -Xmx"$OS_HEAP" -Dlog4j2.level=warn -cp "$OS_LIB/*" "$ROOT/tools/opensearch/Launch.java" \
    -basePath "$STATE/opensearch" -httpPort "$osport" >"$STATE/opensearch.log" 2>&1 &
  echo $! >"$STATE/opensearch.pid"
  if [ "$WITH_ES" != 0 ]; then launch_elasticsearch; fi
  if ! wait_for opensearch 120 curl -sf "http://127.0.0.1:$osport/_cluster/health?wait_for_status=yellow&timeout=1s"; then
    tail -30 "$STATE/opensearch.log" >&2
    exit 1
  fi

  rm -f "$STATE/esproxy.addr"
  nohup "$STATE/esproxy" -listen 127.0.0.1:0 -target "http://127.0.0.1:$osport" -addr-file "$STATE/esproxy.addr" \
    >"$STATE/esproxy.log" 2>&1 &
  echo $! >"$STATE/esproxy.pid"
  wait_for esproxy 20 test -s "$STATE/esproxy.addr"

  cat >"$STATE/env" <<ENV
export APMTEL_TEST_REDIS_ADDR=127.0.0.1:$rport
export APMTEL_TEST_OPENSEARCH_URL=http://127.0.0.1:$osport
export APMTEL_TEST_ES_URL=http://$(cat "$STATE/esproxy.addr")
ENV
  if [ "$WITH_ES" != 0 ]; then wait_elasticsearch; fi
  log "ready: $(tr '\n' ' ' <"$STATE/env")"
}

status() {
  [ -f "$STATE/env" ] || return 1
  # Only what $STATE/env names, never the caller's variables.
  (
    unset APMTEL_TEST_REDIS_ADDR APMTEL_TEST_ES_URL APMTEL_TEST_ELASTICSEARCH_URL
    # shellcheck disable=SC1091
    . "$STATE/env"
    if [ -n "${APMTEL_TEST_REDIS_ADDR:-}" ]; then
      redis-cli -u "redis://$APMTEL_TEST_REDIS_ADDR" ping >/dev/null && curl -sf "$APMTEL_TEST_ES_URL" >/dev/null || exit 1
    fi
    if [ -n "${APMTEL_TEST_ELASTICSEARCH_URL:-}" ]; then
      curl -sf "$APMTEL_TEST_ELASTICSEARCH_URL" >/dev/null || exit 1
    fi
  )
}

stop() {
  # Waits for each process to exit: OpenSearch writes its translog and
  # cluster state on SIGTERM, and whoever removes $STATE next must not race it.
  local pids=()
  for p in esproxy opensearch elasticsearch redis; do
    if [ -f "$STATE/$p.pid" ]; then
      local pid
      pid=$(cat "$STATE/$p.pid")
      kill "$pid" 2>/dev/null && pids+=("$pid")
      rm -f "$STATE/$p.pid"
    fi
  done
  local end=$((SECONDS + 30))
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.1; done
  done
  rm -f "$STATE/env"
}

case "${1:-}" in
  start) start ;;
  start-elasticsearch) start_elasticsearch_only ;;
  stop) stop ;;
  status) status && echo running ;;
  env) cat "$STATE/env" ;;
  *) echo "usage: $0 start|start-elasticsearch|stop|status|env" >&2; exit 2 ;;
esac
