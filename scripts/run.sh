#!/usr/bin/env bash
# `make run`: the package tools on embedded defaults. The HTTP API, worker and
# beat join this command as they land; for now it validates and builds the
# examples into var/packages and shows what catalogctl offers.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
mkdir -p var/packages
for dir in examples/*/; do
  name=$(basename "$dir")
  "$BIN/catalogctl" package validate "$dir"
  "$BIN/catalogctl" package build "$dir" -o "var/packages/$name.tar.gz"
done
echo
"$BIN/catalogctl" --help
echo
echo "Packages built under var/packages. Next: . .venv/bin/activate && catalogctl package init mypkg"
