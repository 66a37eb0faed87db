#!/usr/bin/env bash
# What the private-registry tests need, installed from Debian packages when missing:
# docker-registry (the Distribution registry, v2), which the tests start themselves on a free
# loopback port with a config and storage of their own, and apache2-utils for `htpasswd -B`
# (the registry's basic auth takes bcrypt lines only). Idempotent; exits non-zero naming what
# could not be installed and why.
set -euo pipefail

log() { printf 'ensure-registry: %s\n' "$*" >&2; }
fail() { log "FAILED: $*"; exit 1; }

missing=()
command -v docker-registry >/dev/null || missing+=(docker-registry)
command -v htpasswd >/dev/null || missing+=(apache2-utils)
[ "${#missing[@]}" -eq 0 ] && exit 0

[ "$(id -u)" = 0 ] || fail "${missing[*]} missing and installing needs root"
# The package starts a registry of its own on :5000 where services may start; the tests need
# none: keep services from starting while it installs (unless a policy is there already).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
log "installing ${missing[*]}"
apt-get update -qq >/dev/null 2>&1 || log "apt-get update failed; trying the cached lists"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
  >/dev/null 2>&1 || fail "apt-get install ${missing[*]} failed"
command -v docker-registry >/dev/null || fail "no docker-registry after installing it"
command -v htpasswd >/dev/null || fail "no htpasswd after installing apache2-utils"
log "installed ${missing[*]}"
