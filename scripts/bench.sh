#!/usr/bin/env bash
# Loader benchmark: loads 1,000,000 sample APM documents into the local
# OpenSearch and records documents/s and the loader's peak RSS in
# docs/benchmarks.md. Usage: scripts/bench.sh [DOCS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DOCS=${1:-1000000}
export APMTEL_STATE_DIR=${APMTEL_STATE_DIR:-$ROOT/.run/bench}
APMTEL_SERVICES_ELASTICSEARCH=0 scripts/services.sh start # OpenSearch alone: Elasticsearch is for the tests
trap 'scripts/services.sh stop' EXIT
# shellcheck disable=SC1091
. "$APMTEL_STATE_DIR/env"
go build -o "$APMTEL_STATE_DIR/apmtel" ./cmd/apmtel
# The engine's CPU seconds during the load (utime+stime of the JVM, USER_HZ 100)
# show where the machine's two cores went.
jcpu() { awk '{print $14+$15}' "/proc/$(cat "$APMTEL_STATE_DIR/opensearch.pid")/stat"; }
c0=$(jcpu)
out=$(APMTEL_SOURCE_URL=$APMTEL_TEST_ES_URL "$APMTEL_STATE_DIR/apmtel" sample apm --docs "$DOCS" --services 20 --days 7 --seed 42 2>&1 | tail -1)
engine=$(( ($(jcpu) - c0) / 100 ))
echo "$out"
echo "engine CPU during the load: ${engine}s"
gen=$(go test -run '^$' -bench BenchmarkGenerate -benchtime 200000x ./internal/sample | grep Benchmark)
# Keep the run benchmark's section (scripts/bench-run.sh) and what follows it.
runsec=$(sed -n '/<!-- bench-run:start -->/,$p' docs/benchmarks.md 2>/dev/null || true)
cat >docs/benchmarks.md <<MD
# Benchmarks

Measured by \`scripts/bench.sh\` on $(date -u +%Y-%m-%d), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB,
against the local one-node OpenSearch 2.19 (${APMTEL_OPENSEARCH_HEAP:-2g} heap), started fresh, that the tests use.

## Sample APM loader (\`apmtel sample apm --docs $DOCS --services 20 --days 7\`)

\`\`\`
$out
engine (OpenSearch JVM) CPU during the load: ${engine} s
\`\`\`

Bulk requests of 1000 documents, 3 in flight, each body written straight from the generator
(no maps, no encoding/json) into reused buffers, and the answers cut to the failed items
(\`filter_path=errors,items.*.error\`). Memory is bounded by the bodies in flight, not by the
number of documents. The loader's CPU against the engine's shows which side bounds the rate.

## Document generation alone (\`go test -bench BenchmarkGenerate ./internal/sample\`)

\`\`\`
$gen
\`\`\`
MD
if [ -n "$runsec" ]; then printf '\n%s\n' "$runsec" >>docs/benchmarks.md; fi
echo "written docs/benchmarks.md"
