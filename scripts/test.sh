#!/usr/bin/env bash
# The test command (README, .ci/run): installs and starts Redis and
# OpenSearch on loopback ports, runs every check and test against them, and
# stops them again, also on failure.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export APMTEL_STATE_DIR=${APMTEL_STATE_DIR:-$ROOT/.run/test}

scripts/redis-ha.sh ensure   # redis-sentinel and redis-tools for the Sentinel and Cluster tests
scripts/services.sh start
trap 'scripts/services.sh stop' EXIT
# shellcheck disable=SC1091
. "$APMTEL_STATE_DIR/env"
export APMTEL_TEST_REDIS_ADDR APMTEL_TEST_ES_URL APMTEL_TEST_OPENSEARCH_URL APMTEL_TEST_ELASTICSEARCH_URL

# The console's browser tests drive Debian's chromium (internal/console);
# with CI=true they fail when it is missing.
if ! command -v chromium >/dev/null 2>&1; then
  echo "== installing chromium (apt-get) for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

echo "== helm (built from the Go module proxy on first use, then cached)"
APMTEL_HELM=$(scripts/helm.sh --path)
export APMTEL_HELM

echo "== checks"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then echo "gofmt needed:"; echo "$unformatted"; exit 1; fi
go vet ./...
# staticcheck at a pinned version (the newest release that supports our Go),
# built once per machine from the Go module proxy and cached outside the tree.
STATICCHECK_VERSION=v0.8.2
STATICCHECK_BIN=${XDG_CACHE_HOME:-$HOME/.cache}/apmtel-tools/staticcheck-$STATICCHECK_VERSION
if [ ! -x "$STATICCHECK_BIN/staticcheck" ]; then
  echo "== installing staticcheck $STATICCHECK_VERSION"
  GOBIN=$STATICCHECK_BIN go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
"$STATICCHECK_BIN/staticcheck" ./...
go run ./cmd/apmtel schema check

echo "== tests"
go test -count=1 -race -timeout 12m ./... "$@"

echo "== fuzz (bounded)"
go test -run '^$' -fuzz '^FuzzDecodeCollect$' -fuzztime 10s ./jobs
go test -run '^$' -fuzz '^FuzzAssemble$' -fuzztime 10s ./internal/collect
go test -run '^$' -fuzz '^FuzzFields$' -fuzztime 10s ./internal/kuery
