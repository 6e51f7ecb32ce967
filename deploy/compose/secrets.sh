#!/bin/sh
# Creates the secrets docker-compose.yml reads, once, before the first
# `docker compose up`: one file per secret in ${APMTEL_SECRETS_DIR:-./secrets}
# (relative to the repository root), each a random 48-character hex value.
# Files that exist are kept: Elasticsearch takes elastic_password on its first
# start only, so replacing it later locks the setup out of the esdata volume.
# To use your own values, write the files yourself (letters and digits only)
# and run this for the rest.
#
# Compose without Swarm bind-mounts secret files as they are, so the
# containers' users (apmtel uid 65532, Elasticsearch uid 1000) must be able to
# read them: the files are 0644, the directory 0700 keeps other users of this
# machine out. git and the image build ignore the directory.
set -eu
cd "$(dirname "$0")/../.."
dir=${APMTEL_SECRETS_DIR:-./secrets}
umask 077
mkdir -p "$dir"
chmod 700 "$dir"
for name in elastic_password apmtel_es_password redis_password monitor_token; do
  f="$dir/$name"
  if [ -s "$f" ]; then
    echo "keeping $f"
  else
    # 24 random bytes as hex: letters and digits, safe in JSON and URLs.
    od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$f"
    echo "created $f"
  fi
  chmod 644 "$f"
done
