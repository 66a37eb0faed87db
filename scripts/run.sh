#!/usr/bin/env bash
# `make run`: the whole catalog on this machine (`catalogctl up`): API, worker with the periodic
# resync, tracker; SQLite, a broker that needs no server and the package blobs under var/
# (CATALOG_HOME); an admin token in var/admin.token and the catalogctl profile `local`; the
# examples published. Ctrl-C stops it; the data stays for the next start.
set -euo pipefail
cd "$(dirname "$0")/.."

# The examples run on an image built offline; deploying needs a Docker engine.
if docker info >/dev/null 2>&1; then
  bash scripts/build-test-images.sh \
    || echo "run: the examples' image could not be built; deploying them will fail" >&2
else
  echo "run: no Docker engine answers; the catalog runs, but deploying needs one" >&2
fi

exec .venv/bin/catalogctl up --host "${CATALOG_HOST:-127.0.0.1}" --port "${CATALOG_PORT:-8000}" "$@"
