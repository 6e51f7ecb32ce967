#!/usr/bin/env bash
# The main job on a fresh machine: starts local Redis and OpenSearch, loads
# sample APM data, runs a scheduler, two workers and the Asynqmon monitor,
# triggers a telemetry run, waits for it and prints the telemetry object.
# Everything keeps running afterwards; `scripts/demo.sh stop` stops it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export APMTEL_STATE_DIR=${APMTEL_STATE_DIR:-$ROOT/.run/demo}
D=$APMTEL_STATE_DIR

stop() {
  local pids=()
  for p in scheduler worker-1 worker-2 monitor; do
    if [ -f "$D/$p.pid" ]; then
      pids+=("$(cat "$D/$p.pid")")
      kill "$(cat "$D/$p.pid")" 2>/dev/null || true
      rm -f "$D/$p.pid"
    fi
  done
  # Workers drain their jobs (8 s at most) while Redis is still there.
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  done
  scripts/services.sh stop
}
if [ "${1:-}" = stop ]; then stop; echo "demo stopped"; exit 0; fi

APMTEL_SERVICES_ELASTICSEARCH=0 scripts/services.sh start # OpenSearch alone: Elasticsearch is for the tests
# shellcheck disable=SC1091
. "$D/env"
go build -o "$D/apmtel" ./cmd/apmtel

export APMTEL_REDIS_ADDR=$APMTEL_TEST_REDIS_ADDR
export APMTEL_SOURCE_URL=$APMTEL_TEST_ES_URL
export APMTEL_DATA_DIR=$D/data
export APMTEL_POLL_INTERVAL=100ms
export APMTEL_MONITOR_ADDR=${APMTEL_MONITOR_ADDR:-127.0.0.1:8080}

echo "== loading sample APM data"
"$D/apmtel" sample apm --docs "${DEMO_DOCS:-20000}" --services 9 --days 3

for p in scheduler worker-1 worker-2 monitor; do
  [ -f "$D/$p.pid" ] && kill "$(cat "$D/$p.pid")" 2>/dev/null || true
  cmd=${p%-*}
  nohup "$D/apmtel" "$cmd" >"$D/$p.log" 2>&1 &
  echo $! >"$D/$p.pid"
done
sleep 1

echo "== running all telemetry tasks"
"$D/apmtel" run --wait
echo "== telemetry object (stack_stats.kibana.plugins.apm)"
"$D/apmtel" snapshot
echo
echo "Console: http://$APMTEL_MONITOR_ADDR/runs   Asynqmon: http://$APMTEL_MONITOR_ADDR/monitoring/"
echo "Payload files: $APMTEL_DATA_DIR/payloads/   Logs: $D/*.log"
echo "Stop everything: scripts/demo.sh stop"
