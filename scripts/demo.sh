#!/usr/bin/env bash
# The main job on a fresh machine: starts local Redis and OpenSearch, loads
# sample APM data, runs a scheduler, two workers and the Asynqmon monitor,
# triggers a telemetry run, waits for it and prints the telemetry object.
# Everything keeps running afterwards; `scripts/demo.sh stop` stops it.
# It ends with the `export APMTEL_...` lines (also in $APMTEL_STATE_DIR/env)
# that make every README command work against the demo. Run again, it
# reuses the sample data already loaded (DEMO_RELOAD=1 adds more).
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
echo "== building apmtel ($D/apmtel)" # silent for a while on a first build
go build -o "$D/apmtel" ./cmd/apmtel

export APMTEL_REDIS_ADDR=$APMTEL_TEST_REDIS_ADDR
export APMTEL_REDIS_DB=0
export APMTEL_KEY_PREFIX=apmtel
export APMTEL_SOURCE_URL=$APMTEL_TEST_ES_URL
export APMTEL_DATA_DIR=$D/data
export APMTEL_POLL_INTERVAL=100ms
export APMTEL_MONITOR_ADDR=${APMTEL_MONITOR_ADDR:-127.0.0.1:8080}

# What a shell needs to use this demo: the same lines go into the env file
# (services.sh writes its APMTEL_TEST_* lines there; ours follow once).
handover=$(cat <<ENV
export APMTEL_REDIS_ADDR=$APMTEL_REDIS_ADDR
export APMTEL_REDIS_DB=$APMTEL_REDIS_DB
export APMTEL_KEY_PREFIX=$APMTEL_KEY_PREFIX
export APMTEL_SOURCE_URL=$APMTEL_SOURCE_URL
export APMTEL_DATA_DIR=$APMTEL_DATA_DIR
export APMTEL_MONITOR_ADDR=$APMTEL_MONITOR_ADDR
export PATH="$D:\$PATH"
ENV
)
grep -q '^export APMTEL_REDIS_ADDR=' "$D/env" || printf '%s\n' "$handover" >>"$D/env"

# The sample data is loaded once: a second demo reuses it rather than
# doubling every count.
loaded=$(curl -sf "$APMTEL_SOURCE_URL/traces-apm*,logs-apm*,metrics-apm*/_count?ignore_unavailable=true&allow_no_indices=true" |
  sed -n 's/.*"count":\([0-9]*\).*/\1/p' || true)
if [ "${loaded:-0}" -gt 0 ] && [ "${DEMO_RELOAD:-0}" != 1 ]; then
  echo "== sample APM data already loaded ($loaded documents): reusing it (DEMO_RELOAD=1 adds more)"
else
  echo "== loading sample APM data"
  "$D/apmtel" sample apm --docs "${DEMO_DOCS:-20000}" --services 9 --days 3
fi

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
echo
echo "== to use this demo from your shell (also in $D/env: . $D/env), the binary is $D/apmtel:"
printf '%s\n' "$handover"
