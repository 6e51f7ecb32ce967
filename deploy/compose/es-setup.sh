#!/bin/bash
# One-shot setup of docker-compose.yml, after Elastic's own compose example
# for Elasticsearch 8 with security on. It runs in the Elasticsearch image
# (which has elasticsearch-certutil and curl) as root, in two phases:
#   1. create a CA and a certificate for the node "elasticsearch" in the
#      shared "certs" volume (skipped when they exist); the healthcheck of
#      this service turns healthy here, which lets Elasticsearch start;
#   2. wait for Elasticsearch, then create the least-privilege role and user
#      apmtel's scheduler and workers connect as; exit 0, which releases the
#      services that depend on service_completed_successfully.
# Passwords come from the compose secrets elastic_password and
# apmtel_es_password (files under /run/secrets, see deploy/compose/secrets.sh),
# never from this file, the environment or a command line.
set -euo pipefail
secret() { # NAME: the value of /run/secrets/NAME, letters and digits only
  local v
  v=$(cat "/run/secrets/$1") || { echo "secret $1 is missing: run deploy/compose/secrets.sh" >&2; exit 1; }
  if ! [[ "$v" =~ ^[A-Za-z0-9]+$ ]]; then
    echo "secret $1 must be letters and digits only (deploy/compose/secrets.sh makes such values)" >&2
    exit 1
  fi
  printf '%s' "$v"
}
ELASTIC_PASSWORD=$(secret elastic_password)
APMTEL_ES_PASSWORD=$(secret apmtel_es_password)
certs=config/certs
es=https://elasticsearch:9200

if [ ! -f "$certs/ca/ca.crt" ]; then
  echo "creating the CA"
  bin/elasticsearch-certutil ca --silent --pem -out "$certs/ca.zip"
  unzip -q -o "$certs/ca.zip" -d "$certs"
fi
if [ ! -f "$certs/elasticsearch/elasticsearch.crt" ]; then
  echo "creating the node certificate"
  cat >"$certs/instances.yml" <<'YML'
instances:
  - name: elasticsearch
    dns: [elasticsearch, localhost]
    ip: [127.0.0.1]
YML
  bin/elasticsearch-certutil cert --silent --pem -out "$certs/certs.zip" --in "$certs/instances.yml" \
    --ca-cert "$certs/ca/ca.crt" --ca-key "$certs/ca/ca.key"
  unzip -q -o "$certs/certs.zip" -d "$certs"
fi
# Keys stay readable by root and group root only (Elasticsearch runs as
# uid 1000, gid 0). The CA certificate is public: apmtel runs as the
# distroless "nonroot" user and must read it (APMTEL_*_CA_CERT).
chown -R root:root "$certs"
find "$certs" -type d -exec chmod 750 {} \;
find "$certs" -type f -exec chmod 640 {} \;
chmod 755 "$certs" "$certs/ca"
chmod 644 "$certs/ca/ca.crt"

echo "waiting for Elasticsearch"
until curl -s --cacert "$certs/ca/ca.crt" "$es" | grep -q "missing authentication credentials"; do sleep 5; done

call() { # METHOD PATH BODY: one request as the elastic superuser; the
  # credentials reach curl as a config on a pipe and the body (which may hold
  # a password) on stdin, so neither is on a command line.
  printf '%s' "$3" | curl -fsS --cacert "$certs/ca/ca.crt" -K <(printf 'user = "elastic:%s"\n' "$ELASTIC_PASSWORD") \
    -H 'Content-Type: application/json' -X "$1" "$es$2" --data-binary @- >/dev/null
}
echo "creating role and user apmtel"
# What the telemetry tasks read (spec §1.4: the APM indices, the agent
# configuration index, Kibana's saved objects, ML jobs, index stats) plus
# the telemetry index it writes and `apmtel telemetry-index setup` manages.
call PUT /_security/role/apmtel '{
  "cluster": ["monitor", "monitor_ml"],
  "indices": [
    {"names": ["traces-apm*", "apm-*", "logs-apm*", "metrics-apm*", "traces-*.otel-*", "logs-*.otel-*", "metrics-*.otel-*",
               ".apm-agent-configuration", ".kibana*"],
     "privileges": ["read", "view_index_metadata", "monitor"]},
    {"names": ["xpack-phone-home"], "privileges": ["create_index", "manage", "write", "read"]}
  ]
}'
# The password is JSON-quoted by the shell as is: secret() made sure it is
# letters and digits only.
call POST /_security/user/apmtel "{\"password\": \"${APMTEL_ES_PASSWORD}\", \"roles\": [\"apmtel\"]}"
echo "setup done"
