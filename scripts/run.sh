#!/usr/bin/env bash
# `make run`: the catalog API on embedded defaults (SQLite and files under var/),
# an admin token for the local user, and the examples published.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/.venv/bin
export CATALOG_HOME=${CATALOG_HOME:-$PWD/var}
HOST=${CATALOG_HOST:-127.0.0.1}
PORT=${CATALOG_PORT:-8000}
export CATALOG_URL="http://$HOST:$PORT"
mkdir -p "$CATALOG_HOME"

if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then
  echo "run: something already listens on $HOST:$PORT; stop it or set CATALOG_PORT" >&2
  exit 1
fi

"$BIN/catalogctl" db upgrade >/dev/null
token_file="$CATALOG_HOME/admin.token"
if [ ! -s "$token_file" ]; then
  (umask 077 && "$BIN/catalogctl" admin bootstrap >"$token_file")
fi
CATALOG_TOKEN=$(cat "$token_file")
export CATALOG_TOKEN

"$BIN/catalogctl" serve --host "$HOST" --port "$PORT" --no-migrate &
server=$!
# The worker deploys (it needs a Docker engine) and runs the periodic resync (--beat).
"$BIN/catalogctl" worker --concurrency 2 --beat --loglevel WARNING &
worker=$!
trap 'kill "$server" "$worker" 2>/dev/null || true; wait "$server" "$worker" 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 100); do
  "$BIN/python" - "$CATALOG_URL/v1/health" <<'PY' && break
import sys, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except Exception:
    sys.exit(1)
PY
  kill -0 "$server" 2>/dev/null || { echo "run: the API did not start" >&2; exit 1; }
  sleep 0.2
done

for dir in examples/*/; do
  if ! out=$("$BIN/catalogctl" package publish "$dir" --public 2>&1); then
    grep -q "published already" <<<"$out" || { echo "$out" >&2; exit 1; }
    out="$(basename "$dir"): published already"
  fi
  echo "$out"
done

cat <<TXT

The catalog API runs at $CATALOG_URL/v1 (OpenAPI: $CATALOG_URL/v1/openapi.json).
Data lives in $CATALOG_HOME; the admin token is in $token_file.

In another shell:
  . .venv/bin/activate
  export CATALOG_URL=$CATALOG_URL CATALOG_TOKEN=\$(cat $token_file)
  curl -s -H "Authorization: Bearer \$CATALOG_TOKEN" \$CATALOG_URL/v1/packages
  catalogctl package init mypkg && catalogctl package publish mypkg

Ctrl-C stops the service.
TXT
wait -n "$server" "$worker"
