#!/usr/bin/env bash
# Helm for the chart checks, built from source through the Go module proxy
# (no download site) and cached, so only the first call takes minutes.
#   scripts/helm.sh --path      build if needed, print the binary's path
#   scripts/helm.sh --cached    print the path if already built, else exit 1
#   scripts/helm.sh ARGS...     build if needed, run helm ARGS...
set -euo pipefail
HELM_VERSION=${HELM_VERSION:-v3.22.0}
BIN=${APMTEL_TOOLS_BIN:-${XDG_CACHE_HOME:-$HOME/.cache}/apmtel/bin}
helm=$BIN/helm-$HELM_VERSION

if [ "${1:-}" = --cached ]; then
  [ -x "$helm" ] && { echo "$helm"; exit 0; }
  exit 1
fi
if [ ! -x "$helm" ]; then
  mkdir -p "$BIN"
  tmp=$(mktemp -d "$BIN/.build.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  echo "building helm $HELM_VERSION from the Go module proxy into $BIN (a few minutes, once)" >&2
  # GOTOOLCHAIN=local: use the installed Go, never download a toolchain.
  GOTOOLCHAIN=local GOBIN=$tmp go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  mv "$tmp/helm" "$helm"
fi
if [ "${1:-}" = --path ]; then echo "$helm"; exit 0; fi
exec "$helm" "$@"
