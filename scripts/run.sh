#!/usr/bin/env bash
# `make run`: the whole catalog on this machine (`catalogctl up`): API, worker with the periodic
# resync, tracker; SQLite, a broker that needs no server and the package blobs under var/
# (CATALOG_HOME); an admin token in var/admin.token; the examples published. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/catalogctl up --host "${CATALOG_HOST:-127.0.0.1}" --port "${CATALOG_PORT:-8000}" "$@"
